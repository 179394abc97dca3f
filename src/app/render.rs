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
    RenderContext, RenderDevice, RenderGraph, RenderGraphSystems, RenderQueue, ViewQuery,
};
use bevy::render::view::ViewTarget;
use bevy::render::{Render, RenderApp, RenderSystems};
use bevy::window::PrimaryWindow;

use super::orbit::{Orbit, Viewport};
use super::session::Session;
use crate::NUM_JOINTS;
use crate::avatar::{Avatar, ColorOrder};
use crate::gpu::{HandRenderer, NeuralPath, ViewInput};
use crate::nn::Embeddings;
use crate::render_settings::ShadingMode;

/// Marks the camera the hand is drawn into.
#[derive(Component, Clone, Copy, Default, ExtractComponent)]
pub struct HandView;

/// Everything the render world needs for one frame (cheap to clone: big data behind Arc).
#[derive(Resource, Clone, ExtractResource)]
pub struct HandFrame {
    pub avatar: Arc<Avatar>,
    pub avatar_generation: u64,
    pub embeddings: Arc<Embeddings>,
    pub embeddings_generation: u64,
    pub joints: [[f32; 16]; NUM_JOINTS],
    pub x_sign: f32,
    pub scale: f32,
    pub trans: [f32; 3],
    pub view: ViewInput,
    pub neural_path: NeuralPath,
    /// A CPU-rendered neural image of exactly this view (software adapters), shown instead
    /// of GPU shading.
    pub cpu_image: Option<super::cpu_neural::CpuImage>,
    /// The image behind the hand (source footage or the environment).
    pub backdrop: Option<super::footage::Backdrop>,
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
    /// GPU time per pass (timestamps), when the device supports them.
    pub gpu: Option<crate::gpu::StageTimes>,
}

/// The renderer in the render world.
#[derive(Resource, Default)]
struct HandGpu {
    renderer: Option<HandRenderer>,
    avatar_generation: u64,
    embeddings_generation: u64,
    failed_generation: u64,
    /// The CPU neural image the shaded texture holds (`None` once GPU shading overwrote
    /// it), so an unchanged image is not uploaded again every frame.
    shaded_holds: Option<u64>,
    /// The key of the backdrop image the renderer holds (`None`: none).
    backdrop_holds: Option<u64>,
}

/// Registers extraction and the render-world systems.
pub struct HandRenderPlugin;

impl Plugin for HandRenderPlugin {
    fn build(&self, app: &mut App) {
        let messages = RenderMessages::default();
        let timings = RenderTimings::default();
        app.insert_resource(messages.clone())
            .insert_resource(timings.clone())
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
            .init_resource::<HandGpu>()
            .add_systems(Render, prepare_hand.in_set(RenderSystems::PrepareResources))
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

/// Builds this frame's [`HandFrame`]: kinematics on the CPU with the current pose and the
/// latest finished embeddings (a slider answers in the same frame; details catch up).
fn build_hand_frame(
    mut commands: Commands,
    mut session: ResMut<Session>,
    cpu: Res<super::cpu_neural::CpuNeural>,
    orbit: Res<Orbit>,
    viewport: Res<Viewport>,
    window: Single<&Window, With<PrimaryWindow>>,
    mut grid: Local<(u64, (f32, f32))>,
) {
    if !session.embeddings.ready() {
        return; // the first embeddings are still on the worker: nothing to draw yet
    }
    let t = Instant::now();
    let avatar = session.avatar.avatar.clone();
    let drive = avatar.drive(&session.pose);
    let pose = drive.avatar_pose(&session.pose.pose);
    let transforms = avatar.template.skeleton.transforms(&pose);
    let (w, h) = (window.physical_width(), window.physical_height());
    let camera = match (session.use_pose_camera, pose_camera(&session)) {
        (true, Some(c)) => c.resized(w.max(1), h.max(1)),
        _ => orbit.camera(w, h, viewport.0),
    };
    let mut settings = session.settings;
    let mut cpu_image = None;
    if cpu.active {
        // Software adapter: SH on the GPU until the CPU's neural image of this view is ready.
        settings.mode = ShadingMode::Sh;
    }
    let backdrop = super::footage::backdrop(&session);
    let view = ViewInput {
        camera: camera.clone(),
        settings,
        wireframe: session.wireframe,
        sh: session.current_sh(),
        pose,
        normal_sign: drive.normal_sign(),
        bgr: avatar.color_order == ColorOrder::Bgr,
        grid: super::cpu_neural::shows_grid(&session).then(|| {
            // Once per avatar: it scans every template vertex.
            if grid.0 != session.avatar.generation {
                *grid = (session.avatar.generation, grid_plane(&avatar));
            }
            grid.1
        }),
    };
    session.kinematics_ms = t.elapsed().as_secs_f64() * 1e3;
    session.camera = Some(camera);
    if cpu.active {
        cpu_image = cpu
            .image_for(super::cpu_neural::view_key(&session))
            .cloned();
    }
    commands.insert_resource(HandFrame {
        avatar_generation: session.avatar.generation,
        embeddings: session.embeddings.embeddings.clone(),
        embeddings_generation: session.embeddings.generation,
        joints: transforms.skinning_f32(),
        x_sign: drive.x_sign(),
        scale: session.pose.scale,
        trans: session.pose.trans,
        view,
        neural_path: session.neural_path,
        cpu_image,
        avatar,
        backdrop,
    });
}

/// The pose file's camera for the current frame, if it has one.
fn pose_camera(session: &Session) -> Option<crate::camera::Camera> {
    let seq = session.sequence.as_ref()?;
    seq.poses
        .cameras
        .as_ref()?
        .get(session.timeline.frame)?
        .clone()
}

fn prepare_hand(
    frame: Option<Res<HandFrame>>,
    mut gpu: ResMut<HandGpu>,
    device: Res<RenderDevice>,
    queue: Res<RenderQueue>,
    messages: Res<RenderMessages>,
    timings: Res<RenderTimings>,
) {
    let Some(frame) = frame else { return };
    let t = Instant::now();
    if gpu.avatar_generation != frame.avatar_generation
        && gpu.failed_generation != frame.avatar_generation
    {
        match HandRenderer::new(device.wgpu_device(), &frame.avatar) {
            Ok(mut r) => {
                r.enable_timer(device.wgpu_device(), &queue);
                gpu.renderer = Some(r);
                gpu.avatar_generation = frame.avatar_generation;
                gpu.embeddings_generation = 0;
                gpu.backdrop_holds = None;
            }
            Err(e) => {
                gpu.failed_generation = frame.avatar_generation;
                if let Ok(mut m) = messages.0.lock() {
                    m.push(format!("avatar `{}`: {e}", frame.avatar.name));
                }
            }
        }
    }
    if gpu.avatar_generation != frame.avatar_generation {
        return;
    }
    let want = frame.backdrop.as_ref().map(|b| b.key);
    let upload = want != gpu.backdrop_holds;
    if let Some(r) = gpu.renderer.as_mut() {
        if upload {
            let image = frame.backdrop.as_ref().map(|b| b.image.as_ref());
            r.set_backdrop(device.wgpu_device(), &queue, image);
        }
        r.backdrop_mapping = frame
            .backdrop
            .as_ref()
            .map_or(Default::default(), |b| b.mapping);
        gpu.backdrop_holds = want;
    }
    let generation = frame.embeddings_generation;
    let stale = gpu.embeddings_generation != generation;
    if let Some(r) = gpu.renderer.as_mut() {
        r.neural_path = frame.neural_path;
        if stale
            && let Err(e) = r.upload_embeddings(&queue, &frame.avatar, &frame.embeddings)
            && let Ok(mut m) = messages.0.lock()
        {
            m.push(e.to_string());
        }
    }
    if stale {
        gpu.embeddings_generation = generation;
    }
    if let Ok(mut v) = timings.0.lock() {
        v.upload_ms = t.elapsed().as_secs_f64() * 1e3;
    }
}

fn skin_hand(
    mut ctx: RenderContext,
    frame: Option<Res<HandFrame>>,
    gpu: Res<HandGpu>,
    queue: Res<RenderQueue>,
) {
    let (Some(frame), Some(r)) = (frame, gpu.renderer.as_ref()) else {
        return;
    };
    if gpu.avatar_generation != frame.avatar_generation {
        return;
    }
    r.encode_skinning(
        &queue,
        ctx.command_encoder(),
        &frame.joints,
        frame.x_sign,
        frame.scale,
        frame.trans,
    );
}

// A Bevy render system: each parameter is a resource or query it needs.
#[allow(clippy::too_many_arguments)]
fn draw_hand(
    view: ViewQuery<(&ViewTarget, &ExtractedCamera), With<HandView>>,
    frame: Option<Res<HandFrame>>,
    mut gpu: ResMut<HandGpu>,
    device: Res<RenderDevice>,
    queue: Res<RenderQueue>,
    messages: Res<RenderMessages>,
    timings: Res<RenderTimings>,
    mut ctx: RenderContext,
) {
    let Some(frame) = frame else { return };
    let t = Instant::now();
    let (target, camera) = view.into_inner();
    let generation = gpu.avatar_generation;
    let holds = gpu.shaded_holds;
    let Some(r) = gpu.renderer.as_mut() else {
        return;
    };
    if generation != frame.avatar_generation {
        return;
    }
    let mut input = frame.view.clone();
    if let Some(size) = camera.physical_target_size
        && (size.x, size.y) != (input.camera.width, input.camera.height)
    {
        input.camera = input.camera.resized(size.x.max(1), size.y.max(1));
    }
    if input.settings.mode == ShadingMode::Neural && frame.avatar.renderer.is_none() {
        input.settings.mode = ShadingMode::Sh;
    }
    let color = target.main_texture_view();
    let format = target.main_texture_format();
    if let Some(img) = frame
        .cpu_image
        .as_ref()
        .filter(|i| (i.width, i.height) == (input.camera.width, input.camera.height))
    {
        if holds != Some(img.key) {
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
            &input.camera,
        );
        gpu.shaded_holds = Some(img.key);
        return;
    }
    gpu.shaded_holds = None;
    let Some(r) = gpu.renderer.as_mut() else {
        return;
    };
    if let Err(e) = r.encode_view(
        device.wgpu_device(),
        &queue,
        ctx.command_encoder(),
        &input,
        Some((color, format)),
    ) && let Ok(mut m) = messages.0.lock()
    {
        m.push(e.to_string());
    }
    if let Ok(mut v) = timings.0.lock() {
        v.pipeline_ms = t.elapsed().as_secs_f64() * 1e3;
        v.gpu = r.stage_times();
    }
}

/// The background grid: `(plane y, spacing)`, 1 cm lines 4 cm behind the back of the (right)
/// hand's rest pose.
pub fn grid_plane(avatar: &Avatar) -> (f32, f32) {
    let hi = avatar
        .template
        .verts
        .iter()
        .map(|v| v[1])
        .fold(f32::MIN, f32::max);
    (hi + 0.04, 0.01)
}
