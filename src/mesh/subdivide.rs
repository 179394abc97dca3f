//! One round of triangle subdivision with XHand's vertex and face order (trimesh's
//! `subdivide_loop`, as XHand builds its 49,281-vertex template; spec §9): old ("even")
//! vertices first, then one new ("odd") vertex per unique edge, edges sorted by
//! (larger index, smaller index); old face `i` becomes faces `4i..4i+3`.

use std::collections::HashMap;

/// How new vertex positions are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Loop subdivision (smooths old vertices too), as XHand's template.
    Loop,
    /// Plain edge midpoints; old vertices stay put.
    Midpoint,
}

/// A subdivided mesh and, for each new vertex, the edge it splits.
#[derive(Clone, Debug)]
pub struct Subdivided {
    pub verts: Vec<[f32; 3]>,
    pub faces: Vec<[u32; 3]>,
    /// Endpoints `(a, b)` of the edge that made vertex `old_count + i`.
    pub edge_vertices: Vec<[u32; 2]>,
}

impl Subdivided {
    /// Carries a per-vertex attribute (`width` floats per vertex) onto the new mesh: old
    /// vertices keep theirs, new vertices get the plain average of the edge's endpoints
    /// (XHand's `subdivide_weight`, repose.py L8-18).
    pub fn carry(&self, attr: &[f32], width: usize) -> Vec<f32> {
        let mut out = attr.to_vec();
        out.reserve(self.edge_vertices.len() * width);
        for &[a, b] in &self.edge_vertices {
            for k in 0..width {
                out.push(0.5 * (attr[a as usize * width + k] + attr[b as usize * width + k]));
            }
        }
        out
    }
}

/// Subdivides once. Faces must index into `verts`.
pub fn subdivide(verts: &[[f32; 3]], faces: &[[u32; 3]], scheme: Scheme) -> Subdivided {
    // Unique edges with the opposite vertices of their faces.
    let mut edge_opposites: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
    for f in faces {
        for k in 0..3 {
            let (a, b, c) = (f[k], f[(k + 1) % 3], f[(k + 2) % 3]);
            edge_opposites
                .entry((a.min(b), a.max(b)))
                .or_default()
                .push(c);
        }
    }
    let mut edges: Vec<(u32, u32)> = edge_opposites.keys().copied().collect();
    edges.sort_unstable_by_key(|&(lo, hi)| (hi, lo));
    let n_old = verts.len() as u32;
    let index: HashMap<(u32, u32), u32> = edges
        .iter()
        .enumerate()
        .map(|(i, &e)| (e, n_old + i as u32))
        .collect();

    let vf = |i: u32| {
        let v = verts[i as usize];
        [v[0] as f64, v[1] as f64, v[2] as f64]
    };
    let to_f32 = |p: [f64; 3]| [p[0] as f32, p[1] as f32, p[2] as f32];

    // New (odd) vertices.
    let odd: Vec<[f32; 3]> = edges
        .iter()
        .map(|&(a, b)| {
            let (pa, pb) = (vf(a), vf(b));
            let opp = &edge_opposites[&(a, b)];
            if scheme == Scheme::Loop && opp.len() == 2 {
                let (pc, pd) = (vf(opp[0]), vf(opp[1]));
                to_f32(std::array::from_fn(|k| {
                    0.375 * (pa[k] + pb[k]) + 0.125 * (pc[k] + pd[k])
                }))
            } else {
                to_f32(std::array::from_fn(|k| 0.5 * (pa[k] + pb[k])))
            }
        })
        .collect();

    // Old (even) vertices.
    let even: Vec<[f32; 3]> = match scheme {
        Scheme::Midpoint => verts.to_vec(),
        Scheme::Loop => {
            let mut neighbours: Vec<Vec<u32>> = vec![Vec::new(); verts.len()];
            let mut boundary: Vec<Vec<u32>> = vec![Vec::new(); verts.len()];
            for (&(a, b), opp) in &edge_opposites {
                neighbours[a as usize].push(b);
                neighbours[b as usize].push(a);
                if opp.len() == 1 {
                    boundary[a as usize].push(b);
                    boundary[b as usize].push(a);
                }
            }
            (0..verts.len())
                .map(|i| {
                    let p = vf(i as u32);
                    if !boundary[i].is_empty() {
                        if boundary[i].len() != 2 {
                            return verts[i];
                        }
                        let (q, r) = (vf(boundary[i][0]), vf(boundary[i][1]));
                        return to_f32(std::array::from_fn(|k| {
                            0.75 * p[k] + 0.125 * (q[k] + r[k])
                        }));
                    }
                    let k = neighbours[i].len();
                    if k == 0 {
                        return verts[i];
                    }
                    let kf = k as f64;
                    let c = 3.0 + 2.0 * (2.0 * std::f64::consts::PI / kf).cos();
                    let beta = (40.0 - c * c) / (64.0 * kf);
                    let mut sum = [0.0f64; 3];
                    for &n in &neighbours[i] {
                        let q = vf(n);
                        for d in 0..3 {
                            sum[d] += q[d];
                        }
                    }
                    to_f32(std::array::from_fn(|d| {
                        (1.0 - kf * beta) * p[d] + beta * sum[d]
                    }))
                })
                .collect()
        }
    };

    let mid = |a: u32, b: u32| index[&(a.min(b), a.max(b))];
    let mut new_faces = Vec::with_capacity(faces.len() * 4);
    for f in faces {
        let (m01, m12, m20) = (mid(f[0], f[1]), mid(f[1], f[2]), mid(f[2], f[0]));
        new_faces.push([f[0], m01, m20]);
        new_faces.push([m01, f[1], m12]);
        new_faces.push([m20, m12, f[2]]);
        new_faces.push([m01, m12, m20]);
    }

    let mut all = even;
    all.extend(odd);
    Subdivided {
        verts: all,
        faces: new_faces,
        edge_vertices: edges.into_iter().map(|(a, b)| [a, b]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_v_plus_e_and_four_faces() {
        // A square of two triangles: 4 verts, 5 edges.
        let v = [
            [0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [1.0, 1.0, 0.0],
        ];
        let f = [[0u32, 1, 2], [2, 1, 3]];
        let s = subdivide(&v, &f, Scheme::Loop);
        assert_eq!(s.verts.len(), 9);
        assert_eq!(s.faces.len(), 8);
        // Edge order: sorted by (max, min): (0,1) (0,2) (1,2) (1,3) (2,3).
        assert_eq!(
            s.edge_vertices,
            vec![[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
        );
        // Boundary edge → midpoint; interior edge (1,2) → 3/8 + 1/8 rule.
        assert_eq!(s.verts[4], [0.5, 0.0, 0.0]);
        let m12 = s.verts[6];
        assert!((m12[0] - (0.375 * 1.0 + 0.125 * 1.0)).abs() < 1e-6);
        let w = s.carry(&[0.0, 1.0, 2.0, 3.0], 1);
        assert_eq!(w[4..], [0.5, 1.0, 1.5, 2.0, 2.5]);
    }
}
