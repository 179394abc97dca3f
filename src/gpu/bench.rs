//! Timings of the GPU pipeline's stages, each submitted on its own and waited for (host
//! clock around a synchronised submission: includes submission overhead, never just a
//! launch).

use std::time::Instant;

use super::nets::GemmKernel;
use super::{GpuContext, GpuError, HandRenderer, NeuralPath, ViewInput};
use crate::avatar::Avatar;
use crate::bench::{StageTiming, summarise};
use crate::camera::{Camera, ViewDirection};
use crate::frame::PosedFrame;
use crate::mesh::bounding_box;
use crate::render_settings::{RenderSettings, ShadingMode};

fn timed(
    ctx: &GpuContext,
    f: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<(), GpuError>,
) -> Result<f64, GpuError> {
    let t = Instant::now();
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    f(&mut enc)?;
    ctx.queue.submit([enc.finish()]);
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::Device(e.to_string()))?;
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

/// Milliseconds of each of `runs` (at least one) calls of `f` after one warm-up, on the host
/// clock (`f` waits for its own work).
fn repeat(runs: usize, mut f: impl FnMut() -> Result<(), GpuError>) -> Result<Vec<f64>, GpuError> {
    let mut ms = Vec::new();
    for run in 0..=runs.max(1) {
        let t = Instant::now();
        f()?;
        if run > 0 {
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(ms)
}

/// Per-stage GPU timings for one posed frame at `width` x `height`.
pub fn run(
    ctx: &GpuContext,
    avatar: &Avatar,
    frame: &PosedFrame,
    runs: usize,
    width: u32,
    height: u32,
) -> Result<Vec<StageTiming>, GpuError> {
    // Setting up a hand: pipelines built afresh, then a second hand of the same shape that
    // takes them from the cache (the viewer's second hand).
    let mut setup_new = Vec::new();
    let mut setup_cached = Vec::new();
    for _ in 0..runs.max(1) {
        let mut cache = super::PipelineCache::default();
        let t = Instant::now();
        let first = HandRenderer::with_cache(&ctx.device, avatar, &mut cache)?;
        setup_new.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let second = HandRenderer::with_cache(&ctx.device, avatar, &mut cache)?;
        setup_cached.push(t.elapsed().as_secs_f64() * 1e3);
        drop((first, second));
    }
    let mut r = HandRenderer::new(&ctx.device, avatar)?;
    let (lo, hi) = bounding_box(&frame.geometry.vertices);
    let camera = Camera::framing(lo, hi, ViewDirection::Front, width, height);
    let geo = &frame.geometry;
    let joints = geo.transforms.skinning_f32();
    let mode = if avatar.renderer.is_some() {
        ShadingMode::Neural
    } else {
        ShadingMode::Sh
    };
    let view = ViewInput::new(
        avatar,
        frame,
        &camera,
        &RenderSettings {
            mode,
            ..Default::default()
        },
    );
    let sh_view = ViewInput::new(
        avatar,
        frame,
        &camera,
        &RenderSettings {
            mode: ShadingMode::Sh,
            ..Default::default()
        },
    );
    let skin = |r: &HandRenderer, enc: &mut wgpu::CommandEncoder| {
        r.encode_skinning(
            &ctx.queue,
            enc,
            &joints,
            geo.drive.x_sign(),
            geo.scale,
            geo.trans,
        )
    };
    let mut upload = Vec::new();
    let mut skinning = Vec::new();
    let mut raster = Vec::new();
    let mut shade_sh = Vec::new();
    let mut shade_neural: [Vec<f64>; 2] = Default::default();
    // Pixels the renderer ran on (the compute path counts them).
    let mut covered = 0u32;
    for run in 0..=runs.max(1) {
        let t_up = timed(ctx, |_| {
            r.upload_embeddings(&ctx.queue, avatar, &frame.embeddings)
        })?;
        let t_skin = timed(ctx, |enc| {
            skin(&r, enc);
            Ok(())
        })?;
        let t_raster = timed(ctx, |enc| {
            r.encode_raster(&ctx.device, &ctx.queue, enc, &view);
            Ok(())
        })?;
        let t_sh = timed(ctx, |enc| r.encode_shading(enc, &sh_view))?;
        let mut t_neural = [0.0; 2];
        if avatar.renderer.is_some() {
            for (k, path) in [NeuralPath::Compute, NeuralPath::Fragment]
                .into_iter()
                .enumerate()
            {
                r.neural_path = path;
                t_neural[k] = timed(ctx, |enc| r.encode_shading(enc, &view))?;
                if path == NeuralPath::Compute {
                    covered = r.covered_pixels(ctx)?.unwrap_or(0);
                }
            }
        }
        if run == 0 {
            continue;
        }
        upload.push(t_up);
        skinning.push(t_skin);
        raster.push(t_raster);
        shade_sh.push(t_sh);
        for k in 0..2 {
            shade_neural[k].push(t_neural[k]);
        }
    }
    // The networks: all three in one submission, then each alone, synchronised.
    let nets = super::GpuNets::new(&ctx.device, &ctx.queue, &avatar.nets, &ctx.gemm)?;
    let pose = frame.geometry.avatar_pose;
    let mut nets_ms: [Vec<f64>; 4] = Default::default();
    for (ms, which) in nets_ms.iter_mut().zip([&[0, 1, 2][..], &[0], &[1], &[2]]) {
        *ms = repeat(runs, || nets.run_nets(ctx, &pose, which))?;
    }
    // The whole frame as the viewer makes it with the wgpu nets: networks, their outputs
    // read back and uploaded, skinning, raster, shading; waited for at the end.
    let frame_ms = repeat(runs, || {
        let e = nets.eval(ctx, &pose)?;
        r.upload_embeddings(&ctx.queue, avatar, &e)?;
        timed(ctx, |enc| {
            skin(&r, enc);
            r.encode_raster(&ctx.device, &ctx.queue, enc, &view);
            r.encode_shading(enc, &view)
        })
        .map(drop)
    })?;
    // The same frame with the networks feeding the renderer on the GPU: one submission,
    // no copy through the host.
    let fed_ms = repeat(runs, || {
        timed(ctx, |enc| {
            nets.encode(&ctx.queue, enc, &pose);
            r.encode_embeddings_from(&ctx.device, enc, &nets)?;
            skin(&r, enc);
            r.encode_raster(&ctx.device, &ctx.queue, enc, &view);
            r.encode_shading(enc, &view)
        })
        .map(drop)
    })?;
    // The other kernels this GPU has, all three networks at once.
    let mut other_kernels = Vec::new();
    for other in [GemmKernel::Tiled, GemmKernel::Coop, GemmKernel::F16] {
        if other == nets.kernel() || ctx.gemm.unavailable(other).is_some() {
            continue;
        }
        let alt = match super::GpuNets::with_kernel(
            &ctx.device,
            &ctx.queue,
            &avatar.nets,
            other,
            &ctx.gemm,
        ) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("warning: bench: the `{}` GEMM kernel: {e}", other.name());
                continue;
            }
        };
        let ms = repeat(runs, || alt.run(ctx, &pose))?;
        other_kernels.push(summarise(
            &format!("gpu: embedding nets (wgpu {}, all three)", other.name()),
            ms,
            Some(2.0 * alt.macs() as f64),
        ));
    }
    let [all, delta, color, lbs] = nets_ms;
    let flops = |k: usize| Some(2.0 * nets.net_macs(k) as f64);
    let kernel = nets.kernel().name();
    let mut out = vec![
        summarise("gpu: hand setup (pipelines built)", setup_new, None),
        summarise("gpu: hand setup (pipelines shared)", setup_cached, None),
        summarise(
            &format!("gpu: embedding nets (wgpu {kernel}, all three)"),
            all,
            Some(2.0 * nets.macs() as f64),
        ),
        summarise(&format!("gpu: delta_net (wgpu {kernel})"), delta, flops(0)),
        summarise(&format!("gpu: color_net (wgpu {kernel})"), color, flops(1)),
        summarise(&format!("gpu: lbs_net (wgpu {kernel})"), lbs, flops(2)),
    ];
    out.append(&mut other_kernels);
    out.extend([
        summarise("gpu: upload embeddings", upload, None),
        summarise("gpu: skinning + normals", skinning, None),
        summarise("gpu: visibility raster", raster, None),
        summarise("gpu: shading (SH)", shade_sh, None),
    ]);
    if let Some(renderer) = &avatar.renderer {
        let [compute, fragment] = shade_neural;
        let flop = Some(2.0 * renderer.macs_per_pixel() as f64 * f64::from(covered));
        out.push(summarise("gpu: shading (neural, compute)", compute, flop));
        out.push(summarise("gpu: shading (neural, fragment)", fragment, flop));
    }
    out.push(summarise(
        "gpu: whole frame, outputs via the host",
        frame_ms,
        None,
    ));
    out.push(summarise(
        "gpu: whole frame, no host round trip",
        fed_ms,
        None,
    ));
    Ok(out)
}
