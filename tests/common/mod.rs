//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use xhand::avatar::TensorFile;

/// Path of a file under `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Opens a fixture safetensors file.
pub fn tensors(rel: &str) -> TensorFile {
    TensorFile::open(&fixture(rel)).unwrap_or_else(|e| panic!("{e}"))
}

/// Reads a float tensor (any shape).
pub fn floats(file: &TensorFile, name: &str) -> (Vec<usize>, Vec<f32>) {
    let shape: Vec<Option<usize>> = file
        .shape(name)
        .unwrap_or_else(|| panic!("fixture lacks {name}"))
        .iter()
        .map(|_| None)
        .collect();
    let t = file.floats(name, &shape).unwrap_or_else(|e| panic!("{e}"));
    (t.shape, t.data)
}

/// Largest absolute difference; panics with `what` if above `tol`.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) -> f32 {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs expected {}",
        got.len(),
        want.len()
    );
    let mut worst = 0.0f32;
    let mut at = 0;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        assert!(d.is_finite(), "{what}: non-finite at {i} ({g} vs {w})");
        if d > worst {
            worst = d;
            at = i;
        }
    }
    assert!(
        worst <= tol,
        "{what}: max |diff| {worst:e} at {at} ({} vs {}) exceeds {tol:e}",
        got[at],
        want[at]
    );
    worst
}

/// The small generated avatar most tests use.
pub fn test_avatar() -> xhand::avatar::Avatar {
    xhand::synthetic::SyntheticSpec::test_avatar()
        .avatar(&candle_core::Device::Cpu)
        .expect("test avatar loads")
}

/// Flattens `[[f32; 3]]`.
pub fn flat3(v: &[[f32; 3]]) -> Vec<f32> {
    v.iter().flatten().copied().collect()
}

/// A seeded uniform tensor in [-scale, scale].
pub fn random_tensor(shape: (usize, usize), seed: u64, scale: f32) -> candle_core::Tensor {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let data: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect();
    candle_core::Tensor::from_vec(data, shape, &candle_core::Device::Cpu).unwrap()
}

/// A network of the given hidden/code widths with seeded random parameters (latent 10).
pub fn random_net(widths: &[usize], out: usize, v: usize, seed: u64) -> xhand::nn::ConditionNet {
    let latent = 10;
    let mut layers = Vec::new();
    let mut prev = 48 + latent;
    for (i, &w) in widths.iter().enumerate() {
        let s = seed * 100 + i as u64;
        layers.push((
            random_tensor((w, prev), s, 1.0 / (prev as f32).sqrt()),
            random_tensor((1, w), s + 50, 0.05).flatten_all().unwrap(),
        ));
        prev = w;
    }
    xhand::nn::ConditionNet::from_parts(
        layers,
        &random_tensor((v, latent), seed + 7, 1.0),
        &random_tensor((v, out), seed + 8, 0.1),
        &random_tensor((prev, out), seed + 9, 1.0),
    )
    .unwrap()
}
