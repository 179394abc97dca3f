//! The joints panel: 16 MANO joints grouped by finger, three rotation values each in
//! degrees (drag: 0.5° a pixel, Shift: 0.05°; double-click to type), named by what the axis
//! does, resets and preset poses. Edits on a sequence frame stay in the sequence.

use bevy_egui::egui;

use crate::app::files::{Dialogs, FileRole};
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

/// Degrees a pixel of drag turns a joint (Shift: a tenth of it, egui's slow drag).
const DEGREES_PER_PIXEL: f64 = 0.5;

/// What rotating about each axis does to joint `j`, in MANO's flat right hand (fingers along
/// +x, palm facing −y): fingers flex about z and spread about y; the thumb's outer joints
/// flex about y; x twists along the bone. The left hand mirrors the same names.
pub fn axis_names(j: usize) -> [&'static str; 3] {
    match j {
        0 => ["x", "y", "z"],
        13 => ["twist", "flex", "across"],
        14 | 15 => ["twist", "flex", "spread"],
        _ => ["twist", "spread", "flex"],
    }
}

pub fn joints_panel(ui: &mut egui::Ui, session: &mut Session, dialogs: &mut Dialogs) {
    ui.heading("Joints");
    ui.label(
        egui::RichText::new(
            "Degrees, relative to the avatar's mean pose. Drag a value (Shift: finer), double-click to type.",
        )
        .weak(),
    );
    if session.hands.len() > 1 {
        ui.horizontal(|ui| {
            ui.label("Hand");
            for i in 0..session.hands.len() {
                let side = session.side_of(i);
                let mut text = side.as_str().to_string();
                if !session.hands[i].present {
                    text += " (not in this frame)";
                }
                if ui.selectable_label(session.selected == i, text).clicked() {
                    session.select_hand(i);
                }
            }
        });
    }
    hand_avatar(ui, session, dialogs);
    if !session.hand().present {
        ui.label(
            egui::RichText::new("This hand is not in the frame shown: step to a frame with it.")
                .weak(),
        );
        return;
    }
    ui.horizontal_wrapped(|ui| {
        for preset in PresetPose::ALL {
            if ui.button(preset.label()).clicked() {
                session.apply_preset(preset);
            }
        }
    });
    ui.horizontal(|ui| {
        if ui.button("Reset all").clicked() {
            session.edit_pose(|p| p.pose = [0.0; crate::POSE_DIM]);
        }
        if session.frame_edited() {
            ui.colored_label(egui::Color32::from_rgb(240, 190, 80), "frame edited")
                .on_hover_text("kept when you step away; File > Save sequence… writes it");
        }
    });
    for (group, joints) in GROUPS {
        egui::CollapsingHeader::new(group)
            .default_open(group == "Index")
            .show(ui, |ui| {
                if joints.len() > 1
                    && ui
                        .small_button(format!("reset {}", group.to_lowercase()))
                        .clicked()
                {
                    session.edit_pose(|p| {
                        for &j in joints {
                            p.pose[3 * j..3 * j + 3].fill(0.0);
                        }
                    });
                }
                for &j in joints {
                    joint_row(ui, session, j);
                }
            });
    }
    ui.separator();
    ui.label("Placement");
    let mut s = session.pose().scale;
    if ui
        .add(egui::Slider::new(&mut s, 0.2..=3.0).text("scale"))
        .changed()
    {
        session.edit_pose(|p| p.scale = s);
    }
    let hand = session.avatar_of(session.selected).avatar.hand;
    let mut mirrored = session.pose().hand.is_some_and(|h| h != hand);
    if ui
        .checkbox(
            &mut mirrored,
            format!("show as a {} hand (mirrored)", hand.other()),
        )
        .changed()
    {
        session.edit_pose(|p| p.hand = if mirrored { Some(hand.other()) } else { None });
    }
}

/// The avatar that shows the chosen hand, and for left hands the choice of their own.
fn hand_avatar(ui: &mut egui::Ui, session: &mut Session, dialogs: &mut Dialogs) {
    let i = session.selected.min(session.hands.len() - 1);
    let side = session.side_of(i);
    let avatar = session.avatar_of(i).avatar.clone();
    ui.horizontal_wrapped(|ui| {
        let mirrored = if avatar.hand != side {
            " (mirrored)"
        } else {
            ""
        };
        ui.label(egui::RichText::new(format!("avatar: {}{mirrored}", avatar.name)).weak());
        if side != crate::hand::Handedness::Left {
            return;
        }
        if session.left_avatar.is_some() {
            if ui
                .small_button("use the main avatar")
                .on_hover_text("left hands shown by the main avatar, mirrored")
                .clicked()
            {
                session.clear_left_avatar();
            }
        } else if ui
            .small_button("own avatar…")
            .on_hover_text("open an avatar for left hands (File > Open left-hand avatar…)")
            .clicked()
        {
            dialogs.open(FileRole::LeftAvatar, session);
        }
    });
}

/// One joint: its name, a reset, and a value per axis.
fn joint_row(ui: &mut egui::Ui, session: &mut Session, j: usize) {
    ui.horizontal(|ui| {
        ui.label(egui::RichText::new(MANO_JOINT_NAMES[j]).strong());
        if ui
            .small_button("reset")
            .on_hover_text("this joint back to the mean pose")
            .clicked()
        {
            session.edit_pose(|p| p.pose[3 * j..3 * j + 3].fill(0.0));
        }
    });
    ui.horizontal(|ui| {
        for (axis, name) in axis_names(j).iter().enumerate() {
            let k = 3 * j + axis;
            let mut deg = session.pose().pose[k].to_degrees() as f64;
            ui.label(*name);
            let r = ui.add(
                egui::DragValue::new(&mut deg)
                    .speed(DEGREES_PER_PIXEL)
                    .range(-180.0..=180.0)
                    // Poses from files can exceed ±180° (mean-relative values near π):
                    // showing them must not change them.
                    .clamp_existing_to_range(false)
                    .fixed_decimals(1)
                    .suffix("°"),
            );
            if r.changed() {
                let rad = (deg as f32).to_radians();
                session.edit_pose(|p| p.pose[k] = rad);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_names_match_how_the_presets_bend_the_hand() {
        // The fist curls every finger and thumb joint mostly about the axis called "flex".
        let fist = PresetPose::Fist.pose(&[0.0; crate::POSE_DIM]);
        for j in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15] {
            let v = &fist[3 * j..3 * j + 3];
            let main = (0..3)
                .max_by(|&a, &b| v[a].abs().total_cmp(&v[b].abs()))
                .unwrap();
            assert_eq!(axis_names(j)[main], "flex", "joint {j}: {v:?}");
        }
    }
}
