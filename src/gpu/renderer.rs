//! [`HandRenderer`]: the avatar's GPU buffers and pipelines, and the passes of one frame.

use std::sync::Arc;
use std::thread::JoinHandle;
use wgpu::util::DeviceExt;

use super::GpuError;
use super::params::{
    CompositeParams, CountParams, PackParams, RasterParams, SkinParams, ViewParams,
};
use super::shaders::{self, COMPOSITE_WGSL, EMBEDDINGS_WGSL, NORMALS_WGSL, RASTER_WGSL};
use super::timer::{GpuTimer, Stage};
use crate::avatar::Avatar;
use crate::camera::Camera;
use crate::frame::PosedFrame;
use crate::image_io::Rgba8;
use crate::mesh::VertexFaces;
use crate::nn::Embeddings;
use crate::render_settings::{RenderSettings, ShadingMode};
use crate::{NUM_JOINTS, POSE_DIM, SH_DIM};

/// How the neural renderer runs per pixel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum NeuralPath {
    /// Compute shaders: the covered pixels are listed, then shaded 64 at a time as a tiled
    /// matrix product with weight and activation slices in workgroup memory.
    #[default]
    Compute,
    /// Fragment shader, one pixel per invocation, weights read from the storage buffer.
    Fragment,
}

/// Scratch the compute path's workgroups of one round may take for their activations by
/// default (each shades one tile of covered pixels; rounds follow each other, so this bounds
/// the memory at any view size). 128 MiB: about 600 workgroups a round at XHand's renderer
/// width, so a paper-size frame (~750 tiles) takes two rounds and a large GPU has several
/// workgroups per core to hide latency with (a reasoned default, not yet tuned on hardware).
pub const NEURAL_SCRATCH_BYTES: u64 = 128 << 20;
/// Rounds of the compute path at most (past that, rounds take more workgroups).
const NEURAL_MAX_ROUNDS: u64 = 4096;
/// Covered pixels per tile of the compute path (`PX_TILE` in shade.wgsl).
const NEURAL_PX_TILE: u64 = 64;

/// Everything the per-view passes need besides the buffers.
#[derive(Clone, Debug)]
pub struct ViewInput {
    pub camera: Camera,
    pub settings: RenderSettings,
    pub wireframe: bool,
    pub sh: [f32; SH_DIM],
    /// The pose in the avatar's convention (renderer input).
    pub pose: [f32; POSE_DIM],
    /// −1 for a mirrored hand.
    pub normal_sign: f32,
    /// Colours are stored BGR in the avatar.
    pub bgr: bool,
    /// The background grid, if drawn.
    pub grid: Option<crate::cpu_render::GridPlane>,
}

impl ViewInput {
    /// The view of a posed frame.
    pub fn new(
        avatar: &Avatar,
        frame: &PosedFrame,
        camera: &Camera,
        settings: &RenderSettings,
    ) -> Self {
        Self {
            camera: camera.clone(),
            settings: *settings,
            wireframe: false,
            sh: frame.sh,
            pose: frame.geometry.avatar_pose,
            normal_sign: frame.geometry.drive.normal_sign(),
            bgr: avatar.color_order == crate::avatar::ColorOrder::Bgr,
            grid: None,
        }
    }

    fn params(&self) -> ViewParams {
        let cam = &self.camera;
        let to_f32 = |m: nalgebra::Matrix4<f64>| -> [f32; 16] {
            std::array::from_fn(|i| m.as_slice()[i] as f32)
        };
        // Camera-to-world: rotation Rᵀ, translation the camera centre (the grid's ray origin).
        let mut ray = nalgebra::Matrix4::<f64>::identity();
        ray.fixed_view_mut::<3, 3>(0, 0)
            .copy_from(&cam.rotation.transpose());
        ray.fixed_view_mut::<3, 1>(0, 3).copy_from(&cam.center);
        let mut sh = [[0.0f32; 4]; 7];
        for (k, v) in self.sh.iter().enumerate() {
            sh[k / 4][k % 4] = *v;
        }
        let mut pose = [[0.0f32; 4]; 12];
        for (k, v) in self.pose.iter().enumerate() {
            pose[k / 4][k % 4] = *v;
        }
        let bg = self.settings.background;
        ViewParams {
            clip_from_world: to_f32(cam.clip_from_world()),
            ray_rotation: to_f32(ray),
            intrinsics: [cam.fx as f32, cam.fy as f32, cam.cx as f32, cam.cy as f32],
            background: [bg[0], bg[1], bg[2], 1.0],
            size_mode: [
                cam.width,
                cam.height,
                self.settings.mode.id(),
                self.settings.weight_joint.min(NUM_JOINTS - 1) as u32,
            ],
            flags: [
                self.wireframe as u32,
                self.bgr as u32,
                self.grid.is_some() as u32,
                0,
            ],
            misc: [
                self.normal_sign,
                self.settings.displacement_range,
                self.grid.map_or(0.0, |g| g.y),
                self.grid.map_or(0.01, |g| g.spacing),
            ],
            sh,
            pose,
            // Set by the renderer drawing it (`encode_raster_into`).
            hand: [0; 4],
        }
    }
}

/// The per-view targets every hand of a view draws into: one visibility buffer (triangle
/// ids, barycentrics, depth) and the shaded image. The first hand's renderer owns them
/// ([`HandRenderer::targets`]); the others draw into them ([`HandRenderer::encode_raster_into`]).
pub struct ViewTargets {
    /// Tells these targets from earlier ones of the same size (bind-group caches).
    id: u64,
    width: u32,
    height: u32,
    triangle: wgpu::TextureView,
    bary: wgpu::TextureView,
    depth: wgpu::TextureView,
    shaded: wgpu::Texture,
    shaded_view: wgpu::TextureView,
}

impl ViewTargets {
    fn new(device: &wgpu::Device, width: u32, height: u32) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let tex = |label: &str, format: wgpu::TextureFormat, usage: wgpu::TextureUsages| {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size: wgpu::Extent3d {
                    width,
                    height,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage,
                view_formats: &[],
            })
        };
        let attach = wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::TEXTURE_BINDING;
        let shaded = tex(
            "shaded",
            SHADED_FORMAT,
            attach
                | wgpu::TextureUsages::STORAGE_BINDING
                | wgpu::TextureUsages::COPY_SRC
                | wgpu::TextureUsages::COPY_DST,
        );
        Self {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            width,
            height,
            triangle: tex("visibility: triangle", TRIANGLE_FORMAT, attach)
                .create_view(&Default::default()),
            bary: tex("visibility: barycentrics", BARY_FORMAT, attach)
                .create_view(&Default::default()),
            depth: tex(
                "visibility: depth",
                DEPTH_FORMAT,
                wgpu::TextureUsages::RENDER_ATTACHMENT,
            )
            .create_view(&Default::default()),
            shaded_view: shaded.create_view(&Default::default()),
            shaded,
        }
    }

    /// The shaded image (RGBA8, background where alpha is 0).
    pub fn shaded_texture(&self) -> &wgpu::Texture {
        &self.shaded
    }
}

/// Where one hand goes in a view that several hands share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandSlot {
    /// The faces of the hands drawn before this one: this hand's ids follow theirs.
    pub face_offset: u32,
    /// The first hand clears the targets and paints the background.
    pub first: bool,
}

impl HandSlot {
    /// A hand alone in its view.
    pub const ALONE: Self = Self {
        face_offset: 0,
        first: true,
    };
}

/// One hand's shading bind groups for one set of targets.
struct ShadeBindGroups {
    targets_id: u64,
    simple: wgpu::BindGroup,
    /// The compute path's, made when first needed (its scratch is large).
    neural: Option<NeuralCompute>,
    /// Making them was tried: `None` then means the view is too large for them.
    neural_tried: bool,
    fragment: Option<wgpu::BindGroup>,
}

/// The compute path's bind groups and scratch for one set of targets.
struct NeuralCompute {
    gather: wgpu::BindGroup,
    plan: wgpu::BindGroup,
    shade: wgpu::BindGroup,
    /// `NeuralState` of shade.wgsl: the covered pixel count (cleared before each frame),
    /// the next tile, the workgroups of a round.
    state: wgpu::Buffer,
    /// Indirect dispatch arguments of each round (`plan_rounds` fills them).
    rounds: wgpu::Buffer,
    num_rounds: u32,
}

struct CompositePipeline {
    format: wgpu::TextureFormat,
    pipeline: wgpu::RenderPipeline,
    params: wgpu::Buffer,
}

/// The pipelines that draw one avatar shape on one device: skinning, normals, the
/// visibility raster and the shading variants. An avatar enters them only through its shade
/// program (renderer widths, attribute layout), so every hand of one shape shares them (their
/// layouts are the pipelines' own: each renderer makes its bind groups from them).
pub struct HandPipelines {
    /// The device they belong to.
    device: wgpu::Device,
    /// The shade program's WGSL they were built from.
    source: String,
    /// Writes the renderer's inputs from the GPU networks' outputs.
    pack: wgpu::ComputePipeline,
    skin: wgpu::ComputePipeline,
    normals: wgpu::ComputePipeline,
    raster: wgpu::RenderPipeline,
    shade_simple: wgpu::ComputePipeline,
    /// The neural renderer's passes (avatars with a renderer): the compute path's three
    /// (gather, plan, shade), and the fragment path.
    gather_covered: Option<wgpu::ComputePipeline>,
    plan_rounds: Option<wgpu::ComputePipeline>,
    shade_neural: Option<wgpu::ComputePipeline>,
    shade_fragment: Option<wgpu::RenderPipeline>,
}

impl HandPipelines {
    fn new(device: &wgpu::Device, source: &str, has_renderer: bool) -> Self {
        let skin_module = module(device, "skin.wgsl", &shaders::skin_source());
        let normals_module = module(device, "normals.wgsl", NORMALS_WGSL);
        let raster_module = module(device, "raster.wgsl", RASTER_WGSL);
        let shade_module = module(device, "shade.wgsl", source);
        let skin_pipeline = compute(device, &skin_module, "skin");
        let pack = compute(
            device,
            &module(device, "embeddings.wgsl", EMBEDDINGS_WGSL),
            "pack",
        );
        let normals_pipeline = compute(device, &normals_module, "vertex_normals");
        let raster_pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("visibility raster"),
            layout: None,
            vertex: wgpu::VertexState {
                module: &raster_module,
                entry_point: Some("vs"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: Some(wgpu::DepthStencilState {
                format: DEPTH_FORMAT,
                depth_write_enabled: Some(true),
                depth_compare: Some(wgpu::CompareFunction::Greater),
                stencil: Default::default(),
                bias: Default::default(),
            }),
            multisample: Default::default(),
            fragment: Some(wgpu::FragmentState {
                module: &raster_module,
                entry_point: Some("fs"),
                compilation_options: Default::default(),
                targets: &[Some(TRIANGLE_FORMAT.into()), Some(BARY_FORMAT.into())],
            }),
            multiview_mask: None,
            cache: None,
        });
        let shade_simple = compute(device, &shade_module, "shade_simple");
        let gather_covered = has_renderer.then(|| compute(device, &shade_module, "gather_covered"));
        let plan_rounds = has_renderer.then(|| compute(device, &shade_module, "plan_rounds"));
        let shade_neural = has_renderer.then(|| compute(device, &shade_module, "shade_neural"));
        let shade_fragment = has_renderer.then(|| {
            let target = SHADED_FORMAT.into();
            fullscreen(
                device,
                "neural shading (fragment)",
                &shade_module,
                ("vs_fullscreen", "fs_neural"),
                target,
            )
        });

        Self {
            device: device.clone(),
            source: source.to_string(),
            pack,
            skin: skin_pipeline,
            normals: normals_pipeline,
            raster: raster_pipeline,
            shade_simple,
            gather_covered,
            plan_rounds,
            shade_neural,
            shade_fragment,
        }
    }
}

/// Pipelines built so far, reused by every hand of a known shape; those of another device
/// (one recreated after an error) are dropped, never reused. They can also be built on a
/// thread ([`Self::ready_or_start`]), so that a frame never waits for shader compilation
/// (about 1.3 s on a software rasteriser).
#[derive(Default)]
pub struct PipelineCache {
    built: Vec<Arc<HandPipelines>>,
    /// Builds under way: device, shade program, whether with the neural passes, and where
    /// the result arrives.
    building: Vec<(wgpu::Device, String, bool, JoinHandle<HandPipelines>)>,
    /// Builds that panicked (the panic is printed): not tried again.
    failed: Vec<(wgpu::Device, String, bool)>,
}

/// What to build: the shade program's source and whether the avatar has a neural renderer.
fn pipeline_key(avatar: &Avatar) -> (String, bool) {
    (shaders::shade_source(avatar), avatar.renderer.is_some())
}

impl PipelineCache {
    /// The pipelines for `source` (a shade program) on `device`, built now on first use.
    pub fn get(
        &mut self,
        device: &wgpu::Device,
        source: &str,
        has_renderer: bool,
    ) -> Arc<HandPipelines> {
        self.collect(device);
        if let Some(p) = self.find(source, has_renderer) {
            return p;
        }
        let built = Arc::new(HandPipelines::new(device, source, has_renderer));
        self.built.push(built.clone());
        built
    }

    /// The pipelines for `avatar` on `device` if they are built; else `None`, with a build
    /// started on a thread (once) — ask again on a later frame.
    pub fn ready_or_start(
        &mut self,
        device: &wgpu::Device,
        avatar: &Avatar,
    ) -> Result<Option<Arc<HandPipelines>>, GpuError> {
        self.collect(device);
        let (source, has_renderer) = pipeline_key(avatar);
        if let Some(p) = self.find(&source, has_renderer) {
            return Ok(Some(p));
        }
        if (self.failed.iter()).any(|(d, s, n)| d == device && *s == source && *n == has_renderer) {
            return Err(GpuError::Device(
                "building the GPU pipelines for this avatar failed (the log says why)".into(),
            ));
        }
        let started = (self.building.iter())
            .any(|(d, s, n, _)| d == device && *s == source && *n == has_renderer);
        if !started {
            let (d, s) = (device.clone(), source.clone());
            let thread = std::thread::Builder::new()
                .name("xhand-pipelines".into())
                .spawn(move || HandPipelines::new(&d, &s, has_renderer))
                .map_err(|e| GpuError::Device(format!("cannot start a thread: {e}")))?;
            self.building
                .push((device.clone(), source, has_renderer, thread));
        }
        Ok(None)
    }

    /// Whether pipelines are being built on a thread.
    pub fn is_building(&self) -> bool {
        !self.building.is_empty()
    }

    /// Keeps only `device`'s pipelines, and takes in those built on threads since.
    fn collect(&mut self, device: &wgpu::Device) {
        self.built.retain(|p| p.device == *device);
        self.building.retain(|(d, ..)| d == device);
        let mut still = Vec::new();
        for (d, s, n, thread) in self.building.drain(..) {
            if !thread.is_finished() {
                still.push((d, s, n, thread));
            } else if let Ok(p) = thread.join() {
                self.built.push(Arc::new(p));
            } else {
                self.failed.push((d, s, n));
            }
        }
        self.building = still;
    }

    fn find(&self, source: &str, has_renderer: bool) -> Option<Arc<HandPipelines>> {
        (self.built.iter())
            .find(|p| p.source == source && p.shade_neural.is_some() == has_renderer)
            .cloned()
    }

    /// How many sets of pipelines were built (and are kept).
    pub fn len(&self) -> usize {
        self.built.len()
    }

    pub fn is_empty(&self) -> bool {
        self.built.is_empty()
    }
}

/// The GPU side of one hand: the avatar's static mesh data, per-frame buffers, the shared
/// pipelines of its shape ([`HandPipelines`]) and the passes that skin, rasterise and shade
/// it.
pub struct HandRenderer {
    num_vertices: u32,
    num_faces: u32,
    verts: Vec<[f32; 3]>,
    attr_stride: usize,
    /// Floats per pixel of the compute path's activation rows (`MLP_WIDTH`).
    mlp_width: usize,
    /// The compute path's activation scratch cap ([`Self::set_neural_scratch_limit`]).
    neural_scratch_bytes: u64,
    has_renderer: bool,
    /// Which neural path `encode_view` uses.
    pub neural_path: NeuralPath,

    faces: wgpu::Buffer,
    /// The template's vertices and render codes, for [`Self::encode_embeddings_from`].
    template_verts: wgpu::Buffer,
    render_codes: wgpu::Buffer,
    render_code_width: usize,
    /// The pack pass's bind group for the networks it last read ([`super::GpuNets::id`]).
    pack_bg: Option<(u64, wgpu::BindGroup)>,
    rest: wgpu::Buffer,
    weights: wgpu::Buffer,
    attrs: wgpu::Buffer,
    mlp: wgpu::Buffer,
    posed: wgpu::Buffer,
    normals: wgpu::Buffer,
    skin_params: wgpu::Buffer,
    raster_params: wgpu::Buffer,
    view_params: wgpu::Buffer,

    /// Shared by every hand of this avatar's shape on this device.
    pipelines: Arc<HandPipelines>,
    skin_bg: wgpu::BindGroup,
    normals_bg: wgpu::BindGroup,
    raster_bg: wgpu::BindGroup,
    /// This renderer's own view targets (the first hand's, which later hands share).
    targets: Option<std::sync::Arc<ViewTargets>>,
    /// Shading bind groups for the targets last drawn into.
    shade_bgs: Option<ShadeBindGroups>,
    timer: Option<GpuTimer>,
    composite: Option<CompositePipeline>,
    composite_bg: Option<(wgpu::BindGroup, u32, u32)>,
    /// The image drawn behind the hand by the composite (a 1×1 transparent texel for none).
    backdrop: Option<wgpu::TextureView>,
    backdrop_sampler: Option<wgpu::Sampler>,
    /// How the backdrop maps onto the target.
    pub backdrop_mapping: BackdropMapping,
}

/// How [`HandRenderer::set_backdrop`]'s image lies behind the hand.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum BackdropMapping {
    /// Stretched over the target (source footage the pose camera saw).
    #[default]
    Screen,
    /// An equirectangular environment seen through the camera, turned by `rotation`
    /// radians about its up axis.
    Environment { rotation: f32 },
}

const TRIANGLE_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::R32Uint;
const BARY_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rg32Float;
const DEPTH_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Depth32Float;
const SHADED_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

fn storage(
    device: &wgpu::Device,
    label: &str,
    size_floats: usize,
    extra: wgpu::BufferUsages,
) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (size_floats.max(1) * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC
            | extra,
        mapped_at_creation: false,
    })
}

fn init_storage<T: bytemuck::Pod>(device: &wgpu::Device, label: &str, data: &[T]) -> wgpu::Buffer {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    let padded: Vec<u8> = if bytes.is_empty() {
        vec![0; 4]
    } else {
        bytes.to_vec()
    };
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: &padded,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
    })
}

fn uniform<T: bytemuck::Pod>(device: &wgpu::Device, label: &str, value: &T) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::bytes_of(value),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    })
}

fn module(device: &wgpu::Device, label: &str, source: &str) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    })
}

fn compute(
    device: &wgpu::Device,
    module: &wgpu::ShaderModule,
    entry: &str,
) -> wgpu::ComputePipeline {
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry),
        layout: None,
        module,
        entry_point: Some(entry),
        compilation_options: Default::default(),
        cache: None,
    })
}

/// A render pipeline drawing one full-screen triangle (`vs`, `fs`: the entry points of
/// `module`) into one colour target.
fn fullscreen(
    device: &wgpu::Device,
    label: &str,
    module: &wgpu::ShaderModule,
    (vs, fs): (&str, &str),
    target: wgpu::ColorTargetState,
) -> wgpu::RenderPipeline {
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(label),
        layout: None,
        vertex: wgpu::VertexState {
            module,
            entry_point: Some(vs),
            compilation_options: Default::default(),
            buffers: &[],
        },
        primitive: Default::default(),
        depth_stencil: None,
        multisample: Default::default(),
        fragment: Some(wgpu::FragmentState {
            module,
            entry_point: Some(fs),
            compilation_options: Default::default(),
            targets: &[Some(target)],
        }),
        multiview_mask: None,
        cache: None,
    })
}

fn bind_group(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    entries: &[(u32, wgpu::BindingResource<'_>)],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry<'_>> = entries
        .iter()
        .map(|(binding, resource)| wgpu::BindGroupEntry {
            binding: *binding,
            resource: resource.clone(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout,
        entries: &entries,
    })
}

/// The first of `sizes` (label, bytes) a storage buffer of this device cannot hold.
pub fn storage_limit_error(limits: &wgpu::Limits, sizes: &[(&str, u64)]) -> Option<String> {
    let max = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    sizes.iter().find(|(_, b)| *b > max).map(|(label, bytes)| {
        format!(
            "the {label} buffer ({} MiB) exceeds this GPU's storage buffer limit ({} MiB)",
            bytes >> 20,
            max >> 20
        )
    })
}

/// Refuses an image larger than the device's largest texture.
pub(super) fn check_view_size(device: &wgpu::Device, camera: &Camera) -> Result<(), GpuError> {
    let max = device.limits().max_texture_dimension_2d;
    if camera.width > max || camera.height > max {
        return Err(GpuError::Device(format!(
            "a {}x{} image is larger than this GPU's largest texture ({max}x{max}); render a smaller image",
            camera.width, camera.height
        )));
    }
    Ok(())
}

fn groups(n: u32, size: u32) -> u32 {
    n.div_ceil(size)
}

impl HandRenderer {
    /// Uploads the avatar's static data and builds the pipelines for it.
    pub fn new(device: &wgpu::Device, avatar: &Avatar) -> Result<Self, GpuError> {
        Self::with_cache(device, avatar, &mut PipelineCache::default())
    }

    /// Uploads the avatar's static data, with the pipelines of its shape from `cache` (built
    /// there if none fit yet): a second hand of the same shape builds none.
    pub fn with_cache(
        device: &wgpu::Device,
        avatar: &Avatar,
        cache: &mut PipelineCache,
    ) -> Result<Self, GpuError> {
        let (source, has_renderer) = pipeline_key(avatar);
        let pipelines = cache.get(device, &source, has_renderer);
        Self::with_pipelines(device, avatar, pipelines)
    }

    /// Uploads the avatar's static data, drawing with `pipelines` (its shape's, from
    /// [`PipelineCache::ready_or_start`]).
    pub fn with_pipelines(
        device: &wgpu::Device,
        avatar: &Avatar,
        pipelines: Arc<HandPipelines>,
    ) -> Result<Self, GpuError> {
        let v = avatar.num_vertices();
        let f = avatar.num_faces();
        let program =
            shaders::shade_program(avatar).map_err(|e| GpuError::Device(e.to_string()))?;
        // Every storage buffer below, checked against the device before any is made.
        let float = 4u64;
        let sizes = [
            ("faces", 3 * f as u64 * float),
            ("adjacency faces", 3 * f as u64 * float),
            ("adjacency offsets", (v as u64 + 1) * float),
            ("renderer weights", program.mlp_weights.len() as u64 * float),
            ("skinning weights", (v * NUM_JOINTS) as u64 * float),
            (
                "vertex attributes",
                (v * program.attr_stride) as u64 * float,
            ),
            ("vertex positions", 3 * v as u64 * float),
        ];
        if let Some(e) = storage_limit_error(&device.limits(), &sizes) {
            return Err(GpuError::Limits(e));
        }
        let faces_flat: Vec<u32> = avatar.template.faces.iter().flatten().copied().collect();
        let adjacency = VertexFaces::new(v, &avatar.template.faces);

        let faces = init_storage(device, "faces", &faces_flat);
        let adj_offsets = init_storage(device, "adjacency offsets", &adjacency.offsets);
        let adj_faces = init_storage(device, "adjacency faces", &adjacency.faces);
        let mlp = init_storage(device, "renderer weights", &program.mlp_weights);
        let verts_flat: Vec<f32> = avatar.template.verts.iter().flatten().copied().collect();
        let template_verts = init_storage(device, "template vertices", &verts_flat);
        let render_codes = init_storage(device, "render codes", &avatar.render_code_host);
        let rest = storage(
            device,
            "rest + displacement",
            v * 3,
            wgpu::BufferUsages::empty(),
        );
        let weights = storage(
            device,
            "skinning weights",
            v * NUM_JOINTS,
            wgpu::BufferUsages::empty(),
        );
        let attrs = storage(
            device,
            "vertex attributes",
            v * program.attr_stride,
            wgpu::BufferUsages::empty(),
        );
        let posed = storage(device, "posed vertices", v * 3, wgpu::BufferUsages::empty());
        let normals = storage(device, "normals", v * 3, wgpu::BufferUsages::empty());
        let skin_params = uniform(device, "skin params", &SkinParams::zeroed_with(v as u32));
        let normal_params = uniform(
            device,
            "normal params",
            &CountParams {
                count: v as u32,
                _pad: [0; 3],
            },
        );
        let raster_params = uniform(
            device,
            "raster params",
            &RasterParams {
                clip_from_world: [0.0; 16],
                face_offset: [0; 4],
            },
        );
        let view_params = uniform(
            device,
            "view params",
            &bytemuck::Zeroable::zeroed() as &ViewParams,
        );

        if pipelines.source != program.source || pipelines.device != *device {
            return Err(GpuError::Device(
                "these pipelines were built for another avatar shape or device".into(),
            ));
        }
        let has_renderer = pipelines.shade_neural.is_some();
        let skin_bg = bind_group(
            device,
            &pipelines.skin.get_bind_group_layout(0),
            &[
                (0, skin_params.as_entire_binding()),
                (1, rest.as_entire_binding()),
                (2, weights.as_entire_binding()),
                (3, posed.as_entire_binding()),
            ],
        );
        let normals_bg = bind_group(
            device,
            &pipelines.normals.get_bind_group_layout(0),
            &[
                (0, normal_params.as_entire_binding()),
                (1, posed.as_entire_binding()),
                (2, faces.as_entire_binding()),
                (3, adj_offsets.as_entire_binding()),
                (4, adj_faces.as_entire_binding()),
                (5, normals.as_entire_binding()),
            ],
        );
        let raster_bg = bind_group(
            device,
            &pipelines.raster.get_bind_group_layout(0),
            &[
                (0, raster_params.as_entire_binding()),
                (1, posed.as_entire_binding()),
                (2, faces.as_entire_binding()),
            ],
        );
        Ok(Self {
            num_vertices: v as u32,
            num_faces: f as u32,
            verts: avatar.template.verts.clone(),
            template_verts,
            render_codes,
            render_code_width: avatar.render_code_width(),
            pack_bg: None,
            attr_stride: program.attr_stride,
            mlp_width: program.mlp_width,
            neural_scratch_bytes: NEURAL_SCRATCH_BYTES,
            has_renderer,
            neural_path: NeuralPath::default(),
            faces,
            rest,
            weights,
            attrs,
            mlp,
            posed,
            normals,
            skin_params,
            raster_params,
            view_params,
            pipelines,
            skin_bg,
            normals_bg,
            raster_bg,
            targets: None,
            shade_bgs: None,
            timer: None,
            composite: None,
            composite_bg: None,
            backdrop: None,
            backdrop_sampler: None,
            backdrop_mapping: BackdropMapping::Screen,
        })
    }

    /// Caps the neural compute path's activation scratch (default [`NEURAL_SCRATCH_BYTES`]):
    /// fewer workgroups a round, so more rounds. For devices short of memory; the image is
    /// the same.
    pub fn set_neural_scratch_limit(&mut self, bytes: u64) {
        self.neural_scratch_bytes = bytes;
        self.shade_bgs = None;
    }

    /// How many pixels the last neural shading by the compute path covered (the renderer
    /// ran on these only; `None` before any): a readback, for benchmarks and tests.
    pub fn covered_pixels(&self, ctx: &super::GpuContext) -> Result<Option<u32>, GpuError> {
        let Some(n) = self.shade_bgs.as_ref().and_then(|b| b.neural.as_ref()) else {
            return Ok(None);
        };
        let state = super::read_buffer_f32(&ctx.device, &ctx.queue, &n.state)?;
        Ok(state.first().map(|v| v.to_bits()))
    }

    /// The pipelines this renderer draws with (shared by hands of the same shape).
    pub fn pipelines(&self) -> &Arc<HandPipelines> {
        &self.pipelines
    }

    /// Measures each pass with GPU timestamps when the device supports them (the viewer's
    /// stats); returns whether it could.
    pub fn enable_timer(&mut self, device: &wgpu::Device, queue: &wgpu::Queue) -> bool {
        self.timer = GpuTimer::new(device, queue);
        self.timer.is_some()
    }

    /// GPU time of each stage in a recent frame, when timing is enabled.
    pub fn stage_times(&self) -> Option<super::StageTimes> {
        self.timer.as_ref().and_then(GpuTimer::latest)
    }

    /// Number of vertices.
    pub fn num_vertices(&self) -> usize {
        self.num_vertices as usize
    }

    /// Number of faces (the ids this hand takes in a shared visibility buffer).
    pub fn num_faces(&self) -> u32 {
        self.num_faces
    }

    /// This renderer's view targets, once a view was drawn: what the hands after it in the
    /// same view draw into.
    pub fn targets(&self) -> Option<std::sync::Arc<ViewTargets>> {
        self.targets.clone()
    }

    /// The skinned world positions `[V * 3]` (after `encode_skinning` has run).
    pub fn posed_buffer(&self) -> &wgpu::Buffer {
        &self.posed
    }

    /// The vertex normals `[V * 3]` (after `encode_skinning` has run).
    pub fn normals_buffer(&self) -> &wgpu::Buffer {
        &self.normals
    }

    /// The last shaded image (RGBA8, background where alpha is 0).
    pub fn shaded_texture(&self) -> Result<&wgpu::Texture, GpuError> {
        self.targets
            .as_deref()
            .map(ViewTargets::shaded_texture)
            .ok_or_else(|| GpuError::Readback("nothing has been rendered yet".into()))
    }

    /// Uploads one set of network outputs: `verts + D`, skinning weights, and the
    /// per-vertex shading attributes (albedo, codes, ‖D‖). Call once per change. Outputs
    /// of another avatar (other vertex count or code widths) are refused, not written past
    /// the buffers.
    pub fn upload_embeddings(
        &self,
        queue: &wgpu::Queue,
        avatar: &Avatar,
        e: &Embeddings,
    ) -> Result<(), GpuError> {
        let v = self.num_vertices as usize;
        let rc = avatar.render_code_width();
        let sizes_fit = e.num_vertices == v
            && e.delta.len() == 3 * v
            && e.albedo.len() == 3 * v
            && e.lbs_weights.len() == crate::NUM_JOINTS * v
            && e.code_delta.len() == v * e.code_delta_dim
            && e.code_albedo.len() == v * e.code_albedo_dim
            && avatar.render_code_host.len() == v * rc
            && 3 + e.code_delta_dim + e.code_albedo_dim + rc + 1 == self.attr_stride;
        if !sizes_fit {
            return Err(GpuError::Device(format!(
                "network outputs for {} vertices (codes {} + {}) do not fit this avatar's GPU buffers ({v} vertices, {} attribute floats); skipped",
                e.num_vertices, e.code_delta_dim, e.code_albedo_dim, self.attr_stride
            )));
        }
        let mut rest = Vec::with_capacity(v * 3);
        for (i, p) in self.verts.iter().enumerate() {
            rest.extend(p.iter().zip(&e.delta[3 * i..3 * i + 3]).map(|(a, d)| a + d));
        }
        queue.write_buffer(&self.rest, 0, bytemuck::cast_slice(&rest));
        queue.write_buffer(&self.weights, 0, bytemuck::cast_slice(&e.lbs_weights));
        let mut attrs = Vec::with_capacity(v * self.attr_stride);
        for i in 0..v {
            attrs.extend_from_slice(&e.albedo[3 * i..3 * i + 3]);
            attrs
                .extend_from_slice(&e.code_delta[i * e.code_delta_dim..(i + 1) * e.code_delta_dim]);
            attrs.extend_from_slice(
                &e.code_albedo[i * e.code_albedo_dim..(i + 1) * e.code_albedo_dim],
            );
            attrs.extend_from_slice(&avatar.render_code_host[i * rc..(i + 1) * rc]);
            let d = &e.delta[3 * i..3 * i + 3];
            attrs.push((d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt());
        }
        queue.write_buffer(&self.attrs, 0, bytemuck::cast_slice(&attrs));
        Ok(())
    }

    /// Encodes the avatar's networks for `pose` (its own convention) and their outputs into
    /// this renderer's inputs, all on the GPU: the viewer's networks in the frame (their
    /// pass timed in [`super::StageTimes::nets_ms`] when timing is on). Skinning follows.
    pub fn encode_networks(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        nets: &super::GpuNets,
        pose: &[f32; POSE_DIM],
    ) -> Result<(), GpuError> {
        let timestamps = self.timer.as_ref().map(|t| t.compute(Stage::Nets));
        nets.encode_timed(queue, encoder, pose, timestamps);
        self.encode_embeddings_from(device, encoder, nets)
    }

    /// Encodes writing this renderer's inputs straight from `nets`' outputs on the GPU (the
    /// avatar's own networks, run by [`super::GpuNets::encode`] earlier in the same queue):
    /// the frame then needs no copy through the host. Networks of another shape are refused.
    pub fn encode_embeddings_from(
        &mut self,
        device: &wgpu::Device,
        encoder: &mut wgpu::CommandEncoder,
        nets: &super::GpuNets,
    ) -> Result<(), GpuError> {
        let v = self.num_vertices as usize;
        let [d, c, l] = nets.buffers();
        let fits = nets.num_vertices() == v
            && d.out_dim == 3
            && c.out_dim == 3
            && l.out_dim == NUM_JOINTS
            && 3 + d.code_dim + c.code_dim + self.render_code_width + 1 == self.attr_stride;
        if !fits {
            return Err(GpuError::Device(format!(
                "GPU network outputs for {} vertices (codes {} + {}) do not fit this avatar's GPU buffers ({v} vertices, {} attribute floats); skipped",
                nets.num_vertices(),
                d.code_dim,
                c.code_dim,
                self.attr_stride
            )));
        }
        let cached = (self.pack_bg.as_ref()).is_some_and(|(id, _)| *id == nets.id());
        if !cached {
            let params = uniform(
                device,
                "pack params",
                &PackParams {
                    num_vertices: self.num_vertices,
                    code_delta: d.code_dim as u32,
                    code_albedo: c.code_dim as u32,
                    render_code: self.render_code_width as u32,
                },
            );
            let bg = bind_group(
                device,
                &self.pipelines.pack.get_bind_group_layout(0),
                &[
                    (0, params.as_entire_binding()),
                    (1, self.template_verts.as_entire_binding()),
                    (2, self.render_codes.as_entire_binding()),
                    (3, d.out.as_entire_binding()),
                    (4, d.code.as_entire_binding()),
                    (5, c.out.as_entire_binding()),
                    (6, c.code.as_entire_binding()),
                    (7, self.rest.as_entire_binding()),
                    (8, self.attrs.as_entire_binding()),
                ],
            );
            self.pack_bg = Some((nets.id(), bg));
        }
        encoder.copy_buffer_to_buffer(&l.out, 0, &self.weights, 0, (v * NUM_JOINTS * 4) as u64);
        if let Some((_, bg)) = &self.pack_bg {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("embeddings into the renderer"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.pipelines.pack);
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(groups(self.num_vertices, 64), 1, 1);
        }
        Ok(())
    }

    /// Encodes skinning with the 16 joint transforms (column-major) and placement, then
    /// the vertex normals.
    pub fn encode_skinning(
        &self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        joints: &[[f32; 16]; NUM_JOINTS],
        x_sign: f32,
        scale: f32,
        trans: [f32; 3],
    ) {
        let params = SkinParams {
            num_vertices: self.num_vertices,
            x_sign,
            scale,
            _pad: 0.0,
            trans: [trans[0], trans[1], trans[2], 0.0],
            joints: *joints,
        };
        queue.write_buffer(&self.skin_params, 0, bytemuck::bytes_of(&params));
        if let Some(t) = &self.timer {
            t.collect();
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("skinning"),
            timestamp_writes: self.timer.as_ref().map(|t| t.compute(Stage::Skinning)),
        });
        pass.set_pipeline(&self.pipelines.skin);
        pass.set_bind_group(0, &self.skin_bg, &[]);
        pass.dispatch_workgroups(groups(self.num_vertices, 64), 1, 1);
        pass.set_pipeline(&self.pipelines.normals);
        pass.set_bind_group(0, &self.normals_bg, &[]);
        pass.dispatch_workgroups(groups(self.num_vertices, 64), 1, 1);
    }

    /// This renderer's own targets at `width` × `height` (made anew on a size change).
    fn ensure_targets(
        &mut self,
        device: &wgpu::Device,
        width: u32,
        height: u32,
    ) -> std::sync::Arc<ViewTargets> {
        match &self.targets {
            Some(t) if t.width == width && t.height == height => t.clone(),
            _ => {
                let t = std::sync::Arc::new(ViewTargets::new(device, width, height));
                self.targets = Some(t.clone());
                self.composite_bg = None;
                t
            }
        }
    }

    /// This hand's shading bind groups for `targets` (made when the targets changed).
    fn ensure_shade_bind_groups(&mut self, device: &wgpu::Device, targets: &ViewTargets) {
        if self
            .shade_bgs
            .as_ref()
            .is_some_and(|b| b.targets_id == targets.id)
        {
            return;
        }
        let shade_entries = |with_out: bool| self.shade_entries(targets, with_out);
        let simple = bind_group(
            device,
            &self.pipelines.shade_simple.get_bind_group_layout(0),
            &shade_entries(true),
        );
        let with_mlp = |with_out: bool| {
            let mut e = shade_entries(with_out);
            e.push((9, self.mlp.as_entire_binding()));
            e.retain(|(b, _)| *b != 8);
            e
        };
        let fragment = self
            .pipelines
            .shade_fragment
            .as_ref()
            .map(|p| bind_group(device, &p.get_bind_group_layout(0), &with_mlp(false)));
        self.shade_bgs = Some(ShadeBindGroups {
            targets_id: targets.id,
            simple,
            neural: None,
            neural_tried: false,
            fragment,
        });
    }

    /// The bindings every shading entry point shares (binding 3, the shaded image, for the
    /// compute passes only).
    fn shade_entries<'a>(
        &'a self,
        targets: &'a ViewTargets,
        with_out: bool,
    ) -> Vec<(u32, wgpu::BindingResource<'a>)> {
        let mut e = vec![
            (0, self.view_params.as_entire_binding()),
            (1, wgpu::BindingResource::TextureView(&targets.triangle)),
            (2, wgpu::BindingResource::TextureView(&targets.bary)),
            (4, self.posed.as_entire_binding()),
            (5, self.normals.as_entire_binding()),
            (6, self.faces.as_entire_binding()),
            (7, self.attrs.as_entire_binding()),
            (8, self.weights.as_entire_binding()),
        ];
        if with_out {
            e.push((3, wgpu::BindingResource::TextureView(&targets.shaded_view)));
        }
        e
    }

    /// The compute path's scratch and bind groups for `targets`: a list with room for every
    /// pixel, the state, and activation scratch for as many workgroups a round as fit in
    /// the scratch limit (and the device's binding limit); enough rounds for every pixel.
    fn neural_compute(
        &self,
        device: &wgpu::Device,
        targets: &ViewTargets,
    ) -> Option<NeuralCompute> {
        let p = &self.pipelines;
        let (gather, plan, shade) = (
            p.gather_covered.as_ref()?,
            p.plan_rounds.as_ref()?,
            p.shade_neural.as_ref()?,
        );
        let pixels = u64::from(targets.width) * u64::from(targets.height);
        let tiles = pixels.div_ceil(NEURAL_PX_TILE);
        let per_group = 3 * NEURAL_PX_TILE * self.mlp_width as u64 * 4;
        let budget =
            (self.neural_scratch_bytes).min(device.limits().max_storage_buffer_binding_size);
        let list_bytes = pixels * 4;
        if list_bytes > device.limits().max_storage_buffer_binding_size {
            return None;
        }
        // Enough workgroups a round that the rounds stay few (each is a dispatch, and
        // `plan_rounds` loops over them).
        let groups = (tiles.min(budget / per_group))
            .max(tiles.div_ceil(NEURAL_MAX_ROUNDS))
            .clamp(
                1,
                u64::from(device.limits().max_compute_workgroups_per_dimension),
            );
        let num_rounds = tiles.div_ceil(groups);
        if groups * per_group > device.limits().max_storage_buffer_binding_size {
            return None;
        }
        let list = storage(
            device,
            "covered pixels",
            pixels as usize,
            wgpu::BufferUsages::empty(),
        );
        let state = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("neural state"),
            contents: bytemuck::cast_slice(&[0u32, 0, groups as u32, 0]),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
        });
        let rounds = storage(
            device,
            "neural rounds",
            3 * num_rounds as usize,
            wgpu::BufferUsages::INDIRECT,
        );
        let act = storage(
            device,
            "renderer activations",
            (groups * per_group / 4) as usize,
            wgpu::BufferUsages::empty(),
        );
        let mut common = self.shade_entries(targets, true);
        common.retain(|(b, _)| *b != 8);
        let mut gather_entries = common.clone();
        gather_entries.extend([
            (10, list.as_entire_binding()),
            (11, state.as_entire_binding()),
        ]);
        let mut shade_entries = common;
        shade_entries.extend([
            (9, self.mlp.as_entire_binding()),
            (10, list.as_entire_binding()),
            (11, state.as_entire_binding()),
            (12, act.as_entire_binding()),
        ]);
        let plan_entries = [
            (11, state.as_entire_binding()),
            (13, rounds.as_entire_binding()),
        ];
        Some(NeuralCompute {
            gather: bind_group(device, &gather.get_bind_group_layout(0), &gather_entries),
            plan: bind_group(device, &plan.get_bind_group_layout(0), &plan_entries),
            shade: bind_group(device, &shade.get_bind_group_layout(0), &shade_entries),
            state,
            rounds,
            num_rounds: num_rounds as u32,
        })
    }

    /// Encodes the per-view passes: visibility raster, shading, and — when `target` is
    /// given — compositing over it (`(view, format)`; alpha-blended, so the target keeps
    /// its background where there is no hand).
    pub fn encode_view(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        view: &ViewInput,
        target: Option<(&wgpu::TextureView, wgpu::TextureFormat)>,
    ) -> Result<(), GpuError> {
        if view.camera.width == 0 || view.camera.height == 0 {
            return Ok(());
        }
        check_view_size(device, &view.camera)?;
        self.encode_raster(device, queue, encoder, view);
        self.encode_shading(encoder, view)?;
        if let Some((target_view, format)) = target {
            self.encode_composite(device, queue, encoder, target_view, format, &view.camera);
        }
        Ok(())
    }

    /// Encodes the visibility raster for `view` into this renderer's own targets (writes
    /// the view uniforms).
    pub fn encode_raster(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        view: &ViewInput,
    ) {
        let (w, h) = (view.camera.width.max(1), view.camera.height.max(1));
        let targets = self.ensure_targets(device, w, h);
        self.encode_raster_into(device, queue, encoder, view, &targets, HandSlot::ALONE);
    }

    /// Encodes this hand's visibility raster into `targets`, which the hands before it in
    /// the view (`slot`) have drawn into: the depth test keeps the nearest surface of all.
    /// Writes this hand's view uniforms; [`Self::encode_shading_into`] follows.
    pub fn encode_raster_into(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        view: &ViewInput,
        targets: &ViewTargets,
        slot: HandSlot,
    ) {
        self.ensure_shade_bind_groups(device, targets);
        let compute = view.settings.mode == ShadingMode::Neural
            && self.has_renderer
            && self.neural_path == NeuralPath::Compute;
        if compute && self.shade_bgs.as_ref().is_some_and(|b| !b.neural_tried) {
            let made = self.neural_compute(device, targets);
            if let Some(b) = self.shade_bgs.as_mut() {
                (b.neural, b.neural_tried) = (made, true);
            }
        }
        let mut params = view.params();
        params.hand = [slot.face_offset, self.num_faces, slot.first as u32, 0];
        queue.write_buffer(&self.view_params, 0, bytemuck::bytes_of(&params));
        queue.write_buffer(
            &self.raster_params,
            0,
            bytemuck::bytes_of(&RasterParams {
                clip_from_world: params.clip_from_world,
                face_offset: [slot.face_offset, 0, 0, 0],
            }),
        );
        let color = |view| {
            Some(wgpu::RenderPassColorAttachment {
                view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: if slot.first {
                        wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT)
                    } else {
                        wgpu::LoadOp::Load
                    },
                    store: wgpu::StoreOp::Store,
                },
            })
        };
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("visibility raster"),
            color_attachments: &[color(&targets.triangle), color(&targets.bary)],
            depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                view: &targets.depth,
                depth_ops: Some(wgpu::Operations {
                    load: if slot.first {
                        wgpu::LoadOp::Clear(0.0)
                    } else {
                        wgpu::LoadOp::Load
                    },
                    store: wgpu::StoreOp::Store,
                }),
                stencil_ops: None,
            }),
            timestamp_writes: self.timer.as_ref().map(|t| t.render(Stage::Raster)),
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_pipeline(&self.pipelines.raster);
        pass.set_bind_group(0, &self.raster_bg, &[]);
        pass.draw(0..self.num_faces * 3, 0..1);
    }

    /// Encodes per-pixel shading of the last raster into this renderer's shaded texture.
    pub fn encode_shading(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        view: &ViewInput,
    ) -> Result<(), GpuError> {
        let targets = self
            .targets
            .as_deref()
            .ok_or_else(|| GpuError::Device("shading was encoded before the raster".into()))?;
        self.encode_shading_into(encoder, view, targets, HandSlot::ALONE)
    }

    /// Encodes this hand's shading of `targets` after [`Self::encode_raster_into`]: its own
    /// pixels, and the background when it is the first hand; other hands' pixels are left
    /// to their passes.
    pub fn encode_shading_into(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        view: &ViewInput,
        targets: &ViewTargets,
        slot: HandSlot,
    ) -> Result<(), GpuError> {
        let bgs = self
            .shade_bgs
            .as_ref()
            .filter(|b| b.targets_id == targets.id)
            .ok_or_else(|| GpuError::Device("shading was encoded before the raster".into()))?;
        let neural = view.settings.mode == ShadingMode::Neural && self.has_renderer;
        // The fragment path also where the compute path's buffers do not fit the device.
        let fragment = self.neural_path == NeuralPath::Fragment || bgs.neural.is_none();
        if neural && fragment {
            let (Some(p), Some(bg)) = (&self.pipelines.shade_fragment, &bgs.fragment) else {
                return Err(GpuError::Device("fragment shading pipeline missing".into()));
            };
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("neural shading (fragment)"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &targets.shaded_view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: if slot.first {
                            wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT)
                        } else {
                            wgpu::LoadOp::Load
                        },
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: self.timer.as_ref().map(|t| t.render(Stage::Shading)),
                occlusion_query_set: None,
                multiview_mask: None,
            });
            pass.set_pipeline(p);
            pass.set_bind_group(0, bg, &[]);
            pass.draw(0..3, 0..1);
            return Ok(());
        }
        let p = &self.pipelines;
        let compute = match (neural, &p.gather_covered, &p.plan_rounds, &p.shade_neural) {
            (true, Some(g), Some(r), Some(s)) => match &bgs.neural {
                Some(n) => Some(([g, r, s], n)),
                None => {
                    return Err(GpuError::Device(
                        "neural shading bind groups missing".into(),
                    ));
                }
            },
            (true, ..) => return Err(GpuError::Device("neural shading pipelines missing".into())),
            _ => None,
        };
        if let Some((_, n)) = compute {
            // The covered pixel count only (the rest of the state stays).
            encoder.clear_buffer(&n.state, 0, Some(4));
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("shading"),
            timestamp_writes: self.timer.as_ref().map(|t| t.compute(Stage::Shading)),
        });
        let pixel_groups = (groups(targets.width, 8), groups(targets.height, 8));
        match compute {
            Some(([gather, plan, shade], n)) => {
                pass.set_pipeline(gather);
                pass.set_bind_group(0, &n.gather, &[]);
                pass.dispatch_workgroups(pixel_groups.0, pixel_groups.1, 1);
                pass.set_pipeline(plan);
                pass.set_bind_group(0, &n.plan, &[]);
                pass.dispatch_workgroups(1, 1, 1);
                pass.set_pipeline(shade);
                pass.set_bind_group(0, &n.shade, &[]);
                // Rounds past the covered pixels dispatch no workgroups.
                for r in 0..u64::from(n.num_rounds) {
                    pass.dispatch_workgroups_indirect(&n.rounds, 12 * r);
                }
            }
            None => {
                pass.set_pipeline(&self.pipelines.shade_simple);
                pass.set_bind_group(0, &bgs.simple, &[]);
                pass.dispatch_workgroups(pixel_groups.0, pixel_groups.1, 1);
            }
        }
        Ok(())
    }

    /// Replaces the shaded image with `rgba` (8-bit, alpha 0 where there is no hand), e.g.
    /// one rendered by the CPU reference renderer; then [`Self::encode_composite`] draws it.
    pub fn upload_shaded(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        width: u32,
        height: u32,
        rgba: &[u8],
    ) {
        let t = self.ensure_targets(device, width.max(1), height.max(1));
        if rgba.len() != (width * height * 4) as usize {
            return;
        }
        queue.write_texture(
            t.shaded.as_image_copy(),
            rgba,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(width * 4),
                rows_per_image: Some(height),
            },
            wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
        );
    }

    /// Shows `image` behind the hand in [`Self::encode_composite`], stretched over the whole
    /// target (the source frame the pose camera sees, which covers the window), or nothing.
    pub fn set_backdrop(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        image: Option<&Rgba8>,
    ) {
        let blank = Rgba8 {
            width: 1,
            height: 1,
            pixels: vec![[0; 4]],
        };
        let image = image.filter(|i| {
            let max = device.limits().max_texture_dimension_2d;
            i.width > 0 && i.height > 0 && i.width <= max && i.height <= max
        });
        let image = image.unwrap_or(&blank);
        let size = wgpu::Extent3d {
            width: image.width,
            height: image.height,
            depth_or_array_layers: 1,
        };
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("backdrop"),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        queue.write_texture(
            texture.as_image_copy(),
            bytemuck::cast_slice(&image.pixels),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(image.width * 4),
                rows_per_image: Some(image.height),
            },
            size,
        );
        self.backdrop = Some(texture.create_view(&Default::default()));
        self.composite_bg = None;
    }

    /// Encodes drawing the shaded image over `target` (alpha-blended), over the backdrop
    /// when one is set.
    pub fn encode_composite(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        target: &wgpu::TextureView,
        format: wgpu::TextureFormat,
        camera: &Camera,
    ) {
        if self.composite.as_ref().is_none_or(|c| c.format != format) {
            let m = module(device, "composite.wgsl", COMPOSITE_WGSL);
            let target = wgpu::ColorTargetState {
                format,
                blend: Some(wgpu::BlendState::ALPHA_BLENDING),
                write_mask: wgpu::ColorWrites::ALL,
            };
            let pipeline = fullscreen(device, "composite", &m, ("vs", "fs"), target);
            let params = uniform(
                device,
                "composite params",
                &<CompositeParams as bytemuck::Zeroable>::zeroed(),
            );
            self.composite = Some(CompositePipeline {
                format,
                pipeline,
                params,
            });
            self.composite_bg = None;
        }
        if self.backdrop.is_none() {
            self.set_backdrop(device, queue, None);
        }
        // Environments wrap round in longitude.
        let sampler = self.backdrop_sampler.get_or_insert_with(|| {
            device.create_sampler(&wgpu::SamplerDescriptor {
                label: Some("backdrop"),
                address_mode_u: wgpu::AddressMode::Repeat,
                mag_filter: wgpu::FilterMode::Linear,
                min_filter: wgpu::FilterMode::Linear,
                ..Default::default()
            })
        });
        if let Some(comp) = &self.composite {
            let to_world = camera.rotation.transpose();
            let row = |i: usize| {
                let r = to_world.row(i);
                [r[0] as f32, r[1] as f32, r[2] as f32, 0.0]
            };
            let (mapping, rotation) = match self.backdrop_mapping {
                BackdropMapping::Screen => (0, 0.0),
                BackdropMapping::Environment { rotation } => (1, rotation),
            };
            let axis = |a: [f32; 3], w: f32| [a[0], a[1], a[2], w];
            let params = CompositeParams {
                flags: [format.is_srgb() as u32, mapping, 0, 0],
                camera_to_world: [row(0), row(1), row(2)],
                intrinsics: [camera.fx, camera.fy, camera.cx, camera.cy].map(|v| v as f32),
                env_up: axis(crate::envmap::UP, rotation),
                env_forward: axis(crate::envmap::FORWARD, 0.0),
                env_right: axis(crate::envmap::RIGHT, 0.0),
            };
            queue.write_buffer(&comp.params, 0, bytemuck::bytes_of(&params));
        }
        let (Some(comp), Some(targets), Some(backdrop)) = (
            self.composite.as_ref(),
            self.targets.as_deref(),
            self.backdrop.as_ref(),
        ) else {
            return; // nothing shaded yet
        };
        if self
            .composite_bg
            .as_ref()
            .is_none_or(|(_, w, h)| (*w, *h) != (targets.width, targets.height))
        {
            let bg = bind_group(
                device,
                &comp.pipeline.get_bind_group_layout(0),
                &[
                    (0, comp.params.as_entire_binding()),
                    (1, wgpu::BindingResource::TextureView(&targets.shaded_view)),
                    (2, wgpu::BindingResource::TextureView(backdrop)),
                    (3, wgpu::BindingResource::Sampler(sampler)),
                ],
            );
            self.composite_bg = Some((bg, targets.width, targets.height));
        }
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("composite"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: target,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Load,
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: self.timer.as_ref().map(|t| t.render(Stage::Composite)),
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_pipeline(&comp.pipeline);
        if let Some((bg, _, _)) = &self.composite_bg {
            pass.set_bind_group(0, bg, &[]);
        }
        pass.draw(0..3, 0..1);
        drop(pass);
        if let Some(t) = &self.timer {
            t.resolve(encoder);
        }
    }
}

impl SkinParams {
    fn zeroed_with(num_vertices: u32) -> Self {
        Self {
            num_vertices,
            ..bytemuck::Zeroable::zeroed()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_buffer_is_checked_against_the_storage_limits() {
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: 128 << 20,
            max_buffer_size: 256 << 20,
            ..wgpu::Limits::default()
        };
        let fits = [("faces", 1 << 20), ("vertex attributes", 100 << 20)];
        assert_eq!(storage_limit_error(&limits, &fits), None);
        let big = [("faces", 1 << 20), ("vertex attributes", 200 << 20)];
        let e = storage_limit_error(&limits, &big).unwrap();
        assert!(
            e.contains("vertex attributes") && e.contains("128 MiB"),
            "{e}"
        );
    }
}
