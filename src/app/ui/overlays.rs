//! Floating windows: stats, messages, the capture/hand picker, help.

use bevy::diagnostic::{DiagnosticsStore, FrameTimeDiagnosticsPlugin};
use bevy_egui::egui;

use super::DeviceInfo;
use crate::app::render::RenderTimings;
use crate::app::session::Session;

pub fn stats(
    ctx: &egui::Context,
    free: egui::Rect,
    session: &Session,
    info: &DeviceInfo,
    timings: &RenderTimings,
    diagnostics: &DiagnosticsStore,
    cpu_neural: &crate::app::cpu_neural::CpuNeural,
) {
    if !session.show_stats {
        return;
    }
    let fps = diagnostics
        .get(&FrameTimeDiagnosticsPlugin::FPS)
        .and_then(|d| d.smoothed())
        .unwrap_or(0.0);
    let frame_ms = diagnostics
        .get(&FrameTimeDiagnosticsPlugin::FRAME_TIME)
        .and_then(|d| d.smoothed())
        .unwrap_or(0.0);
    let t = timings.0.lock().map(|v| *v).unwrap_or_default();
    let avatar = &session.avatar.avatar;
    egui::Area::new("stats".into())
        .fixed_pos(free.right_top() + egui::vec2(-250.0, 8.0))
        .interactable(false)
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.set_width(230.0);
                ui.monospace(format!("{fps:5.1} fps  {frame_ms:6.1} ms/frame"));
                ui.monospace(format!(
                    "embeddings {:8.1} ms (worker)",
                    session.embeddings.millis
                ));

                ui.monospace(format!("kinematics {:8.3} ms", session.kinematics_ms));
                ui.monospace(format!("upload     {:8.3} ms", t.upload_ms));
                ui.monospace(format!("GPU encode {:8.3} ms (CPU)", t.pipeline_ms));
                match t.gpu {
                    Some(g) => {
                        ui.monospace(format!("GPU skin   {:8.3} ms", g.skinning_ms));
                        ui.monospace(format!("GPU raster {:8.3} ms", g.raster_ms));
                        ui.monospace(format!("GPU shade  {:8.3} ms", g.shading_ms));
                        ui.monospace(format!("GPU compos {:8.3} ms", g.composite_ms));
                    }
                    None => {
                        ui.monospace("GPU stages: no timestamps");
                    }
                }
                ui.monospace(format!(
                    "{} verts · {} faces",
                    avatar.num_vertices(),
                    avatar.num_faces()
                ));
                if cpu_neural.active {
                    ui.monospace(format!("neural (CPU) {:6.0} ms", cpu_neural.last_millis));
                }
                ui.monospace(format!("GPU: {}", info.adapter));
                // The engine the worker last ran the networks on, else the candle device.
                let nets = if session.nets_engine.is_empty() {
                    &info.candle
                } else {
                    &session.nets_engine
                };
                ui.monospace(format!("nets: {nets}"));
                if session.details_stale() {
                    ui.colored_label(egui::Color32::YELLOW, "details updating…");
                }
                if cpu_neural.is_updating() {
                    ui.colored_label(
                        egui::Color32::YELLOW,
                        "neural shading on the CPU (software GPU): SH until it is ready",
                    );
                }
            });
        });
}

pub fn messages(ctx: &egui::Context, free: egui::Rect, session: &mut Session) {
    if session.messages.is_empty() {
        return;
    }
    let mut dismiss = None;
    egui::Area::new("messages".into())
        .fixed_pos(free.left_top() + egui::vec2(12.0, 8.0))
        .show(ctx, |ui| {
            ui.set_max_width((free.width() - 300.0).max(200.0));
            for (i, m) in session.messages.iter().enumerate() {
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    ui.horizontal(|ui| {
                        if m.is_error {
                            ui.colored_label(egui::Color32::from_rgb(255, 110, 100), "⚠");
                        }
                        ui.label(&m.text);
                        if m.is_error && ui.small_button("✕").on_hover_text("dismiss").clicked() {
                            dismiss = Some(i);
                        }
                    });
                });
            }
        });
    if let Some(i) = dismiss {
        session.messages.remove(i);
    }
}

pub fn pose_choice(ctx: &egui::Context, session: &mut Session) {
    let Some(mut choice) = session.pose_choice.take() else {
        return;
    };
    let mut open = true;
    let mut load = false;
    egui::Window::new("Which hand?")
        .collapsible(false)
        .open(&mut open)
        .show(ctx, |ui| {
            ui.label(format!(
                "{} holds several sequences.",
                choice.path.display()
            ));
            if choice.summary.captures.len() > 1 {
                egui::ComboBox::from_label("capture")
                    .selected_text(choice.capture.clone().unwrap_or_default())
                    .show_ui(ui, |ui| {
                        for (c, n) in choice
                            .summary
                            .captures
                            .iter()
                            .zip(&choice.summary.capture_frames)
                        {
                            ui.selectable_value(
                                &mut choice.capture,
                                Some(c.clone()),
                                format!("{c} ({n} frames)"),
                            );
                        }
                    });
            }
            if choice.summary.hands.len() > 1 {
                ui.horizontal(|ui| {
                    for h in choice.summary.hands.clone() {
                        ui.radio_value(&mut choice.hand, Some(h), h.as_str());
                    }
                });
            }
            load = ui.button("Load").clicked();
        });
    if load {
        let (path, capture, hand) = (choice.path.clone(), choice.capture.clone(), choice.hand);
        crate::app::files::start_pose_load(session, path, capture, hand);
    } else if open {
        session.pose_choice = Some(choice);
    }
}

pub fn help(ctx: &egui::Context, session: &mut Session) {
    let mut open = session.show_help;
    egui::Window::new("Keyboard and mouse")
        .open(&mut open)
        .show(ctx, |ui| {
            egui::Grid::new("keys").striped(true).show(ui, |ui| {
                for (k, what) in [
                    ("left drag", "rotate the camera"),
                    ("right / middle drag", "pan"),
                    ("wheel", "zoom"),
                    ("F", "frame the hand"),
                    ("R", "reset the camera"),
                    ("Space", "play / pause"),
                    ("← / →", "previous / next frame"),
                    (
                        "1 … 7",
                        "neural, SH, albedo, normals, weights, displacement, mask",
                    ),
                    ("W", "wireframe overlay"),
                    ("G", "background grid"),
                    ("T", "stats overlay"),
                    ("Tab", "hide / show panels"),
                    ("Ctrl+O / Ctrl+P", "open avatar / poses"),
                    ("Ctrl+S", "screenshot"),
                    ("Ctrl+E", "export mesh"),
                    ("Ctrl+Q", "quit"),
                    ("drop a file", ".safetensors → avatar, .json → poses"),
                ] {
                    ui.monospace(k);
                    ui.label(what);
                    ui.end_row();
                }
            });
        });
    session.show_help = open;
}
