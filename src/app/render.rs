//! The render-world side: the core's wgpu [`HandRenderer`] driven with Bevy's device and
//! command encoder. Skinning runs once per frame before the cameras (`RenderGraph`
//! schedule); raster, shading and compositing run in the camera's `Core3d` schedule, before
//! egui draws on top.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bevy::core_pipeline::core_3d::main_transparent_pass_3d;
use bevy::core_pipeline::schedule::camera_driver;
use bevy::core_pipeline::{Core3d, Core3dSystems};
use bevy::prelude::*;
use bevy::render::camera::ExtractedCamera;
use bevy::render::extract_component::{ExtractComponent, ExtractComponentPlugin};
use bevy::render::extract_resource::{ExtractResource, ExtractResourcePlugin};
use bevy::render::renderer::{
    RenderAdapter, RenderAdapterInfo, RenderContext, RenderDevice, RenderGraph, RenderGraphSystems,
    RenderQueue, ViewQuery,
};
use bevy::render::view::ViewTarget;
use bevy::render::{Render, RenderApp, RenderStartup, RenderSystems};
use bevy::window::PrimaryWindow;

use super::display::NetsInFrame;
use super::orbit::{Orbit, Viewport};
use super::session::Session;
use crate::NUM_JOINTS;
use crate::avatar::{Avatar, ColorOrder};
use crate::gpu::nets::GemmSupport;
use crate::gpu::{GpuNets, HandRenderer, NeuralPath, ViewInput};
use crate::nn::Embeddings;
use crate::render_settings::ShadingMode;

/// Marks the camera the hand is drawn into.
#[derive(Component, Clone, Copy, Default, ExtractComponent)]
pub struct HandView;

/// One hand of the frame: its avatar, the networks' outputs and its pose's kinematics.
#[derive(Clone)]
pub struct FrameHand {
    /// The hand's place in the scene (its GPU data is kept per slot).
    pub slot: usize,
    pub avatar: Arc<Avatar>,
    pub avatar_generation: u64,
    pub embeddings: Arc<Embeddings>,
    pub embeddings_generation: u64,
    pub joints: [[f32; 16]; NUM_JOINTS],
    pub x_sign: f32,
    pub scale: f32,
    pub trans: [f32; 3],
    /// The view as this hand is drawn in it (camera, settings, its pose and lighting).
    pub view: ViewInput,
}

/// Everything the render world needs for one frame (cheap to clone: big data behind Arc).
#[derive(Resource, Clone, ExtractResource)]
pub struct HandFrame {
    /// The hands drawn, in scene order (the first clears the view and paints the background).
    pub hands: Vec<FrameHand>,
    pub neural_path: NeuralPath,
    /// Where the embedding networks run (the render world decides `Auto` per hand).
    pub nets_in_frame: NetsInFrame,
    /// A CPU-rendered neural image of exactly this view (software adapters), shown instead
    /// of GPU shading.
    pub cpu_image: Option<super::cpu_neural::CpuImage>,
    /// The image behind the hand (source footage or the environment).
    pub backdrop: Option<super::footage::Backdrop>,
}

/// The hands the render world is done preparing: (slot, avatar generation) of each renderer
/// made or failed.
/// A hand's pipelines compile on a thread first; until its renderer is made the window keeps
/// redrawing, and scripted runs wait for it.
#[derive(Resource, Clone, Default)]
pub struct GpuReady(Arc<Mutex<Vec<(usize, u64)>>>);

impl GpuReady {
    /// Whether every hand the session draws has its renderer.
    pub fn covers(&self, session: &Session) -> bool {
        let Ok(ready) = self.0.lock() else {
            return true;
        };
        session
            .drawn_hands()
            .all(|(slot, _, a)| ready.contains(&(slot, a.generation)))
    }
}

/// Messages from the render world (errors creating GPU resources), shown by the UI.
#[derive(Resource, Clone, Default)]
pub struct RenderMessages(pub Arc<Mutex<Vec<String>>>);

/// Timings of the render-world work, ms (CPU time to encode, plus uploads).
#[derive(Resource, Clone, Default)]
pub struct RenderTimings(pub Arc<Mutex<RenderTimingValues>>);

#[derive(Clone, Copy, Debug, Default)]
pub struct RenderTimingValues {
    pub upload_ms: f64,
    pub pipeline_ms: f64,
    /// The networks ran on the render GPU in the last frame (a hand drawn), not the worker.
    pub nets_in_frame: bool,
    /// The first hand's networks timed once for `auto` (a synchronised run, host clock).
    pub nets_measured_ms: Option<f64>,
    /// The GEMM kernel of the first hand's in-frame networks (`tiled`, `coop`).
    pub nets_kernel: Option<&'static str>,
    /// GPU time per pass (timestamps), when the device supports them.
    pub gpu: Option<crate::gpu::StageTimes>,
}

/// One hand's renderer in the render world (GPU data per scene slot).
#[derive(Default)]
struct GpuSlot {
    renderer: Option<HandRenderer>,
    avatar_generation: u64,
    embeddings_generation: u64,
    failed_generation: u64,
    /// The CPU neural image the shaded texture holds (`None` once GPU shading overwrote
    /// it), so an unchanged image is not uploaded again every frame.
    shaded_holds: Option<u64>,
    /// The key of the backdrop image the renderer holds (`None`: none).
    backdrop_holds: Option<u64>,
    /// The avatar's networks on the render device, made when they may run in the frame.
    nets: Option<GpuNets>,
    /// Their time, a synchronised run timed on the host, measured once for `Auto` (which
    /// decides with it).
    nets_ms: Option<f64>,
    /// Making them failed (shown once; the worker's outputs are used).
    nets_failed: bool,
    /// They run in the frame: the worker's outputs are not uploaded.
    in_frame: bool,
    /// The pose whose outputs the renderer holds from them (they run again only for
    /// another; `None` once the worker's outputs were uploaded).
    nets_pose: Option<[f32; crate::POSE_DIM]>,
}

/// The hands' renderers in the render world, by scene slot.
#[derive(Resource, Default)]
struct HandGpu {
    slots: Vec<GpuSlot>,
    /// Pipelines by avatar shape: two hands of one shape build them once.
    pipelines: crate::gpu::PipelineCache,
}

impl HandGpu {
    /// The renderers of `frame`'s hands, in its order, each with its hand (those whose
    /// renderer is ready for the hand's avatar).
    fn drawn<'a>(&'a mut self, frame: &'a HandFrame) -> Vec<(&'a mut GpuSlot, &'a FrameHand)> {
        let mut by_slot: Vec<Option<&FrameHand>> = vec![None; self.slots.len()];
        for h in &frame.hands {
            if let Some(s) = by_slot.get_mut(h.slot) {
                *s = Some(h);
            }
        }
        self.slots
            .iter_mut()
            .zip(by_slot)
            .filter_map(|(g, h)| {
                let h = h?;
                (g.renderer.is_some() && g.avatar_generation == h.avatar_generation)
                    .then_some((g, h))
            })
            .collect()
    }
}

/// GPU errors to cause on purpose, one a frame (scripted, to test [`handle_render_error`]).
#[derive(Resource, Clone, Default)]
pub struct InjectGpuErrors(pub Arc<std::sync::atomic::AtomicU32>);

fn reset_hand_gpu(mut gpu: ResMut<HandGpu>) {
    *gpu = HandGpu::default();
}

/// Causes one wgpu validation error when asked: a write at an offset wgpu refuses (not a
/// multiple of 4).
fn inject_gpu_error(
    inject: Res<InjectGpuErrors>,
    device: Res<RenderDevice>,
    queue: Res<RenderQueue>,
) {
    use std::sync::atomic::Ordering;
    let asked = inject
        .0
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if asked.is_ok() {
        let buffer = device.wgpu_device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("xhand injected error"),
            size: 16,
            usage: wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&buffer, 1, &[0; 4]);
    }
}

/// What the viewer does when wgpu reports an error, instead of Bevy's default of quitting on
/// any: an error in a frame (validation, out of memory: a bug of ours or a huge image) is
/// shown in the messages and the app goes on; one that comes back every frame stops drawing
/// the hands (the panels stay usable: save your work), and one that still comes back then
/// closes the viewer with a message. A lost device (a driver reset, a GPU
/// removed) ends the viewer with a message too: Bevy 0.19 can recreate the device
/// (`RenderErrorPolicy::Recover`), but with wgpu 29 on Vulkan a destroyed device makes
/// Bevy's window code panic in wgpu-hal while dropping the swapchain, before any handler
/// runs (tried with `Device::destroy`), so no recovery is attempted. (Should it work one
/// day, `reset_hand_gpu` drops every object of the old device when `RenderStartup` runs
/// again.)
fn handle_render_error(
    error: &bevy::render::error_handler::RenderError,
    main: &mut World,
    _render: &mut World,
) -> bevy::render::error_handler::RenderErrorPolicy {
    use bevy::render::error_handler::{ErrorType, RenderErrorPolicy};
    // wgpu's descriptions run over several lines ("Validation Error / Caused by: …").
    let lines: Vec<&str> = (error.description.lines().map(str::trim))
        .filter(|l| !l.is_empty())
        .collect();
    let detail = if lines.is_empty() {
        String::new()
    } else {
        format!(": {}", lines.join(" "))
    };
    if matches!(error.ty, ErrorType::DeviceLost) {
        fatal(&format!("the GPU device was lost{detail}"));
    }
    let now = Instant::now();
    let failures = main.resource::<RenderFailures>().clone();
    let repeated = {
        let Ok(mut recent) = failures.recent.lock() else {
            return RenderErrorPolicy::StopRendering;
        };
        recent.retain(|t| now.duration_since(*t).as_secs() < 10);
        recent.push(now);
        recent.len() > 3
    };
    if repeated && failures.hands_stopped() {
        // Not the hands' passes: nothing can be drawn any more (a device gone bad).
        fatal(&format!(
            "the GPU keeps failing ({:?}{detail}) even without the hands",
            error.ty
        ));
    }
    let text = if repeated {
        failures
            .stop_hands
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Only errors that still come after this close the viewer.
        if let Ok(mut recent) = failures.recent.lock() {
            recent.clear();
        }
        format!(
            "the GPU keeps failing ({:?}{detail}); the hands are no longer drawn — save your work and restart the viewer",
            error.ty
        )
    } else {
        format!("the GPU reported an error ({:?}{detail})", error.ty)
    };
    if let Some(mut messages) = main.get_resource_mut::<super::messages::Messages>() {
        messages.error(text);
    }
    RenderErrorPolicy::Ignore
}

/// Ends the viewer at once after a GPU failure it cannot draw past, with the reason on
/// stderr. Not through `AppExit`: with the device gone, wgpu-hal (29, Vulkan) panics while
/// dropping the window's swapchain on the way out.
fn fatal(reason: &str) -> ! {
    bevy::log::error!("{reason}");
    eprintln!("error: {reason}; the viewer has to close");
    std::process::exit(1);
}

/// Recent render errors, and whether they recur so that the hands are no longer drawn.
#[derive(Resource, Clone, Default)]
pub struct RenderFailures {
    recent: Arc<Mutex<Vec<Instant>>>,
    stop_hands: Arc<std::sync::atomic::AtomicBool>,
}

impl RenderFailures {
    fn hands_stopped(&self) -> bool {
        self.stop_hands.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Registers extraction and the render-world systems.
pub struct HandRenderPlugin;

impl Plugin for HandRenderPlugin {
    fn build(&self, app: &mut App) {
        let messages = RenderMessages::default();
        let timings = RenderTimings::default();
        let inject = InjectGpuErrors::default();
        let failures = RenderFailures::default();
        let ready = GpuReady::default();
        app.insert_resource(messages.clone())
            .insert_resource(timings.clone())
            .insert_resource(inject.clone())
            .insert_resource(failures.clone())
            .insert_resource(ready.clone())
            .insert_resource(bevy::render::error_handler::RenderErrorHandler(
                handle_render_error,
            ))
            .add_plugins((
                ExtractResourcePlugin::<HandFrame>::default(),
                ExtractComponentPlugin::<HandView>::default(),
            ))
            .add_systems(PostUpdate, build_hand_frame);
        let Some(render_app) = app.get_sub_app_mut(RenderApp) else {
            return;
        };
        render_app
            .insert_resource(messages)
            .insert_resource(timings)
            .insert_resource(inject)
            .insert_resource(failures)
            .insert_resource(ready)
            .init_resource::<HandGpu>()
            // After a lost device is recreated (Bevy's recovery runs RenderStartup again) no
            // buffer or pipeline of the old device may be used: the renderers start afresh.
            .add_systems(RenderStartup, reset_hand_gpu)
            .add_systems(
                Render,
                (inject_gpu_error, prepare_hand)
                    .chain()
                    .in_set(RenderSystems::PrepareResources),
            )
            .add_systems(
                RenderGraph,
                skin_hand
                    .in_set(RenderGraphSystems::Render)
                    .before(camera_driver),
            )
            .add_systems(
                Core3d,
                draw_hand
                    .in_set(Core3dSystems::MainPass)
                    .after(main_transparent_pass_3d),
            );
    }
}

/// Builds this frame's [`HandFrame`]: kinematics on the CPU with the current poses and the
/// latest finished embeddings (a slider answers in the same frame; details catch up).
// A Bevy system: each parameter is a resource or query it needs.
#[allow(clippy::too_many_arguments)]
fn build_hand_frame(
    mut commands: Commands,
    mut session: ResMut<Session>,
    (view, lighting): (
        Res<super::display::ViewSettings>,
        Res<super::lighting::Lighting>,
    ),
    cpu: Res<super::cpu_neural::CpuNeural>,
    orbit: Res<Orbit>,
    viewport: Res<Viewport>,
    window: Single<&Window, With<PrimaryWindow>>,
) {
    let t = Instant::now();
    let (w, h) = (window.physical_width(), window.physical_height());
    let camera = match (session.use_pose_camera, pose_camera(&session)) {
        (true, Some(c)) => c.resized(w.max(1), h.max(1)),
        _ => orbit.camera(w, h, viewport.0),
    };
    let mut settings = view.settings;
    if cpu.active {
        // Software adapter: SH on the GPU until the CPU's neural image of this view is ready.
        settings.mode = ShadingMode::Sh;
    }
    let grid = super::cpu_neural::shown_grid(&view, &session, &lighting, &orbit);
    // The lighting is written in the main avatar's colour order.
    let sh = lighting.current_sh(session.frame_sh());
    let lit_order = session.avatar.avatar.color_order;
    let hands: Vec<FrameHand> = session
        .drawn_hands()
        .map(|(slot, hand, loaded)| {
            let avatar = loaded.avatar.clone();
            let drive = avatar.drive(&hand.pose);
            let pose = drive.avatar_pose(&hand.pose.pose);
            let transforms = avatar.template.skeleton.transforms(&pose);
            let view = ViewInput {
                camera: camera.clone(),
                settings,
                wireframe: view.wireframe,
                sh: lit_order.sh_to(avatar.color_order, sh),
                pose,
                normal_sign: drive.normal_sign(),
                bgr: avatar.color_order == ColorOrder::Bgr,
                grid,
            };
            FrameHand {
                slot,
                avatar_generation: loaded.generation,
                embeddings: hand.embeddings.embeddings.clone(),
                embeddings_generation: hand.embeddings.generation,
                joints: transforms.skinning_f32(),
                x_sign: drive.x_sign(),
                scale: hand.pose.scale,
                trans: hand.pose.trans,
                view,
                avatar,
            }
        })
        .collect();
    let backdrop = super::footage::backdrop(&session, &lighting);
    session.kinematics_ms = t.elapsed().as_secs_f64() * 1e3;
    session.camera = Some(camera);
    let cpu_image = cpu
        .active
        .then(|| {
            cpu.image_for(super::cpu_neural::view_key(
                &view, &session, &lighting, grid,
            ))
            .cloned()
        })
        .flatten();
    commands.insert_resource(HandFrame {
        hands,
        neural_path: view.neural_path,
        nets_in_frame: view.nets_in_frame,
        cpu_image,
        backdrop,
    });
}

/// The pose file's camera for the current frame, if it has one.
fn pose_camera(session: &Session) -> Option<crate::camera::Camera> {
    let seq = session.sequence.as_ref()?;
    seq.scene.camera(session.timeline.frame).cloned()
}

// A Bevy render system: each parameter is a resource it needs.
#[allow(clippy::too_many_arguments)]
fn prepare_hand(
    failures: Res<RenderFailures>,
    ready: Res<GpuReady>,
    frame: Option<Res<HandFrame>>,
    mut gpu: ResMut<HandGpu>,
    device: Res<RenderDevice>,
    queue: Res<RenderQueue>,
    messages: Res<RenderMessages>,
    timings: Res<RenderTimings>,
    adapter: Option<Res<RenderAdapterInfo>>,
    render_adapter: Option<Res<RenderAdapter>>,
) {
    let Some(frame) = frame.filter(|_| !failures.hands_stopped()) else {
        return;
    };
    let t = Instant::now();
    let cpu_adapter = adapter.is_some_and(|a| a.device_type == wgpu::DeviceType::Cpu);
    let report = |text: String| {
        if let Ok(mut m) = messages.0.lock() {
            m.push(text);
        }
    };
    let HandGpu { slots, pipelines } = &mut *gpu;
    for hand in &frame.hands {
        if slots.len() <= hand.slot {
            slots.resize_with(hand.slot + 1, GpuSlot::default);
        }
        let g = &mut slots[hand.slot];
        if g.avatar_generation != hand.avatar_generation
            && g.failed_generation != hand.avatar_generation
        {
            // The old renderer's buffers go before the new ones are made (and a slot whose
            // avatar comes back while the pipelines build makes its renderer anew).
            g.renderer = None;
            g.avatar_generation = 0;
            // Pipelines compile on a thread: the hand is left out until they are built.
            let made = match pipelines.ready_or_start(device.wgpu_device(), &hand.avatar) {
                Ok(None) => continue,
                Ok(Some(p)) => HandRenderer::with_pipelines(device.wgpu_device(), &hand.avatar, p),
                Err(e) => Err(e),
            };
            match made {
                Ok(mut r) => {
                    r.enable_timer(device.wgpu_device(), &queue);
                    *g = GpuSlot {
                        renderer: Some(r),
                        avatar_generation: hand.avatar_generation,
                        ..GpuSlot::default()
                    };
                }
                Err(e) => {
                    g.failed_generation = hand.avatar_generation;
                    g.avatar_generation = 0;
                    report(format!("avatar `{}`: {e}", hand.avatar.name));
                }
            }
        }
        if g.avatar_generation != hand.avatar_generation {
            continue;
        }
        let Some(r) = g.renderer.as_mut() else {
            continue;
        };
        r.neural_path = frame.neural_path;
        let choice = frame.nets_in_frame;
        // Made when forced on, or to be measured once for `auto` (kept only if they fit).
        let measure = choice.needs_measuring(cpu_adapter) && g.nets_ms.is_none();
        if (choice == NetsInFrame::On || measure) && g.nets.is_none() && !g.nets_failed {
            let support = match &render_adapter {
                Some(a) => GemmSupport::of(&a.0, device.wgpu_device()),
                None => GemmSupport::tiled_only(),
            };
            match GpuNets::new(device.wgpu_device(), &queue, &hand.avatar.nets, &support) {
                Ok(nets) => g.nets = Some(nets),
                Err(e) => {
                    g.nets_failed = true;
                    report(format!(
                        "avatar `{}`: its networks cannot run on the render GPU ({e}); the worker runs them",
                        hand.avatar.name
                    ));
                }
            }
        }
        if measure && let Some(nets) = &g.nets {
            // A failed measurement counts as too slow (measured once either way).
            let ms = measure_nets(device.wgpu_device(), &queue, nets, &hand.view.pose);
            g.nets_ms = Some(ms.unwrap_or(f64::INFINITY));
            if !choice.runs_in_frame(cpu_adapter, g.nets_ms) {
                g.nets = None;
            }
        }
        let in_frame = g.nets.is_some() && choice.runs_in_frame(cpu_adapter, g.nets_ms);
        if g.in_frame && !in_frame {
            // Back to the worker: its newest outputs go up again.
            g.embeddings_generation = 0;
        }
        if !in_frame {
            g.nets_pose = None;
        }
        g.in_frame = in_frame;
        if !in_frame && g.embeddings_generation != hand.embeddings_generation {
            if let Err(e) = r.upload_embeddings(&queue, &hand.avatar, &hand.embeddings) {
                report(e.to_string());
            }
            g.embeddings_generation = hand.embeddings_generation;
        }
    }
    if let Ok(mut r) = ready.0.lock() {
        // Made, or failed (the error is shown): nothing more to wait for either way.
        *r = (slots.iter().enumerate())
            .flat_map(|(i, g)| {
                let made = g.renderer.is_some().then_some((i, g.avatar_generation));
                made.into_iter().chain([(i, g.failed_generation)])
            })
            .collect();
    }
    // The backdrop goes to the renderer that composites: the first hand drawn.
    if let Some((g, _)) = gpu.drawn(&frame).into_iter().next()
        && let Some(r) = g.renderer.as_mut()
    {
        let want = frame.backdrop.as_ref().map(|b| b.key);
        if want != g.backdrop_holds {
            let image = frame.backdrop.as_ref().map(|b| b.image.as_ref());
            r.set_backdrop(device.wgpu_device(), &queue, image);
            g.backdrop_holds = want;
        }
        r.backdrop_mapping = frame
            .backdrop
            .as_ref()
            .map_or(Default::default(), |b| b.mapping);
    }
    if let Ok(mut v) = timings.0.lock() {
        v.upload_ms = t.elapsed().as_secs_f64() * 1e3;
        let first = gpu.drawn(&frame).into_iter().next();
        v.nets_in_frame = first.as_ref().is_some_and(|(g, _)| g.in_frame);
        v.nets_kernel = first
            .as_ref()
            .and_then(|(g, _)| g.nets.as_ref())
            .map(|n| n.kernel().name());
        v.nets_measured_ms = first.and_then(|(g, _)| g.nets_ms);
    }
}

/// The networks' GPU time for `pose`: the fastest of three synchronised runs (the first
/// one also warms up), or `None` when the device fails.
fn measure_nets(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    nets: &GpuNets,
    pose: &[f32; crate::POSE_DIM],
) -> Option<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        nets.run_on(device, queue, pose, &[0, 1, 2]).ok()?;
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    Some(best)
}

// A Bevy render system: each parameter is a resource it needs.
#[allow(clippy::too_many_arguments)]
fn skin_hand(
    mut ctx: RenderContext,
    failures: Res<RenderFailures>,
    frame: Option<Res<HandFrame>>,
    mut gpu: ResMut<HandGpu>,
    device: Res<RenderDevice>,
    queue: Res<RenderQueue>,
    messages: Res<RenderMessages>,
) {
    let Some(frame) = frame.filter(|_| !failures.hands_stopped()) else {
        return;
    };
    for (g, hand) in gpu.drawn(&frame) {
        if let Some(r) = g.renderer.as_mut() {
            // The networks in the frame: this frame's pose (a new one only), outputs straight
            // into skinning.
            let pose = &hand.view.pose;
            if g.in_frame
                && g.nets_pose.as_ref() != Some(pose)
                && let Some(nets) = &g.nets
                && let Err(e) = r.encode_networks(
                    device.wgpu_device(),
                    &queue,
                    ctx.command_encoder(),
                    nets,
                    pose,
                )
            {
                // Refused once: the worker's outputs are drawn from the next frame on.
                if let Ok(mut m) = messages.0.lock() {
                    m.push(format!("{e}; the worker runs the networks"));
                }
                (g.nets, g.nets_failed, g.in_frame) = (None, true, false);
                g.embeddings_generation = 0;
            } else if g.in_frame {
                g.nets_pose = Some(*pose);
            }
            r.encode_skinning(
                &queue,
                ctx.command_encoder(),
                &hand.joints,
                hand.x_sign,
                hand.scale,
                hand.trans,
            );
        }
    }
}

// A Bevy render system: each parameter is a resource or query it needs.
#[allow(clippy::too_many_arguments)]
fn draw_hand(
    view: ViewQuery<(&ViewTarget, &ExtractedCamera), With<HandView>>,
    frame: Option<Res<HandFrame>>,
    mut gpu: ResMut<HandGpu>,
    device: Res<RenderDevice>,
    queue: Res<RenderQueue>,
    (messages, timings, failures): (Res<RenderMessages>, Res<RenderTimings>, Res<RenderFailures>),
    mut ctx: RenderContext,
) {
    let Some(frame) = frame.filter(|_| !failures.hands_stopped()) else {
        return;
    };
    let t = Instant::now();
    let (target, camera) = view.into_inner();
    let mut drawn = gpu.drawn(&frame);
    if drawn.is_empty() {
        return;
    }
    let size = camera.physical_target_size;
    let inputs: Vec<ViewInput> = drawn
        .iter()
        .map(|(_, hand)| {
            let mut input = hand.view.clone();
            if let Some(size) = size
                && (size.x, size.y) != (input.camera.width, input.camera.height)
            {
                input.camera = input.camera.resized(size.x.max(1), size.y.max(1));
            }
            if input.settings.mode == ShadingMode::Neural && hand.avatar.renderer.is_none() {
                input.settings.mode = ShadingMode::Sh;
            }
            input
        })
        .collect();
    let camera = inputs[0].camera.clone();
    if camera.width == 0 || camera.height == 0 {
        return;
    }
    let color = target.main_texture_view();
    let format = target.main_texture_format();
    let image = frame
        .cpu_image
        .as_ref()
        .filter(|i| (i.width, i.height) == (camera.width, camera.height));
    if let Some(img) = image {
        let (g, _) = &mut drawn[0];
        let Some(r) = g.renderer.as_mut() else { return };
        if g.shaded_holds != Some(img.key) {
            r.upload_shaded(
                device.wgpu_device(),
                &queue,
                img.width,
                img.height,
                &img.rgba,
            );
        }
        r.encode_composite(
            device.wgpu_device(),
            &queue,
            ctx.command_encoder(),
            color,
            format,
            &camera,
        );
        g.shaded_holds = Some(img.key);
        return;
    }
    drawn.iter_mut().for_each(|(g, _)| g.shaded_holds = None);
    let mut passes: Vec<(&mut HandRenderer, &ViewInput)> = drawn
        .iter_mut()
        .zip(&inputs)
        .filter_map(|((g, _), input)| g.renderer.as_mut().map(|r| (r, input)))
        .collect();
    let encoded = crate::gpu::encode_hands(
        device.wgpu_device(),
        &queue,
        ctx.command_encoder(),
        &mut passes,
    );
    if let Err(e) = encoded {
        if let Ok(mut m) = messages.0.lock() {
            m.push(e.to_string());
        }
        return;
    }
    let Some((first, _)) = passes.first_mut() else {
        return;
    };
    first.encode_composite(
        device.wgpu_device(),
        &queue,
        ctx.command_encoder(),
        color,
        format,
        &camera,
    );
    if let Ok(mut v) = timings.0.lock() {
        v.pipeline_ms = t.elapsed().as_secs_f64() * 1e3;
        v.gpu = first.stage_times();
    }
}
