//! What is drawn behind the hand: the pose file's source footage in the HaMeR camera view (a
//! folder of the images HaMeR ran on, matched by the dump's image names, else by order, or
//! the video), or the environment map lighting the hand.

use super::messages::Messages;
use std::path::PathBuf;
use std::sync::Arc;

use bevy::prelude::*;

use super::lighting::Lighting;
use super::session::Session;
use super::worker::Pending;
use crate::footage::SourceFootage;
use crate::gpu::BackdropMapping;
use crate::image_io::Rgba8;

/// A new key for a backdrop image (the render world uploads an image when its key changes).
pub fn next_backdrop_key() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The image behind the hand this frame.
#[derive(Clone)]
pub struct Backdrop {
    pub key: u64,
    pub image: Arc<Rgba8>,
    pub mapping: BackdropMapping,
}

/// The backdrop of the view: the source footage in the HaMeR camera view, else the
/// environment map when "show as background" is on, else none.
pub fn backdrop(session: &Session, lighting: &Lighting) -> Option<Backdrop> {
    if let Some((key, image)) = session.footage.backdrop(session.use_pose_camera) {
        return Some(Backdrop {
            key,
            image,
            mapping: BackdropMapping::Screen,
        });
    }
    let (key, image) = lighting
        .env_display
        .clone()
        .filter(|_| lighting.env_background)?;
    Some(Backdrop {
        key,
        image,
        mapping: BackdropMapping::Environment {
            rotation: lighting.env_rotation.to_radians(),
        },
    })
}

/// The footage chosen with "Source images…" and the image of the frame shown.
#[derive(Default)]
pub struct Footage {
    /// The folder or video, and the footage itself (`None` while a read has it on a thread).
    pub source: Option<(PathBuf, Option<SourceFootage>)>,
    /// Show it (only the HaMeR camera view shows it: that camera saw these images).
    pub show: bool,
    /// The image of frame `.0`, and a key that changes with it (for the GPU upload).
    pub image: Option<(usize, u64, Arc<Rgba8>)>,
    /// A read under way: the frame, and the footage coming back with its image.
    reading: Option<(usize, Pending<FrameRead>)>,
    /// The frame whose image could not be read (reported once).
    failed: Option<usize>,
}

/// What a background read gives back: the footage, and the frame's image or the problem.
type FrameRead = (SourceFootage, Result<Rgba8, String>);

impl Footage {
    /// The image to draw behind the hand this frame, with its key.
    pub fn backdrop(&self, session_shows_pose_camera: bool) -> Option<(u64, Arc<Rgba8>)> {
        if !(self.show && session_shows_pose_camera) {
            return None;
        }
        self.image.as_ref().map(|(_, k, img)| (*k, img.clone()))
    }

    /// Whether a frame's image is being read.
    pub fn is_reading(&self) -> bool {
        self.reading.is_some()
    }
}

/// Opens `path` (a folder of images or an MP4) as the footage and shows it in the HaMeR
/// camera view.
pub fn choose(session: &mut Session, messages: &mut Messages, path: PathBuf) {
    match SourceFootage::open(&path) {
        Ok(source) => {
            let has_camera = session.sequence.as_ref().is_some_and(|s| s.has_cameras());
            let what = source.describe();
            session.footage = Footage {
                source: Some((path.clone(), Some(source))),
                show: true,
                ..Footage::default()
            };
            if has_camera {
                session.use_pose_camera = true;
                messages.info(format!(
                    "source images: {what} from {}, behind the hand in the HaMeR camera view",
                    path.display()
                ));
            } else {
                messages.info(format!(
                    "source images: {what} from {}; they show in the HaMeR camera view of a \
                     pose file with a camera",
                    path.display()
                ));
            }
        }
        Err(e) => messages.error(format!("{e:#}")),
    }
}

/// Reads the current frame's source image on a thread when the frame changes (only while
/// it shows), so a video decoded from its start to reach an earlier frame never stalls the
/// window; the newest frame asked for wins.
pub fn update_footage(mut session: ResMut<Session>, mut messages: ResMut<Messages>) {
    let frame = session.timeline.frame;
    if let Some((asked, pending)) = session.footage.reading.take() {
        match pending.poll() {
            None => session.footage.reading = Some((asked, pending)),
            Some(outcome) => {
                let footage = &mut session.footage;
                let (source, image) = match outcome {
                    Ok((source, image)) => (Some(source), image),
                    // The thread died with the footage: open it again.
                    Err(e) => {
                        let path = footage.source.as_ref().map(|(p, _)| p);
                        (path.and_then(|p| SourceFootage::open(p).ok()), Err(e))
                    }
                };
                if let Some((_, slot)) = footage.source.as_mut() {
                    *slot = source;
                }
                match image {
                    Ok(img) => {
                        footage.image = Some((asked, next_backdrop_key(), Arc::new(img)));
                        footage.failed = None;
                    }
                    Err(e) => {
                        footage.failed = Some(asked);
                        footage.image = None;
                        messages.error(e);
                    }
                }
            }
        }
    }
    let shows = session.use_pose_camera && session.footage.show;
    let current = session.footage.image.as_ref().map(|(f, _, _)| *f);
    if !shows || current == Some(frame) || session.footage.failed == Some(frame) {
        return;
    }
    let label = session
        .sequence
        .as_ref()
        .and_then(|s| s.scene.label(frame).map(str::to_string));
    let footage = &mut session.footage;
    let Some((path, slot)) = footage.source.as_mut() else {
        return;
    };
    // Busy with another frame: this one is asked for when that read is back.
    let Some(mut source) = slot.take() else {
        return;
    };
    let path = path.clone();
    let pending = Pending::spawn("xhand-footage", move || {
        let image = source
            .frame(frame, label.as_deref())
            .map(|c| c.into_owned())
            .map_err(|e| format!("{}: {e:#}", path.display()));
        (source, image)
    });
    footage.reading = Some((frame, pending));
}
