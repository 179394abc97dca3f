//! The lighting panel: SH presets, a light direction you drag, and the 27 coefficients.

use bevy_egui::egui;

use crate::app::files::{Dialogs, FileRole};
use crate::app::lighting::{LightSource, Lighting};
use crate::app::session::Session;
use crate::camera::Camera;
use crate::shading::{SH_BANDS, directional_sh, sh_direction};

/// The pad's strength after "studio key" (a key light that does not blow out the albedo).
const STUDIO_KEY_STRENGTH: f32 = 0.4;

pub fn lighting_panel(
    ui: &mut egui::Ui,
    session: &mut Session,
    lighting: &mut Lighting,
    dialogs: &mut Dialogs,
) {
    ui.heading("Lighting (SH)");
    let avatar = session.avatar.avatar.clone();
    if session.frame_has_sh() {
        ui.checkbox(&mut lighting.use_frame_sh, "use the pose file's lighting");
    }
    ui.horizontal_wrapped(|ui| {
        let active = lighting.source;
        for (i, row) in avatar.sh_coeffs.iter().enumerate().take(12) {
            if ui
                .selectable_label(active == LightSource::Row(i), format!("view {i}"))
                .on_hover_text(format!("the avatar's SH of training view {i}"))
                .clicked()
            {
                lighting.sh = *row;
                lighting.use_frame_sh = false;
                lighting.source = LightSource::Row(i);
                pad_from_sh(lighting, session.camera.as_ref());
            }
        }
        if ui
            .selectable_label(active == LightSource::Neutral, "neutral")
            .clicked()
        {
            lighting.sh = [0.0; crate::SH_DIM];
            lighting.use_frame_sh = false;
            lighting.source = LightSource::Neutral;
            pad_from_sh(lighting, session.camera.as_ref());
        }
        if ui
            .selectable_label(active == LightSource::StudioKey, "studio key")
            .clicked()
        {
            lighting.light_azimuth = 0.6;
            lighting.light_elevation = 0.6;
            lighting.light_strength = STUDIO_KEY_STRENGTH;
            lighting.sh = key_light(lighting, session.camera.as_ref());
            lighting.use_frame_sh = false;
            lighting.source = LightSource::StudioKey;
        }
    });
    let active = match lighting.source {
        _ if lighting.use_frame_sh && session.frame_has_sh() => {
            "the pose file's lighting".to_string()
        }
        LightSource::Row(i) => format!("training view {i}"),
        LightSource::Neutral => "neutral".into(),
        LightSource::StudioKey => "studio key".into(),
        LightSource::Custom => "edited".into(),
        LightSource::Environment => "the environment map".into(),
    };
    ui.label(egui::RichText::new(format!("in use: {active}")).weak());
    environment(ui, session, lighting, dialogs);
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
        lighting.light_azimuth = d.x.atan2(-d.y);
        lighting.light_elevation = (1.0 - r) * std::f32::consts::FRAC_PI_2;
        lighting.sh = key_light(lighting, session.camera.as_ref());
        lighting.use_frame_sh = false;
        lighting.source = LightSource::Custom;
    }
    let (az, el) = (lighting.light_azimuth, lighting.light_elevation);
    let r = 68.0 * (1.0 - el / std::f32::consts::FRAC_PI_2);
    let dot = rect.center() + egui::vec2(az.sin() * r, -az.cos() * r);
    painter.circle_filled(dot, 6.0, egui::Color32::YELLOW);
    if ui
        .add(egui::Slider::new(&mut lighting.light_strength, 0.0..=1.5).text("strength"))
        .changed()
    {
        lighting.sh = key_light(lighting, session.camera.as_ref());
        lighting.use_frame_sh = false;
        lighting.source = LightSource::Custom;
    }
    ui.checkbox(&mut lighting.linked, "link R, G, B");
    egui::CollapsingHeader::new("Coefficients").show(ui, |ui| {
        let channels = if lighting.linked { 1 } else { 3 };
        for ch in 0..channels {
            if !lighting.linked {
                ui.label(["red", "green", "blue"][ch]);
            }
            for k in 0..SH_BANDS {
                let mut v = lighting.sh[ch * SH_BANDS + k];
                if ui
                    .add(egui::Slider::new(&mut v, -2.0..=2.0).text(format!("c{k}")))
                    .changed()
                {
                    lighting.use_frame_sh = false;
                    lighting.source = LightSource::Custom;
                    if lighting.linked {
                        for c in 0..3 {
                            lighting.sh[c * SH_BANDS + k] = v;
                        }
                    } else {
                        lighting.sh[ch * SH_BANDS + k] = v;
                    }
                }
            }
        }
    });
}

/// Points the direction pad and strength at the first-order light of the SH in use (in
/// the current camera's frame; a light from behind the hand sits on the rim).
fn pad_from_sh(l: &mut Lighting, camera: Option<&Camera>) {
    let Some((dir, strength)) = sh_direction(&l.sh) else {
        l.light_strength = 0.0;
        return;
    };
    let world = nalgebra::Vector3::new(dir[0] as f64, dir[1] as f64, dir[2] as f64);
    let cam = match camera {
        Some(c) => c.rotation * world,
        None => world,
    };
    let (az, el) = pad_angles([cam.x as f32, cam.y as f32, cam.z as f32]);
    l.light_azimuth = az;
    l.light_elevation = el;
    l.light_strength = strength.min(1.5);
}

/// Azimuth and elevation on the pad of a direction towards the light in the camera frame
/// (x right, y down, z forward): the inverse of the mapping in [`key_light`].
fn pad_angles(cam: [f32; 3]) -> (f32, f32) {
    let el = (-cam[2]).clamp(0.0, 1.0).asin();
    let az = cam[0].atan2(-cam[1]);
    (az, el)
}

/// First-order SH from the light direction control, in the current camera's frame: the
/// pad's centre lights surfaces facing the viewer, its rim lights from the side the dot
/// is on; bands 0 and 2 keep their values.
fn key_light(l: &Lighting, camera: Option<&Camera>) -> [f32; crate::SH_DIM] {
    let (az, el) = (l.light_azimuth, l.light_elevation);
    // Direction towards the light in the camera frame (x right, y down, z forward).
    let cam_dir = nalgebra::Vector3::new(az.sin() * el.cos(), -az.cos() * el.cos(), -el.sin())
        .map(|v| v as f64);
    let dir = match camera {
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

/// The environment-map controls: open one, turn it, go back to it after other edits.
fn environment(
    ui: &mut egui::Ui,
    session: &mut Session,
    lighting: &mut Lighting,
    dialogs: &mut Dialogs,
) {
    ui.horizontal(|ui| {
        if ui
            .button("Environment map…")
            .on_hover_text(
                "light with an equirectangular .hdr or .exr (or drop one onto the window)",
            )
            .clicked()
        {
            dialogs.open(FileRole::EnvMap, session);
        }
        if session.loading_env.is_some() {
            ui.spinner();
        }
    });
    let Some((path, _)) = lighting.env.clone() else {
        return;
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    ui.horizontal(|ui| {
        let active = lighting.source == LightSource::Environment;
        if ui
            .selectable_label(active, name)
            .on_hover_text(path.display().to_string())
            .clicked()
        {
            lighting.light_from_environment(session.avatar.avatar.color_order);
        }
        let mut deg = lighting.env_rotation;
        let r = ui.add(
            egui::DragValue::new(&mut deg)
                .speed(1.0)
                .range(-180.0..=180.0)
                .clamp_existing_to_range(false)
                .suffix("°"),
        );
        ui.label("turn")
            .on_hover_text("drag to turn the environment about the up axis");
        if r.changed() {
            lighting.env_rotation = deg;
            lighting.light_from_environment(session.avatar.avatar.color_order);
        }
    });
    ui.checkbox(&mut lighting.env_background, "show as background")
        .on_hover_text("draw the environment behind the hand, turned with it (also in exports)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_angles_invert_the_pad_direction() {
        for (az, el) in [(0.6f32, 0.6f32), (-2.0, 0.1), (1.0, 1.4)] {
            let cam = [az.sin() * el.cos(), -az.cos() * el.cos(), -el.sin()];
            let (a, e) = pad_angles(cam);
            assert!(
                (a - az).abs() < 1e-5 && (e - el).abs() < 1e-5,
                "{az} {el} -> {a} {e}"
            );
        }
    }
}
