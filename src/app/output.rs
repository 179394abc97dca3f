//! Output: window screenshots (Ctrl+S), posed mesh export, and precomputing a sequence's
//! embeddings (on a thread with a progress bar). Video and PNG exports: `export.rs`.

use super::messages::Messages;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};

use super::session::Session;
use super::worker::{Progress, spawn_job};
use crate::mesh::export::{MeshFormat, SceneMesh};

/// Screenshots, exports, precompute and their reports.
pub struct OutputPlugin;

impl Plugin for OutputPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<OutputRequests>().add_systems(
            Update,
            (take_screenshots, super::export::start_exports, report_jobs)
                .chain()
                .in_set(super::ViewerSet::Output),
        );
    }
}

/// Requests from the UI and scripts handled by [`take_screenshots`] and
/// [`super::export::start_exports`].
#[derive(Resource)]
pub struct OutputRequests {
    /// Export the timeline or a turntable (started by `export::start_exports`).
    pub export: Option<(super::export::ExportKind, super::export::ExportFormat)>,
    /// The turntable frame count the File menu edits.
    pub turntable_frames: u32,
    /// Take a screenshot to an automatic file name.
    pub screenshot: bool,
    /// Take a screenshot to this path.
    pub screenshot_to: Option<PathBuf>,
    /// Screenshots started and not yet written.
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// Results of finished screenshots (`Err` text on failure).
    pub finished: Arc<std::sync::Mutex<Vec<Result<PathBuf, String>>>>,
    /// A screenshot without the panels: frames left before it is taken, and whether the
    /// panels were shown before.
    clean: Option<(u32, bool)>,
    /// The panels to show again once the clean screenshot is written.
    restore_ui: Option<bool>,
}

impl Default for OutputRequests {
    fn default() -> Self {
        Self {
            export: None,
            turntable_frames: super::export::DEFAULT_TURNTABLE_FRAMES,
            screenshot: false,
            screenshot_to: None,
            in_flight: Default::default(),
            finished: Default::default(),
            clean: None,
            restore_ui: None,
        }
    }
}

impl OutputRequests {
    /// Asks for a screenshot of the viewport alone (panels hidden for the frame).
    pub fn request_clean_screenshot(&mut self) {
        if self.clean.is_none() && self.restore_ui.is_none() {
            self.clean = Some((2, false));
        }
    }

    /// Whether output work is under way (the window keeps redrawing meanwhile).
    pub fn busy(&self) -> bool {
        self.screenshot
            || self.export.is_some()
            || self.screenshot_to.is_some()
            || self.clean.is_some()
            || self.restore_ui.is_some()
            || self.in_flight.load(Ordering::SeqCst) > 0
    }
}

/// Largest precompute cache; longer sequences keep their first frames only.
pub const PRECOMPUTE_MAX_BYTES: usize = 2 << 30;

/// Frames of the sequence the precompute cache holds within [`PRECOMPUTE_MAX_BYTES`].
pub fn precompute_frames(session: &Session) -> usize {
    let per_frame: usize = (session.hands.iter())
        .map(|h| h.embeddings.embeddings.heap_bytes())
        .sum::<usize>()
        .max(1);
    session.frame_count().min(PRECOMPUTE_MAX_BYTES / per_frame)
}

/// Opens `dir` in the desktop's file manager. (One process spawn per platform: the
/// `xdg-open`/`open`/`explorer` convention, not worth a dependency.)
pub fn open_folder(messages: &mut Messages, dir: &Path) {
    if let Err(e) = std::fs::create_dir_all(dir) {
        messages.error(format!("{}: cannot create the folder: {e}", dir.display()));
        return;
    }
    let opener = if cfg!(target_os = "windows") {
        "explorer"
    } else if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    match std::process::Command::new(opener)
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(_) => messages.info(format!("opened {}", dir.display())),
        Err(e) => messages.error(format!(
            "cannot open {} with {opener}: {e} (the folder is there; open it from a file manager)",
            dir.display()
        )),
    }
}

/// Starts requested screenshots of the window (UI included) and reports finished ones.
pub fn take_screenshots(
    mut commands: Commands,
    mut requests: ResMut<OutputRequests>,
    session: Res<Session>,
    mut messages: ResMut<Messages>,
    mut panels: ResMut<super::display::Panels>,
) {
    let mut targets = Vec::new();
    let auto_name = |dir: &Path| super::files::unique_output_path(dir, "xhand-screenshot", ".png");
    if std::mem::take(&mut requests.screenshot) {
        targets.push(auto_name(&session.output_dir));
    }
    match requests.clean {
        Some((2, _)) => {
            // Hide the panels, let two frames render without them, then capture.
            requests.clean = Some((1, panels.show_ui));
            panels.show_ui = false;
        }
        Some((1, was)) => requests.clean = Some((0, was)),
        Some((_, was)) => {
            requests.clean = None;
            requests.restore_ui = Some(was);
            targets.push(auto_name(&session.output_dir));
        }
        None => {}
    }
    if let Some(was) = requests.restore_ui
        && requests.in_flight.load(Ordering::SeqCst) == 0
        && targets.is_empty()
    {
        requests.restore_ui = None;
        panels.show_ui = was;
    }
    if let Some(p) = requests.screenshot_to.take() {
        targets.push(p);
    }
    for path in targets {
        requests.in_flight.fetch_add(1, Ordering::SeqCst);
        let in_flight = requests.in_flight.clone();
        let finished = requests.finished.clone();
        commands
            .spawn(Screenshot::primary_window())
            .observe(move |ev: On<ScreenshotCaptured>| {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    let _ = std::fs::create_dir_all(dir);
                }
                let result = ev
                    .image
                    .clone()
                    .try_into_dynamic()
                    .map_err(|e| format!("screenshot conversion failed: {e}"))
                    .and_then(|img| {
                        let rgb = img.to_rgb8();
                        let mut bytes = Vec::new();
                        rgb.write_to(
                            &mut std::io::Cursor::new(&mut bytes),
                            image::ImageFormat::Png,
                        )
                        .map_err(|e| e.to_string())?;
                        crate::image_io::write_atomically(&path, &bytes)
                            .map_err(|e| format!("{e:#}"))
                    })
                    .map(|_| path.clone());
                if let Ok(mut f) = finished.lock() {
                    f.push(result);
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
            });
    }
    let done: Vec<_> = requests
        .finished
        .lock()
        .map(|mut f| f.drain(..).collect())
        .unwrap_or_default();
    for r in done {
        match r {
            Ok(p) => messages.info_with_folder(
                format!("saved {}", super::files::absolute(&p).display()),
                &p,
            ),
            Err(e) => messages.error(e),
        }
    }
}

/// Writes the current posed mesh (OBJ or PLY by extension) with albedo colours — once the
/// networks' details for the pose shown are in (until then the export waits, so it never
/// writes the previous pose's displacement and colours).
pub fn export_mesh(session: &mut Session, messages: &mut Messages, path: &Path) {
    if session.details_stale() {
        messages.info(format!(
            "exporting {} once this pose's details are computed…",
            super::files::absolute(path).display()
        ));
        session.jobs.export_mesh = Some(path.to_path_buf());
        return;
    }
    let result = (|| -> anyhow::Result<()> {
        let format = MeshFormat::from_path(path)?;
        // Every hand shown, one after another in one mesh.
        let mut mesh = SceneMesh::default();
        for (_, hand, loaded) in session.drawn_hands() {
            let avatar = &loaded.avatar;
            let embeddings = &hand.embeddings.embeddings;
            let geo = avatar.pose_geometry(embeddings, &hand.pose);
            let colors = (embeddings.albedo.chunks_exact(3))
                .map(|c| avatar.color_order.to_rgb([c[0], c[1], c[2]]));
            mesh.push(
                &geo.vertices,
                colors,
                &avatar.template.faces,
                geo.drive.mirrored,
            );
        }
        if mesh.vertices.is_empty() {
            anyhow::bail!("no hand is shown: nothing to export");
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        crate::image_io::write_atomically(path, &mesh.bytes(format))
    })();
    match result {
        Ok(()) => messages.info_with_folder(
            format!("exported {}", super::files::absolute(path).display()),
            path,
        ),
        Err(e) => messages.error(format!("{e:#}")),
    }
}

/// Runs the networks for every frame of the sequence in the background (the first
/// [`precompute_frames`] of a sequence too long to cache whole).
pub fn start_precompute(session: &mut Session, messages: &mut Messages) {
    let keep = precompute_frames(session);
    let mut notes = Vec::new();
    let Some(seq) = &session.sequence else { return };
    if keep < seq.scene.len() {
        notes.push(format!(
            "the precompute cache holds {keep} of {} frames ({} MiB at most); the rest run live",
            seq.scene.len(),
            PRECOMPUTE_MAX_BYTES >> 20
        ));
    }
    // Per hand: its avatar, cache, and its frames among the first `keep` scene frames.
    let tracks: Vec<_> = (0..seq.scene.hands.len())
        .map(|h| {
            let frames: Vec<(usize, crate::pose::PoseFrame)> = (0..keep.min(seq.scene.len()))
                .filter_map(|i| {
                    let k = seq.track_frame(h, i)?;
                    Some((k, seq.scene.hands[h].1.sequence.frames[k].clone()))
                })
                .collect();
            let avatar = session.avatar_for(seq.scene.hands[h].0).avatar.clone();
            (avatar, seq.caches[h].clone(), frames)
        })
        .collect();
    let progress = Progress::default();
    let total = tracks.iter().map(|(_, _, f)| f.len()).sum();
    progress.total.store(total, Ordering::SeqCst);
    spawn_job("xhand-precompute", progress.clone(), move |p| {
        let mut done = 0;
        for (avatar, cache, frames) in &tracks {
            for (k, f) in frames {
                if p.cancel.load(Ordering::SeqCst) {
                    return Err("precomputing was cancelled".into());
                }
                let have = cache.lock().map(|c| c[*k].is_some()).unwrap_or(false);
                if !have {
                    let e = avatar.embed(f).map_err(|e| e.to_string())?;
                    if let Ok(mut c) = cache.lock() {
                        c[*k] = Some((f.clone(), Arc::new(e)));
                    }
                }
                done += 1;
                p.done.store(done, Ordering::SeqCst);
            }
        }
        Ok(())
    });
    session.jobs.precompute = Some(progress);
    for n in notes {
        messages.info(n);
    }
}

/// Reports finished background jobs and writes a mesh export that waited for details.
pub fn report_jobs(mut session: ResMut<Session>, mut messages: ResMut<Messages>) {
    if !session.details_stale()
        && let Some(path) = session.jobs.export_mesh.take()
    {
        export_mesh(&mut session, &mut messages, &path);
    }
    if let Some(p) = session.jobs.precompute.clone()
        && p.is_finished()
    {
        session.jobs.precompute = None;
        match p.take_error() {
            Some(e) => messages.error(e),
            None => messages.info("all frames precomputed; playback uses the cache"),
        }
    }
    super::export::report_export(&mut session, &mut messages);
}
