//! XHand's activation: `torch.nn.Softplus(beta=100)` with torch's default threshold 20.

use candle_core::{CpuStorage, CustomOp1, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Softplus sharpness used by every hidden layer of XHand's `ConditionNetwork` (mlp.py L313).
pub const SOFTPLUS_BETA: f32 = 100.0;
/// torch's Softplus switches to the identity where `beta * x > threshold` (default 20).
pub const SOFTPLUS_THRESHOLD: f32 = 20.0;

/// `y = x` where `100 x > 20`, else `log1p(exp(100 x)) / 100`, exactly torch's branch rule.
pub fn softplus100(x: &Tensor) -> Result<Tensor> {
    match x.device() {
        Device::Cpu => x.contiguous()?.apply_op1(Softplus100),
        _ => softplus100_composite(x),
    }
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
/// the (costly) `log1p` is skipped.
const LOG1P_IS_IDENTITY_BELOW: f32 = -17.0;

#[inline]
fn softplus_scalar(x: f32) -> f32 {
    let bx = SOFTPLUS_BETA * x;
    if bx > SOFTPLUS_THRESHOLD {
        x
    } else if bx < LOG1P_IS_IDENTITY_BELOW {
        bx.exp() / SOFTPLUS_BETA
    } else {
        bx.exp().ln_1p() / SOFTPLUS_BETA
    }
}

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
        // exp and log1p dominate a condition network's time (several times its matmuls), so
        // the elements are spread over candle's thread pool; the result does not depend on it.
        let input = &data[start..end];
        let mut out = vec![0f32; input.len()];
        out.par_chunks_mut(CHUNK)
            .zip(input.par_chunks(CHUNK))
            .for_each(|(o, i)| {
                for (o, &x) in o.iter_mut().zip(i) {
                    *o = softplus_scalar(x);
                }
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
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

    #[test]
    fn fused_matches_composite_and_branch_rule() {
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
    }

    #[test]
    fn parallel_chunks_and_the_log1p_shortcut_keep_torchs_values() {
        // More elements than one chunk, not a multiple of it, across all three branches.
        let n = 2 * CHUNK + 123;
        let xs: Vec<f32> = (0..n).map(|i| -0.4 + 0.6 * i as f32 / n as f32).collect();
        let t = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        let fused = softplus100(&t).unwrap().to_vec1::<f32>().unwrap();
        for (x, y) in xs.iter().zip(&fused) {
            let bx = SOFTPLUS_BETA * x;
            let torch = if bx > SOFTPLUS_THRESHOLD {
                *x
            } else {
                bx.exp().ln_1p() / SOFTPLUS_BETA
            };
            assert!(
                (y - torch).abs() <= 1e-6 * torch.abs(),
                "x={x}: {y} vs torch's {torch}"
            );
        }
    }
}
