//! The orbit camera: drag to rotate, wheel to zoom, right/middle-drag to pan, F to frame
//! the hand, R to reset. Produces the OpenCV-style [`Camera`] the renderer needs.

use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll, MouseScrollUnit};
use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use nalgebra::{Rotation3, Unit, Vector3};

use super::session::Session;
use crate::camera::{Camera, ViewDirection};
use crate::cpu_render::GridPlane;
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
    /// Move the target with the hand's translation (so a sequence that travels, like
    /// HaMeR's camera-space tracks, stays in view).
    pub follow_hand: bool,
    /// The hand translation the target last followed.
    followed: Vector3<f64>,
    /// Which hand of the scene that was (another hand taking over moves nothing).
    followed_hand: usize,
    /// Width / height of the free area the last framing fitted (0: none yet). A narrower
    /// area later (a panel widened) zooms out so what was framed still fits across.
    framed_aspect: f64,
    /// The background grid, behind what was last framed (`None` until something was).
    pub grid: Option<GridPlane>,
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
            follow_hand: true,
            followed: Vector3::zeros(),
            followed_hand: 0,
            framed_aspect: 0.0,
            grid: None,
        }
    }
}

/// The orbit camera: mouse control, framing, following the hand.
pub struct OrbitPlugin;

impl Plugin for OrbitPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Orbit>()
            .init_resource::<Viewport>()
            .add_systems(Update, orbit_input.in_set(super::ViewerSet::Input))
            .add_systems(Update, orbit_framing.in_set(super::ViewerSet::Camera));
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
            cam.fx = 0.5 * self.fov_height(viewport, height as f64) / (0.5 * self.fov_y).tan();
            cam.fy = cam.fx;
        }
        cam
    }

    /// Pixels the vertical field of view spans in `viewport` (an image `height` tall when
    /// there is no free area): the free area's height, so the hand's size follows it, less
    /// when the area has become narrower than the one last framed.
    fn fov_height(&self, viewport: [f32; 4], height: f64) -> f64 {
        let [x0, y0, x1, y1] = viewport;
        if x1 <= x0 || y1 <= y0 {
            return height;
        }
        let (w, h) = ((x1 - x0) as f64, (y1 - y0) as f64);
        if self.framed_aspect > 0.0 && w / h < self.framed_aspect {
            w / self.framed_aspect
        } else {
            h
        }
    }

    /// Pans by a mouse drag of (`dx`, `dy`) pixels over `viewport` in a window `height`
    /// pixels tall: the point under the cursor follows the cursor.
    pub fn pan(&mut self, dx: f64, dy: f64, viewport: [f32; 4], height: f64) {
        let (dir, up) = self.basis();
        let right = up.cross(&dir).normalize();
        let pixels = self.fov_height(viewport, height).max(1.0);
        let scale = self.distance * 2.0 * (0.5 * self.fov_y).tan() / pixels;
        self.target += (up * dy - right * dx) * scale;
    }

    /// Keeps the target on hand `hand`, which moved to translation `trans` since the last
    /// call. When another hand is followed from now on (the one followed left the frame),
    /// the view stays where it is.
    pub fn follow(&mut self, hand: usize, trans: [f32; 3]) {
        let t = Vector3::new(trans[0] as f64, trans[1] as f64, trans[2] as f64);
        if self.follow_hand && hand == self.followed_hand {
            self.target += t - self.followed;
        }
        self.followed = t;
        self.followed_hand = hand;
    }

    /// Frames the box `[lo, hi]` from the current direction, and puts the grid behind it.
    pub fn frame_box(&mut self, lo: [f32; 3], hi: [f32; 3], aspect: f64) {
        self.grid = GridPlane::behind(lo, hi);
        let (dir, up) = self.basis();
        let aspect = aspect.clamp(0.2, 5.0);
        self.framed_aspect = aspect;
        let h = 512u32;
        let w = ((h as f64 * aspect) as u32).max(1);
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

/// Mouse and keyboard camera control (the mouse skipped while egui uses the pointer, keys
/// while a text field is edited). Dragging in the pose file's camera view leaves it for the
/// orbit camera, saying so.
#[allow(clippy::too_many_arguments)]
pub fn orbit_input(
    mut orbit: ResMut<Orbit>,
    mouse: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    keys: Res<ButtonInput<KeyCode>>,
    window: Single<&Window, With<PrimaryWindow>>,
    egui_input: Res<bevy_egui::input::EguiWantsInput>,
    focus: Res<super::ui::KeyboardFocus>,
    viewport: Res<Viewport>,
    mut session: ResMut<Session>,
    mut messages: ResMut<super::messages::Messages>,
) {
    let pointer_free = !egui_input.wants_any_pointer_input();
    let h = window.height().max(1.0) as f64;
    if pointer_free {
        let d = motion.delta;
        let dragging = (mouse.pressed(MouseButton::Left)
            || mouse.pressed(MouseButton::Right)
            || mouse.pressed(MouseButton::Middle))
            && d != Vec2::ZERO;
        if dragging && session.use_pose_camera {
            session.use_pose_camera = false;
            orbit.frame_requested = true;
            messages.info(
                "left the pose file's camera view to orbit (tick \"HaMeR camera view\" in Display to go back)",
            );
        }
        if mouse.pressed(MouseButton::Left) {
            orbit.yaw -= d.x as f64 * 0.01;
            orbit.pitch = (orbit.pitch + d.y as f64 * 0.01).clamp(-1.55, 1.55);
        }
        if mouse.pressed(MouseButton::Right) || mouse.pressed(MouseButton::Middle) {
            orbit.pan(d.x as f64, d.y as f64, viewport.0, h);
        }
        let wheel = match scroll.unit {
            MouseScrollUnit::Line => scroll.delta.y as f64,
            MouseScrollUnit::Pixel => scroll.delta.y as f64 / 40.0,
        };
        if wheel != 0.0 {
            orbit.distance = (orbit.distance * (-wheel * 0.1).exp()).clamp(0.12, 20.0);
        }
    }
    if !focus.text_editing {
        let ctrl = keys.pressed(KeyCode::ControlLeft) || keys.pressed(KeyCode::ControlRight);
        if keys.just_pressed(KeyCode::KeyF) {
            orbit.frame_requested = true;
        }
        if keys.just_pressed(KeyCode::KeyR) && !ctrl {
            *orbit = Orbit::default();
        }
    }
}

/// Frames the hand when asked (startup, F, avatar or pose file loaded); otherwise keeps
/// the target on the hand as its translation changes.
pub fn orbit_framing(mut orbit: ResMut<Orbit>, session: Res<Session>, viewport: Res<Viewport>) {
    // The hand followed: the first one shown.
    let Some((hand, followed)) = (session.hands.iter().enumerate())
        .find(|(_, h)| h.present)
        .map(|(i, h)| (i, h.pose.trans))
    else {
        return;
    };
    if !orbit.frame_requested {
        orbit.follow(hand, followed);
        return;
    }
    let [x0, y0, x1, y1] = viewport.0;
    // Every hand shown that will be drawn (one the networks failed for never is).
    let present = (session.hands.iter())
        .filter(|h| h.present && !h.nets_failed_here())
        .count();
    if x1 <= x0 || y1 <= y0 || session.drawn_hands().count() < present {
        // The panels are not laid out yet, or a hand's shape is not known: frame once all
        // are.
        return;
    }
    let geometry = session.drawn_geometry();
    orbit.frame_requested = false;
    orbit.followed = Vector3::new(followed[0] as f64, followed[1] as f64, followed[2] as f64);
    orbit.followed_hand = hand;
    // Every hand shown in the frame.
    let vertices: Vec<[f32; 3]> = geometry.into_iter().flat_map(|(_, g)| g.vertices).collect();
    let (lo, hi) = bounding_box(&vertices);
    // Fit the free area between the panels, which the camera centres the view on.
    let aspect = (x1 - x0) as f64 / (y1 - y0) as f64;
    orbit.frame_box(lo, hi, aspect);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen_of(orbit: &Orbit, p: Vector3<f64>) -> [f64; 2] {
        let cam = orbit.camera(800, 600, [0.0; 4]);
        let q = cam
            .project([p.x as f32, p.y as f32, p.z as f32])
            .expect("in front");
        [q[0], q[1]]
    }

    #[test]
    fn panning_moves_the_content_with_the_mouse_on_both_axes() {
        for (yaw, pitch) in [(0.0, 0.0), (0.8, -0.4), (2.5, 1.0)] {
            let mut orbit = Orbit {
                yaw,
                pitch,
                ..Orbit::default()
            };
            let point = orbit.target;
            let before = screen_of(&orbit, point);
            orbit.pan(30.0, -20.0, [0.0; 4], 600.0);
            let after = screen_of(&orbit, point);
            assert!(
                (after[0] - before[0] - 30.0).abs() < 0.5,
                "x: {before:?} -> {after:?}"
            );
            assert!(
                (after[1] - before[1] + 20.0).abs() < 0.5,
                "y: {before:?} -> {after:?}"
            );
        }
    }

    #[test]
    fn the_target_follows_the_hand_translation_unless_told_not_to() {
        let mut orbit = Orbit::default();
        orbit.follow(0, [0.0, 0.0, 30.0]);
        assert_eq!(orbit.target, Vector3::new(0.0, 0.0, 30.0));
        orbit.follow(0, [0.1, 0.0, 30.0]);
        assert!((orbit.target - Vector3::new(0.1, 0.0, 30.0)).norm() < 1e-6);
        // The right hand leaves the frame and the left (a metre away) is followed: no jump,
        // then the left hand's moves are followed.
        orbit.follow(1, [1.1, 0.0, 30.0]);
        assert!((orbit.target - Vector3::new(0.1, 0.0, 30.0)).norm() < 1e-6);
        orbit.follow(1, [1.2, 0.0, 30.0]);
        assert!((orbit.target - Vector3::new(0.2, 0.0, 30.0)).norm() < 1e-6);
        orbit.follow_hand = false;
        orbit.follow(1, [5.0, 0.0, 30.0]);
        assert!((orbit.target - Vector3::new(0.2, 0.0, 30.0)).norm() < 1e-6);
    }

    /// Two hands framed side by side in a wide free area stay inside it when a panel
    /// widens and the area narrows, and panning still moves them with the cursor there.
    #[test]
    fn what_was_framed_still_fits_when_the_free_area_narrows() {
        let (lo, hi) = ([-0.25f32, -0.05, -0.03], [0.25f32, 0.05, 0.03]);
        let mut orbit = Orbit::default();
        let wide = [300.0, 24.0, 1300.0, 524.0];
        orbit.frame_box(lo, hi, 2.0);
        let inside = |orbit: &Orbit, viewport: [f32; 4]| {
            let cam = orbit.camera(1400, 860, viewport);
            let mut xs = Vec::new();
            for x in [lo[0], hi[0]] {
                for y in [lo[1], hi[1]] {
                    for z in [lo[2], hi[2]] {
                        xs.push(cam.project([x, y, z]).expect("in front")[0]);
                    }
                }
            }
            let (min, max) = xs
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            (
                min >= viewport[0] as f64 - 1.0 && max <= viewport[2] as f64 + 1.0,
                max - min,
            )
        };
        let (fits, span_wide) = inside(&orbit, wide);
        assert!(fits, "framed in the wide area");
        let narrow = [300.0, 24.0, 800.0, 524.0];
        let (fits, span_narrow) = inside(&orbit, narrow);
        assert!(fits, "still inside once the area is half as wide");
        assert!(
            (span_narrow / span_wide - 0.5).abs() < 0.01,
            "{span_wide} -> {span_narrow}"
        );
        // An area wider than framed keeps the size tied to its height, as before.
        let (fits, span_low) = inside(&orbit, [300.0, 24.0, 1300.0, 374.0]);
        assert!(
            fits && (span_low / span_wide - 0.7).abs() < 0.01,
            "{span_low}"
        );
        // Panning in the narrowed area: the target's image follows the drag.
        let cam = orbit.camera(1400, 860, narrow);
        let t = orbit.target;
        let before = cam
            .project([t.x as f32, t.y as f32, t.z as f32])
            .expect("in front");
        orbit.pan(40.0, 0.0, narrow, 860.0);
        let cam = orbit.camera(1400, 860, narrow);
        let after = cam
            .project([t.x as f32, t.y as f32, t.z as f32])
            .expect("in front");
        assert!(
            (after[0] - before[0] - 40.0).abs() < 0.5,
            "{before:?} -> {after:?}"
        );
    }
}
