//! Output: window screenshots (Ctrl+S), posed mesh export, rendering the loaded sequence to
//! numbered PNGs, and precomputing a sequence's embeddings — the slow ones on threads with
//! progress bars.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};

use super::session::Session;
use super::worker::{Progress, spawn_job};
use crate::mesh::export::{MeshFormat, mesh_bytes};

/// Requests from the UI and scripts handled by [`take_screenshots`].
#[derive(Resource, Default)]
pub struct OutputRequests {
    /// Take a screenshot to an automatic file name.
    pub screenshot: bool,
    /// Take a screenshot to this path.
    pub screenshot_to: Option<PathBuf>,
    /// Screenshots started and not yet written.
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// Results of finished screenshots (`Err` text on failure).
    pub finished: Arc<std::sync::Mutex<Vec<Result<PathBuf, String>>>>,
}

fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}")
}

/// Starts requested screenshots of the window (UI included) and reports finished ones.
pub fn take_screenshots(
    mut commands: Commands,
    mut requests: ResMut<OutputRequests>,
    mut session: ResMut<Session>,
) {
    let mut targets = Vec::new();
    if std::mem::take(&mut requests.screenshot) {
        targets.push(PathBuf::from(format!(
            "xhand-screenshot-{}.png",
            timestamp()
        )));
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
            Ok(p) => session.info(format!("saved {}", p.display())),
            Err(e) => session.error(e),
        }
    }
}

/// Writes the current posed mesh (OBJ or PLY by extension) with albedo colours.
pub fn export_mesh(session: &mut Session, path: &Path) {
    let result = (|| -> anyhow::Result<()> {
        let format = MeshFormat::from_path(path)?;
        let avatar = &session.avatar.avatar;
        let geo = avatar.pose_geometry(&session.embeddings.embeddings, &session.pose);
        let colors: Vec<[f32; 3]> = session
            .embeddings
            .embeddings
            .albedo
            .chunks_exact(3)
            .map(|c| avatar.color_order.to_rgb([c[0], c[1], c[2]]))
            .collect();
        let mut faces = avatar.template.faces.clone();
        if geo.drive.mirrored {
            faces.iter_mut().for_each(|f| f.swap(1, 2));
        }
        crate::image_io::write_atomically(path, &mesh_bytes(format, &geo.vertices, &colors, &faces))
    })();
    match result {
        Ok(()) => session.info(format!("exported {}", path.display())),
        Err(e) => session.error(format!("{e:#}")),
    }
}

/// Runs the networks for every frame of the sequence in the background.
pub fn start_precompute(session: &mut Session) {
    let Some(seq) = &session.sequence else { return };
    let progress = Progress::default();
    let frames = seq.poses.sequence.frames.clone();
    progress.total.store(frames.len(), Ordering::SeqCst);
    let cache = seq.cache.clone();
    let avatar = session.avatar.avatar.clone();
    spawn_job("xhand-precompute", progress.clone(), move |p| {
        for (i, f) in frames.iter().enumerate() {
            if p.cancel.load(Ordering::SeqCst) {
                return Err("precomputing was cancelled".into());
            }
            let have = cache.lock().map(|c| c[i].is_some()).unwrap_or(false);
            if !have {
                let e = avatar.embed(f).map_err(|e| e.to_string())?;
                if let Ok(mut c) = cache.lock() {
                    c[i] = Some(Arc::new(e));
                }
            }
            p.done.store(i + 1, Ordering::SeqCst);
        }
        Ok(())
    });
    session.jobs.precompute = Some(progress);
}

/// Renders every frame of the sequence with the current camera and shading to numbered
/// PNGs in a new folder (GPU pipeline on a GPU, else the CPU reference renderer).
pub fn start_render_sequence(session: &mut Session) {
    let (Some(seq), Some(camera)) = (&session.sequence, session.camera.clone()) else {
        return;
    };
    let folder = PathBuf::from(format!("xhand-render-{}", timestamp()));
    let progress = Progress::default();
    let frames = seq.poses.sequence.frames.clone();
    progress.total.store(frames.len(), Ordering::SeqCst);
    let cache = seq.cache.clone();
    let avatar = session.avatar.avatar.clone();
    let mut settings = session.settings;
    if avatar.renderer.is_none() && settings.mode == crate::render_settings::ShadingMode::Neural {
        settings.mode = crate::render_settings::ShadingMode::Sh;
    }
    let sh = session.current_sh();
    let out = folder.clone();
    spawn_job("xhand-render-sequence", progress.clone(), move |p| {
        std::fs::create_dir_all(&out)
            .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        let mut gpu = crate::gpu::GpuContext::headless()
            .ok()
            .filter(|c| c.info.device_type != wgpu::DeviceType::Cpu)
            .and_then(|c| {
                crate::gpu::HandRenderer::new(&c.device, &avatar)
                    .ok()
                    .map(|r| (c, r))
            });
        let digits = frames.len().to_string().len().max(4);
        for (i, f) in frames.iter().enumerate() {
            if p.cancel.load(Ordering::SeqCst) {
                return Err("rendering was cancelled".into());
            }
            let cached = cache.lock().ok().and_then(|c| c[i].clone());
            let emb = match cached {
                Some(e) => (*e).clone(),
                None => avatar.embed(f).map_err(|e| e.to_string())?,
            };
            let geometry = avatar.pose_geometry(&emb, f);
            let posed = crate::frame::PosedFrame {
                embeddings: emb,
                geometry,
                sh: f.sh.unwrap_or(sh),
            };
            let image = match gpu.as_mut() {
                Some((ctx, r)) => {
                    crate::gpu::render_frame(ctx, r, &avatar, &posed, &camera, &settings)
                        .map_err(|e| e.to_string())?
                }
                None => {
                    crate::cpu_render::render(&avatar, &posed, &camera, &settings)
                        .map_err(|e| e.to_string())?
                        .image
                }
            };
            image
                .save_png(&out.join(format!("{i:0digits$}.png")))
                .map_err(|e| format!("{e:#}"))?;
            p.done.store(i + 1, Ordering::SeqCst);
        }
        Ok(())
    });
    session.info(format!(
        "rendering {} frames to {}",
        frames_len(session),
        folder.display()
    ));
    session.jobs.render_sequence = Some((progress, folder));
}

fn frames_len(session: &Session) -> usize {
    session.frame_count()
}

/// Reports finished background jobs.
pub fn report_jobs(mut session: ResMut<Session>) {
    if let Some(p) = session.jobs.precompute.clone()
        && p.is_finished()
    {
        session.jobs.precompute = None;
        match p.take_error() {
            Some(e) => session.error(e),
            None => session.info("all frames precomputed; playback uses the cache"),
        }
    }
    if let Some((p, folder)) = session.jobs.render_sequence.clone()
        && p.is_finished()
    {
        session.jobs.render_sequence = None;
        match p.take_error() {
            Some(e) => session.error(e),
            None => session.info(format!("rendered the sequence to {}", folder.display())),
        }
    }
}
