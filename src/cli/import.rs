//! `xhand import MODEL.pth --mano MANO.pkl [--out A.safetensors]`.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

/// Convert an XHand checkpoint (whole module or state_dict) and its MANO file into an avatar.
#[derive(Debug, Args)]
pub struct ImportCmd {
    /// The checkpoint XHand's training wrote (`model.pth`).
    pub checkpoint: PathBuf,
    /// The MANO model file of the avatar's hand (MANO_RIGHT.pkl / MANO_LEFT.pkl, or smplx's
    /// MANO .npz).
    #[arg(long, value_name = "MANO.pkl")]
    pub mano: PathBuf,
    /// Where to write the avatar; next to the checkpoint, as .safetensors, when omitted.
    #[arg(long, value_name = "A.safetensors")]
    pub out: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

impl ImportCmd {
    pub fn run(&self, force_cpu: bool) -> anyhow::Result<()> {
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| self.checkpoint.with_extension("safetensors"));
        if out.exists() && !self.force {
            bail!(
                "{} already exists; pass --force to replace it, or --out to write elsewhere",
                out.display()
            );
        }
        let imported = crate::torch::import(&self.checkpoint, &self.mano)?;
        let bytes = imported.writer.to_bytes()?;
        // Validate what we are about to write exactly as `xhand view` will read it.
        let device = crate::device::select_device(force_cpu);
        let avatar =
            crate::avatar::Avatar::from_bytes(&out.to_string_lossy(), bytes.clone(), &device)?;
        crate::image_io::write_atomically(&out, &bytes)?;
        println!(
            "imported {} with {} -> {}",
            self.checkpoint.display(),
            self.mano.display(),
            out.display()
        );
        print!("{}", imported.report);
        println!("{}", avatar.summary);
        Ok(())
    }
}
