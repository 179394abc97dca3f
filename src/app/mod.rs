//! The Bevy desktop viewer: a thin layer over the core. `main` only adds plugins; every
//! concept lives in its own module (session state, background workers, files, camera,
//! render-world plugin, egui panels, output, scripted runs).

mod cpu_neural;
mod display;
mod export;
mod files;
mod footage;
mod lighting;
mod messages;
mod orbit;
mod output;
mod render;
mod script;
mod session;
mod ui;
mod worker;

use std::path::PathBuf;

use anyhow::{Context, bail};
use bevy::core_pipeline::tonemapping::Tonemapping;
use bevy::diagnostic::FrameTimeDiagnosticsPlugin;
use bevy::prelude::*;
use bevy::render::view::Msaa;
use bevy::window::{PresentMode, WindowResolution};
use bevy::winit::{UpdateMode, WinitSettings};
use bevy_egui::EguiPlugin;

use crate::avatar::Avatar;

pub use script::Step;

/// The order of the viewer's per-frame work in `Update`; each feature's plugin puts its
/// systems in one of these.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ViewerSet {
    /// Scripted steps (tests, batch runs), as if typed.
    Script,
    /// Finished dialogs, drops and background loads.
    Files,
    /// Keyboard shortcuts and mouse camera control.
    Input,
    /// The pose shown: playback, source footage, the networks' outputs.
    Pose,
    /// Camera framing and following the hand.
    Camera,
    /// Work beside the frame: CPU neural images, screenshots, exports, job reports.
    Output,
    /// Window housekeeping: clear colour, adapter name, showing it, redraw requests.
    Window,
}

/// Orders the [`ViewerSet`]s.
struct ViewerSetsPlugin;

impl Plugin for ViewerSetsPlugin {
    fn build(&self, app: &mut App) {
        use ViewerSet::*;
        app.configure_sets(
            Update,
            (Script, Files, Input, Pose, Camera, Output, Window).chain(),
        );
    }
}

/// Playback and the pose's details: the timeline, the footage of its frame, embeddings.
struct PosePlugin;

impl Plugin for PosePlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            Update,
            (advance_timeline, footage::update_footage, update_embeddings)
                .chain()
                .in_set(ViewerSet::Pose),
        );
    }
}

/// The window: the 3D camera, egui input fixes, clear colour, showing the window once drawn
/// and redrawing only while something changes.
struct ViewerWindowPlugin;

impl Plugin for ViewerWindowPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Startup, spawn_camera)
            .add_systems(
                PreUpdate,
                filter_egui_input
                    .after(bevy_egui::EguiPreUpdateSet::ProcessInput)
                    .before(bevy_egui::EguiPreUpdateSet::BeginPass),
            )
            .add_systems(
                Update,
                (sync_clear_color, show_window_when_drawn, keep_redrawing)
                    .chain()
                    .in_set(ViewerSet::Window),
            );
    }
}

/// How to start the viewer.
#[derive(Clone, Debug, Default)]
pub struct ViewerOptions {
    /// Avatar file; the embedded default avatar when `None`.
    pub avatar: Option<PathBuf>,
    /// An avatar for the left hands (loaded in the background after the start).
    pub left_avatar: Option<PathBuf>,
    /// Pose or sequence file to load at start.
    pub pose: Option<PathBuf>,
    /// Save a screenshot after `frames` frames and exit (scripted runs).
    pub screenshot: Option<PathBuf>,
    pub frames: u32,
    /// A JSON list of [`Step`]s to run.
    pub script: Option<PathBuf>,
    /// Window size in logical pixels.
    pub size: (u32, u32),
    pub force_cpu: bool,
    /// The MANO model file for an `avatar` that is an XHand checkpoint (else the one
    /// remembered for its hand).
    pub mano: Option<PathBuf>,
    /// An environment map to light with from the start.
    pub env: Option<PathBuf>,
    /// The engine for the embedding networks.
    pub nets: crate::engine::NetsChoice,
    /// The arithmetic of the CPU networks and neural image.
    pub precision: crate::nn::Precision,
}

/// Checks that a window and a GPU adapter can exist, with actionable messages.
fn preflight() -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        bail!(
            "no display (neither DISPLAY nor WAYLAND_DISPLAY is set); run the viewer in a desktop session or under `xvfb-run`, or render without a window with `xhand render --gpu`"
        );
    }
    // Only asks for the adapter: Bevy opens the one device the viewer uses.
    crate::gpu::adapter_info().context("the viewer needs a GPU adapter")?;
    Ok(())
}

/// Loads the avatar to start with: the given file, else the embedded default.
fn initial_avatar(opts: &ViewerOptions, device: &candle_core::Device) -> anyhow::Result<Avatar> {
    Ok(match &opts.avatar {
        Some(p) if crate::torch::is_checkpoint(p) => {
            let hand = crate::torch::checkpoint_hand(p)?;
            let mano = opts
                .mano
                .clone()
                .or_else(|| crate::user_config::ManoFiles::load().get(hand));
            let avatar = Avatar::open(p, mano.as_deref(), device)?;
            if let Some(m) = &mano {
                // Best effort: only saves typing next time.
                let _ = crate::user_config::ManoFiles::load().remember(hand, m);
            }
            avatar
        }
        Some(p) => Avatar::load(p, device)?,
        None => crate::default_avatar::load(device)?,
    })
}

/// Runs the viewer until the window closes. Returns an error (and exits nonzero in the
/// binary) when no window or GPU is available or a scripted run fails.
pub fn run(opts: ViewerOptions) -> anyhow::Result<()> {
    if let Some(p) = &opts.avatar
        && files::role_of(p) == Some(files::FileRole::Poses)
    {
        bail!(
            "{}: this looks like a pose file, not an avatar; show it with `xhand view --pose {}` (on the default avatar) or `xhand view AVATAR --pose {}`",
            p.display(),
            p.display(),
            p.display()
        );
    }
    preflight()?;
    let nets = if opts.force_cpu {
        crate::engine::NetsChoice::Cpu
    } else {
        opts.nets
    };
    // CUDA/Metal run candle on the avatar's own device, so that is chosen at the start.
    let device = crate::engine::candle_device(nets, opts.force_cpu)?;
    let avatar = initial_avatar(&opts, &device)?;
    let notes: Vec<String> = avatar
        .import_warnings
        .iter()
        .cloned()
        .chain(avatar.summary.unused_warning())
        .collect();
    let lighting = lighting::Lighting::new(&avatar);
    // The rest pose's embeddings are the worker's first job: the window opens meanwhile.
    let mut session = session::Session::new(avatar, None, opts.avatar.clone());
    let mut messages = messages::Messages::default();
    session.nets_choice = nets;
    session.set_precision(opts.precision);
    session.load_recent();
    for n in notes {
        messages.info(n);
    }
    if let Some(p) = &opts.left_avatar {
        files::start_avatar_load_for(&mut session, &mut messages, p.clone(), true);
    }
    if let Some(p) = &opts.pose {
        files::start_pose_load(&mut session, p.clone(), None, None);
    }
    if let Some(p) = &opts.env {
        files::start_env_load(&mut session, p.clone());
    }
    let script = match (&opts.script, &opts.screenshot) {
        (Some(s), _) => Some(script::Script::load(s)?),
        (None, Some(out)) => Some(script::Script::screenshot_after(
            opts.frames.max(1),
            out.clone(),
        )),
        _ => None,
    };
    let scripted = script.is_some();

    let mut app = App::new();
    app.insert_resource(ClearColor(Color::srgb(0.16, 0.17, 0.2)))
        .add_plugins(
            DefaultPlugins
                .set(WindowPlugin {
                    primary_window: Some(Window {
                        title: "xhand — neural hand avatar viewer".into(),
                        // Shown once the first frames are drawn (no uninitialised pixels).
                        visible: false,
                        resolution: WindowResolution::new(
                            opts.size.0.max(320),
                            opts.size.1.max(240),
                        ),
                        present_mode: if scripted {
                            PresentMode::AutoNoVsync
                        } else {
                            PresentMode::AutoVsync
                        },
                        ..default()
                    }),
                    ..default()
                })
                .set(bevy::log::LogPlugin {
                    filter: "wgpu=error,naga=warn,bevy_render=warn,bevy_winit=warn,xhand=info"
                        .into(),
                    ..default()
                }),
        )
        .add_plugins((
            EguiPlugin::default(),
            FrameTimeDiagnosticsPlugin::default(),
            render::HandRenderPlugin,
        ))
        .insert_resource(if scripted {
            WinitSettings {
                focused_mode: UpdateMode::Continuous,
                unfocused_mode: UpdateMode::Continuous,
            }
        } else {
            // Redraw on input, and continuously only while something moves (see
            // `keep_redrawing`): an idle viewer uses no CPU.
            WinitSettings::desktop_app()
        })
        .insert_resource(session)
        .insert_resource(messages)
        .insert_resource(lighting)
        .init_resource::<display::ViewSettings>()
        .init_resource::<display::Panels>()
        .insert_resource(ui::DeviceInfo {
            adapter: String::new(),
            candle: crate::device::describe(&device),
        })
        .add_plugins((
            ViewerSetsPlugin,
            ViewerWindowPlugin,
            script::ScriptPlugin,
            files::FilesPlugin,
            ui::UiPlugin,
            orbit::OrbitPlugin,
            PosePlugin,
            cpu_neural::CpuNeuralPlugin,
            output::OutputPlugin,
        ));
    if let Some(s) = script {
        app.insert_resource(s);
    }
    match app.run() {
        AppExit::Success => Ok(()),
        AppExit::Error(code) => bail!("the viewer exited with code {code}"),
    }
}

fn spawn_camera(mut commands: Commands) {
    commands.spawn((
        Camera3d::default(),
        Msaa::Off,
        Tonemapping::None,
        render::HandView,
    ));
}

/// Advances playback by wall-clock time (not Bevy's virtual time, whose step is capped), so
/// a slow machine drops frames instead of playing slowly.
fn advance_timeline(time: Res<Time<Real>>, mut session: ResMut<session::Session>) {
    session.advance(time.delta_secs());
}

/// Two fixes to what egui is fed each frame, before its pass begins:
/// - bevy_egui sends a "modifiers changed" event every frame, and egui repaints on any
///   event, so the window would never go idle: only real changes are passed on;
/// - a click outside an open popup (a combo list, a menu) closes it and nothing else, instead
///   of also pressing whatever panel widget lies under it.
fn filter_egui_input(
    mut inputs: Query<(&mut bevy_egui::EguiInput, &mut bevy_egui::EguiContext)>,
    mut last: Local<Option<bevy_egui::egui::Modifiers>>,
    mut swallowed: Local<Option<bevy_egui::egui::PointerButton>>,
) {
    use bevy_egui::egui::{Event, Order, Popup};
    for (mut input, mut ctx) in &mut inputs {
        let ctx = ctx.get_mut().clone();
        let popup_open = Popup::is_any_open(&ctx);
        let mut close = false;
        input.0.events.retain(|e| match e {
            Event::ModifiersChanged(m) => {
                let changed = *last != Some(*m);
                *last = Some(*m);
                changed
            }
            Event::PointerButton {
                pos,
                button,
                pressed: true,
                ..
            } if popup_open => {
                let on_popup = ctx
                    .layer_id_at(*pos)
                    .is_some_and(|l| !matches!(l.order, Order::Background | Order::Middle));
                if !on_popup {
                    close = true;
                    *swallowed = Some(*button);
                }
                on_popup
            }
            Event::PointerButton {
                button,
                pressed: false,
                ..
            } if *swallowed == Some(*button) => {
                *swallowed = None;
                false
            }
            _ => true,
        });
        if close {
            Popup::close_all(&ctx);
        }
    }
}

/// Makes the window visible after its first frames are drawn.
fn show_window_when_drawn(
    mut window: Single<&mut Window, With<bevy::window::PrimaryWindow>>,
    mut frames: Local<u32>,
) {
    if !window.visible {
        *frames += 1;
        if *frames >= 3 {
            window.visible = true;
        }
    }
}

/// Asks for another frame while anything changes on its own: playback, loading, the
/// networks, background jobs, notes fading, screenshots, CPU neural shading.
fn keep_redrawing(
    session: Res<session::Session>,
    outputs: Res<output::OutputRequests>,
    cpu_neural: Res<cpu_neural::CpuNeural>,
    dialogs: Res<files::Dialogs>,
    gpu_ready: Res<render::GpuReady>,
    messages: Res<messages::Messages>,
    mut redraw: MessageWriter<bevy::window::RequestRedraw>,
) {
    let busy = session.timeline.playing
        || !gpu_ready.covers(&session)
        || !session.is_idle()
        || session.jobs.precompute.is_some()
        || session.jobs.export.is_some()
        || messages.toasts.iter().any(|m| !m.is_error)
        || outputs.busy()
        || cpu_neural.is_updating()
        || dialogs.is_waiting();
    if busy {
        redraw.write(bevy::window::RequestRedraw);
    }
}

/// Collects and requests the networks' outputs, and shows the problems the session met
/// (here or in other systems since the last frame).
fn update_embeddings(
    mut session: ResMut<session::Session>,
    mut messages: ResMut<messages::Messages>,
    mut orbit: ResMut<orbit::Orbit>,
    mut last_avatar: Local<u64>,
) {
    session.update_embeddings();
    for problem in session.take_problems() {
        messages.error(problem);
    }
    if *last_avatar != session.avatar.generation {
        *last_avatar = session.avatar.generation;
        orbit.frame_requested = true;
    }
}

fn sync_clear_color(view: Res<display::ViewSettings>, mut clear: ResMut<ClearColor>) {
    let [r, g, b] = view.settings.background;
    let c = Color::srgb(r, g, b);
    if clear.0 != c {
        clear.0 = c;
    }
}
