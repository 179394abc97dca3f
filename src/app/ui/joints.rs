//! The joints panel: 16 MANO joints grouped by finger, three axis-angle sliders each, resets
//! and preset poses.

use bevy_egui::egui;

use crate::app::session::Session;
use crate::pose::presets::PresetPose;
use crate::skeleton::MANO_JOINT_NAMES;

/// Finger groups in the order users expect.
const GROUPS: [(&str, &[usize]); 6] = [
    ("Global orientation", &[0]),
    ("Thumb", &[13, 14, 15]),
    ("Index", &[1, 2, 3]),
    ("Middle", &[4, 5, 6]),
    ("Ring", &[10, 11, 12]),
    ("Pinky", &[7, 8, 9]),
];

pub fn joints_panel(ui: &mut egui::Ui, session: &mut Session) {
    ui.heading("Joints");
    ui.label(egui::RichText::new("Axis-angle (rad) relative to the avatar's mean pose").weak());
    ui.horizontal_wrapped(|ui| {
        let mean = *session.avatar.avatar.template.skeleton.pose_mean();
        for preset in PresetPose::ALL {
            if ui.button(preset.label()).clicked() {
                session.timeline.playing = false;
                session.pose.pose = preset.pose(&mean);
            }
        }
    });
    if ui.button("Reset all").clicked() {
        session.timeline.playing = false;
        session.pose.pose = [0.0; crate::POSE_DIM];
    }
    for (group, joints) in GROUPS {
        egui::CollapsingHeader::new(group)
            .default_open(group == "Index")
            .show(ui, |ui| {
                if joints.len() > 1
                    && ui
                        .small_button(format!("reset {}", group.to_lowercase()))
                        .clicked()
                {
                    for &j in joints {
                        session.pose.pose[3 * j..3 * j + 3].fill(0.0);
                    }
                }
                for &j in joints {
                    ui.horizontal(|ui| {
                        ui.label(MANO_JOINT_NAMES[j]);
                        if ui
                            .small_button("⟲")
                            .on_hover_text("reset this joint")
                            .clicked()
                        {
                            session.pose.pose[3 * j..3 * j + 3].fill(0.0);
                        }
                    });
                    for (axis, name) in ["x", "y", "z"].iter().enumerate() {
                        let k = 3 * j + axis;
                        let mut v = session.pose.pose[k];
                        let r = ui.add(
                            egui::Slider::new(&mut v, -std::f32::consts::PI..=std::f32::consts::PI)
                                .text(*name),
                        );
                        if r.changed() {
                            session.timeline.playing = false;
                            session.pose.pose[k] = v;
                        }
                    }
                }
            });
    }
    ui.separator();
    ui.label("Placement");
    let mut s = session.pose.scale;
    if ui
        .add(egui::Slider::new(&mut s, 0.2..=3.0).text("scale"))
        .changed()
    {
        session.pose.scale = s;
    }
    let hand = session.avatar.avatar.hand;
    let mut mirrored = session.pose.hand.is_some_and(|h| h != hand);
    if ui
        .checkbox(
            &mut mirrored,
            format!("show as a {} hand (mirrored)", hand.other()),
        )
        .changed()
    {
        session.pose.hand = if mirrored { Some(hand.other()) } else { None };
    }
}
