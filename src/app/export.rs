//! Exporting what the viewport shows: the timeline or a turntable around the current pose,
//! as an MP4 video or numbered PNGs, on a background thread with progress and cancel.
//!
//! "What the viewport shows" means the free area between the panels, seen by the viewport's
//! camera (the orbit camera, following the hand when it does; or each frame's HaMeR camera
//! when that view is on), in the shading mode, lighting, grid and wireframe of the moment.

use super::messages::Messages;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bevy::prelude::*;

use super::orbit::{Orbit, Viewport};
use super::session::Session;
use super::worker::{Progress, spawn_job};
use crate::camera::Camera;
use crate::frame::PosedFrame;
use crate::gpu::ViewInput;
use crate::pose::PoseFrame;
use crate::render_settings::ShadingMode;

/// What to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    /// Every frame of the loaded sequence.
    Timeline,
    /// This many frames orbiting the current pose once.
    Turntable(u32),
}

/// Where the frames go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Mp4,
    Pngs,
}

/// Frames of a turntable unless the user picks another count (4 s at 30 fps).
pub const DEFAULT_TURNTABLE_FRAMES: u32 = 120;
/// Frame rate of turntables.
const TURNTABLE_FPS: f32 = 30.0;
/// Longest side of an export through the pose file's camera.
const MAX_POSE_CAMERA_SIDE: u32 = 1920;

/// A running export.
#[derive(Clone)]
pub struct ExportJob {
    pub progress: Progress,
    pub path: PathBuf,
    pub kind: ExportKind,
}

/// Starts a requested export (one at a time).
pub fn start_exports(
    mut requests: ResMut<super::output::OutputRequests>,
    mut session: ResMut<Session>,
    mut messages: ResMut<Messages>,
    (view, lighting): (
        Res<super::display::ViewSettings>,
        Res<super::lighting::Lighting>,
    ),
    orbit: Res<Orbit>,
    viewport: Res<Viewport>,
) {
    let Some((kind, format)) = requests.export.take() else {
        return;
    };
    if session
        .jobs
        .export
        .as_ref()
        .is_some_and(|j| !j.progress.is_finished())
    {
        messages.error("an export is already running: cancel it or wait for it to finish");
        return;
    }
    match plan(&view, &session, &lighting, &orbit, viewport.0, kind, format) {
        Ok(plan) => start(&mut session, &mut messages, plan),
        Err(e) => messages.error(e),
    }
}

/// One hand of a frame to export: its slot in the scene, pose, and its embeddings if
/// already computed.
type HandPlan = (usize, PoseFrame, Option<Arc<crate::nn::Embeddings>>);

/// One frame to export: its hands, camera and SH light.
type FramePlan = (Vec<HandPlan>, Camera, [f32; crate::SH_DIM]);

/// Everything the export thread needs, taken from the session at the start.
struct Plan {
    kind: ExportKind,
    path: PathBuf,
    fps: f32,
    /// Each slot's avatar.
    avatars: Vec<Arc<crate::avatar::Avatar>>,
    /// The colour order the frames' SH is written in (the main avatar's).
    lit_order: crate::avatar::ColorOrder,
    frames: Vec<FramePlan>,
    settings: crate::render_settings::RenderSettings,
    wireframe: bool,
    grid: Option<crate::cpu_render::GridPlane>,
    neural_path: crate::gpu::NeuralPath,
    /// The source footage to draw the timeline over (HaMeR camera view with source images
    /// shown), reopened by the export thread, and the frames' image names.
    footage: Option<(PathBuf, Option<Vec<String>>)>,
    /// The environment shown behind the hand (display image, turn in radians).
    environment: Option<(Arc<crate::image_io::Rgba8>, f64)>,
}

fn plan(
    view: &super::display::ViewSettings,
    session: &Session,
    lighting: &super::lighting::Lighting,
    orbit: &Orbit,
    viewport: [f32; 4],
    kind: ExportKind,
    format: ExportFormat,
) -> Result<Plan, String> {
    let view_camera = session
        .camera
        .as_ref()
        .ok_or("nothing has been drawn yet; try again in a moment")?;
    let [x0, y0, x1, y1] = viewport;
    let (x, y) = (x0.max(0.0).round() as u32, y0.max(0.0).round() as u32);
    let (w, h) = (
        ((x1 - x0).max(0.0) as u32) & !1,
        ((y1 - y0).max(0.0) as u32) & !1,
    );
    if w < 16 || h < 16 {
        return Err("the viewport is too small to export; make the window larger".into());
    }
    let viewport_camera = view_camera.cropped(x, y, w, h);
    let pose_cameras = session
        .sequence
        .as_ref()
        .and_then(|s| s.cameras())
        .filter(|_| session.use_pose_camera);
    let avatars: Vec<_> = (0..session.hands.len())
        .map(|i| session.avatar_of(i).avatar.clone())
        .collect();
    let mut settings = view.settings;
    if avatars.iter().any(|a| a.renderer.is_none()) && settings.mode == ShadingMode::Neural {
        settings.mode = ShadingMode::Sh;
    }
    let sh_of = |hands: &[HandPlan]| {
        let frame_sh = hands.iter().find_map(|(_, f, _)| f.sh);
        lighting.current_sh(frame_sh)
    };
    let footage = match (&session.footage.source, kind) {
        (Some((path, _)), ExportKind::Timeline)
            if session.footage.backdrop(session.use_pose_camera).is_some() =>
        {
            let labels = session.sequence.as_ref().and_then(|s| s.labels());
            Some((path.clone(), labels))
        }
        _ => None,
    };
    let mut frames = Vec::new();
    let fps = match kind {
        ExportKind::Timeline => {
            let seq = session
                .sequence
                .as_ref()
                .ok_or("no pose sequence is loaded")?;
            let caches: Vec<Vec<_>> = seq
                .caches
                .iter()
                .map(|c| c.lock().map(|c| c.clone()).unwrap_or_default())
                .collect();
            // The view moves as playback from the frame shown would move it.
            let firsts: Vec<_> = (0..seq.scene.len())
                .map(|i| {
                    (0..seq.scene.hands.len()).find_map(|h| seq.pose_at(h, i).map(|p| (h, p.trans)))
                })
                .collect();
            let offsets = follow_offsets(&firsts, session.timeline.frame);
            for (i, offset) in offsets.iter().enumerate() {
                let hands: Vec<HandPlan> = (0..seq.scene.hands.len())
                    .filter_map(|h| {
                        let k = seq.track_frame(h, i)?;
                        let pose = seq.scene.hands[h].1.sequence.frames.get(k)?.clone();
                        let entry = caches.get(h).and_then(|c| c.get(k)?.as_ref());
                        let known = super::session::cached_for(entry, &pose);
                        Some((h, pose, known))
                    })
                    .collect();
                let camera = match pose_cameras.as_ref().map(|c| c.get(i).cloned().flatten()) {
                    Some(Some(c)) => pose_camera_size(&c),
                    Some(None) => return Err(format!("frame {i} has no camera in the pose file")),
                    None if orbit.follow_hand => {
                        // The orbit follows the hand: shift the camera as playback does.
                        let mut c = viewport_camera.clone();
                        c.center += nalgebra::Vector3::from(*offset);
                        c
                    }
                    None => viewport_camera.clone(),
                };
                let sh = sh_of(&hands);
                frames.push((hands, camera, sh));
            }
            seq.scene.fps
        }
        ExportKind::Turntable(n) => {
            let base = match pose_cameras.as_ref() {
                Some(c) => c
                    .get(session.timeline.frame)
                    .cloned()
                    .flatten()
                    .map(|c| pose_camera_size(&c))
                    .unwrap_or_else(|| viewport_camera.clone()),
                None => viewport_camera.clone(),
            };
            let stale = session.details_stale();
            let hands: Vec<HandPlan> = session
                .drawn_hands()
                .map(|(i, h, _)| {
                    (
                        i,
                        h.pose.clone(),
                        (!stale).then(|| h.embeddings.embeddings.clone()),
                    )
                })
                .collect();
            let vertices: Vec<[f32; 3]> = session
                .drawn_geometry()
                .into_iter()
                .flat_map(|(_, g)| g.vertices)
                .collect();
            let (lo, hi) = crate::mesh::bounding_box(&vertices);
            let pivot = nalgebra::Vector3::from_fn(|k, _| 0.5 * (lo[k] + hi[k]) as f64);
            let sh = lighting.current_sh(session.frame_sh());
            for k in 0..n {
                let angle = std::f64::consts::TAU * k as f64 / n as f64;
                frames.push((hands.clone(), base.orbited(pivot, angle), sh));
            }
            TURNTABLE_FPS
        }
    };
    if frames.is_empty() {
        return Err("there are no frames to export".into());
    }
    let stem = match kind {
        ExportKind::Timeline => "xhand-video",
        ExportKind::Turntable(_) => "xhand-turntable",
    };
    let ext = match format {
        ExportFormat::Mp4 => ".mp4",
        ExportFormat::Pngs => "",
    };
    Ok(Plan {
        kind,
        path: super::files::unique_output_path(&session.output_dir, stem, ext),
        fps,
        frames,
        settings,
        wireframe: view.wireframe,
        grid: super::cpu_neural::shown_grid(view, session, lighting, orbit),
        neural_path: view.neural_path,
        environment: match super::footage::backdrop(session, lighting) {
            Some(super::footage::Backdrop {
                image,
                mapping: crate::gpu::BackdropMapping::Environment { rotation },
                ..
            }) => Some((image, rotation as f64)),
            _ => None,
        },
        footage,
        avatars,
        lit_order: session.avatar.avatar.color_order,
    })
}

/// How far the view following the hands moves from scene frame `from` to each frame, as
/// stepping there frame by frame would move it (`Orbit::follow`): the first hand of each
/// frame (`firsts[i]`: its slot and translation) is followed, and where another hand takes
/// over the view stays put.
fn follow_offsets(firsts: &[Option<(usize, [f32; 3])>], from: usize) -> Vec<[f64; 3]> {
    let n = firsts.len();
    let mut offsets = vec![[0.0; 3]; n];
    let step = |a: Option<(usize, [f32; 3])>, b: Option<(usize, [f32; 3])>| match (a, b) {
        (Some((ha, ta)), Some((hb, tb))) if ha == hb => {
            std::array::from_fn(|k| (tb[k] - ta[k]) as f64)
        }
        _ => [0.0; 3],
    };
    let from = from.min(n.saturating_sub(1));
    for i in from + 1..n {
        let d: [f64; 3] = step(firsts[i - 1], firsts[i]);
        offsets[i] = std::array::from_fn(|k| offsets[i - 1][k] + d[k]);
    }
    for i in (0..from).rev() {
        let d: [f64; 3] = step(firsts[i + 1], firsts[i]);
        offsets[i] = std::array::from_fn(|k| offsets[i + 1][k] + d[k]);
    }
    offsets
}

/// A pose file's camera at its own image size (even sides, at most
/// [`MAX_POSE_CAMERA_SIDE`]).
fn pose_camera_size(c: &Camera) -> Camera {
    let long = c.width.max(c.height).max(1) as f64;
    let k = (MAX_POSE_CAMERA_SIDE as f64 / long).min(1.0);
    let even = |v: u32| (((v as f64 * k) as u32) & !1).max(2);
    c.resized(even(c.width), even(c.height))
}

fn start(session: &mut Session, messages: &mut Messages, plan: Plan) {
    let progress = Progress::default();
    progress.total.store(plan.frames.len(), Ordering::SeqCst);
    let path = plan.path.clone();
    let kind = plan.kind;
    let what = match kind {
        ExportKind::Timeline => format!("{} frames", plan.frames.len()),
        ExportKind::Turntable(n) => format!("a turntable of {n} frames"),
    };
    spawn_job("xhand-export", progress.clone(), move |p| run(plan, p));
    messages.info(format!(
        "exporting {what} to {}",
        super::files::absolute(&path).display()
    ));
    session.jobs.export = Some(ExportJob {
        progress,
        path,
        kind,
    });
}

/// The export thread: renders each frame through the GPU pipeline, or the CPU reference
/// renderer where the viewport uses it too, and writes it.
fn run(plan: Plan, p: &Progress) -> Result<(), String> {
    if let Some(dir) = plan.path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut sink = crate::video::FrameSink::new(&plan.path, plan.frames.len(), plan.fps, None)
        .map_err(|e| format!("{e:#}"))?;
    // As in the viewport: the neural image comes from the CPU on a software adapter (its
    // fragment-shader MLP takes seconds a frame there); the rest from the GPU pipeline.
    let mut gpu = crate::gpu::GpuContext::headless().ok().filter(|ctx| {
        plan.settings.mode != ShadingMode::Neural || ctx.info.device_type != wgpu::DeviceType::Cpu
    });
    let mut gpu = gpu.take().and_then(|ctx| {
        let path = plan.neural_path;
        let mut pipelines = crate::gpu::PipelineCache::default();
        let renderers: Option<Vec<_>> = plan
            .avatars
            .iter()
            .map(|a| {
                let mut r =
                    crate::gpu::HandRenderer::with_cache(&ctx.device, a, &mut pipelines).ok()?;
                r.neural_path = path;
                Some(r)
            })
            .collect();
        Some((ctx, renderers?))
    });
    let mut footage = match &plan.footage {
        Some((path, labels)) => Some((
            crate::footage::SourceFootage::open(path).map_err(|e| format!("{e:#}"))?,
            labels.clone(),
        )),
        None => None,
    };
    // Per slot: the last pose computed and its outputs (a still hand is not recomputed).
    let mut last: Vec<Option<(PoseFrame, Arc<crate::nn::Embeddings>)>> =
        vec![None; plan.avatars.len()];
    // The environment behind the hand, kept while the camera does not move.
    let mut environment: Option<(Camera, crate::image_io::Rgba8)> = None;
    for (k, (hands, camera, sh)) in plan.frames.iter().enumerate() {
        if p.cancel.load(Ordering::SeqCst) {
            return Err(CANCELLED.into());
        }
        let mut posed = Vec::with_capacity(hands.len());
        for (slot, pose, known) in hands {
            let avatar = &plan.avatars[*slot];
            let embeddings = match (known, &last[*slot]) {
                (Some(e), _) => e.clone(),
                (None, Some((f, e))) if f.pose == pose.pose && f.hand == pose.hand => e.clone(),
                (None, _) => Arc::new(avatar.embed(pose).map_err(|e| e.to_string())?),
            };
            last[*slot] = Some((pose.clone(), embeddings.clone()));
            let frame = PosedFrame {
                geometry: avatar.pose_geometry(&embeddings, pose),
                embeddings: (*embeddings).clone(),
                sh: plan.lit_order.sh_to(avatar.color_order, *sh),
            };
            posed.push((*slot, frame));
        }
        // Over footage: the frame's source image, seen by the camera scaled to its size.
        let source = match footage.as_mut() {
            Some((f, labels)) => {
                let label = labels.as_ref().and_then(|l| l.get(k)).map(String::as_str);
                Some(
                    f.frame(k, label)
                        .map_err(|e| format!("{e:#}"))?
                        .into_owned(),
                )
            }
            None => plan
                .environment
                .as_ref()
                .map(|(display, rotation)| match &environment {
                    Some((c, image)) if c == camera => image.clone(),
                    _ => {
                        let image = crate::envmap::background(display, camera, *rotation);
                        environment = Some((camera.clone(), image.clone()));
                        image
                    }
                }),
        };
        let camera = &match &source {
            Some(img) => camera.resized(img.width, img.height),
            None => camera.clone(),
        };
        let image = match gpu.as_mut() {
            Some((ctx, renderers)) => {
                let mut views = Vec::with_capacity(posed.len());
                let mut posed_at = posed.iter().peekable();
                for (slot, r) in renderers.iter_mut().enumerate() {
                    let Some((_, frame)) = posed_at.next_if(|(s, _)| *s == slot) else {
                        continue;
                    };
                    let avatar = plan.avatars[slot].as_ref();
                    let mut view = ViewInput::new(avatar, frame, camera, &plan.settings);
                    view.wireframe = plan.wireframe;
                    view.grid = plan.grid;
                    views.push(crate::gpu::HandView {
                        renderer: r,
                        avatar,
                        frame,
                        view,
                        nets: None,
                    });
                }
                crate::gpu::render_hand_views(ctx, &mut views).map_err(|e| e.to_string())?
            }
            None => {
                let drawn: Vec<_> = posed
                    .iter()
                    .map(|(slot, f)| (plan.avatars[*slot].as_ref(), f))
                    .collect();
                let rgba = super::cpu_neural::view_image(
                    &drawn,
                    camera,
                    &plan.settings,
                    plan.wireframe,
                    plan.grid,
                )?;
                // Alpha says where the hand (or the grid) is; the rest is the background
                // colour already, as on screen.
                crate::image_io::Rgba8 {
                    width: camera.width,
                    height: camera.height,
                    pixels: rgba
                        .chunks_exact(4)
                        .map(|p| [p[0], p[1], p[2], p[3]])
                        .collect(),
                }
            }
        };
        let image = match &source {
            Some(background) => crate::footage::over_by_alpha(&image, background),
            None => image,
        };
        sink.push(k, &image).map_err(|e| format!("{e:#}"))?;
        p.done.store(k + 1, Ordering::SeqCst);
    }
    sink.finish().map_err(|e| format!("{e:#}"))
}

/// The error text of a cancelled export (reported as a note, not an error).
pub const CANCELLED: &str = "the export was cancelled; nothing was written";

/// Reports a finished export.
pub fn report_export(session: &mut Session, messages: &mut Messages) {
    let Some(job) = session.jobs.export.clone() else {
        return;
    };
    if !job.progress.is_finished() {
        return;
    }
    session.jobs.export = None;
    let shown = super::files::absolute(&job.path);
    match job.progress.take_error() {
        Some(e) if e == CANCELLED => messages.info(e),
        Some(e) => messages.error(e),
        None => messages.info_with_folder(format!("exported {}", shown.display()), &job.path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_moves_the_view_as_playback_from_the_frame_shown() {
        let r = |x: f32| Some((0, [x, 0.0, 30.0]));
        let l = |x: f32| Some((1, [x, 0.0, 31.0]));
        // Right hand moving, then only the left (a metre away), then the right again.
        let firsts = [r(0.0), r(0.1), l(1.0), l(1.2), r(0.3)];
        let offsets = follow_offsets(&firsts, 1);
        let x: Vec<f64> = offsets.iter().map(|o| (o[0] * 1e6).round() / 1e6).collect();
        // From frame 1: back to frame 0 follows the right hand; the left taking over moves
        // nothing, its own move does; the right taking over again moves nothing.
        assert_eq!(x, vec![-0.1, 0.0, 0.0, 0.2, 0.2]);
        assert!(
            offsets.iter().all(|o| o[2] == 0.0),
            "no jump in depth either"
        );
    }
}
