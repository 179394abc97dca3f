//! Generated avatars with random networks: the test avatar the test suite renders, and the
//! paper-size avatar `xhand bench --paper-size` times. They go through the same file format
//! and loader as real avatars.

use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Normal};

use crate::avatar::write::{FloatStorage, TensorWriter};
use crate::avatar::{Avatar, AvatarError, FORMAT_TAG};
use crate::nn::{renderer_input_width, renderer_layer_shapes};
use crate::{NUM_JOINTS, POSE_DIM, SH_DIM};

/// Which mesh to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyntheticMesh {
    /// A blocky hand: a palm and five capped finger tubes along MANO's bones, `around`
    /// vertices per ring and `rings_per_bone` rings per bone.
    ToyHand {
        around: usize,
        rings_per_bone: usize,
    },
    /// One tube with `rings` rings of `around` vertices, closed by an apex at the tip and
    /// open at the wrist: `rings·around + 1` vertices and `(2·rings − 1)·around` faces
    /// (385 x 128 gives XHand's 49,281 / 98,432).
    Tube { rings: usize, around: usize },
}

/// Sizes and seed of a generated avatar.
#[derive(Clone, Debug)]
pub struct SyntheticSpec {
    pub mesh: SyntheticMesh,
    /// `(width, depth)` of delta_net, color_net and lbs_net (XHand: 512x8, 128x5, 128x5).
    pub delta: (usize, usize),
    pub color: (usize, usize),
    pub lbs: (usize, usize),
    /// Hidden width of the 8-layer neural renderer, or `None` for an SH-only avatar.
    pub renderer_hidden: Option<usize>,
    pub sh_views: usize,
    pub seed: u64,
    pub storage: FloatStorage,
}

/// XHand's code width (`d_k`) and latent width.
const CODE_DIM: usize = 10;
const LATENT_DIM: usize = 10;
const RENDER_CODE_DIM: usize = 20;

impl SyntheticSpec {
    /// The small avatar used by tests: ~1.2k vertices, tiny nets, a 64-wide renderer.
    pub fn test_avatar() -> Self {
        Self {
            mesh: SyntheticMesh::ToyHand {
                around: 12,
                rings_per_bone: 4,
            },
            delta: (32, 3),
            color: (16, 2),
            lbs: (16, 2),
            renderer_hidden: Some(64),
            sh_views: 2,
            seed: 7,
            storage: FloatStorage::F32,
        }
    }

    /// The paper's sizes: 49,281 vertices, 98,432 faces, 8x512 / 5x128 / 5x128 nets and an
    /// 8x256 renderer.
    pub fn paper_size() -> Self {
        Self {
            mesh: SyntheticMesh::Tube {
                rings: 385,
                around: 128,
            },
            delta: (512, 8),
            color: (128, 5),
            lbs: (128, 5),
            renderer_hidden: Some(256),
            sh_views: 1,
            seed: 11,
            storage: FloatStorage::F32,
        }
    }

    /// Builds the avatar file contents.
    pub fn build(&self) -> TensorWriter {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mesh = match self.mesh {
            SyntheticMesh::ToyHand {
                around,
                rings_per_bone,
            } => toy_hand(around.max(3), rings_per_bone.max(1)),
            SyntheticMesh::Tube { rings, around } => tube(rings.max(2), around.max(3)),
        };
        let v = mesh.verts.len();
        let mut w = TensorWriter::new();
        // A gently curled mean pose: +z flexes the fingers of a right hand.
        let mut pose_mean = [0.0f32; POSE_DIM];
        for j in 1..13 {
            pose_mean[3 * j + 2] = 0.15;
        }
        w.template(&mesh.verts, &mesh.faces, &mesh.joints, &pose_mean);

        let st = self.storage;
        let normal = |rng: &mut StdRng, n: usize, std: f32| -> Vec<f32> {
            let d = Normal::new(0.0f32, std).expect("positive std");
            (0..n).map(|_| d.sample(rng)).collect()
        };
        let net = |w: &mut TensorWriter,
                   rng: &mut StdRng,
                   prefix: &str,
                   (width, depth): (usize, usize),
                   out: usize,
                   last_scale: f32,
                   x_mean: Vec<f32>| {
            let mut dims = vec![POSE_DIM + LATENT_DIM];
            dims.extend(std::iter::repeat_n(width, depth));
            dims.push(CODE_DIM);
            let n_layers = dims.len() - 1;
            for (l, pair) in dims.windows(2).enumerate() {
                let (i, o) = (pair[0], pair[1]);
                let scale = if l + 1 == n_layers { last_scale } else { 1.0 };
                let weight = normal(rng, o * i, scale * (2.0 / i as f32).sqrt());
                w.floats(&format!("{prefix}.lin{l}.weight"), &[o, i], &weight, st);
                let bias = normal(rng, o, 0.01 * scale);
                w.floats(&format!("{prefix}.lin{l}.bias"), &[o], &bias, st);
            }
            let latent = normal(rng, v * LATENT_DIM, 0.5);
            w.floats(
                &format!("{prefix}.latent_code"),
                &[v, LATENT_DIM],
                &latent,
                st,
            );
            let stat = normal(rng, CODE_DIM * out, 1.0);
            w.floats(
                &format!("{prefix}.static_code"),
                &[CODE_DIM, out],
                &stat,
                st,
            );
            w.floats(&format!("{prefix}.x_mean"), &[v, out], &x_mean, st);
        };
        net(
            &mut w,
            &mut rng,
            "delta_net",
            self.delta,
            3,
            0.01,
            vec![0.0; v * 3],
        );
        let skin = [0.85f32, 0.62, 0.52];
        let albedo_mean: Vec<f32> = (0..v)
            .flat_map(|i| {
                let tint = 0.05 * ((i as f32) * 0.37).sin();
                skin.map(|c| logit((c + tint).clamp(0.05, 0.95)))
            })
            .collect();
        net(
            &mut w,
            &mut rng,
            "color_net",
            self.color,
            3,
            0.1,
            albedo_mean,
        );
        let lbs_mean: Vec<f32> = mesh
            .weights
            .iter()
            .map(|&x| (1000.0 * (x + 1e-6)).ln())
            .collect();
        net(
            &mut w, &mut rng, "lbs_net", self.lbs, NUM_JOINTS, 0.05, lbs_mean,
        );

        let rc = normal(&mut rng, v * RENDER_CODE_DIM, 0.5);
        w.floats("render_code", &[v, RENDER_CODE_DIM], &rc, st);
        if let Some(h) = self.renderer_hidden {
            let input = renderer_input_width(2 * CODE_DIM + RENDER_CODE_DIM);
            for (k, (o, i)) in (1..).zip(renderer_layer_shapes(input, h)) {
                // torch.nn.Linear's default init: U(−1/√in, 1/√in).
                let bound = 1.0 / (i as f32).sqrt();
                let weight: Vec<f32> = (0..o * i)
                    .map(|_| rng.random_range(-bound..bound))
                    .collect();
                let bias: Vec<f32> = (0..o).map(|_| rng.random_range(-bound..bound)).collect();
                w.floats(
                    &format!("renderer.model.linear{k}.weight"),
                    &[o, i],
                    &weight,
                    st,
                );
                w.floats(&format!("renderer.model.linear{k}.bias"), &[o], &bias, st);
            }
        }
        let mut sh = normal(&mut rng, self.sh_views.max(1) * SH_DIM, 0.08);
        for row in sh.chunks_exact_mut(SH_DIM) {
            for ch in 0..3 {
                row[ch * 9] = 0.1;
                row[ch * 9 + 2] = 0.25; // light from +z
            }
        }
        w.f32("sh_coeffs", &[self.sh_views.max(1), SH_DIM], &sh);
        w.meta("format", FORMAT_TAG)
            .meta("hand_type", "right")
            .meta("name", "synthetic test avatar")
            .meta(
                "description",
                "generated geometry with random networks (for tests and benchmarks)",
            );
        w
    }

    /// Builds and loads the avatar on `device`.
    pub fn avatar(&self, device: &candle_core::Device) -> Result<Avatar, AvatarError> {
        let bytes = self.build().to_bytes().map_err(|e| AvatarError::File {
            path: "synthetic".into(),
            problem: e.to_string(),
        })?;
        Avatar::from_bytes("synthetic avatar", bytes, device)
    }
}

fn logit(p: f32) -> f32 {
    (p / (1.0 - p)).ln()
}

/// Geometry, skeleton and rig weights of a generated mesh.
pub struct SyntheticGeometry {
    pub verts: Vec<[f32; 3]>,
    pub faces: Vec<[u32; 3]>,
    pub joints: [[f32; 3]; NUM_JOINTS],
    /// `[V, 16]` skinning weights, rows summing to 1.
    pub weights: Vec<f32>,
}

/// A rough right hand in MANO's frame (fingers along −x, palm facing −y, thumb towards +z),
/// in metres. Own round numbers, not MANO's.
const TOY_JOINTS: [[f32; 3]; NUM_JOINTS] = [
    [0.090, 0.004, 0.004],
    [0.008, 0.0, 0.027],
    [-0.025, 0.0, 0.029],
    [-0.047, 0.0, 0.029],
    [0.0, 0.0, 0.003],
    [-0.032, 0.0, 0.0],
    [-0.055, 0.0, -0.003],
    [0.025, 0.0, -0.037],
    [0.008, 0.0, -0.048],
    [-0.007, 0.0, -0.056],
    [0.013, 0.0, -0.019],
    [-0.016, 0.0, -0.024],
    [-0.038, 0.0, -0.030],
    [0.070, -0.008, 0.032],
    [0.050, -0.008, 0.055],
    [0.030, -0.012, 0.070],
];
/// Fingertips of the five chains (index, middle, pinky, ring, thumb).
const TOY_TIPS: [[f32; 3]; 5] = [
    [-0.070, 0.0, 0.028],
    [-0.078, 0.0, -0.006],
    [-0.024, 0.0, -0.064],
    [-0.060, 0.0, -0.036],
    [0.006, -0.015, 0.090],
];

struct TubeBuilder {
    geo: SyntheticGeometry,
}

impl TubeBuilder {
    /// Adds a tube through `centres` with elliptic rings (`radii` = half-sizes along y and
    /// the side axis), capped at both ends by apex vertices, each vertex weighted by
    /// `weight_of(t)` with `t` in `[0, centres.len() − 1]` along the tube.
    fn add(
        &mut self,
        centres: &[[f32; 3]],
        radii: &[[f32; 2]],
        around: usize,
        cap_start: bool,
        weight_of: &dyn Fn(f32) -> [f32; NUM_JOINTS],
    ) {
        let base = self.geo.verts.len() as u32;
        let n = centres.len();
        for (r, c) in centres.iter().enumerate() {
            let prev = centres[r.saturating_sub(1)];
            let next = centres[(r + 1).min(n - 1)];
            let dir = normalize(sub(next, prev));
            // Side axis: perpendicular to the tube and to y (the palm normal).
            let side = normalize(cross(dir, [0.0, 1.0, 0.0]));
            let up = cross(side, dir);
            for k in 0..around {
                let a = k as f32 / around as f32 * std::f32::consts::TAU;
                let (s, co) = a.sin_cos();
                let p = std::array::from_fn(|d| {
                    c[d] + up[d] * radii[r][0] * co + side[d] * radii[r][1] * s
                });
                self.geo.verts.push(p);
                self.geo.weights.extend(weight_of(r as f32));
            }
        }
        let ring = |r: usize, k: usize| base + (r * around + k % around) as u32;
        for r in 0..n - 1 {
            for k in 0..around {
                self.geo
                    .faces
                    .push([ring(r, k), ring(r + 1, k + 1), ring(r + 1, k)]);
                self.geo
                    .faces
                    .push([ring(r, k), ring(r, k + 1), ring(r + 1, k + 1)]);
            }
        }
        let mut apex = |at: usize, p: [f32; 3], flip: bool, t: f32| {
            let idx = self.geo.verts.len() as u32;
            self.geo.verts.push(p);
            self.geo.weights.extend(weight_of(t));
            for k in 0..around {
                let f = [idx, ring(at, k), ring(at, k + 1)];
                self.geo
                    .faces
                    .push(if flip { [f[0], f[2], f[1]] } else { f });
            }
        };
        let end_dir = normalize(sub(centres[n - 1], centres[n - 2]));
        let tip = std::array::from_fn(|d| centres[n - 1][d] + end_dir[d] * radii[n - 1][0]);
        apex(n - 1, tip, false, (n - 1) as f32);
        if cap_start {
            let start_dir = normalize(sub(centres[0], centres[1]));
            let back = std::array::from_fn(|d| centres[0][d] + start_dir[d] * radii[0][0]);
            apex(0, back, true, 0.0);
        }
    }
}

fn one_hot(j: usize) -> [f32; NUM_JOINTS] {
    let mut w = [0.0; NUM_JOINTS];
    w[j] = 1.0;
    w
}

fn blend(a: usize, b: usize, t: f32) -> [f32; NUM_JOINTS] {
    let mut w = [0.0; NUM_JOINTS];
    w[a] += 1.0 - t;
    w[b] += t;
    w
}

/// The toy hand: palm plus five fingers.
pub fn toy_hand(around: usize, rings_per_bone: usize) -> SyntheticGeometry {
    let mut b = TubeBuilder {
        geo: SyntheticGeometry {
            verts: Vec::new(),
            faces: Vec::new(),
            joints: TOY_JOINTS,
            weights: Vec::new(),
        },
    };
    // Palm: from behind the wrist to the knuckles, wide along z, thin along y.
    let palm: Vec<[f32; 3]> = (0..=3 * rings_per_bone)
        .map(|i| {
            let t = i as f32 / (3 * rings_per_bone) as f32;
            [0.11 - t * 0.11, 0.0, -0.004]
        })
        .collect();
    let palm_r: Vec<[f32; 2]> = palm.iter().map(|_| [0.012, 0.045]).collect();
    b.add(&palm, &palm_r, around.max(8), true, &|_| one_hot(0));
    let chains = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12], [13, 14, 15]];
    for (c, chain) in chains.iter().enumerate() {
        let pts = [
            TOY_JOINTS[chain[0]],
            TOY_JOINTS[chain[1]],
            TOY_JOINTS[chain[2]],
            TOY_TIPS[c],
        ];
        let mut centres = Vec::new();
        for bone in 0..3 {
            for r in 0..rings_per_bone {
                let t = r as f32 / rings_per_bone as f32;
                centres.push(std::array::from_fn(|d| {
                    pts[bone][d] * (1.0 - t) + pts[bone + 1][d] * t
                }));
            }
        }
        centres.push(pts[3]);
        let radius = if c == 4 {
            0.011
        } else {
            0.009 - 0.001 * (c == 2) as i32 as f32
        };
        let radii: Vec<[f32; 2]> = (0..centres.len())
            .map(|i| {
                let taper = 1.0 - 0.25 * i as f32 / centres.len() as f32;
                [radius * taper, radius * taper]
            })
            .collect();
        let rpb = rings_per_bone as f32;
        let chain = *chain;
        b.add(&centres, &radii, around, true, &move |t: f32| {
            let bone = ((t / rpb) as usize).min(2);
            let local = t / rpb - bone as f32;
            // Blend with the previous bone near the start of each bone.
            if local < 0.25 {
                let prev = if bone == 0 { 0 } else { chain[bone - 1] };
                blend(prev, chain[bone], 0.5 + 2.0 * local)
            } else {
                one_hot(chain[bone])
            }
        });
    }
    b.geo
}

/// One tube from the wrist along the middle-finger chain (the paper-size mesh).
pub fn tube(rings: usize, around: usize) -> SyntheticGeometry {
    let mut b = TubeBuilder {
        geo: SyntheticGeometry {
            verts: Vec::new(),
            faces: Vec::new(),
            joints: TOY_JOINTS,
            weights: Vec::new(),
        },
    };
    let pts = [
        TOY_JOINTS[0],
        TOY_JOINTS[4],
        TOY_JOINTS[5],
        TOY_JOINTS[6],
        TOY_TIPS[1],
    ];
    let chain = [0usize, 4, 5, 6];
    let centres: Vec<[f32; 3]> = (0..rings)
        .map(|i| {
            let t = i as f32 / (rings - 1) as f32 * 4.0;
            let seg = (t as usize).min(3);
            let l = t - seg as f32;
            std::array::from_fn(|d| pts[seg][d] * (1.0 - l) + pts[seg + 1][d] * l)
        })
        .collect();
    let radii: Vec<[f32; 2]> = (0..rings).map(|_| [0.01, 0.02]).collect();
    let scale = 4.0 / (rings - 1) as f32;
    b.add(&centres, &radii, around, false, &move |t: f32| {
        let x = t * scale;
        let seg = (x as usize).min(3);
        let l = x - seg as f32;
        if seg > 0 && l < 0.2 {
            blend(chain[seg - 1], chain[seg], 0.5 + 2.5 * l)
        } else {
            one_hot(chain[seg])
        }
    });
    b.geo
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn normalize(a: [f32; 3]) -> [f32; 3] {
    let l = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt().max(1e-12);
    [a[0] / l, a[1] / l, a[2] / l]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_tube_has_xhand_counts() {
        let g = tube(385, 128);
        assert_eq!(g.verts.len(), 49_281);
        assert_eq!(g.faces.len(), 98_432);
        assert_eq!(g.weights.len(), 49_281 * NUM_JOINTS);
    }

    #[test]
    fn toy_hand_is_closed_and_wound_outwards() {
        let g = toy_hand(12, 4);
        let mut directed = std::collections::HashSet::new();
        for f in &g.faces {
            for k in 0..3 {
                assert!(
                    directed.insert((f[k], f[(k + 1) % 3])),
                    "edge used twice in one direction"
                );
            }
        }
        for &(a, b) in &directed {
            assert!(directed.contains(&(b, a)), "open edge {a}-{b}");
        }
        let volume: f32 = g
            .faces
            .iter()
            .map(|f| {
                let (a, b, c) = (
                    g.verts[f[0] as usize],
                    g.verts[f[1] as usize],
                    g.verts[f[2] as usize],
                );
                let bc = cross(b, c);
                (a[0] * bc[0] + a[1] * bc[1] + a[2] * bc[2]) / 6.0
            })
            .sum();
        assert!(
            volume > 0.0,
            "signed volume {volume} must be positive (outward faces)"
        );
    }

    #[test]
    fn toy_hand_weights_are_normalised() {
        let g = toy_hand(12, 4);
        for row in g.weights.chunks_exact(NUM_JOINTS) {
            let s: f32 = row.iter().sum();
            assert!((s - 1.0).abs() < 1e-6);
        }
        for f in &g.faces {
            assert!(f.iter().all(|&i| (i as usize) < g.verts.len()));
        }
    }
}
