//! `xhand make-test-avatar`: write a generated avatar with random networks.

use std::path::PathBuf;

use clap::Args;

use crate::avatar::write::FloatStorage;
use crate::synthetic::SyntheticSpec;

/// Write a synthetic avatar (toy hand mesh, random networks) for trying and testing the
/// tools; `--paper-size` writes one with XHand's sizes.
#[derive(Debug, Args)]
pub struct MakeTestAvatarCmd {
    /// Use the paper's sizes (49,281 vertices, 8x512 delta net, 8x256 renderer).
    #[arg(long)]
    pub paper_size: bool,
    /// Store floats as F16 (half the size).
    #[arg(long)]
    pub f16: bool,
    /// Random seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output file (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
}

impl MakeTestAvatarCmd {
    pub fn run(&self, _force_cpu: bool) -> anyhow::Result<()> {
        let mut spec = if self.paper_size {
            SyntheticSpec::paper_size()
        } else {
            SyntheticSpec::test_avatar()
        };
        if let Some(s) = self.seed {
            spec.seed = s;
        }
        if self.f16 {
            spec.storage = FloatStorage::F16;
        }
        spec.build().save(&self.out)?;
        println!("wrote {}", self.out.display());
        Ok(())
    }
}
