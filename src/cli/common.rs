//! Arguments shared by several subcommands: avatar, pose and camera.

use std::path::PathBuf;

use anyhow::{Context, bail};
use candle_core::Device;
use clap::Args;
use nalgebra::{Rotation3, Unit, Vector3};

use crate::avatar::Avatar;
use crate::camera::{Camera, DEFAULT_HEIGHT, DEFAULT_WIDTH, InterHandCamera, ViewDirection};
use crate::hand::Handedness;
use crate::nn::Precision;
use crate::pose::presets::PresetPose;
use crate::pose::{
    HandChoice, LoadedPoses, PoseFormat, PoseFrame, PoseLoadOptions, PoseSequence, SceneSequence,
    load_poses,
};

/// Which avatar to use.
#[derive(Debug, Args, Clone)]
pub struct AvatarArgs {
    /// Avatar file (.safetensors), or an XHand checkpoint (model.pth) with --mano. Defaults
    /// to the embedded default avatar.
    #[arg(long, value_name = "AVATAR")]
    pub avatar: Option<PathBuf>,
    /// The MANO model file (MANO_RIGHT.pkl …) for an --avatar that is an XHand checkpoint.
    #[arg(long, value_name = "MANO.pkl", requires = "avatar")]
    pub mano: Option<PathBuf>,
}

impl AvatarArgs {
    /// Loads the chosen avatar on `device`.
    pub fn load(&self, device: &Device) -> anyhow::Result<Avatar> {
        load_avatar(self.avatar.as_ref(), self.mano.as_deref(), device)
    }
}

/// The avatar for left hands, when a pose file's left hands have one of their own.
#[derive(Debug, Args, Clone)]
pub struct LeftAvatarArgs {
    /// Avatar for left hands (.safetensors, or a checkpoint with --left-mano); without it the
    /// main avatar shows them, mirrored when it is a right hand's.
    #[arg(long, value_name = "AVATAR")]
    pub left_avatar: Option<PathBuf>,
    /// The MANO model file for a --left-avatar that is an XHand checkpoint.
    #[arg(long, value_name = "MANO.pkl", requires = "left_avatar")]
    pub left_mano: Option<PathBuf>,
}

/// Which engine runs the embedding networks.
#[derive(Debug, Args, Clone)]
pub struct NetsArgs {
    /// Engine for the embedding networks: candle on the CPU, CUDA or Metal, or the wgpu
    /// compute shaders on any GPU adapter. `auto`: CUDA/Metal when built and present, else wgpu
    /// on a hardware GPU, else the CPU.
    #[arg(long, value_enum, default_value_t = crate::engine::NetsChoice::Auto)]
    pub nets: crate::engine::NetsChoice,
    /// Arithmetic of the networks and the neural renderer where they run on the CPU: f32, or
    /// bf16 (opt-in, CPUs with AVX-512 BF16: faster, ~1e-2 relative error; docs/performance.md).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// candle on CUDA only: TF32 tensor-core matrix products (faster on Ampere and later;
    /// ~8e-6 m more displacement error, docs/performance.md).
    #[arg(long)]
    pub tf32: bool,
    /// wgpu networks only: how their layers multiply. `auto`: 8x8 f32 cooperative matrices
    /// where the GPU lists them (checked against `tiled` first), else `tiled` (f32, any GPU);
    /// `f16`: half-precision operands with f32 products and sums (GPUs with SHADER_F16;
    /// docs/performance.md has its error). A kernel named here makes any failure to set up
    /// the wgpu networks an error rather than a fall-back to the CPU.
    #[arg(long, value_enum, default_value_t = crate::engine::GemmChoice::Auto)]
    pub gemm: crate::engine::GemmChoice,
}

impl NetsArgs {
    /// Loads the avatar on the candle device the choice needs and sets up the engine.
    pub fn load(
        &self,
        avatar: &AvatarArgs,
        force_cpu: bool,
    ) -> anyhow::Result<(Avatar, crate::engine::NetsEngine)> {
        self.load_avatar(avatar.avatar.as_ref(), avatar.mano.as_deref(), force_cpu)
    }

    /// [`Self::load`] for an avatar file (or checkpoint with `mano`) of its own, such as
    /// `render --left-avatar`.
    pub fn load_path(
        &self,
        path: &std::path::Path,
        mano: Option<&std::path::Path>,
        force_cpu: bool,
    ) -> anyhow::Result<(Avatar, crate::engine::NetsEngine)> {
        self.load_avatar(Some(&path.to_path_buf()), mano, force_cpu)
    }

    fn load_avatar(
        &self,
        path: Option<&PathBuf>,
        mano: Option<&std::path::Path>,
        force_cpu: bool,
    ) -> anyhow::Result<(Avatar, crate::engine::NetsEngine)> {
        let choice = if force_cpu {
            crate::engine::NetsChoice::Cpu
        } else {
            self.nets
        };
        let device = crate::engine::candle_device(choice, force_cpu)?;
        if self.tf32 {
            crate::engine::enable_tf32(&device)?;
        }
        let mut a = load_avatar(path, mano, &device)?;
        a.set_precision(self.precision)
            .map_err(anyhow::Error::msg)?;
        let engine = crate::engine::NetsEngine::new(choice, self.gemm, &a)?;
        Ok((a, engine))
    }
}

/// Loads `path` (importing a checkpoint with `mano`), or the embedded default avatar when
/// `None`. Prints import notes and unused-tensor warnings to stderr.
pub fn load_avatar(
    path: Option<&PathBuf>,
    mano: Option<&std::path::Path>,
    device: &Device,
) -> anyhow::Result<Avatar> {
    let avatar = match path {
        Some(p) => Avatar::open(p, mano, device)?,
        None => crate::default_avatar::load(device)?,
    };
    for w in avatar
        .import_warnings
        .iter()
        .cloned()
        .chain(avatar.summary.unused_warning())
    {
        eprintln!("warning: {w}");
    }
    Ok(avatar)
}

fn note_mirrored(path: &std::path::Path, hand: Handedness, avatar: &Avatar) {
    eprintln!(
        "note: {} holds a {hand} hand; the {} avatar shows it mirrored",
        path.display(),
        avatar.hand
    );
}

/// Which pose(s) to use.
#[derive(Debug, Args, Clone)]
pub struct PoseArgs {
    /// Pose file: xhand pose JSON, a HaMeR JSON dump or InterHand2.6M MANO annotations
    /// (detected; see --format). Without it, the avatar's rest pose (pose_mean) is used.
    #[arg(long, value_name = "FILE")]
    pub pose: Option<PathBuf>,
    /// Frame of the sequence (0-based, in the file's frame order; InterHand frame ids are
    /// ordered as numbers).
    #[arg(long, default_value_t = 0)]
    pub frame: usize,
    /// Read the pose file as this format instead of detecting it.
    #[arg(long, value_enum, requires = "pose")]
    pub format: Option<PoseFormat>,
    /// InterHand capture to read, when the file holds several.
    #[arg(long, value_name = "ID", requires = "pose")]
    pub capture: Option<String>,
    /// Hand(s) to read when the file holds both (HaMeR dumps, InterHand annotations);
    /// `both` (render only, its default for such files) shows them together. A hand with no
    /// avatar of its side is shown by the other side's avatar, mirrored.
    #[arg(long, value_enum, requires = "pose")]
    pub hand: Option<HandChoice>,
    /// A named hand pose instead of a pose file.
    #[arg(long, value_enum, conflicts_with = "pose")]
    pub preset: Option<PresetPose>,
}

impl PoseArgs {
    /// Load options converting poses for `avatar`.
    pub fn options(&self, avatar: &Avatar, fps: Option<f32>) -> PoseLoadOptions {
        PoseLoadOptions {
            format: self.format,
            capture: self.capture.clone(),
            hand: self.hand.and_then(HandChoice::single),
            fps,
            ..PoseLoadOptions::for_avatar(avatar)
        }
    }

    /// The whole sequence for `avatar` (a single rest frame without `--pose`), printing the
    /// loader's warnings to stderr.
    pub fn load(&self, avatar: &Avatar, fps: Option<f32>) -> anyhow::Result<LoadedPoses> {
        if self.hand == Some(HandChoice::Both) {
            bail!(
                "--hand both: `xhand render` shows both hands; this command takes one \
                 (--hand right or --hand left)"
            );
        }
        let Some(path) = &self.pose else {
            let pose = match self.preset {
                Some(p) => p.pose(avatar.template.skeleton.pose_mean()),
                None => [0.0; crate::POSE_DIM],
            };
            return Ok(LoadedPoses {
                sequence: PoseSequence::single(PoseFrame {
                    pose,
                    ..PoseFrame::default()
                }),
                format: PoseFormat::Xhand,
                warnings: Vec::new(),
                cameras: None,
                file_frames: None,
            });
        };
        let loaded = load_poses(path, &self.options(avatar, fps))?;
        for w in &loaded.warnings {
            eprintln!("warning: {}: {w}", path.display());
        }
        let mirrored = loaded
            .sequence
            .frames
            .iter()
            .filter_map(|f| f.hand)
            .find(|&h| h != avatar.hand);
        if let Some(h) = mirrored {
            note_mirrored(path, h, avatar);
        }
        Ok(loaded)
    }

    /// The hands to show, frame by frame: both hands of a file that holds both (unless
    /// `--hand` picks one), each converted for the avatar that shows it: `left` for left
    /// hands when given, else `main` (mirrored for the other side).
    pub fn load_scenes(
        &self,
        main: &Avatar,
        left: Option<&Avatar>,
        fps: Option<f32>,
    ) -> anyhow::Result<SceneSequence> {
        let avatar_for = |side| crate::hand::for_side(side, main, left);
        let summary = match (&self.pose, self.hand) {
            (Some(path), None) => Some(crate::pose::inspect_poses(path)?),
            _ => None,
        };
        let both = match (&summary, self.hand) {
            (_, Some(HandChoice::Both)) => true,
            (Some(s), None) => {
                s.hands.len() == 2 && matches!(s.format, PoseFormat::Hamer | PoseFormat::InterHand)
            }
            _ => false,
        };
        let Some(path) = self.pose.as_ref().filter(|_| both) else {
            let side = match (self.hand.and_then(HandChoice::single), &summary) {
                (Some(h), _) => h,
                (None, Some(s)) if s.hands.len() == 1 => s.hands[0],
                _ => main.hand,
            };
            return Ok(SceneSequence::single(
                side,
                self.load(avatar_for(side), fps)?,
            ));
        };
        let options = |side| PoseLoadOptions {
            hand: None,
            ..self.options(avatar_for(side), fps)
        };
        let scenes = match crate::pose::load_hands(
            path,
            &options(Handedness::Right),
            &options(Handedness::Left),
        ) {
            Ok(s) => s,
            // Not asked for both: a file with both hands whose chosen capture has one.
            Err(e) if self.hand.is_none() => match self.load(main, fps) {
                Ok(loaded) => {
                    let side =
                        (loaded.sequence.frames.iter().find_map(|f| f.hand)).unwrap_or(main.hand);
                    // Converted again when another avatar shows that side.
                    let loaded = if std::ptr::eq(avatar_for(side), main) {
                        loaded
                    } else {
                        self.load(avatar_for(side), fps)?
                    };
                    return Ok(SceneSequence::single(side, loaded));
                }
                Err(_) => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        };
        for w in scenes.warnings() {
            eprintln!("warning: {}: {w}", path.display());
        }
        for (side, _) in &scenes.hands {
            let avatar = avatar_for(*side);
            if avatar.hand != *side {
                note_mirrored(path, *side, avatar);
            }
        }
        Ok(scenes)
    }

    /// The sequence alone.
    pub fn sequence(&self, avatar: &Avatar) -> anyhow::Result<PoseSequence> {
        Ok(self.load(avatar, None)?.sequence)
    }

    /// The selected frame.
    pub fn selected(&self, avatar: &Avatar) -> anyhow::Result<PoseFrame> {
        let seq = self.sequence(avatar)?;
        Ok(seq.frame(self.frame)?.clone())
    }
}

/// Where the camera is.
#[derive(Debug, Args, Clone)]
pub struct CameraArgs {
    /// Image width in pixels.
    #[arg(long, default_value_t = DEFAULT_WIDTH)]
    pub width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = DEFAULT_HEIGHT)]
    pub height: u32,
    /// Direction to frame the hand from.
    #[arg(long, value_enum, default_value_t = ViewDirection::Front)]
    pub view: ViewDirection,
    /// Orbit the framing camera around the hand's up axis, degrees.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub yaw: f64,
    /// Orbit the framing camera up/down, degrees.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub pitch: f64,
    /// An InterHand2.6M-style camera JSON (`campos` mm, `camrot`, `focal`, `princpt`)
    /// instead of framing; intrinsics are for a --width x --height image.
    #[arg(long, value_name = "CAMERA.json")]
    pub camera: Option<PathBuf>,
}

impl CameraArgs {
    /// Builds the camera, framing the box `[lo, hi]` unless a camera file is given.
    pub fn camera(&self, lo: [f32; 3], hi: [f32; 3]) -> anyhow::Result<Camera> {
        if self.width == 0 || self.height == 0 || self.width > 16384 || self.height > 16384 {
            bail!(
                "image size {}x{} is out of range (1..16384)",
                self.width,
                self.height
            );
        }
        if let Some(path) = &self.camera {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let cam: InterHandCamera = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: not an InterHand camera (campos, camrot, focal, princpt)",
                    path.display()
                )
            })?;
            cam.check()
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            return Ok(Camera::from_interhand(&cam, self.width, self.height));
        }
        let (dir, up) = self.view.eye_and_up();
        let right = Unit::new_normalize(up.cross(&dir));
        let pitch = Rotation3::from_axis_angle(&right, -self.pitch.to_radians());
        let yaw = Rotation3::from_axis_angle(&Unit::new_normalize(up), self.yaw.to_radians());
        let dir: Vector3<f64> = yaw * pitch * dir;
        let up = yaw * pitch * up;
        Ok(Camera::framing_dir(
            lo,
            hi,
            dir,
            up,
            self.width,
            self.height,
        ))
    }
}
