//! Scripted runs for tests and batch jobs: `xhand view --screenshot out.png --frames N`,
//! or `--script steps.json` with a list of steps (wait, set a joint, drop a file, take a
//! screenshot, write a state report, exit).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use bevy::prelude::*;
use bevy::window::{FileDragAndDrop, PrimaryWindow};
use serde::Deserialize;

use bevy::input::ButtonState;
use bevy::input::keyboard::{Key, KeyboardInput};

use super::files::{Dialogs, FileRole};
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
    /// Let this many seconds of wall-clock time pass, frames rendering meanwhile (soak runs).
    WaitSeconds(f32),
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
    /// Press and release a key as the keyboard would: a key name ("Tab", "Space", "2",
    /// "W", "ArrowRight", "Home", "F1"…), optionally with "ctrl+" and/or "shift+" before it.
    Key(String),
    /// Ask for a path as File menu entries do: "avatar", "poses", "export_mesh",
    /// "save_pose", "save_sequence", "output_folder".
    OpenDialog(String),
    /// Type a path into the open path field and confirm it.
    SubmitPath(String),
    /// Move the mouse to `[x, y]` (logical pixels from the window's top left) and click the
    /// left button there (released on the next frame).
    Click((f32, f32)),
    /// Start or stop playback.
    Play(bool),
    /// Loop the sequence or not.
    Loop(bool),
    /// Start precomputing the loaded sequence's embeddings.
    Precompute(bool),
    /// Export as the File menu does: `{"what": "video" | "pngs" | "turntable", "frames": N}`
    /// (frames: the turntable's count).
    Export(ExportStep),
    /// Run the networks on this engine: "auto", "cpu", "wgpu" (as `--nets`).
    Nets(String),
    /// The arithmetic of the CPU networks and neural image: "f32" or "bf16" (as
    /// `--precision`).
    Precision(String),
    /// Run the networks in the frame on the render GPU: "auto", "on", "off" (Display panel).
    NetsInFrame(String),
    /// Show the environment map behind the hand, or not.
    EnvBackground(bool),
    /// Press "cancel" on the running export.
    CancelExport(bool),
    /// Press "Load" in the picker a file with several captures or hands opens (its
    /// default choice).
    LoadChoice(bool),
    /// Choose the hand the joints panel (and joint/preset steps) edit: "right" or "left".
    Hand(String),
    /// Cause this many wgpu validation errors, one a frame (tests of the error handling).
    GpuErrors(u32),
    /// Quit with this exit code.
    Exit(u8),
}

/// What [`Step::Export`] exports.
#[derive(Clone, Debug, Deserialize)]
pub struct ExportStep {
    pub what: String,
    #[serde(default)]
    pub frames: Option<u32>,
}

/// A key name of [`Step::Key`] as Bevy's key code and egui's logical key.
fn parse_key(name: &str) -> Option<(KeyCode, Key)> {
    let ch = |c: &str| Key::Character(c.into());
    Some(match name {
        "Tab" => (KeyCode::Tab, Key::Tab),
        "Space" => (KeyCode::Space, Key::Space),
        "Enter" => (KeyCode::Enter, Key::Enter),
        "Escape" => (KeyCode::Escape, Key::Escape),
        "ArrowLeft" => (KeyCode::ArrowLeft, Key::ArrowLeft),
        "ArrowRight" => (KeyCode::ArrowRight, Key::ArrowRight),
        "Home" => (KeyCode::Home, Key::Home),
        "End" => (KeyCode::End, Key::End),
        "F1" => (KeyCode::F1, Key::F1),
        _ => {
            let c = name.chars().next().filter(|_| name.chars().count() == 1)?;
            let code = match c.to_ascii_uppercase() {
                '1' => KeyCode::Digit1,
                '2' => KeyCode::Digit2,
                '3' => KeyCode::Digit3,
                '4' => KeyCode::Digit4,
                '5' => KeyCode::Digit5,
                '6' => KeyCode::Digit6,
                '7' => KeyCode::Digit7,
                'E' => KeyCode::KeyE,
                'F' => KeyCode::KeyF,
                'G' => KeyCode::KeyG,
                'M' => KeyCode::KeyM,
                'O' => KeyCode::KeyO,
                'P' => KeyCode::KeyP,
                'R' => KeyCode::KeyR,
                'S' => KeyCode::KeyS,
                'T' => KeyCode::KeyT,
                'W' => KeyCode::KeyW,
                _ => return None,
            };
            (code, ch(&c.to_ascii_lowercase().to_string()))
        }
    })
}

fn parse_role(name: &str) -> Option<FileRole> {
    Some(match name {
        "avatar" => FileRole::Avatar,
        "poses" => FileRole::Poses,
        "export_mesh" => FileRole::ExportMesh,
        "save_pose" => FileRole::SavePose,
        "save_sequence" => FileRole::SaveSequence,
        "output_folder" => FileRole::OutputFolder,
        "source_images" => FileRole::SourceImages,
        _ => return None,
    })
}

/// Runs a [`Script`] resource when there is one (inserted by `app::run`).
pub struct ScriptPlugin;

impl Plugin for ScriptPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Update, run_script.in_set(super::ViewerSet::Script));
    }
}

/// The running script.
#[derive(Resource)]
pub struct Script {
    steps: Vec<Step>,
    next: usize,
    wait_frames: u32,
    /// When a `wait_seconds` step ends.
    wait_until: Option<std::time::Instant>,
    waited: u32,
    started_screenshot: bool,
    /// Keys pressed by the last step, released on the next frame.
    held: Vec<(KeyCode, Key)>,
    /// Whether the last step pressed the left mouse button.
    mouse_held: bool,
    /// A click step moved the pointer and presses next frame.
    pointer_moved: bool,
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
            wait_until: None,
            waited: 0,
            started_screenshot: false,
            held: Vec::new(),
            mouse_held: false,
            pointer_moved: false,
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

/// The display state and render-world links a script step reads or changes.
#[derive(bevy::ecs::system::SystemParam)]
pub struct ScriptedResources<'w> {
    timings: Res<'w, super::render::RenderTimings>,
    inject: Res<'w, super::render::InjectGpuErrors>,
    gpu_ready: Res<'w, super::render::GpuReady>,
    lighting: ResMut<'w, super::lighting::Lighting>,
    view: ResMut<'w, super::display::ViewSettings>,
    panels: ResMut<'w, super::display::Panels>,
    messages: ResMut<'w, super::messages::Messages>,
}

/// Advances the script by at most one step per frame.
// A Bevy system: each parameter is a resource or message channel it needs.
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
    state: ScriptedResources,
    mut keyboard: MessageWriter<KeyboardInput>,
    mut dialogs: ResMut<Dialogs>,
    focus: Res<super::ui::KeyboardFocus>,
    viewport: Res<super::orbit::Viewport>,
    real_time: Res<Time<Real>>,
    info: Res<super::ui::DeviceInfo>,
    mut mouse: (
        MessageWriter<bevy::window::CursorMoved>,
        MessageWriter<bevy::input::mouse::MouseButtonInput>,
        MessageWriter<bevy::window::WindowEvent>,
    ),
) {
    let Some(mut script) = script else { return };
    let ScriptedResources {
        timings,
        inject,
        gpu_ready,
        mut lighting,
        mut view,
        mut panels,
        mut messages,
    } = state;
    let window = *window;
    let key_message = |code: KeyCode, key: Key, state: ButtonState| KeyboardInput {
        key_code: code,
        text: match (&key, state) {
            (Key::Character(c), ButtonState::Pressed) => Some(c.clone()),
            _ => None,
        },
        logical_key: key,
        state,
        repeat: false,
        window,
    };
    for (code, key) in std::mem::take(&mut script.held) {
        keyboard.write(key_message(code, key, ButtonState::Released));
    }
    // Mouse input goes out twice, as winit's does: as its own message (Bevy's ButtonInput)
    // and as a WindowEvent (egui reads those, in order).
    let mut button = |state| {
        let m = bevy::input::mouse::MouseButtonInput {
            button: MouseButton::Left,
            state,
            window,
        };
        mouse.1.write(m);
        mouse
            .2
            .write(bevy::window::WindowEvent::MouseButtonInput(m));
    };
    if std::mem::take(&mut script.mouse_held) {
        button(ButtonState::Released);
    }
    let Some(step) = script.steps.get(script.next).cloned() else {
        return;
    };
    let mut done = true;
    match step {
        Step::WaitFrames(n) => {
            script.wait_frames += 1;
            done = script.wait_frames > n;
        }
        Step::WaitSeconds(secs) => {
            let wait = std::time::Duration::from_secs_f32(secs.clamp(0.0, 86_400.0));
            let until = *script
                .wait_until
                .get_or_insert_with(|| std::time::Instant::now() + wait);
            done = std::time::Instant::now() >= until;
        }
        Step::WaitIdle(_) => {
            let idle = session.is_idle()
                && outputs.in_flight.load(Ordering::SeqCst) == 0
                && session.jobs.precompute.is_none()
                && session.jobs.export.is_none()
                && outputs.export.is_none()
                && gpu_ready.covers(&session)
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
                // As the joints panel does: kept in the sequence when on a frame of one.
                session.edit_pose(|p| p.pose[3 * j + axis] = v);
            } else {
                messages.error(format!("script: joint {j} axis {axis} does not exist"));
            }
        }
        Step::Hand(name) => {
            let side = crate::hand::Handedness::parse(&name);
            match side
                .and_then(|side| (0..session.hands.len()).find(|&i| session.side_of(i) == side))
            {
                Some(i) => session.select_hand(i),
                None => messages.error(format!("script: no {name} hand is shown")),
            }
        }
        Step::Preset(name) => match parse_preset(&name) {
            Some(p) => session.apply_preset(p),
            None => messages.error(format!("script: unknown preset `{name}`")),
        },
        Step::Mode(name) => match parse_mode(&name) {
            Some(m) => view.settings.mode = m,
            None => messages.error(format!("script: unknown shading mode `{name}`")),
        },
        Step::DropFile(path) => {
            drops.write(FileDragAndDrop::DroppedFile {
                window,
                path_buf: path,
            });
        }
        Step::ShowUi(show) => panels.show_ui = show,
        Step::Frame(f) => session.go_to_frame(f),
        Step::Report(path) => {
            let hands: Vec<serde_json::Value> = (0..session.hands.len())
                .map(|i| {
                    let h = &session.hands[i];
                    serde_json::json!({
                        "side": session.side_of(i).as_str(),
                        "present": h.present,
                        "ready": h.embeddings.ready(),
                        "avatar": session.avatar_of(i).avatar.name,
                        "pose": h.pose.pose.to_vec(),
                    })
                })
                .collect();
            let mut report = serde_json::json!({
                "avatar": session.avatar.avatar.name,
                "vertices": session.avatar.avatar.num_vertices(),
                "frames": session.frame_count(),
                "frame": session.timeline.frame,
                "mode": format!("{:?}", view.settings.mode),
                "details_stale": session.details_stale(),
                "fps": diag(&diagnostics, &bevy::diagnostic::FrameTimeDiagnosticsPlugin::FPS),
                "frame_ms": diag(&diagnostics, &bevy::diagnostic::FrameTimeDiagnosticsPlugin::FRAME_TIME),
                "embeddings_ms": session.hand().embeddings.millis,
                "nets_engine": session.nets_engine,
                "precision": session.precision().to_string(),
                "nets_in_frame": timings.0.lock().map(|t| t.nets_in_frame).unwrap_or(false),
                "kinematics_ms": session.kinematics_ms,
                "gpu_encode_ms": timings.0.lock().map(|t| t.pipeline_ms).unwrap_or(0.0),
                "cpu_neural_ms": cpu_neural.last_millis,
                "errors": messages.log.iter().filter(|m| m.is_error).map(|m| m.text.clone()).collect::<Vec<_>>(),
                "notes": messages.log.iter().filter(|m| !m.is_error).map(|m| m.text.clone()).collect::<Vec<_>>(),
                "toasts": messages.toasts.iter().map(|m| m.text.clone()).collect::<Vec<_>>(),
                "show_ui": panels.show_ui,
                "show_log": panels.show_log,
                "memory_rss_mib": resident_mib(),
                "elapsed_s": real_time.elapsed_secs_f64(),
                "wireframe": view.wireframe,
                "light_source": format!("{:?}", lighting.source),
                "playing": session.timeline.playing,
                "frame_edited": session.frame_edited(),
                "edited_frames": session.sequence.as_ref().map_or(0, |s| s.edited.len()),
                "pose": session.pose().pose.to_vec(),
                "trans": session.pose().trans.to_vec(),
                "text_editing": focus.text_editing,
                "native_dialogs": dialogs.native,
                "path_prompt": dialogs.prompt.as_ref().map(|p| format!("{:?}", p.role)),
                "output_dir": session.output_dir,
                "use_pose_camera": session.use_pose_camera,
                "footage": session.footage.source.as_ref().map(|(p, _)| p.clone()),
                "footage_shown": session.footage.backdrop(session.use_pose_camera).is_some(),
                "adapter": info.adapter,
                "backdrop": super::footage::backdrop(&session, &lighting).map(|b| format!("{:?}", b.mapping)),
                "camera_center": session.camera.as_ref().map(|c| [c.center.x, c.center.y, c.center.z]),
                "hand_on_screen": hand_on_screen(&session, viewport.0),
                "viewport": viewport.0,
            });
            // The scene's hands (apart: one macro call this long exceeds its recursion).
            let boxes: Vec<_> = (session.drawn_geometry().iter())
                .map(|(_, g)| crate::mesh::bounding_box(&g.vertices))
                .collect();
            let scene = serde_json::json!({
                "hand_boxes": boxes,
                "hands": hands,
                "hands_drawn": session.drawn_hands().count(),
                "selected_hand": session.selected,
                "left_avatar": session.left_avatar.as_ref().map(|a| a.avatar.name.clone()),
            });
            if let (Some(r), serde_json::Value::Object(more)) = (report.as_object_mut(), scene) {
                r.extend(more);
            }
            if let Err(e) = std::fs::write(
                &path,
                serde_json::to_string_pretty(&report).unwrap_or_default(),
            ) {
                messages.error(format!("script: cannot write {}: {e}", path.display()));
            }
        }
        Step::Key(spec) => {
            let mut keys = Vec::new();
            let mut rest = spec.as_str();
            loop {
                if let Some(r) = rest.strip_prefix("ctrl+") {
                    keys.push((KeyCode::ControlLeft, Key::Control));
                    rest = r;
                } else if let Some(r) = rest.strip_prefix("shift+") {
                    keys.push((KeyCode::ShiftLeft, Key::Shift));
                    rest = r;
                } else {
                    break;
                }
            }
            match parse_key(rest) {
                Some(k) => {
                    keys.push(k);
                    for (code, key) in &keys {
                        keyboard.write(key_message(*code, key.clone(), ButtonState::Pressed));
                    }
                    keys.reverse();
                    script.held = keys;
                }
                None => messages.error(format!("script: unknown key `{spec}`")),
            }
        }
        Step::OpenDialog(role) => match parse_role(&role) {
            Some(r) => dialogs.open(r, &mut session),
            None => messages.error(format!("script: unknown dialog `{role}`")),
        },
        Step::SubmitPath(text) => match dialogs.prompt.take() {
            Some(prompt) => match super::files::check_typed_path(prompt.role, &text) {
                Ok(path) => super::files::use_path(&mut session, &mut messages, prompt.role, path),
                Err(e) => {
                    messages.error(format!("script: {e}"));
                    dialogs.prompt = Some(prompt);
                }
            },
            None => messages.error("script: no path field is open"),
        },
        Step::Click((x, y)) => {
            // The pointer arrives one frame, the button goes down the next (as a hand
            // moving a mouse would: egui hit-tests where the pointer was).
            if !script.pointer_moved {
                let moved = bevy::window::CursorMoved {
                    window,
                    position: Vec2::new(x, y),
                    delta: None,
                };
                mouse.0.write(moved.clone());
                mouse.2.write(bevy::window::WindowEvent::CursorMoved(moved));
                script.pointer_moved = true;
                done = false;
            } else {
                button(ButtonState::Pressed);
                script.mouse_held = true;
                script.pointer_moved = false;
            }
        }
        Step::Play(on) => session.timeline.playing = on && session.frame_count() > 0,
        Step::Loop(on) => session.timeline.looping = on,
        Step::Precompute(_) => super::output::start_precompute(&mut session, &mut messages),
        Step::Nets(name) => {
            use clap::ValueEnum;
            match crate::engine::NetsChoice::from_str(&name, true) {
                Ok(c) => session.set_nets_choice(c),
                Err(_) => messages.error(format!("script: unknown engine `{name}`")),
            }
        }
        Step::Precision(name) => {
            use clap::ValueEnum;
            match crate::nn::Precision::from_str(&name, true) {
                Ok(p) => session.set_precision(p),
                Err(_) => messages.error(format!("script: unknown precision `{name}`")),
            }
        }
        Step::NetsInFrame(name) => match super::display::NetsInFrame::parse(&name) {
            Some(c) => view.nets_in_frame = c,
            None => messages.error(format!("script: unknown in-frame choice `{name}`")),
        },
        Step::EnvBackground(on) => lighting.env_background = on,
        Step::CancelExport(_) => match &session.jobs.export {
            Some(job) => job.progress.cancel.store(true, Ordering::SeqCst),
            None => messages.error("script: no export is running"),
        },
        Step::Export(e) => {
            use super::export::{ExportFormat, ExportKind};
            let frames = e.frames.unwrap_or(outputs.turntable_frames).max(2);
            outputs.export = match e.what.as_str() {
                "video" => Some((ExportKind::Timeline, ExportFormat::Mp4)),
                "pngs" => Some((ExportKind::Timeline, ExportFormat::Pngs)),
                "turntable" => Some((ExportKind::Turntable(frames), ExportFormat::Mp4)),
                other => {
                    messages.error(format!("script: unknown export `{other}`"));
                    None
                }
            };
        }
        Step::LoadChoice(_) => match session.pose_choice.take() {
            Some(c) => super::files::start_pose_load(&mut session, c.path, c.capture, c.hand),
            None => messages.error("script: no capture/hand picker is open"),
        },
        Step::GpuErrors(n) => {
            inject.0.store(n, std::sync::atomic::Ordering::SeqCst);
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
        script.wait_until = None;
        script.waited = 0;
    }
}

fn diag(
    store: &bevy::diagnostic::DiagnosticsStore,
    path: &bevy::diagnostic::DiagnosticPath,
) -> f64 {
    store.get(path).and_then(|d| d.smoothed()).unwrap_or(0.0)
}

/// Where the centre of the hands' bounding box lands in the last frame's camera, as a
/// fraction of the free viewport between the panels ([0, 1] on both axes when it is in
/// view); `None` behind the camera.
fn hand_on_screen(session: &Session, viewport: [f32; 4]) -> Option<[f64; 2]> {
    let camera = session.camera.as_ref()?;
    let vertices: Vec<[f32; 3]> = (session.drawn_geometry().into_iter())
        .flat_map(|(_, g)| g.vertices)
        .collect();
    if vertices.is_empty() {
        return None;
    }
    let (lo, hi) = crate::mesh::bounding_box(&vertices);
    let centre = std::array::from_fn(|k| 0.5 * (lo[k] + hi[k]));
    let p = camera.project(centre)?;
    let [x0, y0, x1, y1] = viewport.map(f64::from);
    Some([
        (p[0] - x0) / (x1 - x0).max(1.0),
        (p[1] - y0) / (y1 - y0).max(1.0),
    ])
}

/// The process's resident memory (Linux `/proc/self/status` VmRSS), MiB.
fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_waits_and_the_precision_step_parse() {
        let steps: Vec<Step> =
            serde_json::from_str(r#"[{"wait_seconds": 1.5}, {"precision": "bf16"}]"#).unwrap();
        assert!(matches!(steps[0], Step::WaitSeconds(s) if s == 1.5));
        assert!(matches!(&steps[1], Step::Precision(p) if p == "bf16"));
        assert!(serde_json::from_str::<Vec<Step>>(r#"[{"wait_seconds": "soon"}]"#).is_err());
    }
}
