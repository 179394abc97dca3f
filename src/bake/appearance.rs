//! The procedural "ground truth" the default avatar's networks learn: skin albedo with
//! variation (lighter palm, darker knuckles and creases, nails) and pose-dependent
//! displacement along the rest normal (knuckle wrinkles that bunch when a finger straightens,
//! a knuckle that stands out when it bends, finger and palm creases that deepen as the hand
//! closes), plus the reference shading the neural renderer learns (SH with a soft,
//! subsurface-like glow).

use crate::shading::sh_color;
use crate::{NUM_JOINTS, POSE_DIM, SH_DIM};

/// The four finger chains (MCP, PIP, DIP joints) and the thumb's, with their fingertip
/// index in `RiggedHand::tips` order (index, middle, pinky, ring, thumb).
const CHAINS: [([usize; 3], usize); 5] = [
    ([1, 2, 3], 0),
    ([4, 5, 6], 1),
    ([7, 8, 9], 2),
    ([10, 11, 12], 3),
    ([13, 14, 15], 4),
];
/// Back of the hand in MANO's rest frame (the palm faces −y).
const DORSAL: [f32; 3] = [0.0, 1.0, 0.0];

/// Joint angles the appearance depends on, read off a full (flat-relative) pose.
#[derive(Clone, Copy, Debug)]
pub struct HandState {
    /// Flexion per joint, radians (fingers: the z component; thumb: the rotation angle).
    pub flex: [f32; NUM_JOINTS],
    /// How closed the hand is, 0 (open) .. 1 (fist), from the four MCP joints.
    pub closing: f32,
}

impl HandState {
    /// From a flat-relative pose (`pose + pose_mean`).
    pub fn from_full_pose(full: &[f32; POSE_DIM]) -> Self {
        let mut flex = [0.0f32; NUM_JOINTS];
        for j in 1..NUM_JOINTS {
            let a = &full[3 * j..3 * j + 3];
            flex[j] = if j >= 13 {
                (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt()
            } else {
                a[2].max(0.0)
            };
        }
        let mcp = (flex[1] + flex[4] + flex[7] + flex[10]) / 4.0;
        Self {
            flex,
            closing: smoothstep(0.0, 1.3, mcp),
        }
    }
}

/// A finger joint close enough to a vertex to shape it.
#[derive(Clone, Copy, Debug)]
struct Site {
    joint: u8,
    /// Signed distance along the bone from the joint towards the tip, mm.
    s: f32,
    /// Radial falloff: 1 on the finger, 0 half a radius beyond its surface.
    fall: f32,
}

/// Per-vertex quantities of the rest mesh that do not depend on the pose.
pub struct Appearance {
    normals: Vec<[f32; 3]>,
    dorsal: Vec<f32>,
    palmar: Vec<f32>,
    site_start: Vec<u32>,
    sites: Vec<Site>,
    /// Gaussian profiles of the distal, proximal and thenar palm creases.
    palm_crease: Vec<[f32; 3]>,
    /// Albedo before pose-dependent crease darkening.
    base_albedo: Vec<[f32; 3]>,
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn norm(a: [f32; 3]) -> f32 {
    dot(a, a).sqrt()
}

fn scale(a: [f32; 3], s: f32) -> [f32; 3] {
    a.map(|x| x * s)
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    std::array::from_fn(|k| a[k] + (b[k] - a[k]) * t)
}

/// Distance from `p` to a polyline, in the rest hand's x–z plane (the palm's plane).
fn polyline_distance_xz(p: [f32; 3], line: &[[f32; 3]]) -> f32 {
    line.windows(2)
        .map(|w| {
            let (a, b) = ([w[0][0], w[0][2]], [w[1][0], w[1][2]]);
            let (ab, ap) = ([b[0] - a[0], b[1] - a[1]], [p[0] - a[0], p[2] - a[1]]);
            let len2 = (ab[0] * ab[0] + ab[1] * ab[1]).max(1e-12);
            let t = ((ap[0] * ab[0] + ap[1] * ab[1]) / len2).clamp(0.0, 1.0);
            let d = [ap[0] - t * ab[0], ap[1] - t * ab[1]];
            (d[0] * d[0] + d[1] * d[1]).sqrt()
        })
        .fold(f32::INFINITY, f32::min)
}

/// A quadratic Bézier curve sampled as a polyline.
fn bezier(a: [f32; 3], c: [f32; 3], b: [f32; 3]) -> Vec<[f32; 3]> {
    (0..=16)
        .map(|i| {
            let t = i as f32 / 16.0;
            std::array::from_fn(|k| {
                (1.0 - t) * (1.0 - t) * a[k] + 2.0 * t * (1.0 - t) * c[k] + t * t * b[k]
            })
        })
        .collect()
}

impl Appearance {
    /// Precomputes everything pose-independent for a rest mesh with outward `normals`,
    /// skinning `weights` `[V, 16]`, MANO `joints` and fingertips.
    pub fn new(
        verts: &[[f32; 3]],
        normals: &[[f32; 3]],
        weights: &[f32],
        joints: &[[f32; 3]; NUM_JOINTS],
        tips: &[[f32; 3]; 5],
    ) -> Self {
        let n = verts.len();
        let dominant: Vec<usize> = weights
            .chunks_exact(NUM_JOINTS)
            .map(|w| {
                (0..NUM_JOINTS)
                    .max_by(|&a, &b| w[a].total_cmp(&w[b]))
                    .unwrap_or(0)
            })
            .collect();
        // Bone axis of every finger joint (towards its child or tip) and the finger's radius
        // there (mean distance of its vertices from the axis).
        let mut axis = [[0.0f32; 3]; NUM_JOINTS];
        let mut length = [0.0f32; NUM_JOINTS];
        for (chain, tip) in CHAINS {
            for (k, &j) in chain.iter().enumerate() {
                let end = if k < 2 {
                    joints[chain[k + 1]]
                } else {
                    tips[tip]
                };
                let d = sub(end, joints[j]);
                length[j] = norm(d);
                axis[j] = scale(d, 1.0 / length[j].max(1e-6));
            }
        }
        let mut radius = [0.0f32; NUM_JOINTS];
        let mut count = [0usize; NUM_JOINTS];
        for (v, &j) in verts.iter().zip(&dominant) {
            if j == 0 {
                continue;
            }
            let d = sub(*v, joints[j]);
            let s = dot(d, axis[j]);
            radius[j] += norm(sub(d, scale(axis[j], s)));
            count[j] += 1;
        }
        for j in 1..NUM_JOINTS {
            radius[j] = if count[j] > 0 {
                radius[j] / count[j] as f32
            } else {
                0.008
            };
        }

        let mut site_start = Vec::with_capacity(n + 1);
        let mut sites = Vec::new();
        let mut dorsal = Vec::with_capacity(n);
        let mut palmar = Vec::with_capacity(n);
        for (v, nrm) in verts.iter().zip(normals) {
            site_start.push(sites.len() as u32);
            let up = dot(*nrm, DORSAL);
            dorsal.push(smoothstep(0.1, 0.6, up));
            palmar.push(smoothstep(0.1, 0.6, -up));
            for j in 1..NUM_JOINTS {
                let d = sub(*v, joints[j]);
                let s = dot(d, axis[j]);
                let r = norm(sub(d, scale(axis[j], s)));
                // Full strength on the finger's own surface, fading out just beyond it so
                // that neighbouring fingers stay untouched.
                let reach = radius[j] * 1.5;
                if s.abs() < 0.012 && r < reach {
                    sites.push(Site {
                        joint: j as u8,
                        s: s * 1000.0,
                        fall: 1.0 - smoothstep(radius[j] * 1.1, reach, r),
                    });
                }
            }
        }
        site_start.push(sites.len() as u32);

        // Palm creases, drawn between landmarks of the rest skeleton (x towards the wrist,
        // z towards the thumb).
        let j = joints;
        let off = |p: [f32; 3], dx: f32, dz: f32| [p[0] + dx, p[1], p[2] + dz];
        let distal = bezier(
            off(mix(j[1], j[4], 0.5), 0.013, 0.0),
            off(j[10], 0.020, 0.0),
            off(j[7], 0.022, -0.014),
        );
        let proximal = bezier(
            off(j[1], 0.014, 0.012),
            off(j[4], 0.030, 0.0),
            off(j[7], 0.042, -0.006),
        );
        let thenar = bezier(
            off(j[1], 0.016, 0.010),
            off(j[13], 0.004, -0.012),
            off(j[0], -0.008, 0.004),
        );
        let palm_crease: Vec<[f32; 3]> = verts
            .iter()
            .zip(&palmar)
            .zip(&dominant)
            .map(|((v, &p), &dom)| {
                // Only the palm itself (wrist-dominant vertices) carries these creases.
                let on_palm = if dom == 0 { p } else { 0.0 };
                [&distal, &proximal, &thenar].map(|line| {
                    let d = polyline_distance_xz(*v, line) * 1000.0;
                    on_palm * (-(d / 1.4).powi(2)).exp()
                })
            })
            .collect();

        // Albedo: skin with a lighter palm, slow variation, darker knuckles, nails.
        let skin = [0.74, 0.53, 0.43];
        let palm_skin = [0.84, 0.63, 0.55];
        let nail = [0.90, 0.72, 0.68];
        let nail_edge = [0.95, 0.90, 0.86];
        let mut base_albedo = Vec::with_capacity(n);
        for i in 0..n {
            let v = verts[i];
            let mut a = mix(skin, palm_skin, palmar[i] * 0.85);
            let wobble = 1.0
                + 0.035 * (v[0] * 180.0 + 1.3).sin() * (v[2] * 150.0 + 0.4).sin()
                + 0.02 * (v[1] * 420.0 + v[0] * 260.0).sin();
            a = scale(a, wobble);
            let mut knuckle = 0.0f32;
            let mut on_nail = 0.0f32;
            let (s0, s1) = (site_start[i] as usize, site_start[i + 1] as usize);
            for site in &sites[s0..s1] {
                let jj = site.joint as usize;
                knuckle += site.fall * (-(site.s / 5.0).powi(2)).exp();
                // Nails on the back of the distal phalanges, from 40 % of the bone onwards.
                if matches!(jj, 3 | 6 | 9 | 12 | 15) {
                    let u = site.s / (length[jj] * 1000.0).max(1.0);
                    let nail_here = smoothstep(0.35, 0.45, u)
                        * smoothstep(0.45, 0.75, dot(normals[i], DORSAL))
                        * smoothstep(0.2, 0.5, site.fall);
                    let edge = smoothstep(0.85, 0.95, u);
                    a = mix(a, mix(nail, nail_edge, edge), nail_here);
                    on_nail = on_nail.max(nail_here);
                }
            }
            // Knuckles a little darker (not where a nail is).
            a = scale(
                a,
                1.0 - 0.12 * dorsal[i] * knuckle.min(1.0) * (1.0 - on_nail),
            );
            base_albedo.push(a.map(|c| c.clamp(0.02, 0.98)));
        }

        Self {
            normals: normals.to_vec(),
            dorsal,
            palmar,
            site_start,
            sites,
            palm_crease,
            base_albedo,
        }
    }

    /// Number of vertices.
    pub fn len(&self) -> usize {
        self.normals.len()
    }

    /// Whether there are no vertices.
    pub fn is_empty(&self) -> bool {
        self.normals.is_empty()
    }

    fn sites(&self, v: usize) -> &[Site] {
        &self.sites[self.site_start[v] as usize..self.site_start[v + 1] as usize]
    }

    /// Displacement along the rest normal, millimetres (negative = into the skin).
    pub fn displacement_mm(&self, v: usize, state: &HandState) -> f32 {
        let mut d = 0.0f32;
        for site in self.sites(v) {
            let j = site.joint as usize;
            let flex = state.flex[j];
            let s = site.s;
            let (wavelength, width) = match j {
                1 | 4 | 7 | 10 | 13 => (3.6, 5.0),
                3 | 6 | 9 | 12 | 15 => (2.6, 3.0),
                _ => (3.2, 4.0),
            };
            let window = (-(s / width).powi(2)).exp() * site.fall;
            // Back of the finger: wrinkles bunch up as it straightens, flatten as it bends,
            // and the knuckle stands out when bent.
            let bunch = 0.32 * (1.0 - smoothstep(0.0, 1.1, flex));
            let wrinkles = bunch * (std::f32::consts::TAU * s / wavelength).cos();
            let knuckle = 0.55 * smoothstep(0.2, 1.5, flex) * (-(s / 5.5).powi(2)).exp();
            d += self.dorsal[v] * (window * wrinkles + knuckle * site.fall);
            // Palm side: a flexion crease that deepens as the joint bends.
            let crease_depth = 0.12 + 0.5 * smoothstep(0.0, 1.4, flex);
            d -= self.palmar[v] * site.fall * crease_depth * (-(s / 1.1).powi(2)).exp();
        }
        let [distal, proximal, thenar] = self.palm_crease[v];
        let c = state.closing;
        let thumb = smoothstep(0.0, 1.0, state.flex[13]);
        d -= (0.15 + 0.6 * c) * distal + (0.15 + 0.55 * c) * proximal;
        d -= (0.15 + 0.3 * c + 0.35 * thumb) * thenar;
        d
    }

    /// Displacement vector (metres, template space) of vertex `v`.
    pub fn displacement(&self, v: usize, state: &HandState) -> [f32; 3] {
        scale(self.normals[v], self.displacement_mm(v, state) * 1e-3)
    }

    /// Albedo (RGB, 0..1): the static albedo darkened in creases as they deepen.
    pub fn albedo(&self, v: usize, state: &HandState) -> [f32; 3] {
        let [distal, proximal, thenar] = self.palm_crease[v];
        let c = state.closing;
        let mut crease = (0.3 + 0.7 * c) * (distal + proximal) + (0.3 + 0.5 * c) * thenar;
        for site in self.sites(v) {
            let flex = smoothstep(0.0, 1.4, state.flex[site.joint as usize]);
            crease +=
                self.palmar[v] * site.fall * (0.3 + 0.7 * flex) * (-(site.s / 1.1).powi(2)).exp();
        }
        scale(self.base_albedo[v], 1.0 - 0.22 * crease.min(1.0))
    }
}

/// The reference shading the neural renderer learns: XHand's SH colour plus a soft,
/// reddish glow where the irradiance is half-way (around the light's terminator, like light
/// bleeding through skin). It depends only on what the renderer sees per pixel — the SH
/// colour and the albedo (their ratio is the irradiance) — so it is learnable under any SH
/// lighting; terms needing the light or true view direction are not (the renderer gets
/// neither: XHand's ray feature is not the view direction). `normal` is outward.
pub fn reference_shade(albedo: [f32; 3], normal: [f32; 3], sh: &[f32; SH_DIM]) -> [f32; 3] {
    let base = sh_color(albedo, normal, sh).map(|c| c.clamp(0.0, 1.0));
    let irradiance: f32 = (0..3).map(|k| base[k] / albedo[k].max(1e-3)).sum::<f32>() / 3.0;
    let l = irradiance.clamp(0.0, 1.0);
    let glow = 4.0 * l * (1.0 - l);
    let scatter = [0.30, 0.09, 0.05];
    std::array::from_fn(|k| (base[k] + albedo[k] * scatter[k] * glow).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shading::directional_sh;

    #[test]
    fn skin_glows_red_around_the_terminator_only() {
        let sh = directional_sh([0.0, 0.0, 1.0], 0.5, 0.5);
        let a = [0.7, 0.5, 0.4];
        // Half-lit (normal across the light): a red glow on top of SH.
        let side = [0.0, 1.0, 0.0];
        let plain = sh_color(a, side, &sh);
        let rich = reference_shade(a, side, &sh);
        assert!(rich[0] > plain[0] + 0.03, "{rich:?} vs {plain:?}");
        assert!(rich[0] - plain[0] > rich[2] - plain[2]);
        // Unlit: nothing to scatter.
        let dark = reference_shade(
            a,
            [0.0, 0.0, -1.0],
            &directional_sh([0.0, 0.0, 1.0], 0.5, 0.0),
        );
        assert!(dark.iter().all(|&c| c < 0.02), "{dark:?}");
    }
}
