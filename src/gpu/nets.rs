//! The three embedding networks on the GPU, in wgpu compute shaders: any adapter (Vulkan,
//! Metal, DX12, lavapipe) runs XHand's nets without candle.
//!
//! Per network and block of vertices: one tiled GEMM dispatch per layer with the bias and
//! torch's Softplus fused into its epilogue (`nets_gemm.wgsl`), lin0 on the latent code only
//! (its pose columns are applied once per frame on the host and folded into lin0's bias, as
//! the CPU path does), then the head (`nets_head.wgsl`): the basis mix with
//! `softmax(static_code, 0)` and XHand's output activation. Results stay in GPU buffers
//! ([`NetBuffers`]); [`GpuNets::eval`] reads them back as [`Embeddings`].
//!
//! Everything but lin0's bias is uploaded once; each frame writes `width0` floats per net.

use std::fmt::Write as _;

use wgpu::util::DeviceExt;

use super::{GpuContext, GpuError, read_buffer_f32};
use crate::nn::LOG1P_IS_IDENTITY_BELOW;
use crate::nn::{EmbeddingNets, Embeddings, HostNet, SOFTPLUS_BETA, SOFTPLUS_THRESHOLD};
use crate::{NUM_JOINTS, POSE_DIM};

/// Output tile of one GEMM workgroup (rows × columns) and its K slice.
pub const TILE_M: usize = 64;
pub const TILE_N: usize = 64;
pub const TILE_K: usize = 16;
/// Invocations per GEMM workgroup (16 × 16).
const GEMM_INVOCATIONS: usize = 256;
/// Invocations per head workgroup.
const HEAD_WORKGROUP: usize = 64;
/// Largest output width of a head (the skinning net's 16 joints).
pub const MAX_OUT: usize = NUM_JOINTS;
/// Activation ids shared with the shaders.
const ACT_NONE: u32 = 0;
const ACT_SOFTPLUS: u32 = 1;
/// Head modes shared with the shaders.
const HEAD_RAW: u32 = 0;
const HEAD_SIGMOID: u32 = 1;
const HEAD_SOFTMAX: u32 = 2;
/// Bytes of activations per block of vertices we aim for (two such buffers per net).
const BLOCK_BYTES: usize = 64 << 20;

const GEMM_COMMON_WGSL: &str = include_str!("../../shaders/nets_gemm.wgsl");
const GEMM_TILED_WGSL: &str = include_str!("../../shaders/nets_gemm_tiled.wgsl");
const GEMM_COOP_WGSL: &str = include_str!("../../shaders/nets_gemm_coop.wgsl");
const HEAD_WGSL: &str = include_str!("../../shaders/nets_head.wgsl");

/// Output tile (16 × 16, four 8 × 8 matrices) and K slice of the cooperative-matrix kernel.
const COOP_TILE: usize = 16;
const COOP_K: usize = 32;
/// Lanes of an Apple GPU's simdgroup; also the subgroup size the cooperative-matrix source is
/// validated with in the tests.
const APPLE_SIMDGROUP: u32 = 32;
/// Largest relative difference from the tiled kernel at which the cooperative-matrix kernel
/// is trusted: both sum in f32, in other orders.
const COOP_AGREEMENT: f32 = 1e-4;

/// How the networks' layers multiply on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmKernel {
    /// f32 tiles in workgroup memory: every adapter.
    Tiled,
    /// f32 on 8×8 cooperative matrices (adapters that list 8×8×8 f32 ones: Apple GPUs' simdgroup
    /// matrices, some Vulkan drivers): checked against `tiled` on the GPU before it is used.
    Coop,
    /// Opt-in half precision: operands stored and read as f16, products and sums in f32
    /// (adapters with SHADER_F16); error measured in docs/performance.md.
    F16,
}

/// Where the cooperative-matrix kernel runs: its workgroup is one subgroup of `lanes`, and
/// on some backends naga reads and writes the matrices in the other layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoopTarget {
    pub lanes: u32,
    /// naga 29.0.4's Metal writer passes a load's or store's row-major flag (`coopLoadT`) as
    /// `simdgroup_load`'s transpose argument, and Metal's untransposed layout is row-major:
    /// each layout comes out as the other, unlike its SPIR-V. The kernel then asks for the
    /// other layout.
    pub layouts_swapped: bool,
}

impl CoopTarget {
    /// What the tests validate: 32 lanes, SPIR-V's layouts.
    pub const VALIDATION: CoopTarget = CoopTarget {
        lanes: APPLE_SIMDGROUP,
        layouts_swapped: false,
    };
}

/// Which GEMM kernels a device can run, read from its features and its adapter.
#[derive(Clone, Debug)]
pub struct GemmSupport {
    f16: bool,
    coop: Result<CoopTarget, String>,
}

impl GemmSupport {
    /// The tiled kernel only.
    pub fn tiled_only() -> Self {
        Self {
            f16: false,
            coop: Err("not asked for".into()),
        }
    }

    /// What `device`, opened on `adapter`, runs.
    pub fn of(adapter: &wgpu::Adapter, device: &wgpu::Device) -> Self {
        let info = adapter.get_info();
        let coop = if !Self::lists_coop_f32(adapter) {
            // wgpu's Vulkan backend offers the feature for any 8- or 16-wide configuration.
            Err("the GPU lists no 8×8×8 f32 cooperative matrices".to_string())
        } else if !device
            .features()
            .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
        {
            Err("the GPU device was opened without cooperative matrices".to_string())
        } else if info.backend == wgpu::Backend::Metal {
            // Apple GPUs run 32 lanes a simdgroup, though wgpu's Metal backend reports the
            // range 4 to 64; the Intel and AMD GPUs of older Macs run other widths.
            if info.name.starts_with("Apple") {
                Ok(CoopTarget {
                    lanes: APPLE_SIMDGROUP,
                    layouts_swapped: true,
                })
            } else {
                Err(format!(
                    "{} is not an Apple GPU (unknown simdgroup width)",
                    info.name
                ))
            }
        } else if info.subgroup_min_size == info.subgroup_max_size {
            // naga allows matrix operations in workgroup-uniform control flow only, so a
            // workgroup cannot deal them out to several subgroups: it is one.
            Ok(CoopTarget {
                lanes: info.subgroup_max_size,
                layouts_swapped: false,
            })
        } else {
            Err(format!(
                "the GPU's subgroup size varies ({} to {})",
                info.subgroup_min_size, info.subgroup_max_size
            ))
        };
        Self {
            f16: device.features().contains(wgpu::Features::SHADER_F16),
            coop,
        }
    }

    /// Whether `adapter` lists 8×8×8 cooperative matrices with f32 operands and sums, the
    /// configuration of the `coop` kernel.
    pub fn lists_coop_f32(adapter: &wgpu::Adapter) -> bool {
        use wgpu::CooperativeScalarType::F32;
        adapter.cooperative_matrix_properties().iter().any(|p| {
            (p.m_size, p.n_size, p.k_size) == (8, 8, 8) && p.ab_type == F32 && p.cr_type == F32
        })
    }

    /// Why this device cannot run `kernel` (`None`: it can).
    pub fn unavailable(&self, kernel: GemmKernel) -> Option<String> {
        match kernel {
            GemmKernel::Tiled => None,
            GemmKernel::F16 => (!self.f16).then(|| "the GPU device has no SHADER_F16".into()),
            GemmKernel::Coop => self.coop.as_ref().err().cloned(),
        }
    }
}

impl GemmKernel {
    /// Short name, as `--gemm` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tiled => "tiled",
            Self::Coop => "coop",
            Self::F16 => "f16",
        }
    }

    /// The full GEMM source of this kernel (header, shared part, kernel); `coop` says where
    /// the cooperative-matrix kernel runs.
    pub fn source(self, coop: CoopTarget) -> String {
        let (enable, prelude, kernel) = match self {
            Self::Tiled => (
                "",
                "alias operand = f32;\n".into(),
                GEMM_TILED_WGSL.to_string(),
            ),
            Self::F16 => (
                "enable f16;\n",
                "alias operand = f16;\n".into(),
                GEMM_TILED_WGSL.to_string(),
            ),
            Self::Coop => {
                let (rows, columns, store_rows) = if coop.layouts_swapped {
                    ("coopLoad", "coopLoadT", "coopStore")
                } else {
                    ("coopLoadT", "coopLoad", "coopStoreT")
                };
                (
                    "enable wgpu_cooperative_matrix;\n",
                    format!("const COOP_LANES: u32 = {}u;\n", coop.lanes),
                    GEMM_COOP_WGSL
                        .replace("LOAD_ROWS", rows)
                        .replace("LOAD_COLUMNS", columns)
                        .replace("STORE_ROWS", store_rows),
                )
            }
        };
        format!(
            "{enable}{}{prelude}\n{GEMM_COMMON_WGSL}\n{kernel}",
            shader_header()
        )
    }

    /// Output tile (rows, columns) of one workgroup.
    fn tile(self) -> (usize, usize) {
        match self {
            Self::Tiled | Self::F16 => (TILE_M, TILE_N),
            Self::Coop => (COOP_TILE, COOP_TILE),
        }
    }
}

/// The WGSL constants the net shaders use, generated from the Rust ones.
pub fn shader_header() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "const TILE_M: u32 = {TILE_M}u;");
    let _ = writeln!(s, "const TILE_N: u32 = {TILE_N}u;");
    let _ = writeln!(s, "const TILE_K: u32 = {TILE_K}u;");
    let _ = writeln!(
        s,
        "const LOADS_PER_INVOCATION: u32 = {}u;",
        TILE_M * TILE_K / GEMM_INVOCATIONS
    );
    let _ = writeln!(s, "const COOP_TILE: u32 = {COOP_TILE}u;");
    let _ = writeln!(s, "const COOP_K: u32 = {COOP_K}u;");
    let _ = writeln!(s, "const COOP_STAGE: u32 = {}u;", COOP_TILE * COOP_K);
    let _ = writeln!(s, "const COOP_OUTPUTS: u32 = {}u;", COOP_TILE * COOP_TILE);
    let _ = writeln!(s, "const SOFTPLUS_BETA: f32 = {SOFTPLUS_BETA:?};");
    let _ = writeln!(s, "const SOFTPLUS_THRESHOLD: f32 = {SOFTPLUS_THRESHOLD:?};");
    let _ = writeln!(
        s,
        "const LOG1P_IS_IDENTITY_BELOW: f32 = {LOG1P_IS_IDENTITY_BELOW:?};"
    );
    let _ = writeln!(s, "const ACT_NONE: u32 = {ACT_NONE}u;");
    let _ = writeln!(s, "const ACT_SOFTPLUS: u32 = {ACT_SOFTPLUS}u;");
    let _ = writeln!(s, "const HEAD_RAW: u32 = {HEAD_RAW}u;");
    let _ = writeln!(s, "const HEAD_SIGMOID: u32 = {HEAD_SIGMOID}u;");
    let _ = writeln!(s, "const HEAD_SOFTMAX: u32 = {HEAD_SOFTMAX}u;");
    let _ = writeln!(s, "const MAX_OUT: u32 = {MAX_OUT}u;");
    s
}

/// Every net shader variant (name, source), for the naga tests: the head and each GEMM kernel.
pub fn shader_sources() -> Vec<(String, String)> {
    let mut v = vec![(
        "nets_head.wgsl".to_string(),
        format!("{}\n{HEAD_WGSL}", shader_header()),
    )];
    for k in [GemmKernel::Tiled, GemmKernel::F16, GemmKernel::Coop] {
        v.push((
            format!("nets_gemm ({})", k.name()),
            k.source(CoopTarget::VALIDATION),
        ));
    }
    let metal = CoopTarget {
        layouts_swapped: true,
        ..CoopTarget::VALIDATION
    };
    v.push((
        "nets_gemm (coop, Metal's layouts)".into(),
        GemmKernel::Coop.source(metal),
    ));
    v
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GemmParams {
    rows: u32,
    n: u32,
    k: u32,
    act: u32,
    x_offset: u32,
    x_stride: u32,
    w_offset: u32,
    b_offset: u32,
    y_offset: u32,
    y_stride: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct HeadParams {
    rows: u32,
    code: u32,
    out: u32,
    mode: u32,
    row_base: u32,
    mix_offset: u32,
    x_mean_offset: u32,
    _pad: u32,
}

/// Where one network's results live on the GPU.
pub struct NetBuffers {
    /// After the head: `[V, out]` (displacement, albedo or skinning weights).
    pub out: wgpu::Buffer,
    /// The last layer's code `[V, code]`.
    pub code: wgpu::Buffer,
    pub out_dim: usize,
    pub code_dim: usize,
}

/// One network's GPU state: parameters, per-vertex data, activations and the dispatches.
struct NetGpu {
    host: HostNet,
    params: wgpu::Buffer,
    /// Offset (floats) of lin0's bias in `params`, rewritten every frame.
    first_bias_offset: usize,
    buffers: NetBuffers,
    /// One entry per dispatch, in order: (is_head, bind group, workgroups x, y).
    dispatches: Vec<(bool, wgpu::BindGroup, u32, u32)>,
    /// Keeps the per-dispatch uniform buffers and activation buffers alive.
    _keep: Vec<wgpu::Buffer>,
}

/// The compiled net pipelines and the three networks' GPU state.
pub struct GpuNets {
    /// Tells these networks' buffers from others' (renderers cache bind groups on them).
    id: u64,
    gemm: wgpu::ComputePipeline,
    head: wgpu::ComputePipeline,
    nets: [NetGpu; 3],
    num_vertices: usize,
    kernel: GemmKernel,
}

fn storage(device: &wgpu::Device, label: &str, data: &[f32]) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(data),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
    })
}

fn empty_storage(device: &wgpu::Device, label: &str, floats: usize) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (floats.max(1) * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

/// A bind group with `buffers[i]` whole at binding `i`.
fn bind_buffers(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}

fn u32_of(v: usize, what: &str) -> Result<u32, GpuError> {
    u32::try_from(v).map_err(|_| GpuError::Limits(format!("{what} ({v}) exceeds 32-bit indexing")))
}

impl GpuNets {
    /// Uploads the avatar's three networks and builds the pipelines with the best kernel this
    /// device has (`support`, [`GemmSupport::of`]): [`GemmKernel::Coop`] when it has 8×8 f32
    /// cooperative matrices and they agree with the tiled kernel on these networks, else
    /// [`GemmKernel::Tiled`]. (The opt-in [`GemmKernel::F16`] is never picked here.)
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        nets: &EmbeddingNets,
        support: &GemmSupport,
    ) -> Result<Self, GpuError> {
        if support.unavailable(GemmKernel::Coop).is_none() {
            match Self::with_kernel(device, queue, nets, GemmKernel::Coop, support) {
                Ok(n) => return Ok(n),
                Err(e) => eprintln!("warning: the networks use the tiled GEMM: {e}"),
            }
        }
        Self::with_kernel(device, queue, nets, GemmKernel::Tiled, support)
    }

    /// [`Self::new`] with the GEMM kernel `kernel`: refused when the device lacks what it
    /// needs or its shader compiler rejects the kernel, and, for [`GemmKernel::Coop`], when
    /// its results on these networks differ from the tiled kernel's (checked once, on the
    /// GPU, with a tiled copy of the networks made for the purpose).
    pub fn with_kernel(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        nets: &EmbeddingNets,
        kernel: GemmKernel,
        support: &GemmSupport,
    ) -> Result<Self, GpuError> {
        if let Some(why) = support.unavailable(kernel) {
            return Err(GpuError::Limits(format!(
                "the `{}` GEMM kernel cannot run: {why}",
                kernel.name()
            )));
        }
        let coop = support.coop.clone().unwrap_or(CoopTarget::VALIDATION);
        if kernel == GemmKernel::Tiled {
            return Self::build(device, nets, kernel, coop);
        }
        // A driver's compiler may reject what naga accepts: an error, not a panic.
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
        let built = Self::build(device, nets, kernel, coop);
        let errors = [
            pollster::block_on(internal.pop()),
            pollster::block_on(validation.pop()),
        ];
        if let Some(e) = errors.into_iter().flatten().next() {
            return Err(GpuError::Device(format!(
                "the `{}` GEMM kernel does not build: {e}",
                kernel.name()
            )));
        }
        let built = built?;
        if kernel != GemmKernel::Coop {
            return Ok(built);
        }
        let reference = Self::build(device, nets, GemmKernel::Tiled, coop)?;
        let difference = built.difference_from(&reference, device, queue)?;
        if difference.is_finite() && difference <= COOP_AGREEMENT {
            Ok(built)
        } else {
            Err(GpuError::Device(format!(
                "the cooperative-matrix GEMM differs from the tiled one by {difference:.2e} (relative) on this GPU"
            )))
        }
    }

    /// Largest difference between these networks' outputs and `other`'s at a fixed pose,
    /// relative to the largest output: how [`GemmKernel::Coop`] is checked, and how the tests
    /// measure [`GemmKernel::F16`].
    pub fn difference_from(
        &self,
        other: &GpuNets,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
    ) -> Result<f32, GpuError> {
        let pose: [f32; POSE_DIM] = std::array::from_fn(|i| ((i * 7 % 13) as f32 - 6.0) * 0.05);
        self.run_on(device, queue, &pose, &[0, 1, 2])?;
        other.run_on(device, queue, &pose, &[0, 1, 2])?;
        let mut worst = 0.0f32;
        for (a, b) in self.buffers().into_iter().zip(other.buffers()) {
            for (x, y) in [(&a.code, &b.code), (&a.out, &b.out)] {
                let x = read_buffer_f32(device, queue, x)?;
                let y = read_buffer_f32(device, queue, y)?;
                if x.len() != y.len() {
                    return Ok(f32::INFINITY);
                }
                let scale = y.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                let diff = x.iter().zip(&y).fold(0.0f32, |m, (p, q)| {
                    let d = (p - q).abs() / scale;
                    if d.is_nan() { f32::INFINITY } else { m.max(d) }
                });
                worst = worst.max(diff);
            }
        }
        Ok(worst)
    }

    /// Uploads the networks and builds the pipelines of `kernel`.
    fn build(
        device: &wgpu::Device,
        nets: &EmbeddingNets,
        kernel: GemmKernel,
        coop: CoopTarget,
    ) -> Result<Self, GpuError> {
        let host = |n: &crate::nn::ConditionNet| {
            n.to_host()
                .map_err(|e| GpuError::Device(format!("reading the networks: {e}")))
        };
        let hosts = [host(&nets.delta)?, host(&nets.color)?, host(&nets.lbs)?];
        let module = |label: &str, src: &str| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            })
        };
        let gemm_mod = module("xhand nets gemm", &kernel.source(coop));
        let head_mod = module(
            "xhand nets head",
            &format!("{}\n{HEAD_WGSL}", shader_header()),
        );
        let pipeline = |label: &str, m: &wgpu::ShaderModule, entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: None,
                module: m,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let gemm = pipeline("xhand nets gemm", &gemm_mod, "gemm");
        let head = pipeline("xhand nets head", &head_mod, "head");
        let limits = device.limits();
        let num_vertices = hosts[0].num_vertices;
        let modes = [HEAD_RAW, HEAD_SIGMOID, HEAD_SOFTMAX];
        let mut built = Vec::new();
        for (host, mode) in hosts.into_iter().zip(modes) {
            built.push(Self::build_net(
                device, &limits, &gemm, &head, host, mode, kernel,
            )?);
        }
        let nets: [NetGpu; 3] = built
            .try_into()
            .map_err(|_| GpuError::Device("three networks expected".into()))?;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Self {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            gemm,
            head,
            nets,
            num_vertices,
            kernel,
        })
    }

    /// The GEMM kernel these networks run with.
    pub fn kernel(&self) -> GemmKernel {
        self.kernel
    }

    fn build_net(
        device: &wgpu::Device,
        limits: &wgpu::Limits,
        gemm: &wgpu::ComputePipeline,
        head: &wgpu::ComputePipeline,
        host: HostNet,
        mode: u32,
        kernel: GemmKernel,
    ) -> Result<NetGpu, GpuError> {
        let v = host.num_vertices;
        if host.out_dim > MAX_OUT {
            return Err(GpuError::Limits(format!(
                "a network outputs {} values per vertex; the GPU head handles at most {MAX_OUT}",
                host.out_dim
            )));
        }
        // Parameters: every layer's weight and bias, then the mix.
        let mut params = Vec::new();
        let mut offsets = Vec::new();
        for l in &host.layers {
            let w = params.len();
            params.extend_from_slice(&l.weight);
            let b = params.len();
            params.extend_from_slice(&l.bias);
            offsets.push((w, b));
        }
        let mix_offset = params.len();
        params.extend_from_slice(&host.mix);
        let first_bias_offset = offsets[0].1;
        // Per-vertex data: latent codes, then x_mean.
        let mut vdata = host.latent_code.clone();
        let x_mean_offset = vdata.len();
        vdata.extend_from_slice(&host.x_mean);

        let widest = host.layers.iter().map(|l| l.out_dim).max().unwrap_or(1);
        let max_binding = limits.max_storage_buffer_binding_size as usize;
        let block_bytes = BLOCK_BYTES.min(max_binding);
        // Whole 64-row tiles, and no more row tiles of the kernel than a dispatch allows.
        let (tile_m, tile_n) = kernel.tile();
        let most_rows = limits.max_compute_workgroups_per_dimension as usize * tile_m;
        // (At least one tile, also for an empty avatar.)
        let block_rows = ((block_bytes / (4 * widest)).min(most_rows) / TILE_M * TILE_M)
            .min(v.div_ceil(TILE_M) * TILE_M)
            .max(TILE_M);
        let code_dim = host.code_dim();
        for (what, floats) in [
            ("parameters", params.len()),
            ("per-vertex data", vdata.len()),
            ("activations", block_rows * widest),
            ("outputs", v * host.out_dim.max(code_dim)),
        ] {
            if floats * 4 > max_binding {
                return Err(GpuError::Limits(format!(
                    "the networks' {what} need {} MB in one buffer; this GPU allows {} MB",
                    (floats * 4) >> 20,
                    max_binding >> 20
                )));
            }
        }
        let params_buf = storage(device, "xhand nets params", &params);
        let vdata_buf = storage(device, "xhand nets per-vertex", &vdata);
        let act = [
            empty_storage(device, "xhand nets act a", block_rows * widest),
            empty_storage(device, "xhand nets act b", block_rows * widest),
        ];
        let buffers = NetBuffers {
            out: empty_storage(device, "xhand nets out", v * host.out_dim),
            code: empty_storage(device, "xhand nets code", v * code_dim),
            out_dim: host.out_dim,
            code_dim,
        };
        let mut keep = Vec::new();
        let mut dispatches = Vec::new();
        let uniform = |bytes: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("xhand nets dispatch"),
                contents: bytes,
                usage: wgpu::BufferUsages::UNIFORM,
            })
        };
        let gemm_layout = gemm.get_bind_group_layout(0);
        let head_layout = head.get_bind_group_layout(0);
        let last = host.layers.len() - 1;
        for start in (0..v).step_by(block_rows) {
            let rows = block_rows.min(v - start);
            for (i, l) in host.layers.iter().enumerate() {
                let (x_buf, x_offset, x_stride) = if i == 0 {
                    (&vdata_buf, start * host.latent_dim, host.latent_dim)
                } else {
                    (&act[(i - 1) % 2], 0, l.in_dim)
                };
                let (y_buf, y_offset, y_stride) = if i == last {
                    (&buffers.code, start * l.out_dim, l.out_dim)
                } else {
                    (&act[i % 2], 0, l.out_dim)
                };
                let p = GemmParams {
                    rows: u32_of(rows, "rows")?,
                    n: u32_of(l.out_dim, "width")?,
                    k: u32_of(l.in_dim, "width")?,
                    act: if i == last { ACT_NONE } else { ACT_SOFTPLUS },
                    x_offset: u32_of(x_offset, "offset")?,
                    x_stride: u32_of(x_stride, "stride")?,
                    w_offset: u32_of(offsets[i].0, "offset")?,
                    b_offset: u32_of(offsets[i].1, "offset")?,
                    y_offset: u32_of(y_offset, "offset")?,
                    y_stride: u32_of(y_stride, "stride")?,
                    _pad: [0; 2],
                };
                let u = uniform(bytemuck::bytes_of(&p));
                let bg = bind_buffers(
                    device,
                    "xhand nets gemm",
                    &gemm_layout,
                    &[&u, x_buf, &params_buf, y_buf],
                );
                dispatches.push((
                    false,
                    bg,
                    u32_of(l.out_dim.div_ceil(tile_n), "tiles")?,
                    u32_of(rows.div_ceil(tile_m), "tiles")?,
                ));
                keep.push(u);
            }
            let hp = HeadParams {
                rows: u32_of(rows, "rows")?,
                code: u32_of(code_dim, "width")?,
                out: u32_of(host.out_dim, "width")?,
                mode,
                row_base: u32_of(start, "offset")?,
                mix_offset: u32_of(mix_offset, "offset")?,
                x_mean_offset: u32_of(x_mean_offset, "offset")?,
                _pad: 0,
            };
            let u = uniform(bytemuck::bytes_of(&hp));
            let bg = bind_buffers(
                device,
                "xhand nets head",
                &head_layout,
                &[&u, &buffers.code, &params_buf, &buffers.out, &vdata_buf],
            );
            dispatches.push((
                true,
                bg,
                u32_of(rows.div_ceil(HEAD_WORKGROUP), "groups")?,
                1,
            ));
            keep.push(u);
        }
        keep.extend(act);
        keep.push(vdata_buf);
        Ok(NetGpu {
            host,
            params: params_buf,
            first_bias_offset,
            buffers,
            dispatches,
            _keep: keep,
        })
    }

    /// Tells these networks from others (each [`GpuNets::new`] makes a new one).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Number of vertices.
    pub fn num_vertices(&self) -> usize {
        self.num_vertices
    }

    /// The result buffers of delta, colour and skinning nets (in that order).
    pub fn buffers(&self) -> [&NetBuffers; 3] {
        [
            &self.nets[0].buffers,
            &self.nets[1].buffers,
            &self.nets[2].buffers,
        ]
    }

    /// Writes this pose's lin0 biases and records the networks' dispatches into `encoder`.
    pub fn encode(
        &self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        pose: &[f32; POSE_DIM],
    ) {
        self.encode_nets(queue, encoder, pose, &[0, 1, 2], None);
    }

    /// [`Self::encode`] with GPU timestamps around the networks' pass.
    pub fn encode_timed(
        &self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        pose: &[f32; POSE_DIM],
        timestamps: Option<wgpu::ComputePassTimestampWrites<'_>>,
    ) {
        self.encode_nets(queue, encoder, pose, &[0, 1, 2], timestamps);
    }

    /// [`Self::encode`] for the networks `which` (0 delta, 1 colour, 2 skinning) only.
    fn encode_nets(
        &self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        pose: &[f32; POSE_DIM],
        which: &[usize],
        timestamps: Option<wgpu::ComputePassTimestampWrites<'_>>,
    ) {
        let condition: Vec<f32> = pose.iter().map(|p| p / std::f32::consts::PI).collect();
        let nets = || which.iter().filter_map(|&k| self.nets.get(k));
        for net in nets() {
            let bias = net.host.first_bias_for(&condition);
            queue.write_buffer(
                &net.params,
                (net.first_bias_offset * 4) as u64,
                bytemuck::cast_slice(&bias),
            );
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("xhand embedding nets"),
            timestamp_writes: timestamps,
        });
        for net in nets() {
            for (is_head, bg, x, y) in &net.dispatches {
                pass.set_pipeline(if *is_head { &self.head } else { &self.gemm });
                pass.set_bind_group(0, bg, &[]);
                pass.dispatch_workgroups(*x, *y, 1);
            }
        }
    }

    /// Runs the networks for one pose and waits for them (synchronised).
    pub fn run(&self, ctx: &GpuContext, pose: &[f32; POSE_DIM]) -> Result<(), GpuError> {
        self.run_nets(ctx, pose, &[0, 1, 2])
    }

    /// Runs the networks `which` (0 delta, 1 colour, 2 skinning) for one pose and waits for
    /// them: what `xhand bench` times per network.
    pub fn run_nets(
        &self,
        ctx: &GpuContext,
        pose: &[f32; POSE_DIM],
        which: &[usize],
    ) -> Result<(), GpuError> {
        self.run_on(&ctx.device, &ctx.queue, pose, which)
    }

    /// [`Self::run_nets`] on any device and queue of these networks (the viewer's render
    /// device, which has no [`GpuContext`]).
    pub fn run_on(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        pose: &[f32; POSE_DIM],
        which: &[usize],
    ) -> Result<(), GpuError> {
        let mut enc = device.create_command_encoder(&Default::default());
        self.encode_nets(queue, &mut enc, pose, which, None);
        queue.submit([enc.finish()]);
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Device(e.to_string()))?;
        Ok(())
    }

    /// Runs the networks for one pose and reads the results back.
    pub fn eval(&self, ctx: &GpuContext, pose: &[f32; POSE_DIM]) -> Result<Embeddings, GpuError> {
        self.run(ctx, pose)?;
        let read = |b: &wgpu::Buffer, n: usize| -> Result<Vec<f32>, GpuError> {
            let mut v = read_buffer_f32(&ctx.device, &ctx.queue, b)?;
            v.truncate(n);
            Ok(v)
        };
        let v = self.num_vertices;
        let [d, c, l] = self.buffers();
        Ok(Embeddings {
            num_vertices: v,
            delta: read(&d.out, v * d.out_dim)?,
            code_delta: read(&d.code, v * d.code_dim)?,
            albedo: read(&c.out, v * c.out_dim)?,
            code_albedo: read(&c.code, v * c.code_dim)?,
            lbs_weights: read(&l.out, v * l.out_dim)?,
            code_delta_dim: d.code_dim,
            code_albedo_dim: c.code_dim,
        })
    }

    /// Multiply-adds of one evaluation (all three nets).
    pub fn macs(&self) -> usize {
        (0..self.nets.len()).map(|k| self.net_macs(k)).sum()
    }

    /// Multiply-adds of network `k` (0 delta, 1 colour, 2 skinning) for one evaluation.
    pub fn net_macs(&self, k: usize) -> usize {
        self.nets.get(k).map_or(0, |n| {
            let per_v: usize = n
                .host
                .layers
                .iter()
                .map(|l| l.in_dim * l.out_dim)
                .sum::<usize>()
                + n.host.code_dim() * n.host.out_dim;
            per_v * n.host.num_vertices
        })
    }
}
