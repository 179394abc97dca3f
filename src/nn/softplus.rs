//! XHand's activation: `torch.nn.Softplus(beta=100)` with torch's default threshold 20.

use candle_core::{CpuStorage, CustomOp1, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

pub use xhand_simd::{SOFTPLUS_BETA, SOFTPLUS_THRESHOLD};

/// `y = x` where `100 x > 20`, else `log1p(exp(100 x)) / 100`, exactly torch's branch rule.
/// One fused kernel for f32 on the CPU and on CUDA; candle primitives elsewhere (Metal,
/// reduced precision).
pub fn softplus100(x: &Tensor) -> Result<Tensor> {
    if x.dtype() != candle_core::DType::F32 || x.elem_count() == 0 {
        return softplus100_composite(x);
    }
    match x.device() {
        Device::Cpu => x.contiguous()?.apply_op1(Softplus100),
        Device::Cuda(_) if cfg!(feature = "cuda") => softplus100_cuda(x),
        _ => softplus100_composite(x),
    }
}

/// The CUDA kernel, or candle primitives for good once it cannot run (its PTX built for a
/// newer GPU than this one, say), with a warning.
fn softplus100_cuda(x: &Tensor) -> Result<Tensor> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static KERNEL_FAILED: AtomicBool = AtomicBool::new(false);
    if !KERNEL_FAILED.load(Ordering::Relaxed) {
        match x.contiguous()?.apply_op1(Softplus100) {
            Ok(y) => return Ok(y),
            Err(e) => {
                if !KERNEL_FAILED.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "warning: the fused CUDA Softplus kernel cannot run ({e}); using candle's element-wise ops"
                    );
                }
            }
        }
    }
    softplus100_composite(x)
}

/// The same function from candle primitives, for devices without the fused CPU kernel.
fn softplus100_composite(x: &Tensor) -> Result<Tensor> {
    let bx = x.affine(SOFTPLUS_BETA as f64, 0.0)?;
    let soft = (bx.exp()? + 1.0)?
        .log()?
        .affine(1.0 / SOFTPLUS_BETA as f64, 0.0)?;
    bx.gt(SOFTPLUS_THRESHOLD as f64)?.where_cond(x, &soft)
}

/// Below this `β x`, `exp(β x) < 2⁻²⁴` and `log1p(exp(β x))` rounds to `exp(β x)` in f32, so
/// the (costly) `log1p` can be skipped (the WGSL Softplus does).
pub const LOG1P_IS_IDENTITY_BELOW: f32 = -17.0;

/// Elements per parallel task: large enough that scheduling is negligible.
const CHUNK: usize = 16 * 1024;

struct Softplus100;

impl CustomOp1 for Softplus100 {
    fn name(&self) -> &'static str {
        "softplus100"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("softplus100: only f32 tensors are supported")
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("softplus100: expects a contiguous tensor")
        };
        // Vectorised exp and log1p (xhand_simd), spread over candle's thread pool; the result
        // does not depend on it.
        let input = &data[start..end];
        let mut out = vec![0f32; input.len()];
        out.par_chunks_mut(CHUNK)
            .zip(input.par_chunks(CHUNK))
            .for_each(|(o, i)| {
                o.copy_from_slice(i);
                xhand_simd::softplus_in_place(o);
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    /// One thread per element (`kernels/softplus.cu`, PTX built by build.rs with nvcc).
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
        use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
        const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/softplus.ptx"));
        let CudaStorageSlice::F32(src) = &storage.slice else {
            candle_core::bail!("softplus100: only f32 tensors are supported")
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("softplus100: expects a contiguous tensor")
        };
        let n = end - start;
        let Ok(n32) = u32::try_from(n) else {
            candle_core::bail!("softplus100: {n} elements exceed one launch")
        };
        let dev = storage.device();
        let func = dev.get_or_load_custom_func("softplus_f32", "xhand_softplus", PTX)?;
        // SAFETY: every element is written by the kernel below.
        let out = unsafe { dev.alloc::<f32>(n)? };
        let src = src.slice(start..end);
        let mut builder = func.builder();
        builder.arg(&src);
        builder.arg(&out);
        builder.arg(&n32);
        builder.arg(&SOFTPLUS_BETA);
        builder.arg(&SOFTPLUS_THRESHOLD);
        // SAFETY: the kernel's signature is (const float*, float*, unsigned int, float,
        // float), as passed.
        unsafe { builder.launch(LaunchConfig::for_num_elems(n32)) }.w()?;
        let out = candle_core::CudaStorage {
            slice: CudaStorageSlice::F32(out),
            device: dev.clone(),
        };
        Ok((out, layout.shape().clone()))
    }

    /// d/dx softplus = sigmoid(100 x), and 1 on the linear branch (as torch).
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let bx = arg.affine(SOFTPLUS_BETA as f64, 0.0)?;
        let sig = candle_nn::ops::sigmoid(&bx)?;
        let ones = sig.ones_like()?;
        let d = bx.gt(SOFTPLUS_THRESHOLD as f64)?.where_cond(&ones, &sig)?;
        Ok(Some(grad_res.mul(&d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xhand_simd::{add_bias_rows, bias_softplus_generic, bias_softplus_rows, exp_in_place};

    #[test]
    fn candle_op_matches_composite_and_branch_rule() {
        let xs: Vec<f32> = vec![-1.0, -0.05, 0.0, 0.1, 0.19999, 0.2, 0.20001, 3.0];
        let t = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        let fused = softplus100(&t).unwrap().to_vec1::<f32>().unwrap();
        let comp = softplus100_composite(&t).unwrap().to_vec1::<f32>().unwrap();
        for ((x, a), b) in xs.iter().zip(&fused).zip(&comp) {
            assert!((a - b).abs() < 1e-6, "x={x}: fused {a} composite {b}");
        }
        assert_eq!(fused[7], 3.0);
        assert_eq!(fused[6], 0.20001);
        assert!((fused[2] - (2f32).ln() / 100.0).abs() < 1e-7);
        // More elements than one parallel chunk, not a multiple of it.
        let n = 2 * CHUNK + 123;
        let xs: Vec<f32> = (0..n).map(|i| -0.4 + 0.6 * i as f32 / n as f32).collect();
        let t = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        let got = softplus100(&t).unwrap().to_vec1::<f32>().unwrap();
        for (x, y) in xs.iter().zip(&got) {
            let want = torch_softplus(*x);
            assert!(
                (*y as f64 - want).abs() <= 2e-6 * want + 1e-38,
                "x={x}: {y} vs {want}"
            );
        }
    }

    /// torch's formula in f64.
    fn torch_softplus(x: f32) -> f64 {
        // β x rounded to f32 first, as torch computes it in f32.
        let bx = (SOFTPLUS_BETA * x) as f64;
        if bx > SOFTPLUS_THRESHOLD as f64 {
            x as f64
        } else {
            bx.exp().ln_1p() / SOFTPLUS_BETA as f64
        }
    }

    /// Values over every branch: deep negative (log1p = identity), the log1p range, around the
    /// threshold (βx = 20 ⇔ x = 0.2), and the linear branch.
    fn samples() -> Vec<f32> {
        let mut xs: Vec<f32> = (0..200_001)
            .map(|i| -1.0 + 2.0 * i as f32 / 200_000.0)
            .collect();
        xs.extend([
            0.0,
            -0.0,
            0.2,
            0.199_999_99,
            0.200_000_02,
            -0.17,
            -0.87,
            -0.88,
            -5.0,
            50.0,
        ]);
        xs
    }

    #[test]
    fn softplus_error_against_torch_is_bounded() {
        let xs = samples();
        let mut got = xs.clone();
        bias_softplus_rows(&mut got, &[0.0]);
        let mut worst = 0f64;
        for (x, y) in xs.iter().zip(&got) {
            let want = torch_softplus(*x);
            let err = (*y as f64 - want).abs();
            if want > 1e-37 {
                worst = worst.max(err / want);
            }
            assert!(
                err <= 2e-6 * want + 1e-38,
                "x={x}: {y} vs torch {want} (error {err:e})"
            );
            if SOFTPLUS_BETA * x > SOFTPLUS_THRESHOLD {
                assert_eq!(*y, *x, "linear branch must be exact");
            }
        }
        // Measured: worst relative error ~3e-7 (a few ulps).
        eprintln!("softplus worst relative error vs torch (f64): {worst:e}");
    }

    #[test]
    fn all_builds_agree_and_odd_lengths_work() {
        // Lengths that are not multiples of any vector width; bias varies per column.
        for n in [1, 3, 7, 17, 33, 100] {
            let bias: Vec<f32> = (0..n).map(|c| (c as f32 - 3.0) * 0.01).collect();
            let rows = 5;
            let xs: Vec<f32> = (0..n * rows)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.006)
                .collect();
            let mut fast = xs.clone();
            bias_softplus_rows(&mut fast, &bias);
            let mut base = xs.clone();
            bias_softplus_generic(&mut base, &bias);
            for (i, ((a, b), x)) in fast.iter().zip(&base).zip(&xs).enumerate() {
                let want = torch_softplus(x + bias[i % n]);
                assert!((a - b).abs() <= 1e-7 * b.abs().max(1e-6), "{a} vs {b}");
                assert!((*a as f64 - want).abs() <= 2e-6 * want + 1e-38);
            }
            let mut added = xs.clone();
            add_bias_rows(&mut added, &bias);
            for (i, (a, x)) in added.iter().zip(&xs).enumerate() {
                assert_eq!(*a, x + bias[i % n]);
            }
        }
    }

    #[test]
    fn exp_matches_std() {
        let xs: Vec<f32> = (0..20_001).map(|i| -80.0 + i as f32 * 0.008).collect();
        let mut got = xs.clone();
        exp_in_place(&mut got);
        for (x, y) in xs.iter().zip(&got) {
            let want = (*x as f64).exp();
            assert!(
                ((*y as f64) - want).abs() <= 3e-7 * want,
                "exp({x}) = {y}, want {want}"
            );
        }
    }
}
