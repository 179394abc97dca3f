//! Poses and lights the bake samples: the default avatar's relaxed mean pose, natural random
//! hands for training, and the SH lights stored in the avatar.

use rand::{Rng, rngs::StdRng};

use crate::shading::directional_sh;
use crate::{POSE_DIM, SH_DIM};

/// The relaxed mean hand (flat-relative axis-angle): fingers gently curled, more towards
/// the little finger, the thumb slightly across the palm.
pub fn relaxed_pose_mean() -> [f32; POSE_DIM] {
    let mut p = [0.0f32; POSE_DIM];
    let curls: [(usize, [f32; 3], f32); 4] = [
        (1, [0.18, 0.30, 0.18], 0.06),
        (4, [0.22, 0.36, 0.20], 0.0),
        (10, [0.28, 0.40, 0.22], -0.05),
        (7, [0.34, 0.44, 0.24], -0.10),
    ];
    for (first, flex, spread) in curls {
        for k in 0..3 {
            p[3 * (first + k) + 2] = flex[k];
        }
        p[3 * first + 1] = spread;
    }
    p[3 * 13] = 0.25;
    p[3 * 13 + 2] = 0.15;
    p[3 * 14 + 1] = -0.15;
    p[3 * 15 + 1] = -0.2;
    p
}

/// A random rotation vector: uniform axis, angle up to `max_angle`.
pub fn random_rotation(rng: &mut StdRng, max_angle: f32) -> [f32; 3] {
    loop {
        let v: [f32; 3] = std::array::from_fn(|_| rng.random_range(-1.0f32..1.0));
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        if n > 0.1 && n <= 1.0 {
            let a = rng.random_range(0.0..max_angle);
            return v.map(|x| x / n * a);
        }
    }
}

/// A natural random hand (flat-relative): any wrist orientation; fingers usually closing
/// together (a shared curl plus per-joint noise), sometimes independently; the thumb moving
/// across the palm with the fingers.
pub fn sample_full_pose(rng: &mut StdRng) -> [f32; POSE_DIM] {
    let mut p = [0.0f32; POSE_DIM];
    p[..3].copy_from_slice(&random_rotation(rng, std::f32::consts::PI));
    let together = rng.random_bool(0.7);
    let shared: f32 = rng.random_range(0.0..1.0);
    let ranges = [(-0.3f32, 1.6f32), (0.0, 1.9), (0.0, 1.3)];
    for first in [1usize, 4, 7, 10] {
        let own: f32 = rng.random_range(0.0..1.0);
        for (k, (lo, hi)) in ranges.iter().enumerate() {
            let t = if together {
                (shared + rng.random_range(-0.2..0.2)).clamp(0.0, 1.0)
            } else {
                (own + rng.random_range(-0.25..0.25)).clamp(0.0, 1.0)
            };
            p[3 * (first + k) + 2] = lo + (hi - lo) * t;
        }
        p[3 * first + 1] = rng.random_range(-0.3..0.3);
        p[3 * first] = rng.random_range(-0.1..0.1);
    }
    let across = if together {
        shared
    } else {
        rng.random_range(0.0..1.0)
    };
    let thumb = [[0.9, -0.2, 0.5], [0.0, -0.6, 0.0], [0.0, -0.7, 0.0]];
    for (k, t) in thumb.iter().enumerate() {
        for c in 0..3 {
            p[3 * (13 + k) + c] = t[c] * across + rng.random_range(-0.25..0.25);
        }
    }
    p
}

/// The four SH rows stored in the avatar: a soft key light from the palm side, one from the
/// back, one from the thumb side and one from beyond the fingertips.
pub fn default_lights() -> [[f32; SH_DIM]; 4] {
    let unit = |v: [f32; 3]| {
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        v.map(|x| x / n)
    };
    [
        directional_sh(unit([-0.35, -0.8, 0.45]), 0.3, 0.72),
        directional_sh(unit([-0.3, 0.85, 0.4]), 0.3, 0.72),
        directional_sh(unit([0.1, -0.3, 0.95]), 0.35, 0.65),
        directional_sh(unit([-0.9, -0.2, 0.3]), 0.35, 0.65),
    ]
}
