//! The orbit camera: drag to rotate, wheel to zoom, right/middle-drag to pan, F to frame
//! the hand, R to reset. Produces the OpenCV-style [`Camera`] the renderer needs.

use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll, MouseScrollUnit};
use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use nalgebra::{Rotation3, Unit, Vector3};

use super::session::Session;
use crate::camera::{Camera, ViewDirection};
use crate::mesh::bounding_box;

/// Orbit state around a target point.
#[derive(Resource, Clone, Debug)]
pub struct Orbit {
    pub target: Vector3<f64>,
    /// Rotation about the view's up axis and about its right axis, radians.
    pub yaw: f64,
    pub pitch: f64,
    pub distance: f64,
    /// Vertical field of view, radians.
    pub fov_y: f64,
    /// Set to frame the hand on the next update.
    pub frame_requested: bool,
}

impl Default for Orbit {
    fn default() -> Self {
        Self {
            target: Vector3::zeros(),
            yaw: 0.0,
            pitch: 0.0,
            distance: 0.5,
            fov_y: 30f64.to_radians(),
            frame_requested: true,
        }
    }
}

/// The screen area not covered by panels, in physical pixels: (x0, y0, x1, y1).
#[derive(Resource, Clone, Copy, Debug, Default)]
pub struct Viewport(pub [f32; 4]);

impl Orbit {
    /// Eye direction (from target to eye) and up vector.
    fn basis(&self) -> (Vector3<f64>, Vector3<f64>) {
        let (dir, up) = ViewDirection::Front.eye_and_up();
        let right = Unit::new_normalize(up.cross(&dir));
        let r = Rotation3::from_axis_angle(&Unit::new_normalize(up), self.yaw)
            * Rotation3::from_axis_angle(&right, -self.pitch);
        (r * dir, r * up)
    }

    /// The camera for a `width` x `height` image whose free area is `viewport`.
    pub fn camera(&self, width: u32, height: u32, viewport: [f32; 4]) -> Camera {
        let (dir, up) = self.basis();
        let mut cam = Camera::look_at(
            self.target + dir * self.distance,
            self.target,
            up,
            self.fov_y,
            width.max(1),
            height.max(1),
        );
        let [x0, y0, x1, y1] = viewport;
        if x1 > x0 && y1 > y0 {
            cam.cx = 0.5 * (x0 + x1) as f64;
            cam.cy = 0.5 * (y0 + y1) as f64;
            // Keep the hand's size tied to the free area's height.
            cam.fx = 0.5 * (y1 - y0) as f64 / (0.5 * self.fov_y).tan();
            cam.fy = cam.fx;
        }
        cam
    }

    /// Frames the box `[lo, hi]` from the current direction.
    pub fn frame_box(&mut self, lo: [f32; 3], hi: [f32; 3], aspect: f64) {
        let (dir, up) = self.basis();
        let h = 512u32;
        let w = ((h as f64 * aspect.clamp(0.2, 5.0)) as u32).max(1);
        let framed = Camera::framing_dir(lo, hi, dir, up, w, h);
        self.target = Vector3::new(
            0.5 * (lo[0] + hi[0]) as f64,
            0.5 * (lo[1] + hi[1]) as f64,
            0.5 * (lo[2] + hi[2]) as f64,
        );
        self.distance = (framed.center - self.target).norm();
        let vfov = 2.0 * (0.5 * h as f64 / framed.fy).atan();
        self.fov_y = vfov;
    }
}

/// Mouse and keyboard camera control (skipped while egui uses the pointer/keyboard).
#[allow(clippy::too_many_arguments)]
pub fn orbit_input(
    mut orbit: ResMut<Orbit>,
    mouse: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    keys: Res<ButtonInput<KeyCode>>,
    window: Single<&Window, With<PrimaryWindow>>,
    egui_input: Res<bevy_egui::input::EguiWantsInput>,
    session: Res<Session>,
) {
    let pointer_free = !egui_input.wants_any_pointer_input();
    let keys_free = !egui_input.wants_any_keyboard_input();
    let h = window.height().max(1.0) as f64;
    if pointer_free {
        let d = motion.delta;
        if mouse.pressed(MouseButton::Left) {
            orbit.yaw -= d.x as f64 * 0.01;
            orbit.pitch = (orbit.pitch + d.y as f64 * 0.01).clamp(-1.55, 1.55);
        }
        if mouse.pressed(MouseButton::Right) || mouse.pressed(MouseButton::Middle) {
            let (dir, up) = orbit.basis();
            let right = up.cross(&dir).normalize();
            let scale = orbit.distance * 2.0 * (0.5 * orbit.fov_y).tan() / h;
            orbit.target += right * (d.x as f64 * scale) + up * (d.y as f64 * scale);
        }
        let wheel = match scroll.unit {
            MouseScrollUnit::Line => scroll.delta.y as f64,
            MouseScrollUnit::Pixel => scroll.delta.y as f64 / 40.0,
        };
        if wheel != 0.0 {
            orbit.distance = (orbit.distance * (-wheel * 0.1).exp()).clamp(0.12, 20.0);
        }
    }
    if keys_free {
        if keys.just_pressed(KeyCode::KeyF) {
            orbit.frame_requested = true;
        }
        if keys.just_pressed(KeyCode::KeyR) && !keys.pressed(KeyCode::ControlLeft) {
            *orbit = Orbit::default();
        }
    }
    let _ = session;
}

/// Frames the hand when asked (startup, F, avatar change).
pub fn orbit_framing(
    mut orbit: ResMut<Orbit>,
    session: Res<Session>,
    window: Single<&Window, With<PrimaryWindow>>,
) {
    if !orbit.frame_requested {
        return;
    }
    orbit.frame_requested = false;
    let avatar = &session.avatar.avatar;
    let geo = avatar.pose_geometry(&session.embeddings.embeddings, &session.pose);
    let (lo, hi) = bounding_box(&geo.vertices);
    let aspect = window.width().max(1.0) as f64 / window.height().max(1.0) as f64;
    orbit.frame_box(lo, hi, aspect);
}
