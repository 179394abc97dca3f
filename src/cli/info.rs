//! `xhand info AVATAR`.

use std::path::PathBuf;

use clap::Args;

/// Validate an avatar and print its summary.
#[derive(Debug, Args)]
pub struct InfoCmd {
    /// Avatar file (.safetensors) or XHand checkpoint (model.pth, with --mano); the embedded
    /// default avatar when omitted.
    pub avatar: Option<PathBuf>,
    /// The MANO model file for a checkpoint (nothing is written).
    #[arg(long, value_name = "MANO.pkl", requires = "avatar")]
    pub mano: Option<PathBuf>,
}

impl InfoCmd {
    pub fn run(&self, force_cpu: bool) -> anyhow::Result<()> {
        let device = crate::device::select_device(force_cpu);
        let avatar =
            super::common::load_avatar(self.avatar.as_ref(), self.mano.as_deref(), &device)?;
        let kind = if self
            .avatar
            .as_deref()
            .is_some_and(crate::torch::is_checkpoint)
        {
            "valid XHand checkpoint (imported in memory; nothing was written)"
        } else {
            "valid XHand avatar"
        };
        println!(
            "{}: {kind}",
            self.avatar
                .as_ref()
                .map_or(crate::default_avatar::LABEL.to_string(), |p| p
                    .display()
                    .to_string())
        );
        println!("{}", avatar.summary);
        println!("networks run on: {}", crate::device::describe(&device));
        Ok(())
    }
}
