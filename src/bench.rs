//! `xhand bench`: per-stage timings of one frame (each embedding net, kinematics,
//! skinning, normals, raster, renderer MLP) with min and median over repeated runs, and the
//! machine's dense matmul throughput for comparison.

use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::avatar::Avatar;
use crate::camera::{Camera, DEFAULT_HEIGHT, DEFAULT_WIDTH, ViewDirection};
use crate::cpu_render;
use crate::mesh;
use crate::pose::PoseFrame;
use crate::render_settings::{RenderSettings, ShadingMode};

/// Timing of one stage over all runs.
#[derive(Clone, Debug, Serialize)]
pub struct StageTiming {
    pub stage: String,
    pub min_ms: f64,
    pub median_ms: f64,
    /// Achieved GFLOP/s (at the median) for network stages.
    pub gflops: Option<f64>,
}

/// A full benchmark report.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub avatar: String,
    pub device: String,
    /// Arithmetic of the fused CPU path ("f32" or "bf16").
    pub precision: String,
    pub vertices: usize,
    pub faces: usize,
    pub runs: usize,
    pub width: u32,
    pub height: u32,
    pub covered_pixels: usize,
    pub stages: Vec<StageTiming>,
    /// GPU pipeline stages (`--gpu`) and the adapter they ran on.
    pub gpu_stages: Vec<StageTiming>,
    pub gpu_adapter: Option<String>,
    /// f32 matmul throughput of candle on this device (1024 x 1024 x 1024), GFLOP/s.
    pub gemm_gflops: f64,
}

/// Synchronises the device so GPU work is included in host timings.
fn sync(device: &Device) -> candle_core::Result<()> {
    device.synchronize()
}

fn time<T>(
    device: &Device,
    f: impl FnOnce() -> candle_core::Result<T>,
) -> candle_core::Result<(f64, T)> {
    sync(device)?;
    let t = Instant::now();
    let out = f()?;
    sync(device)?;
    Ok((t.elapsed().as_secs_f64() * 1e3, out))
}

/// Min and median of timings (ms) with optional GFLOP/s at the median.
pub fn summarise(stage: &str, mut ms: Vec<f64>, flops: Option<f64>) -> StageTiming {
    ms.sort_by(|a, b| a.total_cmp(b));
    let median = ms[ms.len() / 2];
    StageTiming {
        stage: stage.to_string(),
        min_ms: ms[0],
        median_ms: median,
        gflops: flops.map(|f| f / (median * 1e-3) / 1e9),
    }
}

/// Times `runs` evaluations of `frame` (after one warm-up run).
pub fn run(
    avatar: &Avatar,
    frame: &PoseFrame,
    runs: usize,
    width: u32,
    height: u32,
) -> anyhow::Result<BenchReport> {
    let runs = runs.max(1);
    let device = avatar.nets.device().clone();
    let nets = &avatar.nets;
    let v = avatar.num_vertices();
    let pose = avatar.drive(frame).avatar_pose(&frame.pose);
    let cond = nets.condition(&pose)?;
    let names = ["delta_net", "color_net", "lbs_net"];
    let mut net_ms: [Vec<f64>; 3] = Default::default();
    let mut stage_ms: Vec<Vec<f64>> = vec![Vec::new(); 6];
    let settings = RenderSettings {
        mode: if avatar.renderer.is_some() {
            ShadingMode::Neural
        } else {
            ShadingMode::Sh
        },
        ..RenderSettings::default()
    };
    let mut covered = 0;
    for run in 0..=runs {
        let mut this_net = [0.0; 3];
        // Each net on the path `eval` takes: fused on the CPU, candle on a GPU device.
        if device.is_cpu() {
            for (k, net) in nets.fused()?.each().iter().enumerate() {
                let (ms, _) = time(&device, || Ok(net.forward(&pose)))?;
                this_net[k] = ms;
            }
        } else {
            for (k, net) in [&nets.delta, &nets.color, &nets.lbs].iter().enumerate() {
                let (ms, _) = time(&device, || net.forward(&cond))?;
                this_net[k] = ms;
            }
        }
        let (t_total0, posed) = time(&device, || avatar.evaluate(frame, 0))?;
        let emb = &posed.embeddings;
        let (t_kin, transforms) = time(&device, || Ok(avatar.template.skeleton.transforms(&pose)))?;
        let (t_skin, mut verts) = time(&device, || {
            Ok(mesh::skin(
                &avatar.template.verts,
                &emb.delta,
                &emb.lbs_weights,
                &transforms,
            ))
        })?;
        mesh::place(
            &mut verts,
            posed.geometry.drive.x_sign(),
            frame.scale,
            frame.trans,
        );
        let (t_norm, _) = time(&device, || {
            Ok(mesh::vertex_normals(&verts, &avatar.template.faces))
        })?;
        let (lo, hi) = mesh::bounding_box(&posed.geometry.vertices);
        let camera = Camera::framing(lo, hi, ViewDirection::Front, width, height);
        let (t_raster, vis) = time(&device, || {
            Ok(mesh::raster::rasterize(
                &verts,
                &avatar.template.faces,
                &camera,
            ))
        })?;
        covered = vis.coverage();
        let (t_render, _) = time(&device, || {
            cpu_render::render(avatar, &posed, &camera, &settings)
                .map_err(|e| candle_core::Error::Msg(e.to_string()))
        })?;
        if run == 0 {
            continue; // warm-up
        }
        for k in 0..3 {
            net_ms[k].push(this_net[k]);
        }
        // Shading = full render minus its raster.
        let shade = (t_render - t_raster).max(0.0);
        for (s, t) in
            stage_ms
                .iter_mut()
                .zip([t_kin, t_skin, t_norm, t_raster, shade, t_total0 + t_render])
        {
            s.push(t);
        }
    }
    let mut stages = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let net = [&nets.delta, &nets.color, &nets.lbs][k];
        let flops = 2.0 * v as f64 * net.shape().macs_per_vertex() as f64;
        stages.push(summarise(name, net_ms[k].clone(), Some(flops)));
    }
    let renderer_flops = avatar
        .renderer
        .as_ref()
        .map(|r| 2.0 * covered as f64 * r.macs_per_pixel() as f64);
    let labels = [
        "kinematics",
        "skinning",
        "normals",
        "raster",
        "shading (renderer MLP + features)",
        "total (eval + render)",
    ];
    for (i, label) in labels.iter().enumerate() {
        let flops = if i == 4 { renderer_flops } else { None };
        stages.push(summarise(label, stage_ms[i].clone(), flops));
    }
    Ok(BenchReport {
        avatar: avatar.name.clone(),
        device: crate::device::describe(&device),
        precision: avatar.nets.precision().to_string(),
        vertices: v,
        faces: avatar.num_faces(),
        runs,
        width,
        height,
        covered_pixels: covered,
        stages,
        gpu_stages: Vec::new(),
        gpu_adapter: None,
        gemm_gflops: gemm_gflops(&device)?,
    })
}

/// candle f32 matmul throughput, best of 5 (1024³).
pub fn gemm_gflops(device: &Device) -> candle_core::Result<f64> {
    let n = 1024;
    let a = Tensor::randn(0f32, 1.0, (n, n), device)?;
    let b = Tensor::randn(0f32, 1.0, (n, n), device)?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let (ms, _) = time(device, || a.matmul(&b))?;
        best = best.min(ms);
    }
    Ok(2.0 * (n as f64).powi(3) / (best * 1e-3) / 1e9)
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "avatar {} — {} vertices, {} faces; candle on {}, {} on the CPU path",
            self.avatar, self.vertices, self.faces, self.device, self.precision
        )?;
        writeln!(
            f,
            "image {}x{}, {} hand pixels; {} runs after a warm-up",
            self.width, self.height, self.covered_pixels, self.runs
        )?;
        writeln!(
            f,
            "{:<36} {:>10} {:>10} {:>10}",
            "stage", "min ms", "median ms", "GFLOP/s"
        )?;
        for s in &self.stages {
            let g = s.gflops.map_or(String::new(), |g| format!("{g:.1}"));
            writeln!(
                f,
                "{:<36} {:>10.2} {:>10.2} {:>10}",
                s.stage, s.min_ms, s.median_ms, g
            )?;
        }
        if let Some(a) = &self.gpu_adapter {
            writeln!(
                f,
                "GPU pipeline on {a} (each stage submitted and waited for):"
            )?;
            for s in &self.gpu_stages {
                let g = s.gflops.map_or(String::new(), |g| format!("{g:.1}"));
                writeln!(
                    f,
                    "{:<46} {:>10.2} {:>10.2} {:>10}",
                    s.stage, s.min_ms, s.median_ms, g
                )?;
            }
        }
        write!(
            f,
            "candle f32 GEMM 1024^3 on this device: {:.1} GFLOP/s",
            self.gemm_gflops
        )
    }
}

/// Default image size for benchmarks.
pub const BENCH_SIZE: (u32, u32) = (DEFAULT_WIDTH, DEFAULT_HEIGHT);
