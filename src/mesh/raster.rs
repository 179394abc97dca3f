//! CPU reference rasteriser: a visibility buffer (depth, triangle id, perspective-correct
//! barycentrics per pixel) like nvdiffrast's `rasterize` output, used as the oracle for the
//! GPU pipeline and as the renderer on machines without a GPU.

use crate::camera::Camera;

/// Triangle id of pixels no triangle covers.
pub const NO_TRIANGLE: u32 = u32::MAX;

/// Per-pixel visibility, row-major, row 0 at the top of the image.
#[derive(Clone, Debug)]
pub struct VisibilityBuffer {
    pub width: u32,
    pub height: u32,
    /// Camera depth of the visible surface (`f32::INFINITY` where empty).
    pub depth: Vec<f32>,
    /// Visible triangle, or [`NO_TRIANGLE`].
    pub triangle: Vec<u32>,
    /// Perspective-correct barycentrics of the triangle's vertices 0 and 1 (vertex 2 gets
    /// `1 − b0 − b1`), as nvdiffrast's `(u, v)`.
    pub bary: Vec<[f32; 2]>,
}

impl VisibilityBuffer {
    /// Whether pixel `i` is covered.
    pub fn covered(&self, i: usize) -> bool {
        self.triangle[i] != NO_TRIANGLE
    }

    /// Number of covered pixels.
    pub fn coverage(&self) -> usize {
        self.triangle.iter().filter(|&&t| t != NO_TRIANGLE).count()
    }

    /// Interpolates a per-vertex attribute of `width` floats at pixel `i` into `out`.
    pub fn interpolate(
        &self,
        i: usize,
        faces: &[[u32; 3]],
        attr: &[f32],
        width: usize,
        out: &mut [f32],
    ) {
        let f = faces[self.triangle[i] as usize];
        let [b0, b1] = self.bary[i];
        let b2 = 1.0 - b0 - b1;
        let (o0, o1, o2) = (
            f[0] as usize * width,
            f[1] as usize * width,
            f[2] as usize * width,
        );
        for k in 0..width {
            out[k] = b0 * attr[o0 + k] + b1 * attr[o1 + k] + b2 * attr[o2 + k];
        }
    }
}

/// Rasterises world-space `vertices` with `faces` through `camera`. Pixel centres are at
/// `(col + 0.5, row + 0.5)`; the nearest surface wins (ties keep the lower triangle id); no
/// back-face culling (as XHand). Triangles reaching in front of the near plane are skipped.
pub fn rasterize(vertices: &[[f32; 3]], faces: &[[u32; 3]], camera: &Camera) -> VisibilityBuffer {
    let (w, h) = (camera.width as usize, camera.height as usize);
    let mut buf = VisibilityBuffer {
        width: camera.width,
        height: camera.height,
        depth: vec![f32::INFINITY; w * h],
        triangle: vec![NO_TRIANGLE; w * h],
        bary: vec![[0.0; 2]; w * h],
    };
    let projected: Vec<Option<[f64; 3]>> = vertices.iter().map(|&v| camera.project(v)).collect();
    for (ti, f) in faces.iter().enumerate() {
        let (Some(p0), Some(p1), Some(p2)) = (
            projected[f[0] as usize],
            projected[f[1] as usize],
            projected[f[2] as usize],
        ) else {
            continue;
        };
        let area = edge(p0, p1, p2);
        if area.abs() < 1e-12 {
            continue;
        }
        let min_x = p0[0].min(p1[0]).min(p2[0]);
        let max_x = p0[0].max(p1[0]).max(p2[0]);
        let min_y = p0[1].min(p1[1]).min(p2[1]);
        let max_y = p0[1].max(p1[1]).max(p2[1]);
        // Pixels whose centres (i + 0.5) can lie inside the box.
        let col0 = (min_x - 0.5).ceil().max(0.0) as usize;
        let row0 = (min_y - 0.5).ceil().max(0.0) as usize;
        let col1 = ((max_x - 0.5).floor().min(w as f64 - 1.0)).max(-1.0);
        let row1 = ((max_y - 0.5).floor().min(h as f64 - 1.0)).max(-1.0);
        if col1 < 0.0 || row1 < 0.0 {
            continue;
        }
        let (col1, row1) = (col1 as usize, row1 as usize);
        let inv_z = [1.0 / p0[2], 1.0 / p1[2], 1.0 / p2[2]];
        for row in row0..=row1 {
            let py = row as f64 + 0.5;
            for col in col0..=col1 {
                let p = [col as f64 + 0.5, py, 0.0];
                let l0 = edge(p1, p2, p) / area;
                let l1 = edge(p2, p0, p) / area;
                let l2 = edge(p0, p1, p) / area;
                if l0 < 0.0 || l1 < 0.0 || l2 < 0.0 {
                    continue;
                }
                // Screen-space barycentrics → perspective-correct ones via 1/z.
                let s = l0 * inv_z[0] + l1 * inv_z[1] + l2 * inv_z[2];
                let z = (1.0 / s) as f32;
                let i = row * w + col;
                if z < buf.depth[i] {
                    buf.depth[i] = z;
                    buf.triangle[i] = ti as u32;
                    buf.bary[i] = [(l0 * inv_z[0] / s) as f32, (l1 * inv_z[1] / s) as f32];
                }
            }
        }
    }
    buf
}

/// Twice the signed area of (a, b, c) in the image plane.
fn edge(a: [f64; 3], b: [f64; 3], c: [f64; 3]) -> f64 {
    (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    #[test]
    fn a_quad_covers_its_projection_and_barycentrics_sum_to_one() {
        let cam = Camera::look_at(
            Vector3::new(0.0, 0.0, 1.0),
            Vector3::zeros(),
            Vector3::y(),
            0.5,
            64,
            64,
        );
        let v = [
            [-0.1, -0.1, 0.0],
            [0.1, -0.1, 0.0],
            [-0.1, 0.1, 0.0],
            [0.1, 0.1, 0.0],
        ];
        let f = [[0u32, 1, 2], [2, 1, 3]];
        let vis = rasterize(&v, &f, &cam);
        let centre = 32 * 64 + 32;
        assert!(vis.covered(centre));
        assert!(!vis.covered(0));
        assert!((vis.depth[centre] - 1.0).abs() < 1e-5);
        let [b0, b1] = vis.bary[centre];
        assert!(b0 >= 0.0 && b1 >= 0.0 && b0 + b1 <= 1.0 + 1e-6);
        // Projected half-size: f * 0.1 / 1 with f = 32 / tan(0.25).
        let half = 32.0 / 0.25f64.tan() * 0.1;
        // Pixel centres i + 0.5 inside [32 - half, 32 + half] on each axis.
        let n = ((32.0 + half - 0.5).floor() - (32.0 - half - 0.5).ceil() + 1.0) as usize;
        assert_eq!(vis.coverage(), n * n);
    }
}
