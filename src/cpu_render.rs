//! The CPU reference renderer: rasterise the posed mesh, then shade every covered pixel
//! as XHand does (interpolated attributes, SH lighting, the 271-wide renderer input, the
//! neural renderer). The oracle for the GPU pipeline and the renderer without a GPU.
//!
//! Differences from XHand, all at silhouette pixels only: no nvdiffrast antialiasing of the
//! SH image and the coverage mask (a pixel is hand exactly when a triangle covers its
//! centre).

use rayon::prelude::*;

use crate::avatar::Avatar;
use crate::camera::Camera;
use crate::frame::PosedFrame;
use crate::image_io::Rgba8;
use crate::mesh::raster::{NO_TRIANGLE, VisibilityBuffer, rasterize};
use crate::nn::posenc::{PE_DIM, encode_into};
use crate::render_settings::{RenderSettings, ShadingMode, heat_color};
use crate::shading::{normalize_eps, sh_color};
use crate::{NUM_JOINTS, POSE_DIM};

/// Eps of XHand's `F.normalize` on interpolated normals.
pub const PIXEL_NORMAL_EPS: f32 = 1e-12;
/// Pixels per renderer-MLP batch (bounds memory on large images).
const RENDERER_BATCH: usize = 32_768;

/// A problem rendering a frame.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("avatar `{0}` has no neural renderer; use the sh, albedo or normals mode")]
    NoRenderer(String),
    #[error("the neural renderer failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error(
        "a {width}x{height} image needs about {need_mib} MiB on the CPU but {available_mib} MiB are free; render a smaller image (or with --gpu)"
    )]
    TooLarge {
        width: u32,
        height: u32,
        need_mib: u64,
        available_mib: u64,
    },
    #[error("there is no hand to render")]
    NoHands,
}

/// An upper bound of the memory [`render`] takes for an image of `camera`'s size: per pixel
/// the visibility buffer, colours, mask and 8-bit image; per covered pixel (all of them, at
/// worst) the interpolated attributes and, in neural mode, the renderer's output, plus one
/// batch of full input rows and hidden values (what a candle GPU device takes; the fused CPU
/// path builds its inputs tile by tile and needs far less).
pub fn memory_estimate(avatar: &Avatar, camera: &Camera, settings: &RenderSettings) -> u64 {
    let pixels = camera.width as u64 * camera.height as u64;
    let per_pixel = 16 + 12 + 1 + 4 + 48;
    let (neural_per_pixel, neural_batch) = match (&avatar.renderer, settings.mode) {
        (Some(r), ShadingMode::Neural) => {
            let row = 4 * (r.input_dim() + 2 * r.hidden_dim()) as u64;
            (12, row * pixels.min(RENDERER_BATCH as u64))
        }
        _ => (0, 0),
    };
    pixels * (per_pixel + neural_per_pixel) + neural_batch
}

/// Memory the system can give now (`MemAvailable` on Linux; `None` where unknown).
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A rendered frame.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// Display colours (RGB).
    pub image: Rgba8,
    /// Hand pixels.
    pub mask: Vec<bool>,
    pub visibility: VisibilityBuffer,
}

/// How much a grid line brightens the background (before fading).
pub const GRID_LINE_LIFT: f32 = 0.18;
/// How fast the grid fades with depth, per grid cell: to 1/e over 1 / this many cells, so
/// a grid scaled with its scene (and the camera) looks the same at every scale.
pub const GRID_FADE_PER_CELL: f32 = 0.015;

/// The background grid: lines every `spacing` metres on the horizontal plane `y = y`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridPlane {
    pub y: f32,
    pub spacing: f32,
}

impl GridPlane {
    /// The grid behind the box `lo..hi` as the front view sees it (looking along +y, at the
    /// palm of a hand in MANO's frame): the largest power-of-ten spacing with at least ten
    /// cells across the box's widest side (1 cm for one hand, 10 cm for two hands a metre
    /// apart), four cells beyond the box's top. `None` for an empty or non-finite box.
    pub fn behind(lo: [f32; 3], hi: [f32; 3]) -> Option<Self> {
        if !lo.iter().chain(&hi).all(|v| v.is_finite()) || (0..3).any(|k| hi[k] < lo[k]) {
            return None;
        }
        let extent = (0..3).map(|k| hi[k] - lo[k]).fold(0.0f32, f32::max);
        let exponent = (extent.max(1e-3) / 10.0).log10().floor().clamp(-3.0, 3.0);
        let spacing = 10f32.powf(exponent);
        Some(Self {
            y: hi[1] + 4.0 * spacing,
            spacing,
        })
    }
}

/// The background grid of the GPU shading pass (`background` in shaders/shade.wgsl) for
/// pixel (`col`, `row`): `grid`'s lines, fading with depth, about a pixel wide. `None` where
/// the pixel's ray misses the plane (the plain background colour shows).
pub fn grid_pixel(
    camera: &Camera,
    grid: GridPlane,
    background: [f32; 3],
    col: u32,
    row: u32,
) -> Option<[f32; 3]> {
    let d = camera.view_ray(col, row);
    let o = camera.center;
    if d.y.abs() < 1e-6 {
        return None;
    }
    let t = (grid.y as f64 - o.y) / d.y;
    if t <= 0.0 {
        return None;
    }
    let p = o + d * t;
    let spacing = grid.spacing.max(1e-6) as f64;
    let footprint = t * d.norm() / camera.fx;
    let dist = |x: f64| ((x / spacing + 0.5).rem_euclid(1.0) - 0.5).abs() * spacing;
    let gap = dist(p.x).min(dist(p.z));
    let edge = ((gap - 0.5 * footprint) / footprint).clamp(0.0, 1.0);
    let line = 1.0 - edge * edge * (3.0 - 2.0 * edge);
    let fade = (-t * GRID_FADE_PER_CELL as f64 / spacing).exp();
    Some(background.map(|c| c + GRID_LINE_LIFT * (line * fade) as f32))
}

/// Per-pixel interpolated attributes of covered pixels.
pub struct PixelAttributes {
    /// Row-major pixel index of each covered pixel.
    pub pixels: Vec<usize>,
    /// XHand's `pred_normals` (normalised, not sign-corrected), `[N, 3]`.
    pub normals: Vec<[f32; 3]>,
    pub albedo: Vec<[f32; 3]>,
    pub positions: Vec<[f32; 3]>,
}

/// Renders `frame` of `avatar` through `camera`.
pub fn render(
    avatar: &Avatar,
    frame: &PosedFrame,
    camera: &Camera,
    settings: &RenderSettings,
) -> Result<Rendered, RenderError> {
    check_render(avatar, camera, settings)?;
    let vis = rasterize(&frame.geometry.vertices, &avatar.template.faces, camera);
    shade(avatar, frame, camera, settings, vis)
}

/// Refuses what [`render`] cannot do: neural shading without a renderer, an image larger
/// than the free memory allows.
fn check_render(
    avatar: &Avatar,
    camera: &Camera,
    settings: &RenderSettings,
) -> Result<(), RenderError> {
    if settings.mode == ShadingMode::Neural && avatar.renderer.is_none() {
        return Err(RenderError::NoRenderer(avatar.name.clone()));
    }
    let need = memory_estimate(avatar, camera, settings);
    if let Some(free) = available_memory()
        && need > free / 10 * 8
    {
        return Err(RenderError::TooLarge {
            width: camera.width,
            height: camera.height,
            need_mib: need >> 20,
            available_mib: free >> 20,
        });
    }
    Ok(())
}

/// Shades the pixels `vis` covers (the background elsewhere).
fn shade(
    avatar: &Avatar,
    frame: &PosedFrame,
    camera: &Camera,
    settings: &RenderSettings,
    vis: VisibilityBuffer,
) -> Result<Rendered, RenderError> {
    let faces = &avatar.template.faces;
    let geo = &frame.geometry;
    let attrs = pixel_attributes(&vis, faces, frame);
    let sign = geo.drive.normal_sign();
    let order = avatar.color_order;

    let colors: Vec<[f32; 3]> = match settings.mode {
        ShadingMode::Mask => vec![[1.0; 3]; attrs.pixels.len()],
        ShadingMode::Normals => attrs
            .normals
            .iter()
            .map(|n| n.map(|c| (c * sign + 1.0) * 0.5))
            .collect(),
        ShadingMode::Albedo => attrs.albedo.iter().map(|&a| order.to_rgb(a)).collect(),
        ShadingMode::Sh => sh_pixels(&attrs, frame, sign)
            .into_iter()
            .map(|c| order.to_rgb(c))
            .collect(),
        ShadingMode::Neural => neural_pixels(avatar, frame, camera, &vis, &attrs)?
            .into_iter()
            .map(|c| order.to_rgb(c))
            .collect(),
        ShadingMode::Weights => {
            let j = settings.weight_joint.min(NUM_JOINTS - 1);
            let w: Vec<f32> = frame
                .embeddings
                .lbs_weights
                .chunks_exact(NUM_JOINTS)
                .map(|r| r[j])
                .collect();
            scalar_pixels(&vis, faces, &attrs.pixels, &w, 1.0)
        }
        ShadingMode::Displacement => {
            let d: Vec<f32> = frame
                .embeddings
                .delta
                .chunks_exact(3)
                .map(|d| (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt())
                .collect();
            scalar_pixels(&vis, faces, &attrs.pixels, &d, settings.displacement_range)
        }
    };

    let (w, h) = (camera.width as usize, camera.height as usize);
    let mut rgb = vec![settings.background; w * h];
    let mut mask = vec![false; w * h];
    for (&p, c) in attrs.pixels.iter().zip(&colors) {
        rgb[p] = *c;
        mask[p] = true;
    }
    Ok(Rendered {
        image: Rgba8::from_rgb_f32(camera.width, camera.height, &rgb),
        mask,
        visibility: vis,
    })
}

/// Renders several hands, each with its avatar, through one camera, as one visibility buffer
/// would: every hand is rasterised, each pixel goes to the hand with the nearest surface, and
/// each hand shades only its own pixels (shading is per pixel, so a pixel equals the nearest
/// hand's alone). The visibility returned keeps each pixel's depth and barycentrics from the
/// hand it shows, and its triangle as the GPU's shared visibility buffer numbers it: a hand's
/// ids follow the faces of the hands before it.
pub fn render_hands(
    hands: &[(&Avatar, &PosedFrame)],
    camera: &Camera,
    settings: &RenderSettings,
) -> Result<Rendered, RenderError> {
    for (avatar, _) in hands {
        check_render(avatar, camera, settings)?;
    }
    let mut vis: Vec<VisibilityBuffer> = hands
        .iter()
        .map(|(a, f)| rasterize(&f.geometry.vertices, &a.template.faces, camera))
        .collect();
    // The hand each pixel shows (the first of equal depths); the others lose the pixel.
    let pixels = (camera.width as usize) * (camera.height as usize);
    let mut owner: Vec<Option<usize>> = vec![None; pixels];
    for (i, o) in owner.iter_mut().enumerate() {
        for (h, v) in vis.iter().enumerate() {
            if v.covered(i) && o.is_none_or(|best| v.depth[i] < vis[best].depth[i]) {
                *o = Some(h);
            }
        }
    }
    for (h, v) in vis.iter_mut().enumerate() {
        for (i, o) in owner.iter().enumerate() {
            if *o != Some(h) {
                v.triangle[i] = NO_TRIANGLE;
                v.depth[i] = f32::INFINITY;
            }
        }
    }
    let mut shaded = hands
        .iter()
        .zip(vis)
        .map(|((a, f), v)| shade(a, f, camera, settings, v));
    let mut merged = shaded.next().ok_or(RenderError::NoHands)??;
    let mut face_offset = 0u32;
    for (h, next) in shaded.enumerate() {
        let next = next?;
        face_offset += hands[h].0.template.faces.len() as u32;
        for (i, o) in owner.iter().enumerate() {
            if *o == Some(h + 1) {
                merged.image.pixels[i] = next.image.pixels[i];
                merged.mask[i] = true;
                merged.visibility.depth[i] = next.visibility.depth[i];
                merged.visibility.triangle[i] = next.visibility.triangle[i] + face_offset;
                merged.visibility.bary[i] = next.visibility.bary[i];
            }
        }
    }
    Ok(merged)
}

/// Interpolates position, normal and albedo at every covered pixel of `vis`.
pub fn pixel_attributes(
    vis: &VisibilityBuffer,
    faces: &[[u32; 3]],
    frame: &PosedFrame,
) -> PixelAttributes {
    let geo = &frame.geometry;
    let flat = |v: &[[f32; 3]]| -> Vec<f32> { v.iter().flatten().copied().collect() };
    let normals_flat = flat(&geo.normals);
    let pos_flat = flat(&geo.vertices);
    let mut out = PixelAttributes {
        pixels: Vec::new(),
        normals: Vec::new(),
        albedo: Vec::new(),
        positions: Vec::new(),
    };
    let mut tmp = [0.0f32; 3];
    for i in 0..vis.triangle.len() {
        if !vis.covered(i) {
            continue;
        }
        out.pixels.push(i);
        vis.interpolate(i, faces, &normals_flat, 3, &mut tmp);
        out.normals.push(normalize_eps(tmp, PIXEL_NORMAL_EPS));
        vis.interpolate(i, faces, &frame.embeddings.albedo, 3, &mut tmp);
        out.albedo.push(tmp);
        vis.interpolate(i, faces, &pos_flat, 3, &mut tmp);
        out.positions.push(tmp);
    }
    out
}

/// `clip(compute_color(albedo, normal · sign, sh), 0, 1)` per covered pixel.
fn sh_pixels(attrs: &PixelAttributes, frame: &PosedFrame, sign: f32) -> Vec<[f32; 3]> {
    attrs
        .normals
        .iter()
        .zip(&attrs.albedo)
        .map(|(n, a)| sh_color(*a, n.map(|c| c * sign), &frame.sh).map(|c| c.clamp(0.0, 1.0)))
        .collect()
}

fn scalar_pixels(
    vis: &VisibilityBuffer,
    faces: &[[u32; 3]],
    pixels: &[usize],
    values: &[f32],
    range: f32,
) -> Vec<[f32; 3]> {
    let mut tmp = [0.0f32; 1];
    pixels
        .iter()
        .map(|&i| {
            vis.interpolate(i, faces, values, 1, &mut tmp);
            heat_color(tmp[0] / range.max(1e-9))
        })
        .collect()
}

/// Builds XHand's 271-wide renderer input for every covered pixel and runs the MLP: on the
/// fused CPU path each tile of pixels builds its own inputs (the pose, the same for every
/// pixel, folded into the biases); on a candle GPU device in batches of full rows.
fn neural_pixels(
    avatar: &Avatar,
    frame: &PosedFrame,
    camera: &Camera,
    vis: &VisibilityBuffer,
    attrs: &PixelAttributes,
) -> Result<Vec<[f32; 3]>, RenderError> {
    let renderer = avatar
        .renderer
        .as_ref()
        .ok_or_else(|| RenderError::NoRenderer(avatar.name.clone()))?;
    let codes = CodeTable::new(avatar, frame);
    let inputs = RendererInputs {
        avatar,
        frame,
        codes: &codes,
        camera,
        vis,
        attrs,
    };
    let rgb = |y: Vec<f32>| {
        y.chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect::<Vec<_>>()
    };
    let device = avatar.nets.device();
    if device.is_cpu() {
        let pose = &frame.geometry.avatar_pose;
        let y = renderer
            .fused()?
            .forward_filled(attrs.pixels.len(), pose, |k, out| inputs.features(k, out));
        return Ok(rgb(y));
    }
    let width = renderer.input_dim();
    let mut colors = Vec::with_capacity(attrs.pixels.len());
    for start in (0..attrs.pixels.len()).step_by(RENDERER_BATCH) {
        let end = (start + RENDERER_BATCH).min(attrs.pixels.len());
        let x = inputs.rows(start..end);
        debug_assert_eq!(x.len(), (end - start) * width);
        colors.extend(rgb(renderer.forward_rows(x, end - start, device)?));
    }
    Ok(colors)
}

/// What XHand's renderer input rows of one frame's covered pixels are made from (`codes`
/// from [`CodeTable::new`] for this frame, `attrs` from [`pixel_attributes`] of `vis`).
pub struct RendererInputs<'a> {
    pub avatar: &'a Avatar,
    pub frame: &'a PosedFrame,
    pub codes: &'a CodeTable,
    pub camera: &'a Camera,
    pub vis: &'a VisibilityBuffer,
    pub attrs: &'a PixelAttributes,
}

impl RendererInputs<'_> {
    /// The input rows (`[rows.len(), width]`, row-major) of the covered pixels
    /// `attrs.pixels[rows]`; `width` is [`crate::nn::renderer_input_width`] of `codes.width`.
    pub fn rows(&self, rows: std::ops::Range<usize>) -> Vec<f32> {
        let width = crate::nn::renderer_input_width(self.codes.width);
        let per_pixel = width - POSE_DIM;
        let mut x = vec![0.0f32; rows.len() * width];
        // Rows are independent (two 87-wide sin/cos encodings each): built on all cores.
        x.par_chunks_mut(width).enumerate().for_each(|(row, out)| {
            let (features, pose) = out.split_at_mut(per_pixel);
            self.features(rows.start + row, features);
            pose.copy_from_slice(&self.frame.geometry.avatar_pose);
        });
        x
    }

    /// The per-pixel part of covered pixel `attrs.pixels[k]`'s input row (all but the
    /// trailing pose), into `out`.
    pub fn features(&self, k: usize, out: &mut [f32]) {
        let (attrs, vis) = (self.attrs, self.vis);
        let sign = self.frame.geometry.drive.normal_sign();
        let p = attrs.pixels[k];
        let (col, r) = (
            (p % vis.width as usize) as u32,
            (p / vis.width as usize) as u32,
        );
        let n = attrs.normals[k];
        let sh = sh_color(attrs.albedo[k], n.map(|c| c * sign), &self.frame.sh)
            .map(|c| c.clamp(0.0, 1.0));
        renderer_features(
            attrs.positions[k],
            sh,
            n,
            attrs.albedo[k],
            |dst| {
                self.codes
                    .interpolate(vis, &self.avatar.template.faces, p, dst)
            },
            self.camera.ray_feature(col, r),
            out,
        );
    }
}

/// Fills the per-pixel part of one renderer input row: `[PE(x) 87, SH 3, normal 3, albedo 3,
/// codes, PE(ray) 87]`; the row ends with the pose 48 (XHand.py L211-222), which callers add.
pub fn renderer_features(
    position: [f32; 3],
    sh: [f32; 3],
    normal: [f32; 3],
    albedo: [f32; 3],
    codes: impl FnOnce(&mut [f32]),
    ray: [f32; 3],
    out: &mut [f32],
) {
    let n = out.len();
    let codes_len = n - (2 * PE_DIM + 9);
    encode_into(position, &mut out[..PE_DIM]);
    let mut o = PE_DIM;
    for v in [sh, normal, albedo] {
        out[o..o + 3].copy_from_slice(&v);
        o += 3;
    }
    codes(&mut out[o..o + codes_len]);
    o += codes_len;
    encode_into(ray, &mut out[o..o + PE_DIM]);
}

/// The per-vertex codes `[code_delta, code_albedo, render_code]` in one row-major table.
pub struct CodeTable {
    pub width: usize,
    pub data: Vec<f32>,
}

impl CodeTable {
    /// Concatenates the codes of `frame` with the avatar's `render_code`.
    pub fn new(avatar: &Avatar, frame: &PosedFrame) -> Self {
        let e = &frame.embeddings;
        let rc = avatar.render_code_width();
        let width = e.code_delta_dim + e.code_albedo_dim + rc;
        let mut data = Vec::with_capacity(e.num_vertices * width);
        for v in 0..e.num_vertices {
            data.extend_from_slice(&e.code_delta[v * e.code_delta_dim..(v + 1) * e.code_delta_dim]);
            data.extend_from_slice(
                &e.code_albedo[v * e.code_albedo_dim..(v + 1) * e.code_albedo_dim],
            );
            data.extend_from_slice(&avatar.render_code_host[v * rc..(v + 1) * rc]);
        }
        Self { width, data }
    }

    fn interpolate(
        &self,
        vis: &VisibilityBuffer,
        faces: &[[u32; 3]],
        pixel: usize,
        out: &mut [f32],
    ) {
        vis.interpolate(pixel, faces, &self.data, self.width, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    #[test]
    fn grid_lines_lie_on_the_plane_and_only_in_front_of_the_camera() {
        // Looking straight down −y at the plane y = 0 from 10 cm above it.
        let cam = Camera::look_at(
            Vector3::new(0.0, 0.1, 0.0),
            Vector3::zeros(),
            Vector3::z(),
            60f64.to_radians(),
            201,
            201,
        );
        let bg = [0.2; 3];
        let grid = |y| GridPlane { y, spacing: 0.01 };
        // The centre ray hits (0, 0, 0): on a line.
        let centre = grid_pixel(&cam, grid(0.0), bg, 100, 100).unwrap();
        assert!(centre[0] > 0.3, "{centre:?}");
        // Half a spacing away from both lines: background colour.
        let mut off_line = None;
        for col in 100..201 {
            let a = (col as f64 + 0.5 - cam.cx) / cam.fx * 0.1;
            if (a.abs() - 0.005).abs() < 0.0003 {
                off_line = grid_pixel(&cam, grid(0.0), bg, col, 100 + (col - 100));
                break;
            }
        }
        let off = off_line.expect("a pixel between lines");
        assert!(off[0] < 0.21, "{off:?}");
        // A plane behind the camera is never drawn.
        assert!(grid_pixel(&cam, grid(0.2), bg, 100, 100).is_none());
    }

    #[test]
    fn the_grid_sits_behind_the_framed_box_with_ten_cells_across_it() {
        // One hand, 20 cm across: 1 cm lines 4 cm beyond its top.
        let hand = GridPlane::behind([-0.1, -0.03, -0.05], [0.1, 0.02, 0.05]).unwrap();
        assert!((hand.spacing - 0.01).abs() < 1e-6, "{hand:?}");
        assert!((hand.y - 0.06).abs() < 1e-6, "{hand:?}");
        // Two HaMeR hands 1.2 m apart, 30 m away: 10 cm lines.
        let two = GridPlane::behind([-0.7, 0.2, 29.0], [0.5, 0.4, 31.0]).unwrap();
        assert!((two.spacing - 0.1).abs() < 1e-6, "{two:?}");
        assert!((two.y - 0.8).abs() < 1e-5, "{two:?}");
        // A point still gets a grid; nothing, or NaN, does not.
        assert!(GridPlane::behind([0.0; 3], [0.0; 3]).is_some());
        assert!(GridPlane::behind([f32::MAX; 3], [f32::MIN; 3]).is_none());
        assert!(GridPlane::behind([0.0; 3], [f32::NAN, 0.0, 0.0]).is_none());
    }

    #[test]
    fn a_grid_scaled_with_its_camera_looks_the_same() {
        // A slanted view of the grid, then the scene ten times larger: every pixel's colour
        // is the same (lines as wide, fading alike).
        let bg = [0.2; 3];
        let view = |scale: f64| {
            let cam = Camera::look_at(
                Vector3::new(0.03, 0.12, -0.1) * scale,
                Vector3::zeros(),
                Vector3::z(),
                60f64.to_radians(),
                64,
                64,
            );
            let grid = GridPlane {
                y: 0.0,
                spacing: 0.01 * scale as f32,
            };
            (0..64 * 64)
                .map(|i| grid_pixel(&cam, grid, bg, i % 64, i / 64).map_or(bg[0], |c| c[0]))
                .collect::<Vec<f32>>()
        };
        let (small, large) = (view(1.0), view(10.0));
        let lit = small.iter().filter(|&&c| c > 0.21).count();
        assert!(lit > 64, "lines drawn: {lit}");
        for (a, b) in small.iter().zip(&large) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }
}
