//! `xhand bench`.

use clap::Args;

use super::common::{AvatarArgs, NetsArgs, PoseArgs};
use crate::bench::BENCH_SIZE;
use crate::synthetic::SyntheticSpec;

/// Time each stage of a frame: embedding nets, kinematics, skinning, normals, raster,
/// renderer MLP (min and median), with GFLOP/s of the networks.
#[derive(Debug, Args)]
pub struct BenchCmd {
    #[command(flatten)]
    pub avatar: AvatarArgs,
    /// Benchmark a random avatar of the paper's sizes (49,281 vertices, 8x512 / 5x128 /
    /// 5x128 nets, 8x256 renderer) instead.
    #[arg(long, conflicts_with = "avatar")]
    pub paper_size: bool,
    #[command(flatten)]
    pub pose: PoseArgs,
    /// Engine of the per-net rows: candle on the CPU (the fused path), CUDA or Metal; with
    /// `--gpu` the wgpu nets are timed as well, whatever this says.
    #[command(flatten)]
    pub nets: NetsArgs,
    /// Timed runs (after one warm-up).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Also time the GPU pipeline (skinning, raster, SH and both neural shading paths).
    #[arg(long)]
    pub gpu: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl BenchCmd {
    pub fn run(&self, force_cpu: bool) -> anyhow::Result<()> {
        let device = crate::engine::candle_device(self.nets.nets, force_cpu)?;
        let mut avatar = if self.paper_size {
            SyntheticSpec::paper_size().avatar(&device)?
        } else {
            self.avatar.load(&device)?
        };
        avatar
            .set_precision(self.nets.precision)
            .map_err(anyhow::Error::msg)?;
        let frame = self.pose.selected(&avatar)?;
        #[allow(unused_mut)]
        let mut report = crate::bench::run(&avatar, &frame, self.runs, BENCH_SIZE.0, BENCH_SIZE.1)?;
        if self.gpu {
            #[cfg(feature = "gpu")]
            {
                let ctx = crate::gpu::GpuContext::headless()?;
                let posed = avatar.evaluate(&frame, 0)?;
                report.gpu_stages = crate::gpu::bench::run(
                    &ctx,
                    &avatar,
                    &posed,
                    self.runs,
                    BENCH_SIZE.0,
                    BENCH_SIZE.1,
                )?;
                report.gpu_adapter = Some(ctx.describe());
            }
            #[cfg(not(feature = "gpu"))]
            anyhow::bail!("this build has no GPU pipeline (built without the `gpu` feature)");
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("{report}");
        }
        Ok(())
    }
}
