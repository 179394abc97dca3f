//! Vertex welding and shortest-edge-collapse decimation on plain arrays. glTF meshes split
//! vertices along UV seams, so they are welded into one connected surface before they are
//! subdivided; decimation then brings the face count down while keeping the surface
//! manifold, its topology and its face orientation.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::face_normal;

/// A welded mesh with the maps between original and new vertices.
#[derive(Clone, Debug)]
pub struct Welded {
    pub verts: Vec<[f32; 3]>,
    pub faces: Vec<[u32; 3]>,
    /// For each new vertex, the original vertex that represents it (the first in index order).
    pub source: Vec<u32>,
    /// For each original vertex, its new index.
    pub remap: Vec<u32>,
}

impl Welded {
    /// Carries a per-vertex attribute (`[V, width]` over the original vertices) onto the
    /// welded mesh: each new vertex gets the mean over all originals merged into it.
    /// Panics if `attr` does not have `V * width` floats.
    pub fn carry(&self, attr: &[f32], width: usize) -> Vec<f32> {
        assert_eq!(
            attr.len(),
            self.remap.len() * width,
            "attribute is not [V, width]"
        );
        let mut sum = vec![0.0f32; self.verts.len() * width];
        let mut count = vec![0u32; self.verts.len()];
        for (old, &new) in self.remap.iter().enumerate() {
            count[new as usize] += 1;
            for k in 0..width {
                sum[new as usize * width + k] += attr[old * width + k];
            }
        }
        for (row, &n) in sum.chunks_mut(width.max(1)).zip(&count) {
            row.iter_mut().for_each(|x| *x /= n as f32);
        }
        sum
    }
}

fn dist2(p: &[f32; 3], q: &[f32; 3]) -> f32 {
    (0..3).map(|k| (p[k] - q[k]) * (p[k] - q[k])).sum()
}

/// Merges vertices within `tolerance` of an earlier representative vertex (a hash grid of
/// cell size `tolerance`, neighbouring cells searched; a tolerance ≤ 0 merges only equal
/// positions). Deterministic: representatives are taken in index order and a vertex joins
/// the lowest-indexed one in reach. Faces that become degenerate, or that index past
/// `verts`, are dropped.
pub fn weld(verts: &[[f32; 3]], faces: &[[u32; 3]], tolerance: f32) -> Welded {
    let exact = tolerance.is_nan() || tolerance <= 0.0;
    let cell = |p: &[f32; 3]| match exact {
        true => p.map(|x| x.to_bits() as i64),
        false => p.map(|x| (x / tolerance).floor() as i64),
    };
    let (reach, tol2) = if exact {
        (0, 0.0)
    } else {
        (1, tolerance * tolerance)
    };
    let mut grid: HashMap<[i64; 3], Vec<u32>> = HashMap::new();
    let (mut out, mut source, mut remap) = (Vec::new(), Vec::new(), Vec::new());
    for (i, p) in verts.iter().enumerate() {
        let c = cell(p);
        let mut best: Option<u32> = None;
        for d in 0..27i64 {
            let off = [d / 9 % 3 - 1, d / 3 % 3 - 1, d % 3 - 1];
            if off.iter().any(|&o| o.abs() > reach) {
                continue;
            }
            let key = std::array::from_fn(|k| c[k].wrapping_add(off[k]));
            for &r in grid.get(&key).into_iter().flatten() {
                let close = dist2(&verts[source[r as usize] as usize], p) <= tol2;
                if close && best.is_none_or(|b| r < b) {
                    best = Some(r);
                }
            }
        }
        remap.push(best.unwrap_or_else(|| {
            let n = out.len() as u32;
            out.push(*p);
            source.push(i as u32);
            grid.entry(c).or_default().push(n);
            n
        }));
    }
    let faces = faces
        .iter()
        .filter_map(|f| {
            let [Some(a), Some(b), Some(c)] = f.map(|v| remap.get(v as usize).copied()) else {
                return None;
            };
            (a != b && b != c && a != c).then_some([a, b, c])
        })
        .collect();
    Welded {
        verts: out,
        faces,
        source,
        remap,
    }
}

/// A decimated mesh with its per-vertex attributes (`[V', width]`).
#[derive(Clone, Debug)]
pub struct Decimated {
    pub verts: Vec<[f32; 3]>,
    pub faces: Vec<[u32; 3]>,
    pub attrs: Vec<f32>,
}

/// Working mesh of the decimator: faces stay in input order with an alive flag.
struct Mesh {
    pos: Vec<[f32; 3]>,
    attrs: Vec<f32>,
    width: usize,
    faces: Vec<[u32; 3]>,
    alive: Vec<bool>,
    /// Live faces around each vertex.
    vfaces: Vec<Vec<u32>>,
}

impl Mesh {
    /// Neighbours of `v`, sorted, each with the number of live faces on the edge to it.
    fn neighbours(&self, v: u32) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = Vec::new();
        for &f in &self.vfaces[v as usize] {
            for w in self.faces[f as usize] {
                match out.iter_mut().find(|e| e.0 == w) {
                    Some(e) => e.1 += 1,
                    None if w != v => out.push((w, 1)),
                    None => {}
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// Whether collapsing edge `a`–`b` to its midpoint keeps the mesh manifold, keeps its
    /// topology and boundary, and neither flips nor flattens a surviving face.
    fn can_collapse(&self, a: u32, b: u32) -> bool {
        let shared: Vec<u32> = self.vfaces[a as usize]
            .iter()
            .copied()
            .filter(|&f| self.faces[f as usize].contains(&b))
            .collect();
        let (na, nb) = (self.neighbours(a), self.neighbours(b));
        let on_border = |n: &[(u32, u32)]| n.iter().any(|e| e.1 != 2);
        let non_manifold = na.iter().chain(&nb).any(|e| e.1 > 2);
        let interior = shared.len() == 2;
        if shared.is_empty() || non_manifold || (interior && (on_border(&na) || on_border(&nb))) {
            return false;
        }
        // Link condition: the common neighbours are exactly the edge's opposite vertices.
        let third = |f: u32| {
            self.faces[f as usize]
                .into_iter()
                .find(|&w| w != a && w != b)
        };
        let mut opposite: Vec<u32> = shared.iter().filter_map(|&f| third(f)).collect();
        opposite.sort_unstable();
        let common: Vec<u32> = na
            .iter()
            .map(|e| e.0)
            .filter(|w| nb.binary_search_by_key(w, |e| e.0).is_ok())
            .collect();
        if common != opposite {
            return false;
        }
        // A boundary "ear" (both other edges on the boundary too) would vanish.
        let count = |n: &[(u32, u32)], w: u32| n.iter().find(|e| e.0 == w).map_or(0, |e| e.1);
        if !interior && count(&na, opposite[0]) == 1 && count(&nb, opposite[0]) == 1 {
            return false;
        }
        let mid = self.midpoint(a, b);
        let mut moved = Vec::new();
        for &f in self.vfaces[a as usize]
            .iter()
            .chain(&self.vfaces[b as usize])
        {
            let face = self.faces[f as usize];
            if face.contains(&a) && face.contains(&b) {
                continue;
            }
            let old = face.map(|i| self.pos[i as usize]);
            let new = face.map(|i| {
                if i == a || i == b {
                    mid
                } else {
                    self.pos[i as usize]
                }
            });
            let (n0, n1) = (face_normal(&old, &[0, 1, 2]), face_normal(&new, &[0, 1, 2]));
            let (l0, l1) = (dist2(&n0, &[0.0; 3]).sqrt(), dist2(&n1, &[0.0; 3]).sqrt());
            let dot = (0..3).map(|k| n0[k] * n1[k]).sum::<f32>() / (l0 * l1);
            let longest = (0..3)
                .map(|k| dist2(&new[k], &new[(k + 1) % 3]))
                .fold(0.0, f32::max);
            let kept_shape = dot >= 0.2 && l1 > 1e-6 * longest; // false on NaN too
            if !kept_shape {
                return false;
            }
            let mut key = face.map(|i| if i == b { a } else { i });
            key.sort_unstable();
            moved.push(key);
        }
        // Two faces on the same three vertices (e.g. a collapsing tetrahedron).
        moved.sort_unstable();
        moved.windows(2).all(|w| w[0] != w[1])
    }

    fn length_bits(&self, a: u32, b: u32) -> u32 {
        dist2(&self.pos[a as usize], &self.pos[b as usize]).to_bits()
    }

    fn midpoint(&self, a: u32, b: u32) -> [f32; 3] {
        let (p, q) = (self.pos[a as usize], self.pos[b as usize]);
        std::array::from_fn(|k| 0.5 * (p[k] + q[k]))
    }

    /// Collapses `b` into `a` at the edge midpoint; returns the number of faces removed.
    fn collapse(&mut self, a: u32, b: u32) -> usize {
        let (ai, bi, w) = (a as usize, b as usize, self.width);
        self.pos[ai] = self.midpoint(a, b);
        for k in 0..w {
            self.attrs[ai * w + k] = 0.5 * (self.attrs[ai * w + k] + self.attrs[bi * w + k]);
        }
        let mut removed = 0;
        for f in std::mem::take(&mut self.vfaces[bi]) {
            let face = &mut self.faces[f as usize];
            if face.contains(&a) {
                self.alive[f as usize] = false;
                removed += 1;
                for v in *face {
                    self.vfaces[v as usize].retain(|&g| g != f);
                }
            } else {
                face.iter_mut().filter(|v| **v == b).for_each(|v| *v = a);
                self.vfaces[ai].push(f);
            }
        }
        removed
    }
}

/// Decimates by repeatedly collapsing the shortest legal edge to its midpoint (endpoint
/// attributes averaged, so e.g. skinning weights stay convex combinations) until at most
/// `target_faces` faces remain or no legal collapse is left. Collapses that break the link
/// condition, flip or flatten a face, touch a non-manifold edge, or join the boundary to the
/// interior are refused. Input faces with a repeated index are dropped, surviving faces
/// keep their winding, and unreferenced vertices are removed. `attrs` is `[V, width]`.
pub fn decimate(
    verts: &[[f32; 3]],
    faces: &[[u32; 3]],
    attrs: &[f32],
    width: usize,
    target_faces: usize,
) -> Result<Decimated, String> {
    let n = verts.len();
    if u32::try_from(n).is_err() {
        return Err(format!("{n} vertices do not fit u32 indices"));
    }
    if Some(attrs.len()) != n.checked_mul(width) {
        return Err(format!(
            "attrs has {} floats, expected {n} vertices x width {width}",
            attrs.len()
        ));
    }
    if let Some((i, f)) = faces
        .iter()
        .enumerate()
        .find(|(_, f)| f.iter().any(|&v| v as usize >= n))
    {
        return Err(format!("face {i} {f:?} indexes past the {n} vertices"));
    }
    let alive: Vec<bool> = faces
        .iter()
        .map(|f| f[0] != f[1] && f[1] != f[2] && f[0] != f[2])
        .collect();
    let mut vfaces = vec![Vec::new(); n];
    for (fi, f) in faces.iter().enumerate().filter(|(fi, _)| alive[*fi]) {
        f.iter().for_each(|&v| vfaces[v as usize].push(fi as u32));
    }
    let mut live = alive.iter().filter(|&&x| x).count();
    let (pos, attrs, faces) = (verts.to_vec(), attrs.to_vec(), faces.to_vec());
    let mut m = Mesh {
        pos,
        attrs,
        width,
        faces,
        alive,
        vfaces,
    };

    // Min-heap on (squared length bits, a, b): non-negative f32 bits sort like the values.
    // An entry is stale once its length or either endpoint's neighbourhood (version) changed.
    let mut version = vec![0u32; n];
    let mut heap = BinaryHeap::new();
    let push = |heap: &mut BinaryHeap<_>, m: &Mesh, version: &[u32], around: &[u32]| {
        let mut edges: Vec<(u32, u32)> = around
            .iter()
            .flat_map(|&v| {
                m.neighbours(v)
                    .into_iter()
                    .map(move |(w, _)| (v.min(w), v.max(w)))
            })
            .collect();
        edges.sort_unstable();
        edges.dedup();
        for (a, b) in edges {
            let len = m.length_bits(a, b);
            heap.push(Reverse((
                len,
                a,
                b,
                version[a as usize],
                version[b as usize],
            )));
        }
    };
    push(&mut heap, &m, &version, &(0..n as u32).collect::<Vec<_>>());
    while live > target_faces {
        let Some(Reverse((len, a, b, va, vb))) = heap.pop() else {
            break;
        };
        let stale = version[a as usize] != va || version[b as usize] != vb;
        if stale || m.length_bits(a, b) != len || !m.can_collapse(a, b) {
            continue;
        }
        live -= m.collapse(a, b);
        let ring: Vec<u32> = std::iter::once(a)
            .chain(m.neighbours(a).into_iter().map(|e| e.0))
            .collect();
        for &v in ring.iter().chain([&b]) {
            version[v as usize] = version[v as usize].wrapping_add(1);
        }
        push(&mut heap, &m, &version, &ring);
    }

    let kept: Vec<[u32; 3]> = (0..m.faces.len())
        .filter(|&f| m.alive[f])
        .map(|f| m.faces[f])
        .collect();
    let mut used = vec![false; n];
    kept.iter().flatten().for_each(|&v| used[v as usize] = true);
    let (mut index, mut out_v, mut out_a) = (vec![0u32; n], Vec::new(), Vec::new());
    for v in (0..n).filter(|&v| used[v]) {
        index[v] = out_v.len() as u32;
        out_v.push(m.pos[v]);
        out_a.extend_from_slice(&m.attrs[v * width..(v + 1) * width]);
    }
    let faces = kept.iter().map(|f| f.map(|v| index[v as usize])).collect();
    Ok(Decimated {
        verts: out_v,
        faces,
        attrs: out_a,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    /// Lat-long unit sphere whose seam column (longitude 0 = 2π) is duplicated, as glTF
    /// exporters split it for UVs. Faces wind counter-clockwise seen from outside.
    fn seam_sphere(n_lat: usize, n_lon: usize) -> (Vec<[f32; 3]>, Vec<[u32; 3]>) {
        let mut v = vec![[0.0, 0.0, 1.0]];
        for i in 1..n_lat {
            let (st, ct) = (PI * i as f32 / n_lat as f32).sin_cos();
            for j in 0..=n_lon {
                let (sp, cp) = (2.0 * PI * j as f32 / n_lon as f32).sin_cos();
                v.push([st * cp, st * sp, ct]);
            }
        }
        v.push([0.0, 0.0, -1.0]);
        let ring = |i: usize, j: usize| (1 + (i - 1) * (n_lon + 1) + j) as u32;
        let south = (v.len() - 1) as u32;
        let mut f = Vec::new();
        for j in 0..n_lon {
            f.push([0, ring(1, j), ring(1, j + 1)]);
            for i in 1..n_lat - 1 {
                let (a, b, c, d) = (
                    ring(i, j),
                    ring(i, j + 1),
                    ring(i + 1, j),
                    ring(i + 1, j + 1),
                );
                f.extend([[a, c, d], [a, d, b]]);
            }
            f.push([south, ring(n_lat - 1, j + 1), ring(n_lat - 1, j)]);
        }
        (v, f)
    }

    /// Faces per undirected edge; panics if a directed edge repeats (inconsistent winding).
    fn edge_counts(faces: &[[u32; 3]]) -> HashMap<(u32, u32), usize> {
        let (mut undirected, mut directed) = (HashMap::new(), HashMap::new());
        for f in faces {
            for k in 0..3 {
                let (a, b) = (f[k], f[(k + 1) % 3]);
                *undirected.entry((a.min(b), a.max(b))).or_insert(0) += 1;
                assert!(
                    directed.insert((a, b), ()).is_none(),
                    "edge {a}->{b} repeats"
                );
            }
        }
        undirected
    }

    fn outward(v: &[[f32; 3]], f: &[u32; 3]) -> bool {
        let n = face_normal(v, f);
        let c: [f32; 3] = std::array::from_fn(|k| f.iter().map(|&i| v[i as usize][k]).sum());
        (0..3).map(|k| n[k] * c[k]).sum::<f32>() > 0.0
    }

    #[test]
    fn weld_merges_seam_duplicates_and_averages() {
        let (n_lat, n_lon) = (8, 12);
        let (v, f) = seam_sphere(n_lat, n_lon);
        let w = weld(&v, &f, 1e-5);
        assert_eq!(w.verts.len(), v.len() - (n_lat - 1));
        assert_eq!(w.faces.len(), f.len());
        assert!(edge_counts(&w.faces).values().all(|&c| c == 2));
        let idx: Vec<f32> = (0..v.len()).map(|i| i as f32).collect();
        let carried = w.carry(&idx, 1);
        for i in 0..n_lat - 1 {
            let (first, dup) = (1 + i * (n_lon + 1), 1 + i * (n_lon + 1) + n_lon);
            let new = w.remap[first] as usize;
            assert_eq!(w.remap[dup] as usize, new);
            assert_eq!(w.source[new] as usize, first);
            assert_eq!(carried[new], 0.5 * (first + dup) as f32);
            assert_eq!(carried[w.remap[first + 1] as usize], (first + 1) as f32);
        }
        // A face collapsing to an edge is dropped; exact mode merges equal points only.
        let tiny = weld(&[[0.0; 3], [0.0; 3], [1.0, 0.0, 0.0]], &[[0, 1, 2]], 0.0);
        assert_eq!((tiny.verts.len(), tiny.faces.len()), (2, 0));
    }

    fn check_decimated_sphere(target: usize) {
        let (v, f) = seam_sphere(24, 48);
        let w = weld(&v, &f, 1e-5);
        let attr: Vec<f32> = v
            .iter()
            .flat_map(|p| [p[0] + 2.0 * p[1] - p[2], 3.0 * p[2] + 1.0])
            .collect();
        let attr = w.carry(&attr, 2);
        let d = decimate(&w.verts, &w.faces, &attr, 2, target).unwrap();
        assert!(d.faces.len() <= target, "{} faces left", d.faces.len());
        assert_eq!(d.attrs.len(), d.verts.len() * 2);
        let edges = edge_counts(&d.faces);
        assert!(edges.values().all(|&c| c == 2), "not closed and manifold");
        let euler = d.verts.len() as i64 - edges.len() as i64 + d.faces.len() as i64;
        assert_eq!(euler, 2);
        assert!(d.faces.iter().all(|f| outward(&d.verts, f)));
        for k in 0..2 {
            let col = |a: &[f32]| a.iter().skip(k).step_by(2).copied().collect::<Vec<f32>>();
            let lo = col(&attr).into_iter().fold(f32::INFINITY, f32::min);
            let hi = col(&attr).into_iter().fold(f32::NEG_INFINITY, f32::max);
            assert!(
                col(&d.attrs)
                    .iter()
                    .all(|&x| x >= lo - 1e-5 && x <= hi + 1e-5)
            );
        }
        let again = decimate(&w.verts, &w.faces, &attr, 2, target).unwrap();
        assert_eq!((again.verts, again.faces), (d.verts, d.faces));
    }

    #[test]
    fn decimate_keeps_a_closed_outward_sphere() {
        check_decimated_sphere(1540);
        check_decimated_sphere(200);
    }

    #[test]
    fn decimate_keeps_a_flat_disk_a_disk() {
        let n = 12;
        let v: Vec<[f32; 3]> = (0..n * n)
            .map(|i| [(i % n) as f32, (i / n) as f32, 0.0])
            .collect();
        let q = |x: usize, y: usize| (y * n + x) as u32;
        let f: Vec<[u32; 3]> = (0..(n - 1) * (n - 1))
            .flat_map(|i| {
                let (x, y) = (i % (n - 1), i / (n - 1));
                [
                    [q(x, y), q(x + 1, y), q(x + 1, y + 1)],
                    [q(x, y), q(x + 1, y + 1), q(x, y + 1)],
                ]
            })
            .collect();
        let d = decimate(&v, &f, &[], 0, 40).unwrap();
        assert!(d.faces.len() < f.len());
        let edges = edge_counts(&d.faces);
        assert!(edges.values().all(|&c| c <= 2));
        assert_eq!(
            d.verts.len() as i64 - edges.len() as i64 + d.faces.len() as i64,
            1
        );
        assert!(d.faces.iter().all(|f| face_normal(&d.verts, f)[2] > 0.0));
    }

    #[test]
    fn decimate_rejects_bad_input_and_accepts_empty() {
        let v = [[0.0; 3], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        assert!(
            decimate(&v, &[[0, 1, 2]], &[0.0; 5], 2, 0)
                .unwrap_err()
                .contains("attrs")
        );
        assert!(
            decimate(&v, &[[0, 1, 3]], &[], 0, 0)
                .unwrap_err()
                .contains("face 0")
        );
        let empty = decimate(&[], &[], &[], 3, 0).unwrap();
        assert!(empty.verts.is_empty() && empty.faces.is_empty() && empty.attrs.is_empty());
        let one = decimate(&v, &[[0, 1, 2], [1, 1, 2]], &[], 0, 0).unwrap();
        assert_eq!(one.faces, vec![[0, 1, 2]]);
    }
}
