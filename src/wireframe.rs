//! The wireframe overlay: darkens pixels near the edges of the visible triangle, fading the
//! lines where triangles are small on screen. A 49k-vertex hand seen whole has triangles of
//! 1-3 px, where full-strength lines would paint it black: there the lines keep a fraction
//! of their opacity (a light mesh texture, so W visibly does something); zoomed in they show
//! in full.
//! The GPU shading shader ([`crate::gpu`], `shade.wgsl`) and the CPU neural image of the
//! viewer (this module's [`overlay`]) draw the same lines from these constants.

use crate::camera::Camera;
use crate::mesh::raster::VisibilityBuffer;

/// Colour of the lines (display values).
pub const LINE_COLOR: [f32; 3] = [0.05, 0.05, 0.08];
/// Opacity of a line over a large triangle.
pub const LINE_OPACITY: f32 = 0.75;
/// Distance to an edge (px) below which a pixel is fully on the line, and where it stops.
pub const LINE_INNER_PX: f32 = 0.3;
pub const LINE_OUTER_PX: f32 = 1.0;
/// Triangle size on screen (square root of twice its area, px) up to which lines keep
/// [`DENSE_OPACITY`] of their opacity, and from which they have all of it.
pub const FADE_FROM_PX: f32 = 3.0;
pub const FADE_TO_PX: f32 = 10.0;
/// The fraction of [`LINE_OPACITY`] lines keep on triangles smaller than [`FADE_FROM_PX`].
pub const DENSE_OPACITY: f32 = 0.3;

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn segment_distance(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    let ab = [b[0] - a[0], b[1] - a[1]];
    let ap = [p[0] - a[0], p[1] - a[1]];
    let len2 = (ab[0] * ab[0] + ab[1] * ab[1]).max(1e-12);
    let t = ((ap[0] * ab[0] + ap[1] * ab[1]) / len2).clamp(0.0, 1.0);
    let d = [ap[0] - t * ab[0], ap[1] - t * ab[1]];
    (d[0] * d[0] + d[1] * d[1]).sqrt()
}

/// How much of the line colour pixel centre `p` gets, for a triangle with screen corners
/// `a`, `b`, `c` (px).
pub fn line_weight(p: [f32; 2], a: [f32; 2], b: [f32; 2], c: [f32; 2]) -> f32 {
    let dist = segment_distance(p, a, b)
        .min(segment_distance(p, b, c))
        .min(segment_distance(p, c, a));
    let cross = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
    let size = cross.abs().sqrt();
    let line = 1.0 - smoothstep(LINE_INNER_PX, LINE_OUTER_PX, dist);
    let density =
        DENSE_OPACITY + (1.0 - DENSE_OPACITY) * smoothstep(FADE_FROM_PX, FADE_TO_PX, size);
    LINE_OPACITY * line * density
}

/// Draws the overlay into an RGBA8 image (row-major pixels) rendered with `camera` whose
/// visibility is `visibility` (`vertices`: the posed mesh, `faces` its triangles).
pub fn overlay(
    pixels: &mut [[u8; 4]],
    visibility: &VisibilityBuffer,
    camera: &Camera,
    vertices: &[[f32; 3]],
    faces: &[[u32; 3]],
) {
    let screen = |v: u32| -> [f32; 2] {
        vertices
            .get(v as usize)
            .and_then(|p| camera.project(*p))
            .map_or([f32::NAN; 2], |q| [q[0] as f32, q[1] as f32])
    };
    let width = visibility.width as usize;
    for (i, &t) in visibility.triangle.iter().enumerate() {
        let Some(face) = faces.get(t as usize) else {
            continue; // uncovered (NO_TRIANGLE) or out of range
        };
        let p = [(i % width) as f32 + 0.5, (i / width) as f32 + 0.5];
        let w = line_weight(p, screen(face[0]), screen(face[1]), screen(face[2]));
        if w.is_nan() || w <= 0.0 {
            continue;
        }
        let Some(px) = pixels.get_mut(i) else {
            break;
        };
        for (c, line) in px.iter_mut().zip(LINE_COLOR) {
            let v = *c as f32 / 255.0;
            *c = ((v + (line - v) * w).clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
}

/// The WGSL constants the shading shader's wireframe uses (one source for both).
pub fn wgsl_constants() -> String {
    let [r, g, b] = LINE_COLOR;
    format!(
        "const WIRE_COLOR: vec3<f32> = vec3<f32>({r:?}, {g:?}, {b:?});\n\
         const WIRE_OPACITY: f32 = {LINE_OPACITY:?};\n\
         const WIRE_INNER_PX: f32 = {LINE_INNER_PX:?};\n\
         const WIRE_OUTER_PX: f32 = {LINE_OUTER_PX:?};\n\
         const WIRE_FADE_FROM_PX: f32 = {FADE_FROM_PX:?};\n\
         const WIRE_FADE_TO_PX: f32 = {FADE_TO_PX:?};\n\
         const WIRE_DENSE_OPACITY: f32 = {DENSE_OPACITY:?};\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_sit_on_edges_of_large_triangles_only() {
        let (a, b, c) = ([0.0, 0.0], [100.0, 0.0], [0.0, 100.0]);
        assert!((line_weight([50.0, 0.2], a, b, c) - LINE_OPACITY).abs() < 1e-6);
        assert_eq!(
            line_weight([30.0, 30.0], a, b, c),
            0.0,
            "interior stays clean"
        );
        // The same pixel on an edge of a 2-px triangle: a faint line only.
        let s = 0.02;
        let dense = line_weight([50.0 * s, 0.2], a, [100.0 * s, 0.0], [0.0, 100.0 * s]);
        assert!(
            (dense - LINE_OPACITY * DENSE_OPACITY).abs() < 1e-6,
            "{dense}"
        );
        // In between, partly faded.
        let w = line_weight([3.0, 0.2], a, [6.0, 0.0], [0.0, 6.0]);
        assert!(w > dense && w < LINE_OPACITY, "{w}");
    }

    #[test]
    fn overlay_darkens_only_edge_pixels_of_covered_triangles() {
        // One big triangle seen by a camera looking down +z.
        let camera = Camera::look_at(
            nalgebra::Vector3::new(0.0, 0.0, -1.0),
            nalgebra::Vector3::zeros(),
            nalgebra::Vector3::new(0.0, -1.0, 0.0),
            60f64.to_radians(),
            64,
            64,
        );
        let vertices = [[-0.4, -0.4, 0.0], [0.4, -0.4, 0.0], [-0.4, 0.4, 0.0]];
        let faces = [[0u32, 1, 2]];
        let vis = crate::mesh::raster::rasterize(&vertices, &faces, &camera);
        let mut rgba = vec![[255u8; 4]; 64 * 64];
        overlay(&mut rgba, &vis, &camera, &vertices, &faces);
        let darkened: Vec<usize> = (0..64 * 64).filter(|&i| rgba[i][0] < 255).collect();
        assert!(!darkened.is_empty());
        assert!(
            darkened.iter().all(|&i| vis.covered(i)),
            "nothing outside the hand"
        );
        assert!(darkened.len() < vis.coverage() / 2, "lines, not a fill");
        assert!(rgba.iter().all(|p| p[3] == 255), "alpha untouched");
    }
}
