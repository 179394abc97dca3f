//! Mesh operations on plain arrays: linear blend skinning, placement, XHand's vertex
//! normals, vertex-face adjacency, subdivision and the CPU reference rasteriser.

pub mod decimate;
pub mod export;
pub mod raster;
pub mod subdivide;

use crate::NUM_JOINTS;
use crate::skeleton::JointTransforms;

/// Linear blend skinning of `verts + delta` (XHand repose L64-70):
/// `v' = (Σ_j w_vj A_j) · [v + D_v; 1]`. `weights` is `[V, 16]` row-major.
pub fn skin(
    verts: &[[f32; 3]],
    delta: &[f32],
    weights: &[f32],
    transforms: &JointTransforms,
) -> Vec<[f32; 3]> {
    let a = transforms.skinning_f32();
    verts
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let w = &weights[i * NUM_JOINTS..(i + 1) * NUM_JOINTS];
            // T_v = Σ_j w_vj A_j, column-major 4x4: element (row r, col c) at c*4 + r.
            let mut t = [0.0f32; 16];
            for (aj, &wj) in a.iter().zip(w) {
                for (tk, ak) in t.iter_mut().zip(aj) {
                    *tk += wj * ak;
                }
            }
            let p = [
                v[0] + delta[3 * i],
                v[1] + delta[3 * i + 1],
                v[2] + delta[3 * i + 2],
            ];
            std::array::from_fn(|r| t[r] * p[0] + t[4 + r] * p[1] + t[8 + r] * p[2] + t[12 + r])
        })
        .collect()
}

/// Places skinned vertices in the world: optional x-mirror, then `· scale + trans`
/// (XHand.py L152-154).
pub fn place(posed: &mut [[f32; 3]], x_sign: f32, scale: f32, trans: [f32; 3]) {
    for v in posed.iter_mut() {
        v[0] *= x_sign;
        for k in 0..3 {
            v[k] = v[k] * scale + trans[k];
        }
    }
}

/// Eps of XHand's `get_normals` normalisation (models/utils.py L619-659).
pub const NORMAL_EPS: f32 = 1e-6;

/// Area-weighted vertex normals: each face adds `(v1 − v0) × (v2 − v0)` to its three
/// vertices, then `n / max(‖n‖, 1e-6)`. Unreferenced vertices get exactly 0.
pub fn vertex_normals(vertices: &[[f32; 3]], faces: &[[u32; 3]]) -> Vec<[f32; 3]> {
    let mut acc = vec![[0.0f32; 3]; vertices.len()];
    for f in faces {
        let n = face_normal(vertices, f);
        for &i in f {
            let a = &mut acc[i as usize];
            a[0] += n[0];
            a[1] += n[1];
            a[2] += n[2];
        }
    }
    acc.into_iter()
        .map(|n| normalize_or_zero(n, NORMAL_EPS))
        .collect()
}

/// The un-normalised normal `(v1 − v0) × (v2 − v0)` of a face.
pub fn face_normal(vertices: &[[f32; 3]], f: &[u32; 3]) -> [f32; 3] {
    let v0 = vertices[f[0] as usize];
    let v1 = vertices[f[1] as usize];
    let v2 = vertices[f[2] as usize];
    let e1 = [v1[0] - v0[0], v1[1] - v0[1], v1[2] - v0[2]];
    let e2 = [v2[0] - v0[0], v2[1] - v0[1], v2[2] - v0[2]];
    [
        e1[1] * e2[2] - e1[2] * e2[1],
        e1[2] * e2[0] - e1[0] * e2[2],
        e1[0] * e2[1] - e1[1] * e2[0],
    ]
}

fn normalize_or_zero(n: [f32; 3], eps: f32) -> [f32; 3] {
    let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt().max(eps);
    [n[0] / len, n[1] / len, n[2] / len]
}

/// Axis-aligned bounding box `(min, max)`; a zero box for an empty slice.
pub fn bounding_box(vertices: &[[f32; 3]]) -> ([f32; 3], [f32; 3]) {
    if vertices.is_empty() {
        return ([0.0; 3], [0.0; 3]);
    }
    let mut lo = [f32::INFINITY; 3];
    let mut hi = [f32::NEG_INFINITY; 3];
    for v in vertices {
        for k in 0..3 {
            lo[k] = lo[k].min(v[k]);
            hi[k] = hi[k].max(v[k]);
        }
    }
    (lo, hi)
}

/// Faces incident to each vertex in compressed sparse row form: the faces of vertex `v`
/// are `faces[offsets[v]..offsets[v + 1]]`. Lets a GPU gather normals per vertex without
/// float atomics.
#[derive(Clone, Debug, Default)]
pub struct VertexFaces {
    pub offsets: Vec<u32>,
    pub faces: Vec<u32>,
}

impl VertexFaces {
    /// Builds the adjacency of `num_vertices` vertices. A face listing a vertex twice
    /// (degenerate) appears twice in its list, as its normal is added twice by XHand too.
    pub fn new(num_vertices: usize, faces: &[[u32; 3]]) -> Self {
        let mut counts = vec![0u32; num_vertices + 1];
        for f in faces {
            for &v in f {
                counts[v as usize + 1] += 1;
            }
        }
        for i in 0..num_vertices {
            counts[i + 1] += counts[i];
        }
        let offsets = counts.clone();
        let mut fill = counts;
        let mut list = vec![0u32; faces.len() * 3];
        for (fi, f) in faces.iter().enumerate() {
            for &v in f {
                let slot = &mut fill[v as usize];
                list[*slot as usize] = fi as u32;
                *slot += 1;
            }
        }
        Self {
            offsets,
            faces: list,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacency_lists_each_corner_once() {
        let faces = [[0u32, 1, 2], [2, 1, 3], [3, 3, 1]];
        let adj = VertexFaces::new(5, &faces);
        assert_eq!(adj.offsets, vec![0, 1, 4, 6, 9, 9]);
        let of = |v: usize| &adj.faces[adj.offsets[v] as usize..adj.offsets[v + 1] as usize];
        assert_eq!(of(1), &[0, 1, 2]);
        assert_eq!(of(3), &[1, 2, 2]);
        assert!(of(4).is_empty());
    }

    #[test]
    fn normals_of_a_square_point_up() {
        let v = [
            [0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [1.0, 1.0, 0.0],
            [5.0, 5.0, 5.0],
        ];
        let n = vertex_normals(&v, &[[0, 1, 2], [2, 1, 3]]);
        for ni in &n[..4] {
            assert!((ni[2] - 1.0).abs() < 1e-6);
        }
        assert_eq!(n[4], [0.0; 3]);
    }
}
