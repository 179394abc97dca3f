//! Criterion benchmarks of the CPU kernels behind `xhand eval` (issue 10): the vectorised
//! bias + Softplus against its portable build and against scalar `exp`/`ln_1p`, and the
//! fused, cache-blocked networks and renderer MLP of the default avatar.
//!
//! `cargo bench --no-default-features --bench kernels` (release), or `--profile dev` to
//! measure what the README's debug build runs. `docs/performance.md` quotes the results.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use xhand::nn::fused::{FusedNets, FusedRenderer, Precision};
use xhand::pose::PoseFrame;

/// One tile of delta_net's hidden layer: 128 rows of 512 values.
const ROWS: usize = 128;
const WIDTH: usize = 512;

fn tile() -> (Vec<f32>, Vec<f32>) {
    let x = (0..ROWS * WIDTH)
        .map(|i| ((i * 7919 % 4001) as f32 / 4001.0 - 0.5) * 0.2)
        .collect();
    let b = (0..WIDTH)
        .map(|i| (i as f32 / WIDTH as f32 - 0.5) * 0.01)
        .collect();
    (x, b)
}

fn softplus(c: &mut Criterion) {
    let (x, b) = tile();
    let mut g = c.benchmark_group("bias_softplus_128x512");
    g.throughput(Throughput::Elements((ROWS * WIDTH) as u64));
    g.bench_function("dispatched (AVX-512 / AVX2 / portable)", |bench| {
        let mut rows = x.clone();
        bench.iter(|| {
            rows.copy_from_slice(&x);
            xhand_simd::bias_softplus_rows(black_box(&mut rows), &b);
        })
    });
    g.bench_function("portable build", |bench| {
        let mut rows = x.clone();
        bench.iter(|| {
            rows.copy_from_slice(&x);
            xhand_simd::bias_softplus_generic(black_box(&mut rows), &b);
        })
    });
    g.bench_function("scalar exp + ln_1p (torch's formula)", |bench| {
        let mut rows = x.clone();
        bench.iter(|| {
            rows.copy_from_slice(&x);
            for row in black_box(&mut rows).chunks_exact_mut(WIDTH) {
                for (v, bias) in row.iter_mut().zip(&b) {
                    let z = 100.0 * (*v + bias);
                    *v = if z > 20.0 {
                        *v + bias
                    } else {
                        z.exp().ln_1p() / 100.0
                    };
                }
            }
        })
    });
    g.finish();
}

fn networks(c: &mut Criterion) {
    let device = candle_core::Device::Cpu;
    let avatar = xhand::default_avatar::load(&device).expect("the embedded default avatar");
    let pose = PoseFrame::default().pose;
    let mut g = c.benchmark_group("default_avatar");
    g.sample_size(20);
    // bf16 only where the CPU has AVX-512 BF16 (the scalar fallback is for tests, not speed).
    let precisions = [Precision::F32, Precision::Bf16]
        .into_iter()
        .filter(|p| p.check_supported().is_ok());
    for precision in precisions {
        let nets = FusedNets::new(&avatar.nets, precision).expect("fused nets");
        for (name, net) in ["delta_net", "color_net", "lbs_net"]
            .iter()
            .zip(nets.each())
        {
            let id = BenchmarkId::new(format!("fused net {precision}"), name);
            g.bench_function(id, |bench| bench.iter(|| net.forward(black_box(&pose))));
        }
        if let Some(r) = &avatar.renderer {
            let renderer = FusedRenderer::new(r, precision).expect("fused renderer");
            let rows = 48_000;
            let x: Vec<f32> = (0..rows * r.input_dim())
                .map(|i| ((i * 104_729 % 7919) as f32 / 7919.0 - 0.5) * 0.5)
                .collect();
            g.throughput(Throughput::Elements(rows as u64));
            let id = format!("renderer MLP {precision}, 48k pixels");
            g.bench_function(id, |bench| {
                bench.iter(|| renderer.forward(black_box(&x), rows))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, softplus, networks);
criterion_main!(benches);
