//! `xhand view` (also `xhand` with no arguments): the desktop viewer.

use std::path::PathBuf;

use clap::Args;

/// Open the viewer window.
#[derive(Debug, Args, Default)]
pub struct ViewCmd {
    /// Avatar file (.safetensors) or XHand checkpoint (model.pth); the embedded default
    /// avatar when omitted.
    pub avatar: Option<PathBuf>,
    /// The MANO model file for a checkpoint (remembered per hand for the next time).
    #[arg(long, value_name = "MANO.pkl")]
    pub mano: Option<PathBuf>,
    /// An avatar for left hands (.safetensors or checkpoint; also File > Open left-hand
    /// avatar…); without it the main avatar shows them, mirrored.
    #[arg(long, value_name = "AVATAR")]
    pub left_avatar: Option<PathBuf>,
    /// Pose or sequence file (xhand JSON, HaMeR dump, InterHand2.6M MANO annotations); both
    /// hands of a HaMeR dump or InterHand capture are shown together.
    #[arg(long)]
    pub pose: Option<PathBuf>,
    /// Save a screenshot of the window (UI included) after --frames frames and exit.
    #[arg(long, value_name = "OUT.png")]
    pub screenshot: Option<PathBuf>,
    /// Frames to render before the screenshot.
    #[arg(long, default_value_t = 10)]
    pub frames: u32,
    /// Run a JSON list of scripted steps (see docs/viewer.md).
    #[arg(long, value_name = "STEPS.json")]
    pub script: Option<PathBuf>,
    /// Window width (logical pixels).
    #[arg(long, default_value_t = 1400)]
    pub width: u32,
    /// Window height (logical pixels).
    #[arg(long, default_value_t = 860)]
    pub height: u32,
    /// Light with an equirectangular environment map (.hdr, .exr).
    #[arg(long, value_name = "FILE")]
    pub env: Option<PathBuf>,
    /// Engine for the embedding networks (also in the Display panel): `auto` picks wgpu on a
    /// hardware GPU (or candle CUDA/Metal when built in), else the CPU.
    #[arg(long, value_enum, default_value_t = crate::engine::NetsChoice::Auto)]
    pub nets: crate::engine::NetsChoice,
    /// Arithmetic of the networks and the neural image where the CPU runs them: f32, or bf16
    /// (CPUs with AVX-512 BF16: faster, ~1e-3 errors; also in Display > Networks).
    #[arg(long, value_enum, default_value_t = crate::nn::Precision::F32)]
    pub precision: crate::nn::Precision,
}

impl ViewCmd {
    /// The command line defaults (for `xhand` with no subcommand).
    pub fn with_defaults(self) -> Self {
        Self {
            frames: 10,
            width: 1400,
            height: 860,
            ..self
        }
    }

    pub fn run(&self, force_cpu: bool) -> anyhow::Result<()> {
        #[cfg(feature = "viewer")]
        {
            crate::app::run(crate::app::ViewerOptions {
                avatar: self.avatar.clone(),
                left_avatar: self.left_avatar.clone(),
                pose: self.pose.clone(),
                screenshot: self.screenshot.clone(),
                frames: self.frames,
                script: self.script.clone(),
                size: (self.width, self.height),
                force_cpu,
                mano: self.mano.clone(),
                env: self.env.clone(),
                nets: self.nets,
                precision: self.precision,
            })
        }
        #[cfg(not(feature = "viewer"))]
        {
            let _ = force_cpu;
            anyhow::bail!(
                "this build has no viewer (built without the `viewer` feature); use `xhand render`"
            )
        }
    }
}
