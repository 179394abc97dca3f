//! `xhand render`: frames to PNG or MP4 with the CPU reference renderer (or the GPU
//! pipeline): one frame, the whole sequence, or a turntable around one pose.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::common::{AvatarArgs, CameraArgs, LeftAvatarArgs, NetsArgs, PoseArgs};
use crate::camera::Camera;
use crate::cpu_render;
use crate::hand::Handedness;
use crate::image_io::Rgba8;
use crate::mesh::bounding_box;
use crate::pose::SceneSequence;
use crate::render_settings::{RenderSettings, ShadingMode};

/// Render one frame, all of a sequence or a turntable to PNG images or an MP4 video.
#[derive(Debug, Args)]
pub struct RenderCmd {
    #[command(flatten)]
    pub avatar: AvatarArgs,
    #[command(flatten)]
    pub pose: PoseArgs,
    #[command(flatten)]
    pub nets: NetsArgs,
    #[command(flatten)]
    pub left: LeftAvatarArgs,
    /// Render every frame of the sequence; `--out` is then a folder of numbered PNGs, or a
    /// video when it ends in `.mp4`.
    #[arg(long, conflicts_with = "frame")]
    pub all: bool,
    /// Render N frames orbiting the pose (the --frame of the sequence) once about the image's
    /// up axis, at the framing camera's distance; `--out` as for --all.
    #[arg(long, value_name = "N", conflicts_with_all = ["all", "pose_camera"],
          value_parser = clap::value_parser!(u32).range(2..100_000))]
    pub turntable: Option<u32>,
    /// Video bit rate in kbit/s (default: about 0.25 bit a pixel a frame).
    #[arg(long, value_name = "KBPS", value_parser = clap::value_parser!(u32).range(50..100_000))]
    pub bitrate: Option<u32>,
    /// Shading mode.
    #[arg(long, value_enum, default_value_t = ShadingMode::Neural)]
    pub mode: ShadingMode,
    /// Joint whose skinning weight `--mode weights` shows (0-15).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..16))]
    pub joint: u32,
    /// SH row of the avatar to use when a frame has no `sh`.
    #[arg(long, default_value_t = 0)]
    pub sh_view: usize,
    /// Background colour as `r,g,b` in 0..1.
    #[arg(long, default_value = "0,0,0", value_parser = parse_rgb)]
    pub background: [f32; 3],
    #[command(flatten)]
    pub camera: CameraArgs,
    /// Use the camera stored with the poses (HaMeR's camera) instead of framing the hand;
    /// the image keeps that camera's aspect ratio with its longer side the larger of
    /// --width and --height.
    #[arg(long, conflicts_with = "camera")]
    pub pose_camera: bool,
    /// Render through the GPU pipeline (wgpu, no window) instead of the CPU reference.
    #[arg(long)]
    pub gpu: bool,
    /// Frame rate for sequences whose file gives none, and for turntables (default 30).
    #[arg(long)]
    pub fps: Option<f32>,
    /// Draw the avatar over the source footage: an image (PNG/JPEG), a folder of them
    /// (matched to frames by the pose file's image names, else by order) or an MP4 video
    /// (frame by frame). Needs --pose-camera; each output has the image's size, the camera
    /// scaled to it.
    #[arg(long, value_name = "IMG|DIR|VIDEO.mp4", requires = "pose_camera")]
    pub background_image: Option<PathBuf>,
    /// Light with an equirectangular environment map (`.hdr` or `.exr`) instead of the SH
    /// of the frame or the avatar (docs/relighting.md).
    #[arg(long, value_name = "FILE")]
    pub env: Option<PathBuf>,
    /// Turn the environment about its up axis, degrees.
    #[arg(long, default_value_t = 0.0, requires = "env")]
    pub env_rotation: f64,
    /// Output: a PNG; with --all or --turntable a folder of numbered PNGs, or an `.mp4`.
    #[arg(long)]
    pub out: PathBuf,
}

fn parse_rgb(s: &str) -> Result<[f32; 3], String> {
    let parts: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>().map_err(|e| format!("`{p}`: {e}")))
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [r, g, b] if parts.iter().all(|c| (0.0..=1.0).contains(c)) => Ok([*r, *g, *b]),
        _ => Err("expected three numbers in 0..1, like 0.2,0.2,0.25".into()),
    }
}

impl RenderCmd {
    pub fn run(&self, force_cpu: bool) -> anyhow::Result<()> {
        let (avatar, engine) = self.nets.load(&self.avatar, force_cpu)?;
        let left = match &self.left.left_avatar {
            Some(path) => {
                let mano = self.left.left_mano.as_deref();
                Some(self.nets.load_path(path, mano, force_cpu)?)
            }
            None => None,
        };
        let scenes = self
            .pose
            .load_scenes(&avatar, left.as_ref().map(|(a, _)| a), self.fps)?;
        let for_side = |side| {
            let left = left.as_ref().map(|(a, e)| (a, e));
            crate::hand::for_side(side, (&avatar, &engine), left)
        };
        let settings = RenderSettings {
            mode: self.mode,
            background: self.background,
            weight_joint: self.joint as usize,
            ..RenderSettings::default()
        };
        // The environment's SH in each colour order the avatars use.
        let env_sh = match &self.env {
            Some(path) => {
                let env = crate::envmap::EnvironmentMap::load(path)?
                    .downsampled(crate::envmap::PROJECTION_WIDTH);
                let rotation = self.env_rotation.to_radians();
                std::iter::once(&avatar)
                    .chain(left.as_ref().map(|(a, _)| a))
                    .map(|a| (a.color_order, env.to_sh(rotation, a.color_order)))
                    .collect()
            }
            None => Vec::new(),
        };
        // Scene frame i: every hand in it, posed by the avatar of its side and lit.
        let pose_scene = |i: usize| -> anyhow::Result<Scene> {
            scenes
                .hands_at(i)
                .into_iter()
                .map(|(side, frame)| {
                    let (a, e) = for_side(side);
                    let mut posed = e.evaluate(a, frame, self.sh_view)?;
                    if let Some((_, sh)) = env_sh.iter().find(|(o, _)| *o == a.color_order) {
                        posed.sh = *sh;
                    }
                    Ok((side, posed))
                })
                .collect()
        };
        let video = crate::video::is_video_path(&self.out);
        if video && !self.all && self.turntable.is_none() {
            anyhow::bail!(
                "{}: a video needs several frames: add --all (the whole sequence) or \
                 --turntable N",
                self.out.display()
            );
        }
        let first = if self.all { 0 } else { self.pose.frame };
        scenes.check_frame(first)?;
        let scene0 = pose_scene(first)?;
        let (lo, hi) = scene_bounds(&scene0);
        let framing = if self.pose_camera {
            None
        } else {
            Some(self.camera.camera(lo, hi)?)
        };
        if video && framing.is_some() {
            crate::video::check_size(self.camera.width, self.camera.height)
                .map_err(|e| anyhow::anyhow!("{}: {e}", self.out.display()))?;
        }
        let mut backgrounds = match &self.background_image {
            Some(p) => Some(crate::footage::SourceFootage::open(p)?),
            None => None,
        };
        let pivot = nalgebra::Vector3::from_fn(|k, _| 0.5 * (lo[k] + hi[k]) as f64);
        let turntable = self.turntable;
        // (A pose camera's odd size is cropped to even sides by the video sink.)
        let camera_for = |k: usize, i: usize| -> anyhow::Result<Camera> {
            Ok(match (&framing, turntable) {
                (Some(c), Some(n)) => c.orbited(pivot, std::f64::consts::TAU * k as f64 / n as f64),
                (Some(c), None) => c.clone(),
                (None, _) => self.pose_camera_for(&scenes, i)?,
            })
        };
        let mut renderer = FrameRenderer::new(self.gpu)?;
        // One frame: rendered, or drawn over its source image.
        let mut draw = |k: usize, i: usize, scene: &Scene| -> anyhow::Result<Rgba8> {
            let camera = camera_for(k, i)?;
            let hands: Vec<_> = scene
                .iter()
                .map(|(side, p)| (*side, for_side(*side).0, p))
                .collect();
            let Some(bg) = &mut backgrounds else {
                return renderer
                    .render(&hands, &camera, &settings)
                    .map(|(img, _)| img);
            };
            let image = bg.frame(i, scenes.label(i))?;
            let camera = camera.resized(image.width, image.height);
            let (hand, mask) = renderer.render(&hands, &camera, &settings)?;
            Ok(crate::footage::over(&hand, &mask, &image))
        };
        let count = match (self.all, self.turntable) {
            (true, _) => scenes.len(),
            (false, Some(n)) => n as usize,
            (false, None) => {
                draw(0, first, &scene0)?.save_png(&self.out)?;
                println!("wrote {}", self.out.display());
                return Ok(());
            }
        };
        let fps = if self.all {
            scenes.fps
        } else {
            self.fps.unwrap_or(crate::pose::DEFAULT_FPS)
        };
        let mut sink = crate::video::FrameSink::new(&self.out, count, fps, self.bitrate)?;
        let stop = stop_on_ctrl_c(&self.out);
        let bar = ProgressBar::new(count as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} frames, {per_sec}, eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let mut done = 0;
        for k in 0..count {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let i = if self.all { k } else { first };
            let scene = if i == first {
                scene0.clone()
            } else {
                pose_scene(i)?
            };
            sink.push(k, &draw(k, i, &scene)?)?;
            done += 1;
            bar.inc(1);
        }
        bar.finish();
        sink.finish()?;
        if done < count {
            anyhow::bail!(
                "interrupted: {} holds the first {done} of {count} frames",
                self.out.display()
            );
        }
        println!("wrote {count} frames to {} ({fps} fps)", self.out.display());
        Ok(())
    }

    /// The pose file's camera for frame `i`, resized for the requested image size.
    fn pose_camera_for(&self, scenes: &SceneSequence, i: usize) -> anyhow::Result<Camera> {
        let cam = scenes.camera(i).cloned().with_context(|| {
            format!(
                "frame {i} has no camera in the pose file; HaMeR dumps have one when they \
                     hold `pred_cam_t_full` and the image size (`img_size`), or `pred_cam_t`"
            )
        })?;
        let long = self.camera.width.max(self.camera.height).clamp(1, 16384) as f64;
        let k = long / cam.width.max(cam.height).max(1) as f64;
        let w = ((cam.width as f64 * k).round() as u32).max(1);
        let h = ((cam.height as f64 * k).round() as u32).max(1);
        Ok(cam.resized(w, h))
    }
}

/// The hands of one frame, posed: side and frame of each.
type Scene = Vec<(Handedness, crate::frame::PosedFrame)>;

/// The box around every hand of a scene.
fn scene_bounds(scene: &Scene) -> ([f32; 3], [f32; 3]) {
    let all: Vec<[f32; 3]> = scene
        .iter()
        .flat_map(|(_, p)| p.geometry.vertices.iter().copied())
        .collect();
    bounding_box(&all)
}

/// The CPU reference renderer or the GPU pipeline.
enum FrameRenderer {
    Cpu,
    /// The device and one renderer per hand side (each hand needs its own posed buffers),
    /// made when a hand of that side first appears, sharing pipelines where they can.
    #[cfg(feature = "gpu")]
    Gpu(Box<GpuFrames>),
}

/// The GPU side of [`FrameRenderer`].
#[cfg(feature = "gpu")]
struct GpuFrames {
    ctx: crate::gpu::GpuContext,
    renderers: Vec<(Handedness, crate::gpu::HandRenderer)>,
    pipelines: crate::gpu::PipelineCache,
}

impl FrameRenderer {
    fn new(gpu: bool) -> anyhow::Result<Self> {
        if !gpu {
            return Ok(Self::Cpu);
        }
        #[cfg(feature = "gpu")]
        {
            let ctx = crate::gpu::GpuContext::headless()?;
            Ok(Self::Gpu(Box::new(GpuFrames {
                ctx,
                renderers: Vec::new(),
                pipelines: Default::default(),
            })))
        }
        #[cfg(not(feature = "gpu"))]
        anyhow::bail!("this build has no GPU pipeline (built without the `gpu` feature)")
    }

    /// The frame and which pixels the hands cover.
    fn render(
        &mut self,
        hands: &[(
            Handedness,
            &crate::avatar::Avatar,
            &crate::frame::PosedFrame,
        )],
        camera: &crate::camera::Camera,
        settings: &RenderSettings,
    ) -> anyhow::Result<(Rgba8, Vec<bool>)> {
        match self {
            Self::Cpu => {
                let hands: Vec<_> = hands.iter().map(|(_, a, f)| (*a, *f)).collect();
                let out = cpu_render::render_hands(&hands, camera, settings)?;
                Ok((out.image, out.mask))
            }
            #[cfg(feature = "gpu")]
            Self::Gpu(g) => {
                let GpuFrames {
                    ctx,
                    renderers,
                    pipelines,
                } = &mut **g;
                for (side, avatar, _) in hands {
                    if settings.mode == ShadingMode::Neural && avatar.renderer.is_none() {
                        return Err(cpu_render::RenderError::NoRenderer(avatar.name.clone()).into());
                    }
                    if !renderers.iter().any(|(s, _)| s == side) {
                        let r =
                            crate::gpu::HandRenderer::with_cache(&ctx.device, avatar, pipelines)?;
                        renderers.push((*side, r));
                    }
                }
                // Each hand with the renderer of its side, in the scene's order.
                let mut by_side: Vec<_> = renderers.iter_mut().collect();
                let mut draws = Vec::with_capacity(hands.len());
                for (side, avatar, frame) in hands {
                    let at = (by_side.iter().position(|(s, _)| s == side))
                        .ok_or_else(|| anyhow::anyhow!("two {side} hands in one frame"))?;
                    let (_, r) = by_side.swap_remove(at);
                    draws.push((r, *avatar, *frame));
                }
                // The GPU's shaded image carries coverage in alpha (the background colour is
                // already in RGB): keep it as the mask and write an opaque image, as the CPU's.
                let mut img = crate::gpu::render_hands(ctx, &mut draws, camera, settings)?;
                let mask = img.pixels.iter().map(|p| p[3] > 127).collect();
                img.pixels.iter_mut().for_each(|p| p[3] = 255);
                Ok((img, mask))
            }
        }
    }
}

/// A flag Ctrl+C sets, so a long render stops after the current frame and closes its video;
/// a second Ctrl+C quits at once, removing the unfinished video.
fn stop_on_ctrl_c(out: &std::path::Path) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let part = crate::video::part_path(out).ok();
    let installed = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            if let Some(p) = &part {
                let _ = std::fs::remove_file(p);
            }
            std::process::exit(130);
        }
        eprintln!("\nstopping after this frame (Ctrl+C again quits at once)");
    });
    if let Err(e) = installed {
        eprintln!("note: Ctrl+C will quit without closing the output ({e})");
    }
    stop
}
