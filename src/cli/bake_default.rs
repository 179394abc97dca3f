//! `xhand bake-default`: build the embedded default avatar from the MIT-licensed hand.

use std::path::PathBuf;

use anyhow::Context;
use candle_core::Device;
use clap::Args;

use crate::avatar::Avatar;
use crate::avatar::write::FloatStorage;
use crate::bake::{BakeConfig, bake, rig::GENERIC_HAND_GLB};
use crate::camera::{Camera, ViewDirection};
use crate::cpu_render;
use crate::image_io;
use crate::mesh;
use crate::pose::{PoseFrame, presets::PresetPose};
use crate::render_settings::{RenderSettings, ShadingMode};

/// Bake the default avatar: rig the WebXR generic hand onto MANO's skeleton, subdivide it,
/// and train XHand's networks on a procedural appearance (about 15 minutes on 2 cores).
#[derive(Debug, Args)]
pub struct BakeDefaultCmd {
    /// Output avatar file.
    #[arg(long, default_value = "assets/avatars/default.safetensors")]
    pub out: PathBuf,
    /// Also write the measurements (mesh sizes, loss curves, held-out errors) as JSON.
    #[arg(long, value_name = "JSON")]
    pub report: Option<PathBuf>,
    /// Source hand (.glb with the WebXR hand skeleton); default: the bundled generic hand.
    #[arg(long, value_name = "GLB")]
    pub source: Option<PathBuf>,
    /// A seconds-long bake on a small mesh (for trying the pipeline).
    #[arg(long)]
    pub quick: bool,
    /// Store floats as F32 instead of F16.
    #[arg(long)]
    pub f32: bool,
    /// Random seed (the default reproduces the committed avatar).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Multiply every training step count by this (e.g. 0.2 for a rough bake in a fifth
    /// of the time).
    #[arg(long, default_value_t = 1.0)]
    pub steps_factor: f64,
}

impl BakeDefaultCmd {
    pub fn run(&self, _force_cpu: bool) -> anyhow::Result<()> {
        let mut config = if self.quick {
            BakeConfig::quick()
        } else {
            BakeConfig::default_avatar()
        };
        if let Some(s) = self.seed {
            config.seed = s;
        }
        if self.f32 {
            config.storage = FloatStorage::F32;
        }
        anyhow::ensure!(
            self.steps_factor.is_finite() && self.steps_factor > 0.0 && self.steps_factor <= 100.0,
            "--steps-factor must be a number in (0, 100], not {}",
            self.steps_factor
        );
        config.scale_steps(self.steps_factor);
        let (bytes, name) = match &self.source {
            Some(p) => (
                std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
                p.display().to_string(),
            ),
            None => (
                GENERIC_HAND_GLB.to_vec(),
                "assets/generic-hand/right.glb".into(),
            ),
        };
        let started = std::time::Instant::now();
        let baked = bake(&bytes, &name, &config, &mut |line| eprintln!("{line}"))?;
        let total = started.elapsed().as_secs_f64();
        if let Some(dir) = self.out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let out_bytes = baked.writer.to_bytes()?;
        let f32_bytes = baked.writer_f32.to_bytes()?;
        crate::image_io::write_atomically(&self.out, &out_bytes)
            .with_context(|| format!("cannot write {}", self.out.display()))?;
        let storage_psnr = storage_psnr(&out_bytes, &f32_bytes)?;
        eprintln!(
            "wrote {} ({:.2} MB; all-F32 would be {:.2} MB; neural renders of the stored file vs F32, hand pixels, worst of 3 poses: {:.1} dB) in {:.0} s",
            self.out.display(),
            out_bytes.len() as f64 / 1e6,
            f32_bytes.len() as f64 / 1e6,
            storage_psnr,
            total
        );
        if let Some(path) = &self.report {
            let json = serde_json::json!({
                "config": config,
                "report": baked.report,
                "file_bytes": out_bytes.len(),
                "f32_file_bytes": f32_bytes.len(),
                "stored_vs_f32_psnr_db": storage_psnr,
                "total_seconds": total,
            });
            std::fs::write(path, serde_json::to_string_pretty(&json)?)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

/// PSNR over the hand pixels between neural renders of two encodings of the same avatar
/// (fist, pinch and open hand from the front), to measure what F16 storage costs.
fn storage_psnr(a: &[u8], b: &[u8]) -> anyhow::Result<f64> {
    let device = Device::Cpu;
    let a = Avatar::from_bytes("<stored>", a.to_vec(), &device)?;
    let b = Avatar::from_bytes("<f32>", b.to_vec(), &device)?;
    let settings = RenderSettings {
        mode: ShadingMode::Neural,
        ..RenderSettings::default()
    };
    let mut worst = f64::INFINITY;
    for preset in [PresetPose::Fist, PresetPose::Pinch, PresetPose::Open] {
        let frame = PoseFrame {
            pose: preset.pose(a.template.skeleton.pose_mean()),
            ..PoseFrame::default()
        };
        let fa = a.evaluate(&frame, 0)?;
        let fb = b.evaluate(&frame, 0)?;
        let (lo, hi) = mesh::bounding_box(&fb.geometry.vertices);
        let cam = Camera::framing(lo, hi, ViewDirection::Front, 334, 512);
        let ra = cpu_render::render(&a, &fa, &cam, &settings)?;
        let rb = cpu_render::render(&b, &fb, &cam, &settings)?;
        worst = worst.min(image_io::psnr(&ra.image, &rb.image, Some(&rb.mask)));
    }
    Ok(worst)
}
