//! Which engine runs the embedding networks: candle on the CPU, candle on CUDA or Metal, or
//! the wgpu compute nets ([`crate::gpu::GpuNets`]) on any GPU adapter.
//!
//! `auto` picks candle CUDA/Metal when the binary was built with it and a device is present,
//! else wgpu on a hardware adapter, else the CPU. A software adapter (lavapipe, llvmpipe) is
//! never picked automatically: candle's CPU matmul is faster there.

use candle_core::Device;

use crate::avatar::Avatar;
use crate::frame::PosedFrame;
use crate::nn::Embeddings;
use crate::pose::PoseFrame;

/// The engine a user asks for (`--nets`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum NetsChoice {
    #[default]
    Auto,
    Cpu,
    Cuda,
    Metal,
    Wgpu,
}

/// How the wgpu networks multiply (`--gemm`): `auto` takes 8×8 f32 cooperative matrices
/// where the GPU has them and they agree with the tiled kernel, else the tiled f32 kernel;
/// `f16` (half-precision operands, f32 sums) is only ever chosen by name. The CLI's spelling
/// of `gpu::nets::GemmKernel`, which builds without the `gpu` feature do not have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum GemmChoice {
    #[default]
    Auto,
    Tiled,
    Coop,
    F16,
}

impl GemmChoice {
    /// The kernel asked for by name (`None`: auto).
    #[cfg(feature = "gpu")]
    fn kernel(self) -> Option<crate::gpu::nets::GemmKernel> {
        use crate::gpu::nets::GemmKernel;
        match self {
            Self::Auto => None,
            Self::Tiled => Some(GemmKernel::Tiled),
            Self::Coop => Some(GemmKernel::Coop),
            Self::F16 => Some(GemmKernel::F16),
        }
    }
}

/// A problem setting up the chosen engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "--nets {0}: this binary was built without the `{0}` feature (cargo build --features {0})"
    )]
    NotBuilt(&'static str),
    #[error("--nets {what}: the device could not be initialised: {problem}")]
    Init { what: &'static str, problem: String },
    #[error(
        "--tf32 applies to candle on CUDA (--nets cuda, or auto with a CUDA device); the networks run on {0}"
    )]
    Tf32NotCuda(String),
    #[error(
        "--gemm applies to the wgpu networks (--nets wgpu, or auto with a hardware GPU); the networks run on {0}"
    )]
    GemmNotWgpu(String),
}

/// `--tf32`: lets candle's f32 matrix products on CUDA use TF32 tensor cores (operands
/// rounded to a 10-bit mantissa, sums in f32): faster on Ampere and later, with the error
/// measured in docs/performance.md (`tests/oracle.rs` emulates it). A process-wide candle
/// setting; refused for any other device.
pub fn enable_tf32(device: &Device) -> Result<(), EngineError> {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda(_) => {
            candle_core::cuda::set_gemm_reduced_precision_f32(true);
            Ok(())
        }
        other => Err(EngineError::Tf32NotCuda(format!("{:?}", other.location()))),
    }
}

/// The candle device to load an avatar's networks on for `choice`.
pub fn candle_device(choice: NetsChoice, force_cpu: bool) -> Result<Device, EngineError> {
    match choice {
        NetsChoice::Cpu | NetsChoice::Wgpu => Ok(Device::Cpu),
        NetsChoice::Auto => Ok(crate::device::select_device(force_cpu)),
        NetsChoice::Cuda => {
            #[cfg(feature = "cuda")]
            {
                Device::new_cuda(0).map_err(|e| EngineError::Init {
                    what: "cuda",
                    problem: e.to_string(),
                })
            }
            #[cfg(not(feature = "cuda"))]
            Err(EngineError::NotBuilt("cuda"))
        }
        NetsChoice::Metal => {
            #[cfg(feature = "metal")]
            {
                Device::new_metal(0).map_err(|e| EngineError::Init {
                    what: "metal",
                    problem: e.to_string(),
                })
            }
            #[cfg(not(feature = "metal"))]
            Err(EngineError::NotBuilt("metal"))
        }
    }
}

/// The embedding networks of one avatar, ready on their engine. (One exists per avatar,
/// so the size of the wgpu variant does not matter.)
#[allow(clippy::large_enum_variant)]
pub enum NetsEngine {
    /// candle, on the device the avatar was loaded on.
    Candle(Device),
    /// The wgpu compute nets on a device of their own.
    #[cfg(feature = "gpu")]
    Wgpu {
        ctx: crate::gpu::GpuContext,
        nets: crate::gpu::GpuNets,
    },
}

impl NetsEngine {
    /// Sets up `choice` for `avatar` (loaded on [`candle_device`]`(choice)`), the wgpu
    /// networks with the GEMM kernel `gemm`.
    pub fn new(choice: NetsChoice, gemm: GemmChoice, avatar: &Avatar) -> Result<Self, EngineError> {
        let device = avatar.nets.device().clone();
        let engine = match choice {
            NetsChoice::Wgpu => {
                Self::wgpu(avatar, false, gemm)?.ok_or_else(|| EngineError::Init {
                    what: "wgpu",
                    problem: "no adapter".into(),
                })?
            }
            // A failure of the automatic choice is no error: the CPU path always works. A
            // kernel asked for by name that the GPU cannot run is.
            NetsChoice::Auto if device.is_cpu() => match Self::wgpu(avatar, true, gemm) {
                Ok(Some(e)) => e,
                Err(e) if gemm != GemmChoice::Auto => return Err(e),
                _ => Self::Candle(device),
            },
            _ => Self::Candle(device),
        };
        match engine {
            Self::Candle(_) if gemm != GemmChoice::Auto => {
                Err(EngineError::GemmNotWgpu(engine.describe()))
            }
            _ => Ok(engine),
        }
    }

    /// The wgpu nets on the first adapter (`Ok(None)`: with `hardware_only`, it is a
    /// software adapter).
    #[cfg(feature = "gpu")]
    fn wgpu(
        avatar: &Avatar,
        hardware_only: bool,
        gemm: GemmChoice,
    ) -> Result<Option<Self>, EngineError> {
        let init = |problem: String| EngineError::Init {
            what: "wgpu",
            problem,
        };
        let ctx = if hardware_only {
            match crate::gpu::GpuContext::hardware().map_err(|e| init(e.to_string()))? {
                Some(ctx) => ctx,
                None => return Ok(None),
            }
        } else {
            crate::gpu::GpuContext::headless().map_err(|e| init(e.to_string()))?
        };
        let nets = match gemm.kernel() {
            None => crate::gpu::GpuNets::new(&ctx.device, &ctx.queue, &avatar.nets, &ctx.gemm),
            Some(k) => crate::gpu::GpuNets::with_kernel(
                &ctx.device,
                &ctx.queue,
                &avatar.nets,
                k,
                &ctx.gemm,
            ),
        }
        .map_err(|e| init(e.to_string()))?;
        Ok(Some(Self::Wgpu { ctx, nets }))
    }

    #[cfg(not(feature = "gpu"))]
    fn wgpu(
        _avatar: &Avatar,
        _hardware_only: bool,
        _gemm: GemmChoice,
    ) -> Result<Option<Self>, EngineError> {
        Err(EngineError::NotBuilt("gpu"))
    }

    /// What runs the networks, e.g. `CPU (2 threads)` or `wgpu on llvmpipe (Vulkan)`.
    pub fn describe(&self) -> String {
        match self {
            Self::Candle(d) => crate::device::describe(d),
            #[cfg(feature = "gpu")]
            Self::Wgpu { ctx, nets } => {
                format!("wgpu on {}, {} GEMM", ctx.describe(), nets.kernel().name())
            }
        }
    }

    /// Runs the networks for `frame` (in the avatar's hand convention).
    pub fn embed(&self, avatar: &Avatar, frame: &PoseFrame) -> anyhow::Result<Embeddings> {
        match self {
            Self::Candle(_) => Ok(avatar.embed(frame)?),
            #[cfg(feature = "gpu")]
            Self::Wgpu { ctx, nets } => {
                let pose = avatar.drive(frame).avatar_pose(&frame.pose);
                Ok(nets.eval(ctx, &pose)?)
            }
        }
    }

    /// Full evaluation of one frame with this engine's networks.
    pub fn evaluate(
        &self,
        avatar: &Avatar,
        frame: &PoseFrame,
        sh_view: usize,
    ) -> anyhow::Result<PosedFrame> {
        let embeddings = self.embed(avatar, frame)?;
        let geometry = avatar.pose_geometry(&embeddings, frame);
        Ok(PosedFrame {
            embeddings,
            geometry,
            sh: avatar.frame_sh(frame, sh_view),
        })
    }
}
