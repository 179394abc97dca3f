//! Relighting from an environment map: an equirectangular HDR image (`.hdr`, `.exr`)
//! projected onto XHand's 27 SH lighting coefficients.
//!
//! XHand shades `albedo · Σ_k b_k(n) · g_k` with its own basis `b_k` (`shading::sh_basis`:
//! constants `a_l·c_l` and signs of its `compute_color`) and `g_0 = sh_0 + 0.8`. For an
//! environment of radiance `L(ω)` a Lambertian surface of albedo 1 reflects
//! `E(n)/π = Σ_lm (Â_l/π) L_lm Y_lm(n)` (Ramamoorthi & Hanrahan 2001: `Â = π, 2π/3, π/4`,
//! `L_lm = ∫ L Y_lm dω` over the real orthonormal SH `Y_lm`). Both are the same polynomials
//! in `n` (`1; y, z, x; xy, yz, 3z²−1, xz, x²−y²`), so term by term
//! `g_k = (Â_l/π) · L_lm · N_k / B_k`, with `N_k` the `Y_lm` normalisation and `B_k` XHand's
//! signed constant; then `sh_0 = g_0 − 0.8`. An avatar whose colours are BGR gets the
//! channels in that order. docs/relighting.md has the derivation and the conventions.
//!
//! Directions: the image's centre column looks where the default front camera looks
//! (world +y, into the scene), its top row is the view's up (world −x, towards the
//! fingertips of the rest hand), and longitude grows towards the view's right (+z).
//! `rotation` turns the environment about that up axis.

use std::path::Path;

use crate::SH_DIM;
use crate::avatar::ColorOrder;
use crate::shading::{SH_AMBIENT, SH_BANDS, sh_basis};

/// An equirectangular environment: linear RGB radiance, row-major, row 0 at the zenith.
#[derive(Clone, Debug)]
pub struct EnvironmentMap {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<[f32; 3]>,
}

/// The width environments are box-filtered to before projecting (their detail beyond this
/// does not change nine coefficients).
pub const PROJECTION_WIDTH: usize = 512;

/// Largest environment read (pixels): projection cost grows with it and 4k x 2k is plenty
/// for nine coefficients.
pub const MAX_ENV_PIXELS: usize = 4096 * 2048;

/// World axes of the environment: up (the zenith), forward (the image centre), right.
pub const UP: [f32; 3] = [-1.0, 0.0, 0.0];
pub const FORWARD: [f32; 3] = [0.0, 1.0, 0.0];
pub const RIGHT: [f32; 3] = [0.0, 0.0, 1.0];

/// Where the world direction `dir` lands in an environment turned by `rotation` radians:
/// `(u, v)` in [0, 1) (u wraps round), the inverse of [`EnvironmentMap::direction`].
pub fn lookup_uv(dir: [f64; 3], rotation: f64) -> [f64; 2] {
    let dot = |a: [f32; 3]| (0..3).map(|k| dir[k] * a[k] as f64).sum::<f64>();
    let len = (0..3)
        .map(|k| dir[k] * dir[k])
        .sum::<f64>()
        .sqrt()
        .max(1e-300);
    let theta = (dot(UP) / len).clamp(-1.0, 1.0).acos();
    let phi = dot(RIGHT).atan2(dot(FORWARD));
    let u = ((phi - rotation) / std::f64::consts::TAU + 0.5).rem_euclid(1.0);
    [u, theta / std::f64::consts::PI]
}

/// Radiance to an 8-bit display value for showing an environment: clamped to [0, 1] and
/// sRGB-encoded.
fn display_value(radiance: f32) -> u8 {
    let c = radiance.clamp(0.0, 1.0);
    let s = if c <= 0.003_130_8 {
        12.92 * c
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    };
    (s * 255.0 + 0.5) as u8
}

/// Normalisations `N_k` of the real SH `Y_lm` for XHand's polynomials, and the band `l`.
fn y_norm() -> [(f64, usize); SH_BANDS] {
    let pi = std::f64::consts::PI;
    let n0 = (1.0 / (4.0 * pi)).sqrt();
    let n1 = (3.0 / (4.0 * pi)).sqrt();
    let n2 = (15.0 / (4.0 * pi)).sqrt();
    let n20 = (5.0 / (16.0 * pi)).sqrt();
    let n22 = (15.0 / (16.0 * pi)).sqrt();
    [
        (n0, 0),
        (n1, 1),
        (n1, 1),
        (n1, 1),
        (n2, 2),
        (n2, 2),
        (n20, 2),
        (n2, 2),
        (n22, 2),
    ]
}

/// The SH polynomials of XHand's basis (without constants or signs) at `d`.
fn polynomials(d: [f64; 3]) -> [f64; SH_BANDS] {
    let [x, y, z] = d;
    [
        1.0,
        y,
        z,
        x,
        x * y,
        y * z,
        3.0 * z * z - 1.0,
        x * z,
        x * x - y * y,
    ]
}

/// XHand's signed constants `B_k`: `sh_basis(n) = B_k · polynomial_k(n)`.
fn xhand_constants() -> [f64; SH_BANDS] {
    // Read off the basis itself, so they cannot drift from `shading`.
    let at = |d: [f32; 3], k: usize| {
        let p = polynomials(d.map(f64::from))[k];
        sh_basis(d)[k] as f64 / p
    };
    // Points where each polynomial is non-zero.
    let s = std::f32::consts::FRAC_1_SQRT_2;
    [
        at([0.0, 0.0, 1.0], 0),
        at([0.0, 1.0, 0.0], 1),
        at([0.0, 0.0, 1.0], 2),
        at([1.0, 0.0, 0.0], 3),
        at([s, s, 0.0], 4),
        at([0.0, s, s], 5),
        at([0.0, 0.0, 1.0], 6),
        at([s, 0.0, s], 7),
        at([1.0, 0.0, 0.0], 8),
    ]
}

impl EnvironmentMap {
    /// Reads an equirectangular `.hdr` or `.exr` (any size up to [`MAX_ENV_PIXELS`]; the
    /// width should be twice the height).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let reader = image::ImageReader::open(path)
            .and_then(|r| r.with_guessed_format())
            .map_err(|e| anyhow::anyhow!("{}: cannot read it: {e}", path.display()))?;
        let (w, h) = reader
            .into_dimensions()
            .map_err(|e| anyhow::anyhow!("{}: not an HDR or EXR image: {e}", path.display()))?;
        if w == 0 || h == 0 || (w as usize) * (h as usize) > MAX_ENV_PIXELS {
            anyhow::bail!(
                "{}: {w}x{h} is not a usable environment map (at most {MAX_ENV_PIXELS} pixels)",
                path.display()
            );
        }
        let img = image::ImageReader::open(path)
            .and_then(|r| r.with_guessed_format())
            .map_err(|e| anyhow::anyhow!("{}: cannot read it: {e}", path.display()))?
            .decode()
            .map_err(|e| anyhow::anyhow!("{}: not an HDR or EXR image: {e}", path.display()))?
            .into_rgb32f();
        let rgb: Vec<[f32; 3]> = img.pixels().map(|p| p.0).collect();
        if let Some(i) = rgb
            .iter()
            .position(|p| p.iter().any(|v| !v.is_finite() || *v < 0.0))
        {
            anyhow::bail!(
                "{}: pixel {} holds {:?}; radiance must be finite and not negative",
                path.display(),
                i,
                rgb[i]
            );
        }
        Ok(Self {
            width: w as usize,
            height: h as usize,
            rgb,
        })
    }

    /// A copy at most `max_width` wide (box-filtered, the aspect kept): nine SH
    /// coefficients need no more, and projecting it is fast enough for a drag.
    pub fn downsampled(&self, max_width: usize) -> Self {
        let f = self.width.div_ceil(max_width.max(1)).max(1);
        if f == 1 {
            return self.clone();
        }
        let (w, h) = (self.width / f, (self.height / f).max(1));
        let mut rgb = vec![[0.0f32; 3]; w * h];
        for (i, out) in rgb.iter_mut().enumerate() {
            let (cx, cy) = (i % w, i / w);
            let mut n = 0.0;
            for y in cy * f..((cy + 1) * f).min(self.height) {
                for x in cx * f..(cx + 1) * f {
                    let p = self.rgb[y * self.width + x];
                    for c in 0..3 {
                        out[c] += p[c];
                    }
                    n += 1.0;
                }
            }
            out.iter_mut().for_each(|v| *v /= n);
        }
        Self {
            width: w,
            height: h,
            rgb,
        }
    }

    /// A uniform environment of radiance `rgb` (tests, a neutral sky).
    pub fn constant(width: usize, height: usize, rgb: [f32; 3]) -> Self {
        Self {
            width,
            height,
            rgb: vec![rgb; width * height],
        }
    }

    /// The world direction through the centre of pixel (`col`, `row`) with the environment
    /// turned by `rotation` radians about its up axis.
    pub fn direction(&self, col: usize, row: usize, rotation: f64) -> [f64; 3] {
        let theta = std::f64::consts::PI * (row as f64 + 0.5) / self.height as f64;
        let phi =
            2.0 * std::f64::consts::PI * ((col as f64 + 0.5) / self.width as f64 - 0.5) + rotation;
        let (st, ct) = theta.sin_cos();
        let (sp, cp) = phi.sin_cos();
        std::array::from_fn(|k| {
            st * (cp * FORWARD[k] as f64 + sp * RIGHT[k] as f64) + ct * UP[k] as f64
        })
    }

    /// The environment as an 8-bit display image (for showing it behind the hand).
    pub fn display_image(&self) -> crate::image_io::Rgba8 {
        crate::image_io::Rgba8 {
            width: self.width as u32,
            height: self.height as u32,
            pixels: self
                .rgb
                .iter()
                .map(|p| {
                    [
                        display_value(p[0]),
                        display_value(p[1]),
                        display_value(p[2]),
                        255,
                    ]
                })
                .collect(),
        }
    }

    /// XHand's 27 SH coefficients (channel-major, `+0.8` on the DC term taken out) that
    /// light like this environment turned by `rotation` radians, in `order`.
    pub fn to_sh(&self, rotation: f64, order: ColorOrder) -> [f32; SH_DIM] {
        // L_lm = Σ L(ω) Y_lm(ω) dω, dω = sinθ · (2π/W) · (π/H).
        let y_norm = y_norm();
        let mut l = [[0.0f64; SH_BANDS]; 3];
        let d_area = 2.0 * std::f64::consts::PI / self.width as f64 * std::f64::consts::PI
            / self.height as f64;
        for row in 0..self.height {
            let theta = std::f64::consts::PI * (row as f64 + 0.5) / self.height as f64;
            let w = theta.sin() * d_area;
            for col in 0..self.width {
                let d = self.direction(col, row, rotation);
                let p = polynomials(d);
                let rad = self.rgb[row * self.width + col];
                for (k, (n, _)) in y_norm.iter().enumerate() {
                    let y = n * p[k] * w;
                    for ch in 0..3 {
                        l[ch][k] += rad[ch] as f64 * y;
                    }
                }
            }
        }
        let a_hat = [
            std::f64::consts::PI,
            2.0 * std::f64::consts::PI / 3.0,
            std::f64::consts::PI / 4.0,
        ];
        let b = xhand_constants();
        let mut sh = [0.0f32; SH_DIM];
        for (ch, rgb_ch) in [0usize, 1, 2].into_iter().enumerate() {
            // Channel `ch` of the stored vector is red, green, blue — or blue, green, red.
            let src = match order {
                ColorOrder::Rgb => rgb_ch,
                ColorOrder::Bgr => 2 - rgb_ch,
            };
            for k in 0..SH_BANDS {
                let (n, band) = y_norm[k];
                let g = a_hat[band] / std::f64::consts::PI * l[src][k] * n / b[k];
                sh[ch * SH_BANDS + k] = g as f32;
            }
            sh[ch * SH_BANDS] -= SH_AMBIENT;
        }
        sh
    }
}

/// What `camera` sees of the environment turned by `rotation` radians, from its display
/// image (nearest texel; the GPU composite samples the same image bilinearly).
pub fn background(
    display: &crate::image_io::Rgba8,
    camera: &crate::camera::Camera,
    rotation: f64,
) -> crate::image_io::Rgba8 {
    let (w, h) = (display.width.max(1), display.height.max(1));
    let mut pixels = Vec::with_capacity((camera.width * camera.height) as usize);
    for row in 0..camera.height {
        for col in 0..camera.width {
            let ray = camera.view_ray(col, row);
            let [u, v] = lookup_uv([ray.x, ray.y, ray.z], rotation);
            let x = ((u * w as f64) as u32).min(w - 1);
            let y = ((v * h as f64) as u32).min(h - 1);
            pixels.push(display.pixels[(y * w + x) as usize]);
        }
    }
    crate::image_io::Rgba8 {
        width: camera.width,
        height: camera.height,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lookup_inverts_the_texel_directions() {
        let env = super::EnvironmentMap::constant(64, 32, [1.0; 3]);
        for (col, row, rot) in [(0, 0, 0.0), (10, 5, 0.3), (63, 31, -2.0), (32, 16, 3.1)] {
            let d = env.direction(col, row, rot);
            let [u, v] = super::lookup_uv(d, rot);
            assert!(
                (u * 64.0 - (col as f64 + 0.5)).abs() < 1e-6,
                "{col} {row}: u {u}"
            );
            assert!(
                (v * 32.0 - (row as f64 + 0.5)).abs() < 1e-6,
                "{col} {row}: v {v}"
            );
        }
        assert_eq!(super::display_value(0.0), 0);
        assert_eq!(super::display_value(7.0), 255);
        assert_eq!(super::display_value(0.2159), 128);
    }

    use super::*;
    use crate::shading::sh_color;

    /// Unit normals spread over the sphere.
    fn normals() -> Vec<[f32; 3]> {
        (0..200)
            .map(|i| {
                let z = 1.0 - 2.0 * (i as f32 + 0.5) / 200.0;
                let r = (1.0 - z * z).sqrt();
                let a = i as f32 * 2.399_963;
                [r * a.cos(), r * a.sin(), z]
            })
            .collect()
    }

    #[test]
    fn a_constant_environment_is_the_constant_sh_vector() {
        let env = EnvironmentMap::constant(128, 64, [0.5, 1.0, 2.0]);
        let sh = env.to_sh(0.0, ColorOrder::Rgb);
        // Diffuse radiance under a uniform sky equals the sky's: shade = c at every normal.
        for n in normals() {
            let c = sh_color([1.0; 3], n, &sh);
            for (got, want) in c.iter().zip([0.5, 1.0, 2.0]) {
                assert!((got - want).abs() < 2e-3 * want, "{n:?}: {c:?}");
            }
        }
        let dc = |v: f32| v / crate::shading::SH_C0 - SH_AMBIENT;
        for ch in 0..3 {
            let want = dc([0.5, 1.0, 2.0][ch]);
            assert!((sh[ch * SH_BANDS] - want).abs() < 2e-3, "{sh:?}");
            assert!(
                sh[ch * SH_BANDS + 1..(ch + 1) * SH_BANDS]
                    .iter()
                    .all(|v| v.abs() < 2e-3)
            );
        }
        let bgr = env.to_sh(0.0, ColorOrder::Bgr);
        assert!(
            (bgr[0] - sh[2 * SH_BANDS]).abs() < 1e-6,
            "BGR avatars get blue first"
        );
    }

    #[test]
    fn a_light_from_one_side_lights_that_side_like_a_cosine_lobe() {
        // A small bright patch at the image centre: light from the forward direction (+y).
        let mut env = EnvironmentMap::constant(256, 128, [0.0; 3]);
        for row in 60..68 {
            for col in 124..132 {
                env.rgb[row * 256 + col] = [100.0; 3];
            }
        }
        let sh = env.to_sh(0.0, ColorOrder::Rgb);
        let toward = sh_color([1.0; 3], [0.0, 1.0, 0.0], &sh)[0];
        let away = sh_color([1.0; 3], [0.0, -1.0, 0.0], &sh)[0];
        let side = sh_color([1.0; 3], [0.0, 0.0, 1.0], &sh)[0];
        assert!(toward > side && side > away, "{toward} {side} {away}");
    }

    #[test]
    fn hdr_files_load_and_broken_ones_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sky.hdr");
        let pixels: Vec<image::Rgb<f32>> = (0..16 * 8)
            .map(|i| image::Rgb([i as f32 / 8.0, 1.0, 0.5]))
            .collect();
        let mut bytes = Vec::new();
        image::codecs::hdr::HdrEncoder::new(&mut bytes)
            .encode(&pixels, 16, 8)
            .unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let env = EnvironmentMap::load(&path).unwrap();
        assert_eq!((env.width, env.height), (16, 8));
        assert!((env.rgb[9][0] - 9.0 / 8.0).abs() < 0.02);
        let small = env.downsampled(8);
        assert_eq!((small.width, small.height), (8, 4));
        let bad = dir.path().join("broken.hdr");
        std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
        let e = EnvironmentMap::load(&bad).unwrap_err().to_string();
        assert!(e.contains("broken.hdr"), "{e}");
    }

    #[test]
    fn turning_the_environment_half_way_turns_the_light() {
        // Any environment: light from one patch and a colour gradient.
        let mut env = EnvironmentMap::constant(128, 64, [0.1, 0.2, 0.3]);
        for row in 0..64 {
            for col in 0..128 {
                let i = row * 128 + col;
                env.rgb[i][0] += col as f32 / 128.0;
                if (20..30).contains(&row) && (90..100).contains(&col) {
                    env.rgb[i] = [5.0, 3.0, 1.0];
                }
            }
        }
        let sh0 = env.to_sh(0.0, ColorOrder::Rgb);
        let sh180 = env.to_sh(std::f64::consts::PI, ColorOrder::Rgb);
        // A half turn about the up axis (−x): (x, y, z) → (x, −y, −z).
        for n in normals() {
            let turned = [n[0], -n[1], -n[2]];
            let a = sh_color([1.0; 3], n, &sh180);
            let b = sh_color([1.0; 3], turned, &sh0);
            for ch in 0..3 {
                assert!((a[ch] - b[ch]).abs() < 1e-4, "{n:?}: {a:?} vs {b:?}");
            }
        }
    }
}
