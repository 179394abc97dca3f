//! Pinhole cameras with OpenCV-style extrinsics and intrinsics (x right, y down, z forward),
//! as InterHand2.6M and XHand use them, plus the per-pixel ray directions XHand's renderer
//! was trained on (`models/get_rays.py`; see `docs/ARCHITECTURE.md`).

use nalgebra::{Matrix3, Matrix4, Vector3};
use serde::{Deserialize, Serialize};

/// Default image size, InterHand2.6M's 334 x 512 (width x height).
pub const DEFAULT_WIDTH: u32 = 334;
pub const DEFAULT_HEIGHT: u32 = 512;
/// XHand's near plane (`proj[2][3] = -0.1`), metres.
pub const NEAR_PLANE: f64 = 0.1;

/// A camera: world→camera rotation, centre, intrinsics in pixels and the image size.
#[derive(Clone, Debug, PartialEq)]
pub struct Camera {
    /// World→camera rotation (OpenCV axes; InterHand's `camrot`).
    pub rotation: Matrix3<f64>,
    /// Camera centre in world coordinates, metres.
    pub center: Vector3<f64>,
    pub fx: f64,
    pub fy: f64,
    pub cx: f64,
    pub cy: f64,
    pub width: u32,
    pub height: u32,
}

/// A named direction to look at the hand from, for framing cameras.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ViewDirection {
    /// Looking at the palm, fingers up.
    Front,
    /// Looking at the back of the hand.
    Back,
    /// From the thumb side.
    Thumb,
    /// From the little-finger side.
    Pinky,
    /// From beyond the fingertips.
    Top,
    /// From the wrist.
    Bottom,
}

impl ViewDirection {
    /// Unit vector from the target towards the eye, and the direction that points up in
    /// the image, in MANO's canonical right-hand frame (fingers along −x, palm facing −y,
    /// thumb towards +z; docs/default-avatar.md).
    pub fn eye_and_up(self) -> (Vector3<f64>, Vector3<f64>) {
        match self {
            Self::Front => (-Vector3::y(), -Vector3::x()),
            Self::Back => (Vector3::y(), -Vector3::x()),
            Self::Thumb => (Vector3::z(), -Vector3::x()),
            Self::Pinky => (-Vector3::z(), -Vector3::x()),
            Self::Top => (-Vector3::x(), Vector3::y()),
            Self::Bottom => (Vector3::x(), Vector3::y()),
        }
    }
}

/// InterHand2.6M's per-camera JSON entry (`campos` in mm, `camrot`, `focal`, `princpt`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct InterHandCamera {
    pub campos: [f64; 3],
    pub camrot: [[f64; 3]; 3],
    pub focal: [f64; 2],
    pub princpt: [f64; 2],
}

impl InterHandCamera {
    /// Checks the values make a camera: finite numbers, positive focal lengths, and
    /// `camrot` a rotation (orthonormal, determinant +1, to 1e-3).
    pub fn check(&self) -> Result<(), String> {
        let all = self
            .campos
            .iter()
            .chain(self.camrot.iter().flatten())
            .chain(&self.focal)
            .chain(&self.princpt);
        if !all.clone().all(|v| v.is_finite()) {
            return Err("the camera has a value that is not a finite number".into());
        }
        if self.focal.iter().any(|&f| f <= 0.0) {
            return Err(format!("`focal` {:?} must be positive", self.focal));
        }
        let r = Matrix3::from_fn(|i, j| self.camrot[i][j]);
        let off = (r * r.transpose() - Matrix3::identity()).abs().max();
        if off > 1e-3 || (r.determinant() - 1.0).abs() > 1e-3 {
            return Err(format!(
                "`camrot` is not a rotation matrix (|R·Rᵀ − I| = {off:.2e}, det = {:.4})",
                r.determinant()
            ));
        }
        Ok(())
    }
}

impl Camera {
    /// A camera at `eye` looking at `target` with `up` pointing up in the image, a vertical
    /// field of view `fov_y` (radians) and the principal point at the image centre.
    pub fn look_at(
        eye: Vector3<f64>,
        target: Vector3<f64>,
        up: Vector3<f64>,
        fov_y: f64,
        width: u32,
        height: u32,
    ) -> Self {
        let forward = (target - eye).try_normalize(1e-12).unwrap_or(Vector3::z());
        let right = forward
            .cross(&up)
            .try_normalize(1e-9)
            .unwrap_or_else(|| forward.cross(&Vector3::x()).normalize());
        let down = forward.cross(&right);
        let rotation =
            Matrix3::from_rows(&[right.transpose(), down.transpose(), forward.transpose()]);
        let f = 0.5 * height as f64 / (0.5 * fov_y).tan();
        Self {
            rotation,
            center: eye,
            fx: f,
            fy: f,
            cx: 0.5 * width as f64,
            cy: 0.5 * height as f64,
            width,
            height,
        }
    }

    /// A camera that frames the axis-aligned box `[min, max]` from `view`, with a 30° field
    /// of view along the shorter image side and a 10 % margin.
    pub fn framing(
        min: [f32; 3],
        max: [f32; 3],
        view: ViewDirection,
        width: u32,
        height: u32,
    ) -> Self {
        let (dir, up) = view.eye_and_up();
        Self::framing_dir(min, max, dir, up, width, height)
    }

    /// Like [`Camera::framing`] for any direction from the target towards the eye.
    pub fn framing_dir(
        min: [f32; 3],
        max: [f32; 3],
        dir: Vector3<f64>,
        up: Vector3<f64>,
        width: u32,
        height: u32,
    ) -> Self {
        let lo = Vector3::new(min[0] as f64, min[1] as f64, min[2] as f64);
        let hi = Vector3::new(max[0] as f64, max[1] as f64, max[2] as f64);
        let target = (lo + hi) * 0.5;
        let fov_short = 30f64.to_radians();
        let fov_y = if height <= width {
            fov_short
        } else {
            2.0 * ((0.5 * fov_short).tan() * height as f64 / width as f64).atan()
        };
        let dir = dir.try_normalize(1e-12).unwrap_or(Vector3::z());
        // Back the camera off until every corner of the box projects inside the image with
        // a 10 % margin: z = d − c·dir must be at least |x| / tan(half fov) per axis.
        let probe = Self::look_at(target + dir, target, up, fov_y, width, height);
        let right = probe.rotation.row(0).transpose();
        let down = probe.rotation.row(1).transpose();
        let tan_y = (0.5 * fov_y).tan() / 1.1;
        let tan_x = tan_y * width as f64 / height as f64;
        let mut distance = NEAR_PLANE * 2.0;
        for i in 0..8 {
            let corner = Vector3::new(
                if i & 1 == 0 { lo.x } else { hi.x },
                if i & 2 == 0 { lo.y } else { hi.y },
                if i & 4 == 0 { lo.z } else { hi.z },
            ) - target;
            let along = corner.dot(&dir);
            distance = distance
                .max(corner.dot(&right).abs() / tan_x + along)
                .max(corner.dot(&down).abs() / tan_y + along);
        }
        Self::look_at(target + dir * distance, target, up, fov_y, width, height)
    }

    /// From an InterHand2.6M camera entry; `width`/`height` are the image size in pixels.
    pub fn from_interhand(c: &InterHandCamera, width: u32, height: u32) -> Self {
        let r = Matrix3::from_fn(|i, j| c.camrot[i][j]);
        Self {
            rotation: r,
            center: Vector3::new(c.campos[0], c.campos[1], c.campos[2]) / 1000.0,
            fx: c.focal[0],
            fy: c.focal[1],
            cx: c.princpt[0],
            cy: c.princpt[1],
            width,
            height,
        }
    }

    /// The same camera rendering at another resolution (intrinsics scaled).
    pub fn resized(&self, width: u32, height: u32) -> Self {
        let sx = width as f64 / self.width as f64;
        let sy = height as f64 / self.height as f64;
        Self {
            fx: self.fx * sx,
            fy: self.fy * sy,
            cx: self.cx * sx,
            cy: self.cy * sy,
            width,
            height,
            ..self.clone()
        }
    }

    /// World → camera coordinates.
    pub fn to_camera(&self, p: Vector3<f64>) -> Vector3<f64> {
        self.rotation * (p - self.center)
    }

    /// Projects a world point to `(u, v, z)`: OpenCV pixel coordinates (pixel `i` spans
    /// `[i, i+1)`, centre `i + 0.5`) and camera depth. `None` when in front of the near plane.
    pub fn project(&self, p: [f32; 3]) -> Option<[f64; 3]> {
        let c = self.to_camera(Vector3::new(p[0] as f64, p[1] as f64, p[2] as f64));
        if c.z <= NEAR_PLANE {
            return None;
        }
        Some([
            self.fx * c.x / c.z + self.cx,
            self.fy * c.y / c.z + self.cy,
            c.z,
        ])
    }

    /// `((col + 0.5 − cx)/fx, (row + 0.5 − cy)/fy)`: pixel centre on the plane z = 1.
    fn pixel_offsets(&self, col: u32, row: u32) -> (f64, f64) {
        (
            (col as f64 + 0.5 - self.cx) / self.fx,
            (row as f64 + 0.5 - self.cy) / self.fy,
        )
    }

    /// The geometric viewing ray through pixel (`col`, `row`) in world space: `Rᵀ · (a, b,
    /// 1)`, unnormalised (length 1 at the principal point), from the camera centre.
    pub fn view_ray(&self, col: u32, row: u32) -> Vector3<f64> {
        let (a, b) = self.pixel_offsets(col, row);
        self.rotation.transpose() * Vector3::new(a, b, 1.0)
    }

    /// XHand's ray feature for pixel (`col`, `row`): `Rᵀ · (a, −b, −1)` normalised with
    /// `a = (col + 0.5 − cx)/fx`, `b = (row + 0.5 − cy)/fy` — an OpenGL-style direction
    /// rotated by the OpenCV camera, reproduced as trained (cameras-and-rays.md).
    pub fn ray_feature(&self, col: u32, row: u32) -> [f32; 3] {
        let (a, b) = self.pixel_offsets(col, row);
        let d = self.rotation.transpose() * Vector3::new(a, -b, -1.0);
        let d = d.normalize();
        [d.x as f32, d.y as f32, d.z as f32]
    }

    /// World → clip matrix for wgpu: `ndc_x = u/(W/2) − 1`, `ndc_y = 1 − v/(H/2)` (row 0 at
    /// the top), `ndc_z = near/z` (reversed depth, infinite far plane), `w = z`.
    pub fn clip_from_world(&self) -> Matrix4<f64> {
        let (w2, h2) = (self.width as f64 * 0.5, self.height as f64 * 0.5);
        let proj = Matrix4::new(
            self.fx / w2,
            0.0,
            self.cx / w2 - 1.0,
            0.0,
            0.0,
            -self.fy / h2,
            1.0 - self.cy / h2,
            0.0,
            0.0,
            0.0,
            0.0,
            NEAR_PLANE,
            0.0,
            0.0,
            1.0,
            0.0,
        );
        proj * self.view_matrix()
    }

    /// The part of the image from pixel `(x, y)`, `width` × `height` in size, as a camera
    /// of its own (the principal point moves; nothing else changes).
    pub fn cropped(&self, x: u32, y: u32, width: u32, height: u32) -> Self {
        Self {
            cx: self.cx - x as f64,
            cy: self.cy - y as f64,
            width,
            height,
            ..self.clone()
        }
    }

    /// The camera carried round `pivot` by `angle` radians about the image's up direction
    /// (a turntable step): same distance, same intrinsics, `pivot` stays on the same pixel.
    pub fn orbited(&self, pivot: Vector3<f64>, angle: f64) -> Self {
        let up = -self.rotation.row(1).transpose();
        let turn = nalgebra::Rotation3::from_axis_angle(&nalgebra::Unit::new_normalize(up), angle);
        Self {
            rotation: self.rotation * turn.matrix().transpose(),
            center: pivot + turn * (self.center - pivot),
            ..self.clone()
        }
    }

    /// World → camera as a 4x4 matrix `[R | −R·C]`.
    pub fn view_matrix(&self) -> Matrix4<f64> {
        let mut m = Matrix4::identity();
        m.fixed_view_mut::<3, 3>(0, 0).copy_from(&self.rotation);
        let t = -(self.rotation * self.center);
        m.fixed_view_mut::<3, 1>(0, 3).copy_from(&t);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_at_centres_the_target() {
        let cam = Camera::look_at(
            Vector3::new(0.0, 0.0, 1.0),
            Vector3::zeros(),
            Vector3::y(),
            0.6,
            334,
            512,
        );
        let p = cam.project([0.0, 0.0, 0.0]).unwrap();
        assert!((p[0] - 167.0).abs() < 1e-9 && (p[1] - 256.0).abs() < 1e-9);
        assert!((p[2] - 1.0).abs() < 1e-12);
        // World up appears towards the top of the image (smaller v).
        assert!(cam.project([0.0, 0.1, 0.0]).unwrap()[1] < 256.0);
        // The clip matrix agrees with project().
        let clip = cam.clip_from_world() * nalgebra::Vector4::new(0.05, 0.02, 0.01, 1.0);
        let uv = cam.project([0.05, 0.02, 0.01]).unwrap();
        let ndc_x = clip.x / clip.w;
        let ndc_y = clip.y / clip.w;
        assert!((ndc_x - (uv[0] / 167.0 - 1.0)).abs() < 1e-6);
        assert!((ndc_y - (1.0 - uv[1] / 256.0)).abs() < 1e-6);
    }

    #[test]
    fn orbiting_keeps_the_pivot_and_the_distance() {
        let pivot = Vector3::new(0.125, -0.0625, 0.25); // exact in f32, as project() takes
        let cam = Camera::look_at(
            pivot + Vector3::new(0.2, 0.1, 0.5),
            pivot,
            Vector3::y(),
            0.6,
            64,
            48,
        );
        let before = cam.project([0.125, -0.0625, 0.25]).unwrap();
        for k in 1..8 {
            let turned = cam.orbited(pivot, k as f64 * 0.7);
            let p = turned.project([0.125, -0.0625, 0.25]).unwrap();
            assert!(
                (p[0] - before[0]).abs() < 1e-9 && (p[1] - before[1]).abs() < 1e-9,
                "{p:?} {before:?}"
            );
            assert!(((turned.center - pivot).norm() - (cam.center - pivot).norm()).abs() < 1e-12);
            assert!(turned.rotation.is_orthogonal(1e-12));
        }
        let half = cam.orbited(pivot, std::f64::consts::PI);
        // Half a turn puts the camera on the far side of the pivot (about the image's up).
        let up = -cam.rotation.row(1).transpose();
        let flat = |c: &Camera| {
            let d = c.center - pivot;
            d - up * d.dot(&up)
        };
        assert!((flat(&half) + flat(&cam)).norm() < 1e-9);
        let full = cam.orbited(pivot, std::f64::consts::TAU);
        // A crop sees the same points at shifted pixels.
        let crop = cam.cropped(10, 4, 20, 30);
        let q = crop.project([0.125, -0.0625, 0.25]).unwrap();
        assert!(
            (q[0] - (before[0] - 10.0)).abs() < 1e-9 && (q[1] - (before[1] - 4.0)).abs() < 1e-9
        );
        assert_eq!((crop.width, crop.height), (20, 30));
        assert!((full.center - cam.center).norm() < 1e-12);
    }

    #[test]
    fn ray_feature_matches_xhand_convention() {
        let cam = Camera::look_at(
            Vector3::new(0.0, 0.0, 1.0),
            Vector3::zeros(),
            Vector3::y(),
            0.6,
            10,
            10,
        );
        // Centre pixel: the OpenGL-style (0, 0, -1) rotated to world by Rᵀ.
        let cam_centered = Camera {
            cx: 5.5,
            cy: 5.5,
            ..cam.clone()
        };
        let d = cam_centered.ray_feature(5, 5);
        let expect = cam.rotation.transpose() * Vector3::new(0.0, 0.0, -1.0);
        assert!((d[0] as f64 - expect.x).abs() < 1e-6 && (d[2] as f64 - expect.z).abs() < 1e-6);
    }
}
