//! The lighting panel: SH presets, a light direction you drag, and the 27 coefficients.

use bevy_egui::egui;

use crate::app::session::Session;
use crate::shading::{SH_BANDS, directional_sh};

pub fn lighting_panel(ui: &mut egui::Ui, session: &mut Session) {
    ui.heading("Lighting (SH)");
    let avatar = session.avatar.avatar.clone();
    if session.pose.sh.is_some() {
        ui.checkbox(
            &mut session.lighting.use_frame_sh,
            "use the pose file's lighting",
        );
    }
    ui.horizontal_wrapped(|ui| {
        for (i, row) in avatar.sh_coeffs.iter().enumerate().take(12) {
            if ui
                .small_button(format!("view {i}"))
                .on_hover_text("the avatar's SH of training view {i}")
                .clicked()
            {
                session.lighting.sh = *row;
                session.lighting.use_frame_sh = false;
            }
        }
        if ui.small_button("neutral").clicked() {
            session.lighting.sh = [0.0; crate::SH_DIM];
            session.lighting.use_frame_sh = false;
        }
        if ui.small_button("studio key").clicked() {
            session.lighting.light_azimuth = 0.6;
            session.lighting.light_elevation = 0.6;
            session.lighting.sh = key_light(session);
            session.lighting.use_frame_sh = false;
        }
    });
    ui.label("Light direction (drag)");
    let size = egui::vec2(140.0, 140.0);
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::click_and_drag());
    let painter = ui.painter_at(rect);
    painter.circle_filled(rect.center(), 68.0, egui::Color32::from_gray(40));
    painter.circle_stroke(
        rect.center(),
        68.0,
        egui::Stroke::new(1.0, egui::Color32::GRAY),
    );
    if let Some(pos) = response.interact_pointer_pos() {
        let d = (pos - rect.center()) / 68.0;
        let r = d.length().min(1.0);
        session.lighting.light_azimuth = d.x.atan2(-d.y);
        session.lighting.light_elevation = (1.0 - r) * std::f32::consts::FRAC_PI_2;
        session.lighting.sh = key_light(session);
        session.lighting.use_frame_sh = false;
    }
    let (az, el) = (
        session.lighting.light_azimuth,
        session.lighting.light_elevation,
    );
    let r = 68.0 * (1.0 - el / std::f32::consts::FRAC_PI_2);
    let dot = rect.center() + egui::vec2(az.sin() * r, -az.cos() * r);
    painter.circle_filled(dot, 6.0, egui::Color32::YELLOW);
    if ui
        .add(egui::Slider::new(&mut session.lighting.light_strength, 0.0..=1.5).text("strength"))
        .changed()
    {
        session.lighting.sh = key_light(session);
        session.lighting.use_frame_sh = false;
    }
    ui.checkbox(&mut session.lighting.linked, "link R, G, B");
    egui::CollapsingHeader::new("Coefficients").show(ui, |ui| {
        let channels = if session.lighting.linked { 1 } else { 3 };
        for ch in 0..channels {
            if !session.lighting.linked {
                ui.label(["red", "green", "blue"][ch]);
            }
            for k in 0..SH_BANDS {
                let mut v = session.lighting.sh[ch * SH_BANDS + k];
                if ui
                    .add(egui::Slider::new(&mut v, -2.0..=2.0).text(format!("c{k}")))
                    .changed()
                {
                    session.lighting.use_frame_sh = false;
                    if session.lighting.linked {
                        for c in 0..3 {
                            session.lighting.sh[c * SH_BANDS + k] = v;
                        }
                    } else {
                        session.lighting.sh[ch * SH_BANDS + k] = v;
                    }
                }
            }
        }
    });
}

/// First-order SH from the light direction control, in the current camera's frame: the
/// pad's centre lights surfaces facing the viewer, its rim lights from the side the dot
/// is on; bands 0 and 2 keep their values.
fn key_light(session: &Session) -> [f32; crate::SH_DIM] {
    let l = &session.lighting;
    let (az, el) = (l.light_azimuth, l.light_elevation);
    // Direction towards the light in the camera frame (x right, y down, z forward).
    let cam_dir = nalgebra::Vector3::new(az.sin() * el.cos(), -az.cos() * el.cos(), -el.sin())
        .map(|v| v as f64);
    let dir = match &session.camera {
        Some(c) => c.rotation.transpose() * cam_dir,
        None => cam_dir,
    };
    let d = [dir.x as f32, dir.y as f32, dir.z as f32];
    let fresh = directional_sh(d, l.light_strength, 0.8);
    let mut sh = l.sh;
    for ch in 0..3 {
        for k in 1..4 {
            sh[ch * SH_BANDS + k] = fresh[ch * SH_BANDS + k];
        }
    }
    sh
}
