//! Criterion benchmarks of the CPU kernels behind `xhand eval` (issue 10): the vectorised
//! bias + Softplus against its portable build and against scalar `exp`/`ln_1p`, one layer
//! tile's product by `gemm` and by the packed-panel kernels (f32, bf16), and the fused,
//! cache-blocked networks and renderer MLP of the default avatar.
//!
//! `cargo bench --no-default-features --bench kernels` (release), or `--profile dev` to
//! measure what the README's debug build runs. `docs/performance.md` quotes the results.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use xhand::nn::fused::{FusedNets, FusedRenderer, Precision};
use xhand::pose::PoseFrame;
use xhand_simd::packed::{self, Arith, PackedWeights};

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

/// One 128 × 512 tile through a 512 × 512 layer: `gemm` as candle calls it (packing the
/// weights on every call) against the panels packed once.
fn layer_tile(c: &mut Criterion) {
    let (x, _) = tile();
    let w: Vec<f32> = (0..WIDTH * WIDTH)
        .map(|i| ((i * 104_729 % 7919) as f32 / 7919.0 - 0.5) * 0.1)
        .collect();
    let mut dst = vec![0f32; ROWS * WIDTH];
    let mut g = c.benchmark_group("layer_128x512x512");
    // "Elements" here are floating-point operations: criterion reports FLOP/s.
    g.throughput(Throughput::Elements((2 * ROWS * WIDTH * WIDTH) as u64));
    g.bench_function("gemm f32", |bench| {
        bench.iter(|| {
            // SAFETY: the three buffers hold the row-major matrices the sizes describe.
            unsafe {
                gemm::gemm(
                    ROWS,
                    WIDTH,
                    WIDTH,
                    dst.as_mut_ptr(),
                    1,
                    WIDTH as isize,
                    false,
                    x.as_ptr(),
                    1,
                    WIDTH as isize,
                    w.as_ptr(),
                    1,
                    WIDTH as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                )
            }
        })
    });
    for arith in [Arith::F32, Arith::Bf16]
        .into_iter()
        .filter(|a| a.supported())
    {
        let packed = PackedWeights::pack(&w, WIDTH, WIDTH, arith);
        let mut scratch = Vec::new();
        g.bench_function(format!("packed {arith:?}"), |bench| {
            bench.iter(|| {
                packed::matmul(
                    ROWS,
                    black_box(&x),
                    WIDTH,
                    WIDTH,
                    &packed,
                    &mut dst,
                    false,
                    &mut scratch,
                )
            })
        });
    }
    g.finish();
}

fn networks(c: &mut Criterion) {
    let device = candle_core::Device::Cpu;
    let avatar = xhand::default_avatar::load(&device).expect("the embedded default avatar");
    let pose = PoseFrame::default().pose;
    // bf16 only where the CPU has AVX-512 BF16 (the scalar fallback is for tests, not speed).
    let precisions: Vec<Precision> = [Precision::F32, Precision::Bf16]
        .into_iter()
        .filter(|p| p.check_supported().is_ok())
        .collect();
    let mut g = c.benchmark_group("default_avatar");
    g.sample_size(20);
    for &precision in &precisions {
        let nets = FusedNets::new(&avatar.nets, precision).expect("fused nets");
        for (name, net) in ["delta_net", "color_net", "lbs_net"]
            .iter()
            .zip(nets.each())
        {
            let id = BenchmarkId::new(format!("fused net {precision}"), name);
            g.bench_function(id, |bench| bench.iter(|| net.forward(black_box(&pose))));
        }
    }
    g.finish();
    let Some(r) = &avatar.renderer else { return };
    let rows = 48_000;
    let x: Vec<f32> = (0..rows * r.input_dim())
        .map(|i| ((i * 104_729 % 7919) as f32 / 7919.0 - 0.5) * 0.5)
        .collect();
    let mut g = c.benchmark_group("default_avatar_renderer");
    g.sample_size(20);
    g.throughput(Throughput::Elements(rows as u64));
    for &precision in &precisions {
        let renderer = FusedRenderer::new(r, precision).expect("fused renderer");
        let id = format!("MLP {precision}, 48k pixels");
        g.bench_function(id, |bench| {
            bench.iter(|| renderer.forward(black_box(&x), rows))
        });
    }
    g.finish();
}

criterion_group!(benches, softplus, layer_tile, networks);
criterion_main!(benches);
