//! Scripted runs for tests and batch jobs: `xhand view --screenshot out.png --frames N`,
//! or `--script steps.json` with a list of steps (wait, set a joint, drop a file, take a
//! screenshot, write a state report, exit).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use bevy::prelude::*;
use bevy::window::{FileDragAndDrop, PrimaryWindow};
use serde::Deserialize;

use super::output::OutputRequests;
use super::session::Session;
use crate::pose::presets::PresetPose;
use crate::render_settings::ShadingMode;

/// One scripted step.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Let this many frames render.
    WaitFrames(u32),
    /// Wait until nothing is loading, computing or being saved.
    WaitIdle(bool),
    /// Save a screenshot of the window.
    Screenshot(PathBuf),
    /// Set one axis-angle component: `[joint, axis, value]`.
    SetJoint((usize, usize, f32)),
    /// Apply a preset pose by name (relaxed, open, fist, point, ok, pinch).
    Preset(String),
    /// Choose a shading mode (neural, sh, albedo, normals, mask, weights, displacement).
    Mode(String),
    /// Send a file-drop message as if the file were dropped on the window.
    DropFile(PathBuf),
    /// Show or hide the panels.
    ShowUi(bool),
    /// Go to a frame of the loaded sequence.
    Frame(usize),
    /// Write a JSON report of the viewer's state.
    Report(PathBuf),
    /// Quit with this exit code.
    Exit(u8),
}

/// The running script.
#[derive(Resource)]
pub struct Script {
    steps: Vec<Step>,
    next: usize,
    wait_frames: u32,
    waited: u32,
    started_screenshot: bool,
}

/// Frames a wait may last before the script gives up (about a minute at 30 fps on a slow
/// software renderer).
const MAX_WAIT_FRAMES: u32 = 3000;

impl Script {
    pub fn new(steps: Vec<Step>) -> Self {
        Self {
            steps,
            next: 0,
            wait_frames: 0,
            waited: 0,
            started_screenshot: false,
        }
    }

    /// Reads a script file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let steps: Vec<Step> =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(Self::new(steps))
    }

    /// `--screenshot OUT --frames N`: render N frames, wait for the details, save, exit 0.
    pub fn screenshot_after(frames: u32, out: PathBuf) -> Self {
        Self::new(vec![
            Step::WaitFrames(frames),
            Step::WaitIdle(true),
            Step::WaitFrames(2),
            Step::Screenshot(out),
            Step::Exit(0),
        ])
    }
}

fn parse_mode(s: &str) -> Option<ShadingMode> {
    ShadingMode::ALL
        .into_iter()
        .find(|m| format!("{m:?}").eq_ignore_ascii_case(s))
}

fn parse_preset(s: &str) -> Option<PresetPose> {
    PresetPose::ALL
        .into_iter()
        .find(|p| p.label().eq_ignore_ascii_case(s) || format!("{p:?}").eq_ignore_ascii_case(s))
}

/// Advances the script by at most one step per frame.
#[allow(clippy::too_many_arguments)]
pub fn run_script(
    script: Option<ResMut<Script>>,
    mut session: ResMut<Session>,
    mut outputs: ResMut<OutputRequests>,
    mut drops: MessageWriter<FileDragAndDrop>,
    mut exit: MessageWriter<AppExit>,
    window: Single<Entity, With<PrimaryWindow>>,
    cpu_neural: Res<super::cpu_neural::CpuNeural>,
    diagnostics: Res<bevy::diagnostic::DiagnosticsStore>,
    timings: Res<super::render::RenderTimings>,
) {
    let Some(mut script) = script else { return };
    let Some(step) = script.steps.get(script.next).cloned() else {
        return;
    };
    let mut done = true;
    match step {
        Step::WaitFrames(n) => {
            script.wait_frames += 1;
            done = script.wait_frames > n;
        }
        Step::WaitIdle(_) => {
            let idle = session.is_idle()
                && outputs.in_flight.load(Ordering::SeqCst) == 0
                && session.jobs.precompute.is_none()
                && !cpu_neural.is_updating();
            script.waited += 1;
            if script.waited > MAX_WAIT_FRAMES {
                eprintln!(
                    "error: the script waited {MAX_WAIT_FRAMES} frames for the viewer to become idle"
                );
                exit.write(AppExit::error());
            }
            done = idle;
        }
        Step::Screenshot(path) => {
            if !script.started_screenshot {
                outputs.screenshot_to = Some(path);
                script.started_screenshot = true;
                done = false;
            } else {
                done = outputs.in_flight.load(Ordering::SeqCst) == 0
                    && outputs.screenshot_to.is_none();
                if done {
                    script.started_screenshot = false;
                }
            }
        }
        Step::SetJoint((j, axis, v)) => {
            if j < crate::NUM_JOINTS && axis < 3 {
                session.timeline.playing = false;
                session.pose.pose[3 * j + axis] = v;
            } else {
                session.error(format!("script: joint {j} axis {axis} does not exist"));
            }
        }
        Step::Preset(name) => match parse_preset(&name) {
            Some(p) => {
                let mean = *session.avatar.avatar.template.skeleton.pose_mean();
                session.pose.pose = p.pose(&mean);
            }
            None => session.error(format!("script: unknown preset `{name}`")),
        },
        Step::Mode(name) => match parse_mode(&name) {
            Some(m) => session.settings.mode = m,
            None => session.error(format!("script: unknown shading mode `{name}`")),
        },
        Step::DropFile(path) => {
            drops.write(FileDragAndDrop::DroppedFile {
                window: *window,
                path_buf: path,
            });
        }
        Step::ShowUi(show) => session.show_ui = show,
        Step::Frame(f) => session.go_to_frame(f),
        Step::Report(path) => {
            let report = serde_json::json!({
                "avatar": session.avatar.avatar.name,
                "vertices": session.avatar.avatar.num_vertices(),
                "frames": session.frame_count(),
                "frame": session.timeline.frame,
                "mode": format!("{:?}", session.settings.mode),
                "details_stale": session.details_stale(),
                "fps": diag(&diagnostics, &bevy::diagnostic::FrameTimeDiagnosticsPlugin::FPS),
                "frame_ms": diag(&diagnostics, &bevy::diagnostic::FrameTimeDiagnosticsPlugin::FRAME_TIME),
                "embeddings_ms": session.embeddings.millis,
                "nets_engine": session.nets_engine,
                "kinematics_ms": session.kinematics_ms,
                "gpu_encode_ms": timings.0.lock().map(|t| t.pipeline_ms).unwrap_or(0.0),
                "cpu_neural_ms": cpu_neural.last_millis,
                "errors": session.messages.iter().filter(|m| m.is_error).map(|m| m.text.clone()).collect::<Vec<_>>(),
                "notes": session.messages.iter().filter(|m| !m.is_error).map(|m| m.text.clone()).collect::<Vec<_>>(),
            });
            if let Err(e) = std::fs::write(
                &path,
                serde_json::to_string_pretty(&report).unwrap_or_default(),
            ) {
                session.error(format!("script: cannot write {}: {e}", path.display()));
            }
        }
        Step::Exit(code) => {
            exit.write(if code == 0 {
                AppExit::Success
            } else {
                AppExit::from_code(code)
            });
        }
    }
    if done {
        script.next += 1;
        script.wait_frames = 0;
        script.waited = 0;
    }
}

fn diag(
    store: &bevy::diagnostic::DiagnosticsStore,
    path: &bevy::diagnostic::DiagnosticPath,
) -> f64 {
    store.get(path).and_then(|d| d.smoothed()).unwrap_or(0.0)
}
