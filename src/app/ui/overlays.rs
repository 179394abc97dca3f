//! Floating windows: stats, messages, the capture/hand picker, help.

use crate::app::messages::Messages;
use bevy::diagnostic::{DiagnosticsStore, FrameTimeDiagnosticsPlugin};
use bevy_egui::egui;

use super::DeviceInfo;
use crate::app::display::Panels;
use crate::app::files::{Dialogs, FileRole, check_typed_path};
use crate::app::render::RenderTimings;
use crate::app::session::Session;

/// The stats overlay (shown when `Panels::show_stats`).
pub fn stats(
    ctx: &egui::Context,
    free: egui::Rect,
    session: &Session,
    info: &DeviceInfo,
    timings: &RenderTimings,
    diagnostics: &DiagnosticsStore,
    cpu_neural: &crate::app::cpu_neural::CpuNeural,
) {
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
        .fixed_pos(free.right_top() + egui::vec2(-290.0, 8.0))
        .interactable(false)
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.set_width(270.0);
                ui.monospace(format!("{fps:5.1} fps  {frame_ms:6.1} ms/frame"));
                if t.nets_in_frame {
                    // The networks' pass this frame (timestamps; none when the pose stayed),
                    // or their time measured for `auto`.
                    let ms = t.gpu.and_then(|g| g.nets_ms);
                    let kernel = t.nets_kernel.unwrap_or("");
                    match (ms, t.nets_measured_ms) {
                        (Some(ms), _) => {
                            ui.monospace(format!("GPU nets   {ms:8.3} ms (frame, {kernel})"))
                        }
                        (None, Some(ms)) => {
                            ui.monospace(format!("GPU nets   {ms:8.3} ms (timed, {kernel})"))
                        }
                        (None, None) => ui.monospace(format!("GPU nets: in the frame ({kernel})")),
                    };
                }
                for (i, h) in session.hands.iter().enumerate().filter(|(_, h)| h.present) {
                    let side = if session.hands.len() > 1 {
                        session.side_of(i).as_str()
                    } else {
                        ""
                    };
                    ui.monospace(format!(
                        "embeddings {:8.1} ms (worker) {side}",
                        h.embeddings.millis
                    ));
                }

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
                    "{} verts · {} faces{}",
                    avatar.num_vertices(),
                    avatar.num_faces(),
                    match session.drawn_hands().count() {
                        2.. => " · each hand",
                        _ => "",
                    }
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
                if t.nets_in_frame {
                    ui.monospace(format!("nets: render GPU (worker: {nets})"));
                } else {
                    ui.monospace(format!("nets: {nets}"));
                }
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

/// Toasts shown at once; older ones wait in the log.
const MAX_TOASTS: usize = 4;

/// The newest messages as toasts in the bottom-left corner of the free viewport (clear of
/// the panels and the menu), with dismiss, dismiss-all and open-folder actions.
/// "Computing the avatar's details…" in the middle of the viewport until the networks' first
/// outputs arrive (the window opens before them).
pub fn computing(ctx: &egui::Context, free: egui::Rect, session: &Session) {
    if session.drawn_hands().next().is_some() || session.hands.iter().all(|h| !h.present) {
        return;
    }
    egui::Area::new(egui::Id::new("computing"))
        .fixed_pos(free.center() - egui::vec2(120.0, 10.0))
        .interactable(false)
        .show(ctx, |ui| {
            ui.horizontal(|ui| {
                if session.nets_failed_here() {
                    ui.label("the networks failed for this avatar: see the messages (M)");
                } else {
                    ui.spinner();
                    ui.label(format!(
                        "computing the details of {}…",
                        session.avatar.avatar.name
                    ));
                }
            });
        });
}

pub fn toasts(ctx: &egui::Context, free: egui::Rect, messages: &mut Messages) {
    if messages.toasts.is_empty() {
        return;
    }
    let now = std::time::Instant::now();
    let mut dismiss = None;
    let mut dismiss_all = false;
    let mut open_folder = None;
    let first = messages.toasts.len().saturating_sub(MAX_TOASTS);
    egui::Area::new("messages".into())
        .pivot(egui::Align2::LEFT_BOTTOM)
        .fixed_pos(free.left_bottom() + egui::vec2(12.0, -12.0))
        .show(ctx, |ui| {
            ui.set_max_width((free.width() - 24.0).clamp(200.0, 720.0));
            if first > 0 || messages.toasts.len() > 1 {
                ui.horizontal(|ui| {
                    if first > 0 {
                        ui.label(
                            egui::RichText::new(format!("{first} older in the log (M)")).weak(),
                        );
                    }
                    if ui.small_button("dismiss all").clicked() {
                        dismiss_all = true;
                    }
                });
            }
            for (i, m) in messages.toasts.iter_mut().enumerate().skip(first) {
                m.shown_at.get_or_insert(now);
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    ui.horizontal_wrapped(|ui| {
                        if m.is_error {
                            ui.colored_label(egui::Color32::from_rgb(255, 110, 100), "error:");
                        }
                        ui.label(&m.text);
                        if let Some(dir) = &m.folder
                            && ui.small_button("open folder").clicked()
                        {
                            open_folder = Some(dir.clone());
                        }
                        if ui.small_button("dismiss").clicked() {
                            dismiss = Some(i);
                        }
                    });
                });
            }
        });
    if dismiss_all {
        messages.toasts.clear();
    } else if let Some(i) = dismiss {
        messages.toasts.remove(i);
    }
    if let Some(dir) = open_folder {
        crate::app::output::open_folder(messages, &dir);
    }
}

/// Every message of this run (M), newest last.
pub fn message_log(ctx: &egui::Context, messages: &mut Messages, panels: &mut Panels) {
    let mut open = panels.show_log;
    if !open {
        return;
    }
    let mut clear = false;
    egui::Window::new("Messages")
        .open(&mut open)
        .default_size([520.0, 260.0])
        .show(ctx, |ui| {
            ui.horizontal(|ui| {
                ui.label(format!("{} message(s) this run", messages.log.len()));
                if ui.small_button("clear").clicked() {
                    clear = true;
                }
            });
            egui::ScrollArea::vertical()
                .stick_to_bottom(true)
                .show(ui, |ui| {
                    for m in &messages.log {
                        if m.is_error {
                            ui.colored_label(
                                egui::Color32::from_rgb(255, 110, 100),
                                format!("error: {}", m.text),
                            );
                        } else {
                            ui.label(&m.text);
                        }
                    }
                });
        });
    if clear {
        messages.log.clear();
    }
    panels.show_log = open;
}

/// The path field: type or paste a path where a file dialog would be (always available;
/// the only way when no native dialog can be shown).
pub fn path_prompt(
    ctx: &egui::Context,
    session: &mut Session,
    messages: &mut Messages,
    dialogs: &mut Dialogs,
) {
    let Some(mut prompt) = dialogs.prompt.take() else {
        return;
    };
    let mut open = true;
    let mut cancel = false;
    let mut submit = false;
    egui::Window::new(prompt.role.title())
        .id("path-prompt".into())
        .collapsible(false)
        .open(&mut open)
        .show(ctx, |ui| {
            if let Some(note) = &prompt.note {
                ui.label(note);
            }
            let field = ui.add(
                egui::TextEdit::singleline(&mut prompt.text)
                    .desired_width(460.0)
                    .hint_text("a full path, e.g. /home/me/hands/avatar.safetensors"),
            );
            if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                submit = true;
            }
            ui.horizontal(|ui| {
                let verb = if prompt.role.writes() { "Save" } else { "Open" };
                let verb = if prompt.role == FileRole::OutputFolder {
                    "Use folder"
                } else {
                    verb
                };
                submit |= ui.button(verb).clicked();
                cancel = ui.button("Cancel").clicked();
                ui.label(egui::RichText::new("Enter to confirm").weak());
            });
        });
    if submit {
        match check_typed_path(prompt.role, &prompt.text) {
            Ok(path) => {
                crate::app::files::use_path(session, messages, prompt.role, path);
                return;
            }
            Err(e) => prompt.note = Some(e),
        }
    }
    if open && !cancel {
        dialogs.prompt = Some(prompt);
    }
}

pub fn pose_choice(ctx: &egui::Context, session: &mut Session) {
    use crate::pose::{HandChoice, PoseFormat};
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
                        ui.radio_value(&mut choice.hand, Some(HandChoice::from(h)), h.as_str());
                    }
                    if matches!(
                        choice.summary.format,
                        PoseFormat::Hamer | PoseFormat::InterHand
                    ) {
                        ui.radio_value(&mut choice.hand, Some(HandChoice::Both), "both");
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

pub fn help(ctx: &egui::Context, panels: &mut Panels) {
    let mut open = panels.show_help;
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
                    ("Space", "play / pause (at the end: play again)"),
                    ("Left / Right arrow", "previous / next frame"),
                    ("Home / End", "first / last frame"),
                    (
                        "1 … 7",
                        "neural, SH, albedo, normals, weights, displacement, mask",
                    ),
                    ("Shift + drag a value", "finer joint and light edits"),
                    ("W", "wireframe overlay"),
                    ("G", "background grid"),
                    ("T", "stats overlay"),
                    ("M", "messages log"),
                    ("Tab", "hide / show panels"),
                    ("Ctrl+O / Ctrl+P", "open avatar / poses"),
                    ("Ctrl+S", "screenshot (Ctrl+Shift+S: without panels)"),
                    ("Ctrl+E", "export mesh"),
                    ("Ctrl+Q", "quit"),
                    (
                        "drop a file",
                        ".safetensors / .pth: avatar; .json / .npz: poses; .hdr / .exr: environment; .pkl: MANO",
                    ),
                ] {
                    ui.monospace(k);
                    ui.label(what);
                    ui.end_row();
                }
            });
        });
    panels.show_help = open;
}
