//! The fused, cache-blocked CPU networks (`xhand::nn::fused`, what `eval` runs on the CPU)
//! against the plain candle path, on random networks of awkward shapes.

mod common;

use candle_core::Device;
use common::{assert_close, random_net};
use xhand::nn::EmbeddingNets;
use xhand::nn::Precision;
use xhand::nn::fused::TILE_ROWS;

fn check(name: &str, delta: &[usize], color: &[usize], lbs: &[usize], v: usize) {
    let nets = EmbeddingNets::new(
        random_net(delta, 3, v, 11),
        random_net(color, 3, v, 12),
        random_net(lbs, 16, v, 13),
        Device::Cpu,
    );
    for (p, scale) in [(0, 0.0f32), (1, 0.7), (2, 2.5)] {
        let pose: [f32; 48] = std::array::from_fn(|i| ((i * 7 + p) as f32 * 0.61).sin() * scale);
        let want = nets.eval_candle(&pose).unwrap();
        let got = nets.eval(&pose).unwrap();
        let what = |k: &str| format!("{name}, pose {p}: {k}");
        assert_eq!(got.num_vertices, v);
        assert_eq!(got.code_delta_dim, want.code_delta_dim);
        assert_eq!(got.code_albedo_dim, want.code_albedo_dim);
        assert_close(&what("delta"), &got.delta, &want.delta, 1e-5);
        assert_close(&what("code_delta"), &got.code_delta, &want.code_delta, 1e-5);
        assert_close(&what("albedo"), &got.albedo, &want.albedo, 1e-5);
        assert_close(
            &what("code_albedo"),
            &got.code_albedo,
            &want.code_albedo,
            1e-5,
        );
        assert_close(
            &what("lbs_weights"),
            &got.lbs_weights,
            &want.lbs_weights,
            1e-5,
        );
    }
}

#[test]
fn fused_matches_candle_on_uneven_widths_and_tile_edges() {
    // Vertex counts around the tile size, widths that are no multiple of any vector width.
    check(
        "uneven",
        &[37, 5, 70, 10],
        &[130, 10],
        &[65, 3],
        TILE_ROWS * 2 + 45,
    );
    check(
        "one tile exactly",
        &[64, 64, 16],
        &[32, 8],
        &[32, 16],
        TILE_ROWS,
    );
    check("one layer", &[10], &[7], &[16], 64);
}

#[test]
fn fused_handles_one_vertex_and_width_one() {
    check("one vertex", &[33, 17, 9], &[5, 4], &[3, 2], 1);
    check("width one", &[1, 1, 1], &[1], &[1, 2], 3);
}

#[test]
fn fused_matches_candle_with_wide_layers() {
    // XHand's delta-net width (512) over a few tiles.
    check(
        "512 wide",
        &[512, 512, 512, 32],
        &[128, 128, 16],
        &[128, 128, 16],
        700,
    );
}

#[test]
fn fused_renderer_matches_candle() {
    // The paper-size renderer shape (8 × 256, skip at linear4) with random weights.
    let avatar = xhand::synthetic::SyntheticSpec::paper_size()
        .avatar(&Device::Cpu)
        .unwrap();
    let renderer = avatar
        .renderer
        .as_ref()
        .expect("paper-size avatar has a renderer");
    let width = renderer.input_dim();
    for rows in [1, TILE_ROWS + 3] {
        let x = common::random_tensor((rows, width), rows as u64, 1.0);
        let want = renderer
            .forward(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let got = renderer
            .forward_rows(
                x.flatten_all().unwrap().to_vec1().unwrap(),
                rows,
                &Device::Cpu,
            )
            .unwrap();
        assert_eq!(got.len(), rows * 3);
        assert_close(&format!("renderer, {rows} rows"), &got, &want, 1e-5);
    }
    // Rows sharing their last 48 inputs (the pose, as the CPU renderer builds them): the
    // shared part folded into the biases gives the same colours.
    let rows = 2 * TILE_ROWS + 5;
    let mut x: Vec<f32> = common::random_tensor((rows, width), 7, 1.0)
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let pose: Vec<f32> = x[width - 48..width].to_vec();
    for row in x.chunks_exact_mut(width) {
        row[width - 48..].copy_from_slice(&pose);
    }
    let want = renderer
        .forward_rows(x.clone(), rows, &Device::Cpu)
        .unwrap();
    let got = renderer
        .forward_rows_shared_tail(x, rows, &Device::Cpu, 48)
        .unwrap();
    assert_close("renderer, shared pose", &got, &want, 1e-5);
}

/// The opt-in bf16 path against f32 on the same networks (XHand's widths): close, not
/// equal. Where this CPU lacks AVX-512 BF16 the choice is refused and nothing changes.
#[test]
fn bf16_nets_and_renderer_stay_near_f32_or_are_refused() {
    let mut avatar = xhand::synthetic::SyntheticSpec::paper_size()
        .avatar(&Device::Cpu)
        .unwrap();
    if Precision::Bf16.check_supported().is_err() {
        let e = avatar.set_precision(Precision::Bf16).unwrap_err();
        assert!(e.contains("AVX-512 BF16"), "{e}");
        assert_eq!(avatar.nets.precision(), Precision::F32);
        return;
    }
    let pose: [f32; 48] = std::array::from_fn(|i| (i as f32 * 0.37).sin() * 0.8);
    let renderer = avatar
        .renderer
        .clone()
        .expect("paper-size avatar has a renderer");
    let rows = TILE_ROWS + 7;
    let x: Vec<f32> = common::random_tensor((rows, renderer.input_dim()), 3, 1.0)
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let want = avatar.nets.eval(&pose).unwrap();
    let want_rgb = renderer
        .forward_rows(x.clone(), rows, &Device::Cpu)
        .unwrap();
    avatar.set_precision(Precision::Bf16).unwrap();
    assert_eq!(avatar.nets.precision(), Precision::Bf16);
    let got = avatar.nets.eval(&pose).unwrap();
    let renderer = avatar.renderer.as_ref().unwrap();
    let got_rgb = renderer.forward_rows(x, rows, &Device::Cpu).unwrap();
    let relative = |what: &str, got: &[f32], want: &[f32], tol: f32| {
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        let worst = assert_close(what, got, want, tol * scale) / scale;
        eprintln!("{what}: bf16 max |diff| / max |f32| = {worst:e}");
        assert!(worst > 1e-7, "{what}: bf16 gave f32's values");
    };
    relative("delta", &got.delta, &want.delta, 3e-2);
    relative("albedo", &got.albedo, &want.albedo, 1e-3);
    relative("lbs_weights", &got.lbs_weights, &want.lbs_weights, 1e-3);
    relative("renderer", &got_rgb, &want_rgb, 1e-3);
}
