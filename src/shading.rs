//! Spherical-harmonics lighting exactly as XHand's `compute_color` (models/utils.py L285-328).

use crate::SH_DIM;

/// Number of SH basis functions per channel (bands 0..2).
pub const SH_BANDS: usize = 9;

/// XHand adds this ambient term to coefficient 0 of every channel (`init_lit`, utils L292).
/// Stored as float32 there, so 0.8f32 exactly.
pub const SH_AMBIENT: f32 = 0.8;

/// `a0·c0` = π · 1/√(4π).
pub const SH_C0: f32 = 0.886_226_95;
/// `a1·c1` = 2π/√3 · √3/√(4π).
pub const SH_C1: f32 = 1.772_453_9;
/// `a2·c2` = 2π/√8 · 3√5/√(12π).
pub const SH_C2: f32 = 2.427_032_5;
/// `0.5 · a2·c2 / √3`.
pub const SH_C2_Z: f32 = 0.700_623_9;
/// `0.5 · a2·c2`.
pub const SH_C2_XY: f32 = 1.213_516_2;

/// The 9 SH basis values (with XHand's signs and factors) for a unit normal.
pub fn sh_basis(n: [f32; 3]) -> [f32; SH_BANDS] {
    let [x, y, z] = n;
    [
        SH_C0,
        -SH_C1 * y,
        SH_C1 * z,
        -SH_C1 * x,
        SH_C2 * x * y,
        -SH_C2 * y * z,
        SH_C2_Z * (3.0 * z * z - 1.0),
        -SH_C2 * x * z,
        SH_C2_XY * (x * x - y * y),
    ]
}

/// SH colour of `albedo` lit from a unit `normal` under the 27 channel-major coefficients
/// `sh` (`+0.8` on coefficient 0 of each channel). Not clipped.
pub fn sh_color(albedo: [f32; 3], normal: [f32; 3], sh: &[f32; SH_DIM]) -> [f32; 3] {
    let basis = sh_basis(normal);
    std::array::from_fn(|ch| {
        let mut shade = 0.0f32;
        for (k, b) in basis.iter().enumerate() {
            let mut g = sh[ch * SH_BANDS + k];
            if k == 0 {
                g += SH_AMBIENT;
            }
            shade += b * g;
        }
        shade * albedo[ch]
    })
}

/// An SH vector whose first-order terms light from `dir` (unit, world space) with
/// `strength`, on top of an ambient `ambient` level. Used by the viewer's light-direction
/// control: it writes coefficients 1..3 of every channel so that `sh_color` grows along
/// `dir` (the signs undo XHand's basis signs).
pub fn directional_sh(dir: [f32; 3], strength: f32, ambient: f32) -> [f32; SH_DIM] {
    let mut sh = [0.0; SH_DIM];
    for ch in 0..3 {
        sh[ch * SH_BANDS] = ambient - SH_AMBIENT;
        sh[ch * SH_BANDS + 1] = -dir[1] * strength;
        sh[ch * SH_BANDS + 2] = dir[2] * strength;
        sh[ch * SH_BANDS + 3] = -dir[0] * strength;
    }
    sh
}

/// The light direction and strength of an SH vector's first-order terms (the inverse of
/// [`directional_sh`], averaged over the colour channels); `None` when they are all zero.
pub fn sh_direction(sh: &[f32; SH_DIM]) -> Option<([f32; 3], f32)> {
    let mut d = [0.0f32; 3];
    for ch in 0..3 {
        d[0] -= sh[ch * SH_BANDS + 3] / 3.0;
        d[1] -= sh[ch * SH_BANDS + 1] / 3.0;
        d[2] += sh[ch * SH_BANDS + 2] / 3.0;
    }
    let strength = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
    (strength > 1e-9).then(|| (d.map(|x| x / strength), strength))
}

/// Normalises with XHand's `F.normalize` eps (1e-12 on the interpolated normal).
pub fn normalize_eps(v: [f32; 3], eps: f32) -> [f32; 3] {
    let len = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt().max(eps);
    [v[0] / len, v[1] / len, v[2] / len]
}

#[cfg(test)]
mod tests {
    use super::*;
    const PI: f64 = std::f64::consts::PI;

    #[test]
    fn sh_direction_inverts_directional_sh() {
        let dir = normalize_eps([0.3, -0.8, 0.5], 1e-12);
        let (d, strength) = sh_direction(&directional_sh(dir, 0.7, 0.8)).unwrap();
        assert!((strength - 0.7).abs() < 1e-6);
        assert!(
            d.iter().zip(dir).all(|(a, b)| (a - b).abs() < 1e-6),
            "{d:?}"
        );
        assert_eq!(sh_direction(&[0.0; SH_DIM]), None);
    }

    #[test]
    fn constants_match_xhand_formula() {
        let a = [PI, 2.0 * PI / 3f64.sqrt(), 2.0 * PI / 8f64.sqrt()];
        let c = [
            1.0 / (4.0 * PI).sqrt(),
            3f64.sqrt() / (4.0 * PI).sqrt(),
            3.0 * 5f64.sqrt() / (12.0 * PI).sqrt(),
        ];
        assert!((SH_C0 as f64 - a[0] * c[0]).abs() < 1e-7);
        assert!((SH_C1 as f64 - a[1] * c[1]).abs() < 1e-7);
        assert!((SH_C2 as f64 - a[2] * c[2]).abs() < 1e-7);
        assert!((SH_C2_Z as f64 - 0.5 * a[2] * c[2] / 3f64.sqrt()).abs() < 1e-7);
        assert!((SH_C2_XY as f64 - 0.5 * a[2] * c[2]).abs() < 1e-7);
    }

    #[test]
    fn directional_light_is_brighter_facing_it() {
        let sh = directional_sh([0.0, 0.0, 1.0], 0.3, 0.8);
        let lit = sh_color([1.0; 3], [0.0, 0.0, 1.0], &sh)[0];
        let dark = sh_color([1.0; 3], [0.0, 0.0, -1.0], &sh)[0];
        assert!(lit > dark + 0.5, "lit {lit} dark {dark}");
    }
}
