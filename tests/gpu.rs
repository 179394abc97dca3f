//! The wgpu pipeline against the CPU reference (run on Mesa's lavapipe in CI).
#![cfg(feature = "gpu")]

mod common;

use common::{flat3, test_avatar};
use xhand::camera::{Camera, ViewDirection};
use xhand::gpu::{GpuContext, HandRenderer, NeuralPath, read_buffer_f32, render_frame};
use xhand::image_io::{Rgba8, psnr};
use xhand::mesh::{bounding_box, place, skin, vertex_normals};
use xhand::nn::Embeddings;
use xhand::pose::PoseFrame;
use xhand::render_settings::{RenderSettings, ShadingMode};
use xhand::synthetic::SyntheticSpec;

fn gpu() -> GpuContext {
    GpuContext::headless().unwrap_or_else(|e| {
        panic!("{e}\n(the GPU tests need a Vulkan driver; scripts/test.sh installs lavapipe)")
    })
}

fn posed_pose() -> PoseFrame {
    let mut f = PoseFrame::default();
    f.pose[3 * 4 + 2] = 0.8;
    f.pose[3 + 1] = 0.2; // joint 1, y
    f.pose[3 * 13] = 0.5;
    f.pose[0] = 0.3;
    f.trans = [0.01, -0.02, 0.5];
    f.scale = 1.1;
    f
}

/// Pseudo-random embeddings (displacement up to ±5 mm, normalised weights).
fn random_embeddings(v: usize, seed: u64) -> Embeddings {
    let mut x = seed;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 40) as f32 / (1u64 << 24) as f32
    };
    let delta: Vec<f32> = (0..v * 3).map(|_| (next() - 0.5) * 0.01).collect();
    let mut lbs_weights = Vec::with_capacity(v * 16);
    for _ in 0..v {
        let w: Vec<f32> = (0..16).map(|_| next().powi(4)).collect();
        let s: f32 = w.iter().sum();
        lbs_weights.extend(w.iter().map(|a| a / s));
    }
    Embeddings {
        num_vertices: v,
        delta,
        code_delta: vec![0.0; v * 10],
        albedo: vec![0.5; v * 3],
        code_albedo: vec![0.0; v * 10],
        lbs_weights,
        code_delta_dim: 10,
        code_albedo_dim: 10,
    }
}

#[test]
fn gpu_skinning_matches_cpu_on_a_paper_size_avatar() {
    let ctx = gpu();
    let avatar = SyntheticSpec::paper_size()
        .avatar(&candle_core::Device::Cpu)
        .unwrap();
    assert_eq!(avatar.num_vertices(), 49_281);
    let renderer = HandRenderer::new(&ctx.device, &avatar).unwrap();
    let emb = random_embeddings(avatar.num_vertices(), 3);
    for (i, frame) in [
        posed_pose(),
        PoseFrame {
            hand: Some(xhand::hand::Handedness::Left),
            ..posed_pose()
        },
    ]
    .iter()
    .enumerate()
    {
        let geo = avatar.pose_geometry(&emb, frame);
        renderer
            .upload_embeddings(&ctx.queue, &avatar, &emb)
            .unwrap();
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        renderer.encode_skinning(
            &ctx.queue,
            &mut enc,
            &geo.transforms.skinning_f32(),
            geo.drive.x_sign(),
            geo.scale,
            geo.trans,
        );
        ctx.queue.submit([enc.finish()]);
        let gpu_pos = read_buffer_f32(&ctx.device, &ctx.queue, renderer.posed_buffer()).unwrap();
        let mut cpu = skin(
            &avatar.template.verts,
            &emb.delta,
            &emb.lbs_weights,
            &geo.transforms,
        );
        place(&mut cpu, geo.drive.x_sign(), frame.scale, frame.trans);
        let worst = common::assert_close(
            &format!("frame {i} GPU vs CPU skinning (m)"),
            &gpu_pos,
            &flat3(&cpu),
            1e-5,
        );
        eprintln!("frame {i}: max vertex error {worst:e} m");
        let gpu_n = read_buffer_f32(&ctx.device, &ctx.queue, renderer.normals_buffer()).unwrap();
        let cpu_n = vertex_normals(&cpu, &avatar.template.faces);
        common::assert_close("GPU vs CPU normals", &gpu_n, &flat3(&cpu_n), 1e-3);
    }
}

/// Where the GPU's shaded image says the hand is: its alpha (coverage).
fn mask_of(img: &Rgba8) -> Vec<bool> {
    img.pixels.iter().map(|p| p[3] > 127).collect()
}

#[test]
fn gpu_images_match_the_cpu_reference_in_every_mode() {
    let ctx = gpu();
    let avatar = test_avatar();
    let posed = avatar.evaluate(&posed_pose(), 0).unwrap();
    let (lo, hi) = bounding_box(&posed.geometry.vertices);
    let cam = Camera::framing(lo, hi, ViewDirection::Front, 167, 256);
    let mut renderer = HandRenderer::new(&ctx.device, &avatar).unwrap();
    for mode in ShadingMode::ALL {
        let settings = RenderSettings {
            mode,
            background: [0.0, 0.0, 0.0],
            ..Default::default()
        };
        let cpu = xhand::cpu_render::render(&avatar, &posed, &cam, &settings).unwrap();
        for path in [NeuralPath::Compute, NeuralPath::Fragment] {
            renderer.neural_path = path;
            let img = render_frame(&ctx, &mut renderer, &avatar, &posed, &cam, &settings).unwrap();
            if std::env::var_os("XHAND_SAVE_TEST_IMAGES").is_some() {
                let dir = std::env::temp_dir();
                img.save_png(&dir.join(format!("gpu-{mode:?}-{path:?}.png")))
                    .unwrap();
                cpu.image
                    .save_png(&dir.join(format!("cpu-{mode:?}.png")))
                    .unwrap();
            }
            let gpu_mask = mask_of(&img);
            let cpu_mask = &cpu.mask;
            let inter = gpu_mask
                .iter()
                .zip(cpu_mask)
                .filter(|(a, b)| **a && **b)
                .count();
            let union = gpu_mask
                .iter()
                .zip(cpu_mask)
                .filter(|(a, b)| **a || **b)
                .count();
            let iou = inter as f64 / union as f64;
            let both: Vec<bool> = gpu_mask
                .iter()
                .zip(cpu_mask)
                .map(|(a, b)| *a && *b)
                .collect();
            let p = psnr(&img, &cpu.image, Some(&both));
            eprintln!("{mode:?} {path:?}: mask IoU {iou:.4}, PSNR {p:.1} dB");
            assert!(iou >= 0.99, "{mode:?} {path:?}: mask IoU {iou}");
            assert!(p >= 40.0, "{mode:?} {path:?}: PSNR {p} dB");
        }
    }
}

/// A renderer of XHand's shape (8 layers, the input again at the skip layer) with these
/// hidden widths and random weights, so that its image varies from pixel to pixel.
fn random_renderer(input: usize, widths: [usize; 7], gain: f32) -> xhand::nn::NeuralRenderer {
    let mut layers = Vec::new();
    let mut prev = input;
    for k in 1..=8usize {
        let i = if k == xhand::nn::RENDERER_SKIP_LAYER {
            prev + input
        } else {
            prev
        };
        let o = if k == 8 { 3 } else { widths[k - 1] };
        // He's scale times `gain` (> 1): the small differences between neighbouring
        // pixels' inputs grow through the layers into a clearly varied image.
        let scale = gain * (6.0 / i as f32).sqrt();
        let w = common::random_tensor((o, i), 100 + k as u64, scale);
        let b = common::random_tensor((1, o), 200 + k as u64, 0.1 * scale)
            .flatten_all()
            .unwrap();
        layers.push(xhand::nn::Linear::new(w, b).unwrap());
        prev = o;
    }
    xhand::nn::NeuralRenderer::new(layers).unwrap()
}

/// Neural images of `avatar` by the GPU paths (the compute path's scratch capped at
/// `scratch` bytes) against the CPU reference: ≥ 40 dB, and an image that varies.
fn neural_paths_match_the_cpu(
    ctx: &GpuContext,
    name: &str,
    avatar: &xhand::avatar::Avatar,
    scratch: u64,
    paths: &[NeuralPath],
) {
    let posed = avatar.evaluate(&posed_pose(), 0).unwrap();
    let (lo, hi) = bounding_box(&posed.geometry.vertices);
    let cam = Camera::framing(lo, hi, ViewDirection::Front, 120, 160);
    let settings = RenderSettings {
        mode: ShadingMode::Neural,
        background: [0.0, 0.0, 0.0],
        ..Default::default()
    };
    let cpu = xhand::cpu_render::render(avatar, &posed, &cam, &settings).unwrap();
    let covered: Vec<[u8; 4]> = (cpu.image.pixels.iter().zip(&cpu.mask))
        .filter(|(_, m)| **m)
        .map(|(p, _)| *p)
        .collect();
    // The largest standard deviation of the three channels.
    let spread = (0..3)
        .map(|c| {
            let n = covered.len() as f64;
            let mean = covered.iter().map(|p| p[c] as f64).sum::<f64>() / n;
            (covered.iter())
                .map(|p| (p[c] as f64 - mean).powi(2))
                .sum::<f64>()
                / n
        })
        .fold(0.0, f64::max);
    assert!(
        spread.sqrt() > 5.0,
        "{name}: the reference image is nearly flat (σ {:.1} levels); the check would be weak",
        spread.sqrt()
    );
    let mut renderer = HandRenderer::new(&ctx.device, avatar).unwrap();
    renderer.set_neural_scratch_limit(scratch);
    assert!(!paths.is_empty());
    for &path in paths {
        renderer.neural_path = path;
        let img = render_frame(ctx, &mut renderer, avatar, &posed, &cam, &settings).unwrap();
        if std::env::var_os("XHAND_SAVE_TEST_IMAGES").is_some() {
            let file = |what: &str| std::env::temp_dir().join(format!("{name}-{what}.png"));
            img.save_png(&file(&format!("{path:?}"))).unwrap();
            cpu.image.save_png(&file("cpu")).unwrap();
        }
        let p = psnr(&img, &cpu.image, Some(&cpu.mask));
        let iou = {
            let g = mask_of(&img);
            let inter = g.iter().zip(&cpu.mask).filter(|(a, b)| **a && **b).count();
            let union = g.iter().zip(&cpu.mask).filter(|(a, b)| **a || **b).count();
            inter as f64 / union as f64
        };
        eprintln!(
            "{name}, {path:?}: {} covered pixels, mask IoU {iou:.4}, PSNR {p:.1} dB",
            covered.len()
        );
        assert!(iou >= 0.99, "{name}, {path:?}: mask IoU {iou}");
        if path == NeuralPath::Compute {
            // The renderer ran on the covered pixels, and on those only.
            let shaded = renderer.covered_pixels(ctx).unwrap().unwrap() as f64;
            let gpu_covered = mask_of(&img).iter().filter(|m| **m).count() as f64;
            assert_eq!(shaded, gpu_covered, "{name}: pixels shaded vs covered");
        }
        assert!(p >= 40.0, "{name}, {path:?}: PSNR {p} dB against the CPU");
    }
}

/// A renderer whose hidden layers differ in width (a user's own network): the GPU's
/// per-pixel arrays and activation rows must hold the widest, not the first.
#[test]
fn a_renderer_with_uneven_widths_renders_like_the_cpu() {
    let mut avatar = test_avatar();
    let input = avatar.renderer.as_ref().unwrap().input_dim();
    // One layer wider than the input (which sizes the arrays otherwise), past the next
    // multiple of 64.
    avatar.renderer = Some(random_renderer(
        input,
        [32, input + 70, 48, 80, 40, 24, 16],
        1.2,
    ));
    neural_paths_match_the_cpu(
        &gpu(),
        "uneven renderer",
        &avatar,
        xhand::gpu::NEURAL_SCRATCH_BYTES,
        &[NeuralPath::Compute, NeuralPath::Fragment],
    );
}

/// XHand's renderer width (256): several neuron blocks per layer. The compute path's scratch
/// is capped to one workgroup a round, so the tiles of covered pixels take 90 rounds.
#[test]
fn the_compute_renderer_shades_tiles_of_covered_pixels_like_the_cpu() {
    let mut avatar = test_avatar();
    let input = avatar.renderer.as_ref().unwrap().input_dim();
    avatar.renderer = Some(random_renderer(input, [256; 7], 1.5));
    let paths = [NeuralPath::Compute, NeuralPath::Fragment];
    neural_paths_match_the_cpu(&gpu(), "256-wide renderer", &avatar, 1, &paths);
}

/// The wgpu networks feed the renderer on the GPU (no copy through the host): the image is
/// the one drawn from the CPU's outputs uploaded, and networks of another shape are refused.
#[test]
fn gpu_networks_feed_the_renderer_without_the_host() {
    use xhand::gpu::{GpuNets, HandView, ViewInput, render_hand_views};
    let ctx = gpu();
    let mut avatar = test_avatar();
    // A renderer whose image varies, so that the codes the networks feed it show.
    let input = avatar.renderer.as_ref().unwrap().input_dim();
    avatar.renderer = Some(random_renderer(input, [64; 7], 1.5));
    let posed = avatar.evaluate(&posed_pose(), 0).unwrap();
    let (lo, hi) = bounding_box(&posed.geometry.vertices);
    let cam = Camera::framing(lo, hi, ViewDirection::Front, 120, 160);
    let nets = GpuNets::new(&ctx.device, &ctx.queue, &avatar.nets, &ctx.gemm).unwrap();
    for mode in [
        ShadingMode::Neural,
        ShadingMode::Displacement,
        ShadingMode::Weights,
    ] {
        let settings = RenderSettings {
            mode,
            background: [0.0, 0.0, 0.0],
            ..Default::default()
        };
        let mut uploaded = HandRenderer::new(&ctx.device, &avatar).unwrap();
        let want = render_frame(&ctx, &mut uploaded, &avatar, &posed, &cam, &settings).unwrap();
        let mut fed = HandRenderer::new(&ctx.device, &avatar).unwrap();
        let got = render_hand_views(
            &ctx,
            &mut [HandView {
                view: ViewInput::new(&avatar, &posed, &cam, &settings),
                renderer: &mut fed,
                avatar: &avatar,
                frame: &posed,
                nets: Some(&nets),
            }],
        )
        .unwrap();
        let both: Vec<bool> = (mask_of(&got).iter().zip(mask_of(&want)))
            .map(|(a, b)| *a && b)
            .collect();
        assert!(
            both.iter().filter(|b| **b).count() > 1000,
            "{mode:?}: the hand is drawn"
        );
        let p = psnr(&got, &want, Some(&both));
        eprintln!("{mode:?}: GPU-fed vs uploaded, PSNR {p:.1} dB");
        assert!(p >= 50.0, "{mode:?}: PSNR {p} dB");
        let pos =
            |r: &HandRenderer| read_buffer_f32(&ctx.device, &ctx.queue, r.posed_buffer()).unwrap();
        common::assert_close("posed vertices (m)", &pos(&fed), &pos(&uploaded), 1e-5);
    }
    // Another mesh (81 vertices).
    let other = SyntheticSpec {
        mesh: xhand::synthetic::SyntheticMesh::Tube {
            rings: 10,
            around: 8,
        },
        ..SyntheticSpec::test_avatar()
    }
    .avatar(&candle_core::Device::Cpu)
    .unwrap();
    let other_nets = GpuNets::new(&ctx.device, &ctx.queue, &other.nets, &ctx.gemm).unwrap();
    let mut r = HandRenderer::new(&ctx.device, &avatar).unwrap();
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    let err = r.encode_embeddings_from(&ctx.device, &mut enc, &other_nets);
    assert!(err.is_err(), "another avatar's networks are refused");
}

/// Two hands that overlap, one visibility buffer: the GPU image equals the CPU reference's
/// (whose every pixel comes from the nearer hand) in every mode, whichever hand is first.
#[test]
fn two_overlapping_hands_occlude_each_other_as_on_the_cpu() {
    use nalgebra::Vector3;
    use xhand::hand::{Handedness, mirror_pose};
    let ctx = gpu();
    let avatar = test_avatar();
    let right = posed_pose();
    let posed_r = avatar.evaluate(&right, 0).unwrap();
    let (lo, hi) = bounding_box(&posed_r.geometry.vertices);
    let c = Vector3::from_fn(|k, _| 0.5 * (lo[k] + hi[k]) as f64);
    // The left hand over the right one, 6 cm nearer the camera (clear of it: where two
    // surfaces meet, the CPU's and GPU's depths may pick different hands).
    let mut left = PoseFrame {
        hand: Some(Handedness::Left),
        pose: mirror_pose(&right.pose),
        ..posed_pose()
    };
    left.trans = [right.trans[0] + 0.01, right.trans[1], right.trans[2] + 0.06];
    let posed_l = avatar.evaluate(&left, 0).unwrap();
    let cam = Camera::look_at(
        c + Vector3::new(0.0, 0.0, 0.6),
        c,
        Vector3::y(),
        0.6,
        160,
        160,
    );
    // Both hands draw with one set of pipelines (their bind groups made from its layouts).
    let mut cache = xhand::gpu::PipelineCache::default();
    let mut renderers = [
        HandRenderer::with_cache(&ctx.device, &avatar, &mut cache).unwrap(),
        HandRenderer::with_cache(&ctx.device, &avatar, &mut cache).unwrap(),
    ];
    assert!(std::sync::Arc::ptr_eq(
        renderers[0].pipelines(),
        renderers[1].pipelines()
    ));
    assert_eq!(cache.len(), 1);
    // An avatar of another shape (no neural renderer) gets pipelines of its own.
    let mut other = test_avatar();
    other.renderer = None;
    let r = HandRenderer::with_cache(&ctx.device, &other, &mut cache).unwrap();
    assert!(!std::sync::Arc::ptr_eq(
        r.pipelines(),
        renderers[0].pipelines()
    ));
    assert_eq!(cache.len(), 2);
    // Built on a thread (as the viewer does, so that no frame waits for shader
    // compilation): none at first, then the pipelines every renderer of the shape draws with.
    let mut background = xhand::gpu::PipelineCache::default();
    assert!(
        background
            .ready_or_start(&ctx.device, &avatar)
            .unwrap()
            .is_none()
    );
    assert!(background.is_building());
    let start = std::time::Instant::now();
    let built = loop {
        if let Some(p) = background.ready_or_start(&ctx.device, &avatar).unwrap() {
            break p;
        }
        assert!(
            start.elapsed().as_secs() < 120,
            "the pipelines never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(!background.is_building() && background.len() == 1);
    let r = HandRenderer::with_pipelines(&ctx.device, &avatar, built.clone()).unwrap();
    assert!(std::sync::Arc::ptr_eq(r.pipelines(), &built));
    // Another shape's pipelines are refused by name.
    assert!(HandRenderer::with_pipelines(&ctx.device, &other, built).is_err());
    for mode in [ShadingMode::Normals, ShadingMode::Sh, ShadingMode::Neural] {
        let settings = RenderSettings {
            mode,
            background: [0.0, 0.0, 0.0],
            ..Default::default()
        };
        for order in [[&posed_r, &posed_l], [&posed_l, &posed_r]] {
            let cpu = xhand::cpu_render::render_hands(
                &[(&avatar, order[0]), (&avatar, order[1])],
                &cam,
                &settings,
            )
            .unwrap();
            // The neural modes by both paths: each hand shades only its own pixels.
            let paths: &[NeuralPath] = if mode == ShadingMode::Neural {
                &[NeuralPath::Fragment, NeuralPath::Compute]
            } else {
                &[NeuralPath::Fragment]
            };
            for &path in paths {
                for r in renderers.iter_mut() {
                    r.neural_path = path;
                }
                let [a, b] = &mut renderers;
                let img = xhand::gpu::render_hands(
                    &ctx,
                    &mut [(a, &avatar, order[0]), (b, &avatar, order[1])],
                    &cam,
                    &settings,
                )
                .unwrap();
                let gpu_mask = mask_of(&img);
                let (inter, union) = gpu_mask
                    .iter()
                    .zip(&cpu.mask)
                    .fold((0, 0), |(i, u), (g, c)| {
                        (i + (*g && *c) as usize, u + (*g || *c) as usize)
                    });
                let both: Vec<bool> = gpu_mask
                    .iter()
                    .zip(&cpu.mask)
                    .map(|(g, c)| *g && *c)
                    .collect();
                let p = psnr(&img, &cpu.image, Some(&both));
                eprintln!(
                    "two hands, {mode:?} ({path:?}): mask IoU {:.4}, PSNR {p:.1} dB",
                    inter as f64 / union as f64
                );
                assert!(
                    inter as f64 >= 0.99 * union as f64,
                    "{mode:?} ({path:?}): {inter} of {union}"
                );
                assert!(p >= 40.0, "{mode:?} ({path:?}): PSNR {p} dB");
            }
        }
    }
    // The overlap is real: each hand alone covers pixels the other also covers.
    let alone =
        |f| xhand::cpu_render::render(&avatar, f, &cam, &RenderSettings::default()).unwrap();
    let (ar, al) = (alone(&posed_r), alone(&posed_l));
    let overlap = ar
        .mask
        .iter()
        .zip(&al.mask)
        .filter(|(a, b)| **a && **b)
        .count();
    assert!(overlap > 200, "the hands overlap in {overlap} pixels");
}
