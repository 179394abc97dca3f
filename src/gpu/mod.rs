//! The GPU pipeline in plain wgpu: skinning and normals in compute shaders, a visibility
//! buffer raster, and per-pixel SH + neural shading — the same math as the CPU reference
//! renderer (`cpu_render`). The Bevy viewer drives it with Bevy's device and encoder;
//! `xhand render --gpu` and the tests drive it with a device of their own
//! ([`GpuContext::headless`]).

pub mod bench;
pub mod nets;
mod params;
mod readback;
mod renderer;
pub mod shaders;
mod timer;

pub use nets::GpuNets;
pub use params::{SkinParams, ViewParams};
pub use readback::{read_buffer_f32, read_texture_rgba8};
pub use renderer::{
    BackdropMapping, HandPipelines, HandRenderer, HandSlot, NEURAL_SCRATCH_BYTES, NeuralPath,
    PipelineCache, ViewInput, ViewTargets,
};
pub use timer::StageTimes;

use crate::avatar::Avatar;
use crate::camera::Camera;
use crate::frame::PosedFrame;
use crate::image_io::Rgba8;
use crate::render_settings::RenderSettings;

/// A problem with the GPU.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter is available ({0}); install a Vulkan driver (for example Mesa's lavapipe, Debian package mesa-vulkan-drivers) or use the CPU renderer"
    )]
    NoAdapter(String),
    #[error("the GPU device could not be created: {0}")]
    Device(String),
    #[error("the avatar does not fit this GPU: {0}")]
    Limits(String),
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),
}

/// Optional features a device of our own asks for when the adapter has them: timestamps, and
/// what the networks' GEMM kernels use ([`nets::GemmKernel`]).
const OPTIONAL_FEATURES: wgpu::Features = wgpu::Features::TIMESTAMP_QUERY
    .union(wgpu::Features::SHADER_F16)
    .union(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);

/// A wgpu device of our own, for rendering without a window.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// The networks' GEMM kernels this device runs.
    pub gemm: nets::GemmSupport,
}

impl GpuContext {
    /// Opens the first adapter (honouring `WGPU_BACKEND` / `WGPU_ADAPTER_NAME`) with its own
    /// limits, no surface needed.
    pub fn headless() -> Result<Self, GpuError> {
        Self::open(first_adapter()?)
    }

    /// Opens a device on the first adapter only when it is a hardware GPU: `Ok(None)` for a
    /// software rasteriser (lavapipe, llvmpipe, WARP), without creating a device on it.
    pub fn hardware() -> Result<Option<Self>, GpuError> {
        let adapter = first_adapter()?;
        if adapter.get_info().device_type == wgpu::DeviceType::Cpu {
            return Ok(None);
        }
        Self::open(adapter).map(Some)
    }

    fn open(adapter: wgpu::Adapter) -> Result<Self, GpuError> {
        let info = adapter.get_info();
        // What the networks' kernels and the stage timings use, where the adapter has it.
        let mut features = adapter.features() & OPTIONAL_FEATURES;
        if !nets::GemmSupport::lists_coop_f32(&adapter) {
            // The feature stands for any configuration; the `coop` kernel needs 8×8×8 f32.
            features.remove(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);
        }
        let experimental = if features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
            // SAFETY: only the cooperative-matrix feature is experimental here; its one user,
            // the `coop` GEMM kernel, is checked against the f32 kernel on this device before
            // its results are used (`GpuNets::with_kernel`). Bevy enables the same token.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("xhand"),
            required_features: features,
            required_limits: adapter.limits(),
            experimental_features: experimental,
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device(e.to_string()))?;
        let gemm = nets::GemmSupport::of(&adapter, &device);
        Ok(Self {
            device,
            queue,
            info,
            gemm,
        })
    }

    /// `name (backend)` of the adapter.
    pub fn describe(&self) -> String {
        describe_adapter(&self.info)
    }
}

/// What the first adapter is, without opening a device on it (the viewer's check before
/// Bevy opens its own).
pub fn adapter_info() -> Result<wgpu::AdapterInfo, GpuError> {
    Ok(first_adapter()?.get_info())
}

/// `name (backend)` of an adapter.
pub fn describe_adapter(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?})", info.name, info.backend)
}

/// The adapter wgpu picks first (high performance; `WGPU_BACKEND` / `WGPU_ADAPTER_NAME`).
fn first_adapter() -> Result<wgpu::Adapter, GpuError> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    let instance = wgpu::Instance::new(desc);
    pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: false,
        compatible_surface: None,
    }))
    .map_err(|e| GpuError::NoAdapter(e.to_string()))
}

/// Renders one posed frame of `avatar` into an image through the GPU pipeline.
pub fn render_frame(
    ctx: &GpuContext,
    renderer: &mut HandRenderer,
    avatar: &Avatar,
    frame: &PosedFrame,
    camera: &Camera,
    settings: &RenderSettings,
) -> Result<Rgba8, GpuError> {
    let view = ViewInput::new(avatar, frame, camera, settings);
    render_view(ctx, renderer, avatar, frame, &view)
}

/// Renders `frame` as `view` says (grid, wireframe, lighting …) and reads the image back.
pub fn render_view(
    ctx: &GpuContext,
    renderer: &mut HandRenderer,
    avatar: &Avatar,
    frame: &PosedFrame,
    view: &ViewInput,
) -> Result<Rgba8, GpuError> {
    render_hand_views(
        ctx,
        &mut [HandView {
            renderer,
            avatar,
            frame,
            view: view.clone(),
            nets: None,
        }],
    )
}

/// Renders several hands, each with its renderer (one per hand: each holds its posed
/// buffers) and avatar, through one camera into one image: one visibility buffer for all,
/// so they occlude each other.
pub fn render_hands(
    ctx: &GpuContext,
    hands: &mut [(&mut HandRenderer, &Avatar, &PosedFrame)],
    camera: &Camera,
    settings: &RenderSettings,
) -> Result<Rgba8, GpuError> {
    let mut views: Vec<HandView<'_>> = hands
        .iter_mut()
        .map(|(renderer, avatar, frame)| HandView {
            view: ViewInput::new(avatar, frame, camera, settings),
            renderer,
            avatar,
            frame,
            nets: None,
        })
        .collect();
    render_hand_views(ctx, &mut views)
}

/// Encodes the view passes of several hands (skinned already) into one visibility buffer:
/// the first hand rasterises into its own targets, each later one into the same targets with
/// its triangle ids after the previous hands' faces (the depth test keeps the nearest
/// surface of all); then each hand shades its own pixels, the first also the background.
/// Returns the shared targets (the shaded image).
pub fn encode_hands(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    encoder: &mut wgpu::CommandEncoder,
    hands: &mut [(&mut HandRenderer, &ViewInput)],
) -> Result<std::sync::Arc<ViewTargets>, GpuError> {
    let Some(((first, first_view), rest)) = hands.split_first_mut() else {
        return Err(GpuError::Device("there is no hand to render".into()));
    };
    renderer::check_view_size(device, &first_view.camera)?;
    first.encode_raster(device, queue, encoder, first_view);
    let targets = first
        .targets()
        .ok_or_else(|| GpuError::Device("the first hand made no view targets".into()))?;
    let mut slots = Vec::with_capacity(rest.len());
    let mut face_offset = first.num_faces();
    for (renderer, view) in rest.iter_mut() {
        let slot = HandSlot {
            face_offset,
            first: false,
        };
        renderer.encode_raster_into(device, queue, encoder, view, &targets, slot);
        face_offset = face_offset
            .checked_add(renderer.num_faces())
            .ok_or_else(|| {
                GpuError::Limits("the hands have more faces than triangle ids".into())
            })?;
        slots.push(slot);
    }
    first.encode_shading(encoder, first_view)?;
    for ((renderer, view), slot) in rest.iter().zip(slots) {
        renderer.encode_shading_into(encoder, view, &targets, slot)?;
    }
    Ok(targets)
}

/// One hand of a view: what draws it, what it is, and how it is seen.
pub struct HandView<'a> {
    pub renderer: &'a mut HandRenderer,
    pub avatar: &'a Avatar,
    pub frame: &'a PosedFrame,
    /// Camera, settings and lighting (the same camera for every hand of the view).
    pub view: ViewInput,
    /// The avatar's networks on this device, to run for the frame's pose and feed the
    /// renderer on the GPU (no copy through the host); `None` uploads the frame's
    /// embeddings. One per hand: a hand's pose is written into its networks' buffers.
    pub nets: Option<&'a GpuNets>,
}

/// Renders the hands of one view and reads the image back: each hand's outputs uploaded
/// and skinned, all rasterised into the first hand's visibility buffer (ids one after
/// another), then each hand shades its own pixels (the first also the background).
pub fn render_hand_views(ctx: &GpuContext, hands: &mut [HandView<'_>]) -> Result<Rgba8, GpuError> {
    let mut nets: Vec<u64> = hands
        .iter()
        .filter_map(|h| h.nets.map(GpuNets::id))
        .collect();
    let count = nets.len();
    nets.sort_unstable();
    nets.dedup();
    if nets.len() != count {
        return Err(GpuError::Device(
            "two hands share one set of GPU networks: each needs its own (its pose is written into them)".into(),
        ));
    }
    let Some((first, rest)) = hands.split_first_mut() else {
        return Err(GpuError::Device("there is no hand to render".into()));
    };
    renderer::check_view_size(&ctx.device, &first.view.camera)?;
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("xhand frame"),
        });
    for h in std::iter::once(&mut *first).chain(rest.iter_mut()) {
        let geo = &h.frame.geometry;
        match h.nets {
            Some(nets) => {
                nets.encode(&ctx.queue, &mut encoder, &geo.avatar_pose);
                h.renderer
                    .encode_embeddings_from(&ctx.device, &mut encoder, nets)?;
            }
            None => {
                h.renderer
                    .upload_embeddings(&ctx.queue, h.avatar, &h.frame.embeddings)?;
            }
        }
        h.renderer.encode_skinning(
            &ctx.queue,
            &mut encoder,
            &geo.transforms.skinning_f32(),
            geo.drive.x_sign(),
            geo.scale,
            geo.trans,
        );
    }
    let mut passes: Vec<(&mut HandRenderer, &ViewInput)> = std::iter::once(&mut *first)
        .chain(rest.iter_mut())
        .map(|h| (&mut *h.renderer, &h.view))
        .collect();
    let targets = encode_hands(&ctx.device, &ctx.queue, &mut encoder, &mut passes)?;
    ctx.queue.submit([encoder.finish()]);
    read_texture_rgba8(&ctx.device, &ctx.queue, targets.shaded_texture())
}
