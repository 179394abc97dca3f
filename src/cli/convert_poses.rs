//! `xhand convert-poses`: a pose file of any supported kind written as the project's pose
//! JSON, as MANO parameters in an `.npz` (what smplx-based tools such as aitviewer read) or
//! as a HaMeR-style dump.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::common::AvatarArgs;
use crate::hand::Handedness;
use crate::pose::{PoseFormat, PoseLoadOptions, load_poses, save_poses};

/// What to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PoseTarget {
    /// The project's pose JSON (`{"fps", "frames": [{pose, trans, scale, hand}]}`).
    Xhand,
    /// MANO parameters in numpy's `.npz`: `global_orient`, `hand_pose`, `betas`, `transl`.
    Npz,
    /// A HaMeR-style dump: per-frame records with rotation matrices relative to the flat
    /// hand (the avatar's mean added back), `is_right`, `pred_cam_t_full`.
    Hamer,
}

/// Convert a pose file (xhand, HaMeR, InterHand2.6M or .npz) to xhand JSON, MANO `.npz` or a
/// HaMeR-style dump.
#[derive(Debug, Args)]
pub struct ConvertPosesCmd {
    /// The pose file to read (format detected; see --format).
    pub input: PathBuf,
    /// What to write.
    #[arg(long, value_enum)]
    pub to: PoseTarget,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
    /// Read the input as this format instead of detecting it.
    #[arg(long, value_enum)]
    pub format: Option<PoseFormat>,
    /// InterHand capture to read, when the file holds several.
    #[arg(long, value_name = "ID")]
    pub capture: Option<String>,
    /// Hand to read, when the file holds both.
    #[arg(long, value_enum)]
    pub hand: Option<Handedness>,
    /// Frame rate to write, overriding the file's.
    #[arg(long)]
    pub fps: Option<f32>,
    /// The avatar whose mean pose HaMeR's flat-hand rotations are made relative to (the
    /// embedded default avatar when not given; xhand, InterHand and .npz poses are already
    /// mean-relative and do not depend on it).
    #[command(flatten)]
    pub avatar: AvatarArgs,
}

impl ConvertPosesCmd {
    pub fn run(&self, force_cpu: bool) -> anyhow::Result<()> {
        let device = crate::device::select_device(force_cpu);
        let avatar = self.avatar.load(&device)?;
        let opts = PoseLoadOptions {
            format: self.format,
            capture: self.capture.clone(),
            hand: self.hand,
            fps: self.fps,
            ..PoseLoadOptions::for_avatar(&avatar)
        };
        let loaded = load_poses(&self.input, &opts)?;
        for w in &loaded.warnings {
            eprintln!("warning: {}: {w}", self.input.display());
        }
        if loaded.cameras.is_some() {
            eprintln!(
                "note: {}: the per-frame cameras are not part of the output format and were left out",
                self.input.display()
            );
        }
        let format = match self.to {
            PoseTarget::Xhand => PoseFormat::Xhand,
            PoseTarget::Npz => PoseFormat::Npz,
            PoseTarget::Hamer => PoseFormat::Hamer,
        };
        let seq = &loaded.sequence;
        if self.to != PoseTarget::Npz && self.to != PoseTarget::Xhand {
            if seq.frames.iter().any(|f| f.scale != 1.0) {
                eprintln!(
                    "warning: HaMeR dumps have no scale; frame scales other than 1 were left out"
                );
            }
            if seq.frames.iter().any(|f| f.sh.is_some()) {
                eprintln!("warning: HaMeR dumps have no lighting; the frames' SH was left out");
            }
        }
        if let Some(dir) = self.out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create folder {}", dir.display()))?;
        }
        let mean = avatar.template.skeleton.pose_mean();
        save_poses(&self.out, seq, format, mean, avatar.hand)?;
        println!(
            "wrote {} frame(s) of {} ({}) to {}",
            loaded.sequence.len(),
            self.input.display(),
            loaded.format.as_str(),
            self.out.display()
        );
        Ok(())
    }
}
