//! Vectorisable element-wise kernels for the CPU networks: bias + torch's Softplus(β=100,
//! threshold 20) in one pass, bias + ReLU, bias alone, `exp`, and `sin` (the renderer's
//! positional encoding).
//!
//! The math is branch-free f32 (Cephes' `expf`/`logf`/`sinf` polynomials, Kahan's `log1p`) so LLVM
//! turns each loop into SIMD code; each entry point is compiled three times — AVX-512, AVX2 +
//! FMA, and the portable baseline — and picks one at run time. All three give torch's values
//! to within a few ulps (xhand's `nn::softplus` tests bound the error against an f64
//! reference and compare the builds).
//!
//! A crate of its own so that debug builds, which compile xhand itself at opt-level 1 (no loop
//! vectoriser), still compile these loops at opt-level 3 (`[profile.dev.package.xhand-simd]`).

pub mod packed;

/// Softplus sharpness used by every hidden layer of XHand's `ConditionNetwork` (mlp.py L313).
pub const SOFTPLUS_BETA: f32 = 100.0;
/// torch's Softplus switches to the identity where `beta * x > threshold` (default 20).
pub const SOFTPLUS_THRESHOLD: f32 = 20.0;

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two so `x - n ln 2` stays exact for the range used (Cephes).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 · 2²³: adding it rounds to the nearest integer and leaves that integer in the low bits.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^x` for `x` in [-87, 88] (clamped), within 2 ulps.
#[inline(always)]
fn exp_approx(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    let ni = (shifted.to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5; // Cephes' 5.0000001e-1 is 0.5 in f32
    let e = p * r * r + r + 1.0;
    e * f32::from_bits((ni.wrapping_add(127) as u32) << 23)
}

/// 4/π, and π/4 split in three so `|x| - j π/4` stays exact for the range used (Cephes).
const FOUR_OVER_PI: f32 = 1.273_239_5;
const PI4_A: f32 = 0.785_156_25;
const PI4_B: f32 = 2.418_756_5e-4;
const PI4_C: f32 = 3.774_895e-8;

/// `sin x` for `|x|` up to 8192, within 1e-7 absolute (Cephes' `sinf`, branch-free: both
/// octant polynomials are evaluated and one is selected).
#[inline(always)]
fn sin_approx(x: f32) -> f32 {
    let sign = x.to_bits() & 0x8000_0000;
    let ax = x.abs();
    let mut j = (ax * FOUR_OVER_PI) as i32;
    j += j & 1; // to an even octant
    let y = j as f32;
    let octant = j & 7;
    let flip = ((octant > 3) as u32) << 31;
    let z = ((ax - y * PI4_A) - y * PI4_B) - y * PI4_C;
    let zz = z * z;
    let cos_part =
        ((2.443_315_7e-5 * zz - 1.388_731_6e-3) * zz + 4.166_664_6e-2) * zz * zz - 0.5 * zz + 1.0;
    let sin_part = ((-1.951_529_6e-4 * zz + 8.332_161e-3) * zz - 1.666_665_5e-1) * zz * z + z;
    let r = if octant & 3 == 2 { cos_part } else { sin_part };
    f32::from_bits(r.to_bits() ^ sign ^ flip)
}

/// `ln u` for normal positive `u`, within 2 ulps.
#[inline(always)]
fn ln_approx(u: f32) -> f32 {
    let bits = u.to_bits();
    let mut k = (((bits >> 23) & 0xff) as i32).wrapping_sub(127);
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000); // [1, 2)
    let big = m > std::f32::consts::SQRT_2;
    m = if big { m * 0.5 } else { m };
    k = k.wrapping_add(big as i32);
    let f = m - 1.0;
    let z = f * f;
    // Cephes' logf polynomial, by Horner's rule.
    let mut p = 7.037_683_6e-2;
    for c in [
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ] {
        p = p * f + c;
    }
    let kf = k as f32;
    let y = f * z * p + kf * LN2_LO - 0.5 * z;
    f + y + kf * LN2_HI
}

/// torch's `Softplus(beta=100, threshold=20)`: `x` where `100 x > 20`, else
/// `log1p(exp(100 x)) / 100`, with `log1p` by Kahan's trick.
/// One value of torch's Softplus (the baseline build; the slice kernels below vectorise it).
#[inline(always)]
pub fn softplus(x: f32) -> f32 {
    let bx = SOFTPLUS_BETA * x;
    let e = exp_approx(bx.min(SOFTPLUS_THRESHOLD));
    let u = 1.0 + e;
    let d = u - 1.0;
    let log1p = if d == 0.0 { e } else { ln_approx(u) * (e / d) };
    if bx > SOFTPLUS_THRESHOLD {
        x
    } else if bx < -87.0 {
        0.0 // below f32's normal range: torch gets a denormal under 2e-40 or zero
    } else {
        // × 0.01 instead of ÷ 100: within an ulp of torch, and no second division.
        log1p * (1.0 / SOFTPLUS_BETA)
    }
}

/// The baseline (portable) build of [`bias_softplus_rows`].
#[inline(always)]
pub fn bias_softplus_generic(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v = softplus(*v + *b);
        }
    }
}

/// The baseline (portable) build of [`add_bias_rows`].
#[inline(always)]
pub fn add_bias_generic(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += *b;
        }
    }
}

/// The baseline (portable) build of [`bias_relu_rows`].
#[inline(always)]
pub fn bias_relu_generic(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v = (*v + *b).max(0.0);
        }
    }
}

/// The baseline (portable) build of [`softplus_in_place`].
#[inline(always)]
pub fn softplus_generic(xs: &mut [f32]) {
    for v in xs {
        *v = softplus(*v);
    }
}

/// The baseline (portable) build of [`exp_in_place`].
#[inline(always)]
pub fn exp_generic(xs: &mut [f32]) {
    for v in xs {
        *v = exp_approx(*v);
    }
}

/// The baseline (portable) build of [`sin_in_place`].
#[inline(always)]
pub fn sin_generic(xs: &mut [f32]) {
    for v in xs {
        *v = sin_approx(*v);
    }
}

/// Defines `$name(args)`, dispatching at run time to AVX-512, AVX2 + FMA or the baseline
/// build of `$generic`.
macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident, $generic:ident, ($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    $generic($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    $generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the feature the function was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $generic($($arg),*)
        }
    };
}

dispatch!(
    /// `rows[r][c] = softplus(rows[r][c] + bias[c])` for row-major rows of `bias.len()` values.
    bias_softplus_rows,
    bias_softplus_generic,
    (rows: &mut [f32], bias: &[f32])
);
dispatch!(
    /// `rows[r][c] += bias[c]` for row-major rows of `bias.len()` values.
    add_bias_rows,
    add_bias_generic,
    (rows: &mut [f32], bias: &[f32])
);
dispatch!(
    /// `rows[r][c] = max(rows[r][c] + bias[c], 0)` for row-major rows of `bias.len()` values.
    bias_relu_rows,
    bias_relu_generic,
    (rows: &mut [f32], bias: &[f32])
);
dispatch!(
    /// `xs[i] = e^xs[i]` (arguments clamped to [-87, 88]).
    exp_in_place,
    exp_generic,
    (xs: &mut [f32])
);
dispatch!(
    /// `xs[i] = softplus(xs[i])` (torch's Softplus, β = 100, threshold 20).
    softplus_in_place,
    softplus_generic,
    (xs: &mut [f32])
);
dispatch!(
    /// `xs[i] = sin(xs[i])` (for `|x|` up to 8192).
    sin_in_place,
    sin_generic,
    (xs: &mut [f32])
);

#[cfg(test)]
mod tests {
    #[test]
    fn sine_matches_f64_in_every_octant_and_sign() {
        let xs: Vec<f32> = (-200_000..=200_000).map(|i| i as f32 * 1e-3).collect();
        for run in [super::sin_in_place as fn(&mut [f32]), super::sin_generic] {
            let mut ys = xs.clone();
            run(&mut ys);
            let worst = xs
                .iter()
                .zip(&ys)
                .map(|(&x, &y)| ((x as f64).sin() - y as f64).abs())
                .fold(0.0, f64::max);
            assert!(worst < 2e-7, "worst abs error {worst:e}");
        }
        let mut special = [0.0f32, -0.0, f32::NAN];
        super::sin_in_place(&mut special);
        assert_eq!(special[0].to_bits(), 0);
        assert_eq!(special[1].to_bits(), (-0.0f32).to_bits());
        assert!(special[2].is_nan());
    }
}
