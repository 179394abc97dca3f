//! Both hands of a pose file as one sequence of scenes. Each hand is loaded as a sequence of
//! its own (by the format's loader, converted for the avatar that will show it), then the
//! hands' frames are matched by their place in the file's frame order: a scene frame holds
//! every hand present in that file frame.

use std::path::Path;

use super::{LoadedPoses, PoseError, PoseFormat, PoseFrame, PoseLoadOptions, load_poses};
use crate::camera::Camera;
use crate::hand::Handedness;

/// Which hands of a pose file to show (`--hand`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HandChoice {
    Right,
    Left,
    /// Both, together in one scene (files that hold both: HaMeR dumps, InterHand).
    Both,
}

impl From<Handedness> for HandChoice {
    fn from(side: Handedness) -> Self {
        match side {
            Handedness::Right => Self::Right,
            Handedness::Left => Self::Left,
        }
    }
}

impl HandChoice {
    /// The one hand chosen, `None` for both.
    pub fn single(self) -> Option<Handedness> {
        match self {
            Self::Right => Some(Handedness::Right),
            Self::Left => Some(Handedness::Left),
            Self::Both => None,
        }
    }
}

/// The hands of a pose file, frame by frame.
#[derive(Clone, Debug)]
pub struct SceneSequence {
    /// Each hand's own sequence (right first when both).
    pub hands: Vec<(Handedness, LoadedPoses)>,
    /// Per scene frame, per entry of `hands`: the index of that hand's frame, if the hand is
    /// in this frame. Every scene frame has at least one hand.
    pub frames: Vec<Vec<Option<usize>>>,
    pub fps: f32,
}

impl SceneSequence {
    /// One hand's sequence as scenes of one hand each.
    pub fn single(hand: Handedness, loaded: LoadedPoses) -> Self {
        let fps = loaded.sequence.fps;
        let frames = (0..loaded.sequence.len()).map(|i| vec![Some(i)]).collect();
        Self {
            hands: vec![(hand, loaded)],
            frames,
            fps,
        }
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Whether scene frame `i` exists; the error names the valid range.
    pub fn check_frame(&self, i: usize) -> Result<(), PoseError> {
        if i < self.len() {
            return Ok(());
        }
        let source = self
            .hands
            .first()
            .and_then(|(_, l)| l.sequence.source.as_deref());
        Err(super::no_such_frame(i, self.len(), source))
    }

    /// The hands of scene frame `i`: side and pose of each hand present.
    pub fn hands_at(&self, i: usize) -> Vec<(Handedness, &PoseFrame)> {
        self.frames[i]
            .iter()
            .zip(&self.hands)
            .filter_map(|(k, (side, loaded))| k.map(|k| (*side, &loaded.sequence.frames[k])))
            .collect()
    }

    /// The label of scene frame `i` (an image name, an InterHand frame id), if the file has
    /// labels.
    pub fn label(&self, i: usize) -> Option<&str> {
        self.each_at(i, |loaded, k| {
            loaded.sequence.labels.as_ref()?.get(k).map(String::as_str)
        })
    }

    /// The file's camera for scene frame `i` (HaMeR's; the hands of one image share it).
    pub fn camera(&self, i: usize) -> Option<&Camera> {
        self.each_at(i, |loaded, k| loaded.cameras.as_ref()?.get(k)?.as_ref())
    }

    /// The first answer `f` gives for a hand of scene frame `i`.
    fn each_at<'a, T>(
        &'a self,
        i: usize,
        f: impl Fn(&'a LoadedPoses, usize) -> Option<T>,
    ) -> Option<T> {
        let row = self.frames.get(i)?;
        row.iter()
            .zip(&self.hands)
            .find_map(|(k, (_, loaded))| f(loaded, (*k)?))
    }

    /// Every loader warning, each hand's.
    pub fn warnings(&self) -> impl Iterator<Item = &String> {
        self.hands.iter().flat_map(|(_, l)| &l.warnings)
    }
}

/// Loads the hands of `path` that `choice` asks for, each converted with its side's options
/// (the pose mean of the avatar that shows it): both hands together for `Both`, and by
/// default for a HaMeR dump or InterHand capture that holds both; else the one hand chosen,
/// or the file's only hand. `capture` and `hand` in the options are ignored in favour of
/// `choice` and `right.capture`.
pub fn load_scene(
    path: &Path,
    choice: Option<HandChoice>,
    right: &PoseLoadOptions,
    left: &PoseLoadOptions,
) -> Result<SceneSequence, PoseError> {
    let both = match choice {
        Some(HandChoice::Both) => true,
        Some(_) => false,
        None => {
            let s = super::inspect_poses(path)?;
            s.hands.len() == 2 && matches!(s.format, PoseFormat::Hamer | PoseFormat::InterHand)
        }
    };
    let left = &PoseLoadOptions {
        capture: right.capture.clone(),
        ..left.clone()
    };
    if both {
        match load_hands(path, right, left) {
            Ok(s) => return Ok(s),
            Err(e) if choice == Some(HandChoice::Both) => return Err(e),
            // The chosen capture has one hand only: show that one.
            Err(_) => {}
        }
    }
    let for_side = |side| match side {
        Handedness::Right => right,
        Handedness::Left => left,
    };
    let single = choice.and_then(HandChoice::single);
    let first_side = single.unwrap_or(right.pose_mean_hand);
    let opts = |side| PoseLoadOptions {
        hand: single,
        ..for_side(side).clone()
    };
    let loaded = load_poses(path, &opts(first_side))?;
    let side = single
        .or_else(|| loaded.sequence.frames.iter().find_map(|f| f.hand))
        .unwrap_or(first_side);
    let (a, b) = (for_side(first_side), for_side(side));
    if a.pose_mean == b.pose_mean && a.pose_mean_hand == b.pose_mean_hand {
        return Ok(SceneSequence::single(side, loaded));
    }
    // Another avatar shows this side: converted for its mean pose.
    Ok(SceneSequence::single(side, load_poses(path, &opts(side))?))
}

/// Loads both hands of `path`, each with its options (the pose mean of the avatar that shows
/// it), and matches their frames. Only formats with both hands in one frame qualify (HaMeR
/// dumps, InterHand annotations); a hand missing from a frame leaves the other alone there.
pub fn load_hands(
    path: &Path,
    right: &PoseLoadOptions,
    left: &PoseLoadOptions,
) -> Result<SceneSequence, PoseError> {
    let mut hands = Vec::new();
    for (side, opts) in [(Handedness::Right, right), (Handedness::Left, left)] {
        let opts = PoseLoadOptions {
            hand: Some(side),
            quiet_missing_hand: true,
            ..opts.clone()
        };
        let loaded = load_poses(path, &opts)?;
        if !matches!(loaded.format, PoseFormat::Hamer | PoseFormat::InterHand) {
            return Err(PoseError::file(
                path,
                format!(
                    "{} files hold one hand a frame; both hands together need a HaMeR dump or \
                     InterHand annotations (choose --hand right or --hand left)",
                    loaded.format
                ),
            ));
        }
        hands.push((side, loaded));
    }
    // Scene frames: every file frame either hand is in, in file order.
    let file_frame =
        |loaded: &LoadedPoses, k: usize| loaded.file_frames.as_ref().map_or(k, |f| f[k]);
    let mut all: Vec<usize> = hands
        .iter()
        .flat_map(|(_, l)| (0..l.sequence.len()).map(move |k| file_frame(l, k)))
        .collect();
    all.sort_unstable();
    all.dedup();
    let mut cursor = vec![0usize; hands.len()];
    let frames = all
        .iter()
        .map(|&f| {
            hands
                .iter()
                .zip(cursor.iter_mut())
                .map(|((_, l), at)| {
                    let hit = *at < l.sequence.len() && file_frame(l, *at) == f;
                    hit.then(|| {
                        *at += 1;
                        *at - 1
                    })
                })
                .collect()
        })
        .collect();
    let fps = hands[0].1.sequence.fps;
    Ok(SceneSequence { hands, frames, fps })
}
