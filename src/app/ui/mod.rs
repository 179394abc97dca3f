//! The egui interface: menu bar, joints and lighting panels, timeline, stats overlay,
//! messages, help. Keyboard shortcuts are listed in the menus and in Help (F1).

mod joints;
mod lighting;
mod overlays;
mod timeline;

use crate::app::messages::Messages;
use bevy::prelude::*;
use bevy::window::PrimaryWindow;
use bevy_egui::{EguiContexts, egui};

use super::display::{Panels, ViewSettings};
use super::files::{Dialogs, FileRole};
use super::orbit::{Orbit, Viewport};
use super::output::{self, OutputRequests};
use super::render::{RenderMessages, RenderTimings};
use super::session::Session;
use crate::render_settings::ShadingMode;

/// Whether a text field has the keyboard: the viewer's shortcuts work whenever it does
/// not. (egui also gives focus to buttons and menus, e.g. on Tab; that focus is dropped
/// each frame so it never swallows the shortcuts.)
#[derive(Resource, Clone, Copy, Default)]
pub struct KeyboardFocus {
    pub text_editing: bool,
}

/// Adapter and device names for the stats overlay.
#[derive(Resource, Clone, Default)]
pub struct DeviceInfo {
    /// The adapter Bevy renders with (filled in by [`describe_adapter`] once it is up).
    pub adapter: String,
    pub candle: String,
}

/// The egui panels and overlays, keyboard shortcuts, and the adapter's name for the stats.
/// (`DeviceInfo` is inserted by `app::run`, which knows the candle device.)
pub struct UiPlugin;

impl Plugin for UiPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<KeyboardFocus>()
            .add_systems(bevy_egui::EguiPrimaryContextPass, ui_system)
            .add_systems(Update, shortcuts.in_set(super::ViewerSet::Input))
            .add_systems(Update, describe_adapter.in_set(super::ViewerSet::Window));
    }
}

/// Names the render adapter in [`DeviceInfo`] from Bevy's own adapter info.
pub fn describe_adapter(
    adapter: Option<Res<bevy::render::renderer::RenderAdapterInfo>>,
    mut info: ResMut<DeviceInfo>,
) {
    if info.adapter.is_empty()
        && let Some(a) = adapter
    {
        info.adapter = crate::gpu::describe_adapter(&a);
    }
}

/// Draws the whole interface and records the free viewport for the camera.
#[allow(clippy::too_many_arguments)]
pub fn ui_system(
    mut contexts: EguiContexts,
    mut session: ResMut<Session>,
    (mut lighting, mut view, mut panels, mut messages): (
        ResMut<crate::app::lighting::Lighting>,
        ResMut<ViewSettings>,
        ResMut<Panels>,
        ResMut<Messages>,
    ),
    mut dialogs: ResMut<Dialogs>,
    mut orbit: ResMut<Orbit>,
    mut viewport: ResMut<Viewport>,
    mut outputs: ResMut<OutputRequests>,
    mut exit: MessageWriter<AppExit>,
    info: Res<DeviceInfo>,
    render_messages: Res<RenderMessages>,
    timings: Res<RenderTimings>,
    diagnostics: Res<bevy::diagnostic::DiagnosticsStore>,
    window: Single<&Window, With<PrimaryWindow>>,
    cpu_neural: Res<super::cpu_neural::CpuNeural>,
    mut focus: ResMut<KeyboardFocus>,
) -> Result {
    let ctx = contexts.ctx_mut()?.clone();
    if !ctx.text_edit_focused() && ctx.memory(|m| m.focused().is_some()) {
        ctx.memory_mut(|m| m.stop_text_input());
    }
    focus.text_editing = ctx.text_edit_focused();
    if let Ok(mut m) = render_messages.0.lock() {
        for text in m.drain(..) {
            messages.error(text);
        }
    }
    messages.expire(std::time::Instant::now());
    let scale = window.scale_factor();
    if !panels.show_ui {
        viewport.0 = [
            0.0,
            0.0,
            window.physical_width() as f32,
            window.physical_height() as f32,
        ];
        // Messages wait for the panels (a clean screenshot shows the viewport alone).
        overlays::path_prompt(&ctx, &mut session, &mut messages, &mut dialogs);
        return Ok(());
    }
    let mut root = egui::Ui::new(
        ctx.clone(),
        "xhand-root".into(),
        egui::UiBuilder::new()
            .layer_id(egui::LayerId::background())
            .max_rect(ctx.viewport_rect()),
    );
    egui::Panel::top("menu").show(&mut root, |ui| {
        menu_bar(
            ui,
            (&mut session, &mut messages),
            (&mut view, &mut panels),
            &mut dialogs,
            &mut orbit,
            &mut outputs,
            &mut exit,
        );
    });
    if session.frame_count() > 0 {
        egui::Panel::bottom("timeline").show(&mut root, |ui| {
            timeline::timeline(ui, &mut session, &mut messages, &mut outputs)
        });
    } else if session.jobs.export.is_some() {
        // A turntable exported without a sequence: its progress still needs a place.
        egui::Panel::bottom("export").show(&mut root, |ui| {
            ui.horizontal(|ui| timeline::export_status(ui, &mut session, &mut outputs));
        });
    }

    egui::Panel::left("joints")
        .resizable(true)
        .default_size(300.0)
        .show(&mut root, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                joints::joints_panel(ui, &mut session, &mut dialogs)
            });
        });
    egui::Panel::right("lighting")
        .resizable(true)
        .default_size(260.0)
        .show(&mut root, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                display_panel(ui, &mut session, &mut view, &mut dialogs);
                ui.separator();
                lighting::lighting_panel(ui, &mut session, &mut lighting, &mut dialogs);
            });
        });
    let free = root.available_rect_before_wrap();
    viewport.0 = [
        free.min.x * scale,
        free.min.y * scale,
        free.max.x * scale,
        free.max.y * scale,
    ];
    if panels.show_stats {
        overlays::stats(
            &ctx,
            free,
            &session,
            &info,
            &timings,
            &diagnostics,
            &cpu_neural,
        );
    }
    overlays::computing(&ctx, free, &session);
    overlays::toasts(&ctx, free, &mut messages);
    overlays::message_log(&ctx, &mut messages, &mut panels);
    overlays::path_prompt(&ctx, &mut session, &mut messages, &mut dialogs);
    overlays::pose_choice(&ctx, &mut session);
    overlays::help(&ctx, &mut panels);
    Ok(())
}

/// The File menu's exports: the timeline or a turntable around the pose, as the viewport
/// shows them, to an MP4 or numbered PNGs in the output folder.
fn export_entries(ui: &mut egui::Ui, session: &Session, outputs: &mut OutputRequests) {
    use super::export::{ExportFormat, ExportKind};
    let idle = session.jobs.export.is_none() && outputs.export.is_none();
    let has_seq = session.frame_count() > 0;
    let timeline_hover = "every frame of the timeline as the viewport shows it (camera, shading, \
                          lighting, grid, wireframe), at the sequence's frame rate";
    if ui
        .add_enabled(has_seq && idle, egui::Button::new("Export video (MP4)"))
        .on_hover_text(timeline_hover)
        .clicked()
    {
        outputs.export = Some((ExportKind::Timeline, ExportFormat::Mp4));
    }
    if ui
        .add_enabled(has_seq && idle, egui::Button::new("Export frames (PNGs)"))
        .on_hover_text(timeline_hover)
        .clicked()
    {
        outputs.export = Some((ExportKind::Timeline, ExportFormat::Pngs));
    }
    ui.horizontal(|ui| {
        let n = outputs.turntable_frames;
        if ui
            .add_enabled(idle, egui::Button::new("Export turntable (MP4)"))
            .on_hover_text(format!(
                "the pose shown, orbited once about the view's up axis: {n} frames at 30 fps"
            ))
            .clicked()
        {
            outputs.export = Some((ExportKind::Turntable(n), ExportFormat::Mp4));
        }
        ui.add(
            egui::DragValue::new(&mut outputs.turntable_frames)
                .range(2..=3600)
                .suffix(" frames"),
        );
    });
}

fn menu_bar(
    ui: &mut egui::Ui,
    (session, messages): (&mut Session, &mut Messages),
    (view, panels): (&mut ViewSettings, &mut Panels),
    dialogs: &mut Dialogs,
    orbit: &mut Orbit,
    outputs: &mut OutputRequests,
    exit: &mut MessageWriter<AppExit>,
) {
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if ui
                .add(egui::Button::new("Open avatar…").shortcut_text("Ctrl+O"))
                .clicked()
            {
                dialogs.open(FileRole::Avatar, session);
            }
            if ui
                .button("Open left-hand avatar…")
                .on_hover_text("an avatar of its own for left hands; without one the main avatar shows them mirrored")
                .clicked()
            {
                dialogs.open(FileRole::LeftAvatar, session);
            }
            if ui
                .add(egui::Button::new("Open poses…").shortcut_text("Ctrl+P"))
                .clicked()
            {
                dialogs.open(FileRole::Poses, session);
            }
            ui.menu_button("Recent", |ui| {
                if session.recent.is_empty() {
                    ui.label("(none)");
                }
                for p in session.recent.clone() {
                    if ui.button(p.display().to_string()).clicked() {
                        super::files::open_path(session, messages, p);
                    }
                }
            });
            ui.separator();
            if ui
                .add(egui::Button::new("Save pose…"))
                .on_hover_text("the pose shown, slider edits included, as xhand pose JSON")
                .clicked()
            {
                dialogs.open(FileRole::SavePose, session);
            }
            let has_seq = session.frame_count() > 0;
            if ui
                .add_enabled(has_seq, egui::Button::new("Save sequence…"))
                .on_hover_text("every frame, edited ones included, as xhand pose JSON")
                .clicked()
            {
                dialogs.open(FileRole::SaveSequence, session);
            }
            ui.separator();
            if ui
                .add(egui::Button::new("Screenshot").shortcut_text("Ctrl+S"))
                .clicked()
            {
                outputs.screenshot = true;
            }
            if ui
                .add(egui::Button::new("Screenshot without panels").shortcut_text("Ctrl+Shift+S"))
                .clicked()
            {
                outputs.request_clean_screenshot();
            }
            if ui
                .add(egui::Button::new("Export mesh (OBJ/PLY)…").shortcut_text("Ctrl+E"))
                .clicked()
            {
                dialogs.open(FileRole::ExportMesh, session);
            }
            export_entries(ui, session, outputs);
            ui.separator();
            if ui
                .button("Output folder…")
                .on_hover_text(format!(
                    "where screenshots, renders and exports go: {}",
                    session.output_dir.display()
                ))
                .clicked()
            {
                dialogs.open(FileRole::OutputFolder, session);
            }
            if ui.button("Open output folder").clicked() {
                let dir = session.output_dir.clone();
                output::open_folder(messages, &dir);
            }
            ui.separator();
            if ui
                .add(egui::Button::new("Quit").shortcut_text("Ctrl+Q"))
                .clicked()
            {
                exit.write(AppExit::Success);
            }
        });
        ui.menu_button("View", |ui| {
            for mode in ShadingMode::ALL {
                let selected = view.settings.mode == mode;
                if ui
                    .add(
                        egui::Button::selectable(selected, mode.label())
                            .shortcut_text(mode.key().to_string()),
                    )
                    .clicked()
                {
                    view.settings.mode = mode;
                }
            }
            ui.separator();
            ui.checkbox(&mut view.wireframe, "Wireframe overlay (W)");
            ui.checkbox(&mut view.grid, "Grid (G)");
            ui.checkbox(&mut orbit.follow_hand, "Camera follows the hand")
                .on_hover_text("keep the hand in view when a sequence moves it");
            if ui
                .add(egui::Button::new("Frame the hand").shortcut_text("F"))
                .clicked()
            {
                orbit.frame_requested = true;
            }
            if ui
                .add(egui::Button::new("Reset camera").shortcut_text("R"))
                .clicked()
            {
                *orbit = Orbit::default();
            }
            ui.separator();
            ui.checkbox(&mut panels.show_stats, "Stats overlay (T)");
            ui.checkbox(&mut panels.show_log, "Messages log (M)");
            ui.label("Hide / show panels: Tab");
        });
        ui.menu_button("Help", |ui| {
            if ui
                .add(egui::Button::new("Keyboard and mouse").shortcut_text("F1"))
                .clicked()
            {
                panels.show_help = true;
            }
        });
        let avatar = &session.avatar.avatar;
        ui.separator();
        let from = session
            .avatar
            .path
            .as_ref()
            .map_or(crate::default_avatar::LABEL.to_string(), |p| {
                p.display().to_string()
            });
        ui.label(format!("{} · {} hand", avatar.name, avatar.hand))
            .on_hover_text(from);
        if session.details_stale() {
            ui.spinner();
            ui.label(egui::RichText::new("details updating").weak());
        }
        if session.loading_avatar.is_some() || session.loading_poses.is_some() {
            ui.spinner();
            ui.label("loading…");
        }
    });
}

fn display_panel(
    ui: &mut egui::Ui,
    session: &mut Session,
    view: &mut ViewSettings,
    dialogs: &mut Dialogs,
) {
    ui.heading("Display");
    egui::ComboBox::from_label("Shading")
        .selected_text(view.settings.mode.label())
        .show_ui(ui, |ui| {
            for mode in ShadingMode::ALL {
                ui.selectable_value(&mut view.settings.mode, mode, mode.label());
            }
        });
    if view.settings.mode == ShadingMode::Neural && session.avatar.avatar.renderer.is_none() {
        ui.label(
            egui::RichText::new("This avatar has no neural renderer: showing SH shading.").weak(),
        );
    }
    if view.settings.mode == ShadingMode::Neural && session.avatar.avatar.renderer.is_some() {
        ui.horizontal(|ui| {
            ui.label("Renderer MLP on the GPU:");
            ui.radio_value(
                &mut view.neural_path,
                crate::gpu::NeuralPath::Compute,
                "compute",
            )
            .on_hover_text(
                "the covered pixels only, 64 at a time, sharing weight tiles in workgroup memory (default)",
            );
            ui.radio_value(
                &mut view.neural_path,
                crate::gpu::NeuralPath::Fragment,
                "fragment",
            )
            .on_hover_text("one pixel per invocation, weights read from memory");
        });
    }
    if view.settings.mode == ShadingMode::Weights {
        let names = crate::skeleton::MANO_JOINT_NAMES;
        let mut j = view.settings.weight_joint.min(15);
        egui::ComboBox::from_label("Joint")
            .selected_text(names[j])
            .show_ui(ui, |ui| {
                for (k, n) in names.iter().enumerate() {
                    ui.selectable_value(&mut j, k, *n);
                }
            });
        view.settings.weight_joint = j;
        heat_legend(ui, "weight 0", "1");
    }
    if view.settings.mode == ShadingMode::Displacement {
        let mut mm = view.settings.displacement_range * 1000.0;
        ui.add(egui::Slider::new(&mut mm, 0.5..=20.0).text("range (mm)"));
        view.settings.displacement_range = mm / 1000.0;
        heat_legend(ui, "0 mm", &format!("{mm:.1} mm"));
    }
    ui.checkbox(&mut view.wireframe, "Wireframe overlay (W)");
    ui.checkbox(&mut view.grid, "Grid (G)");
    networks_choice(ui, session);
    nets_in_frame_choice(ui, view);
    let mut bg = view.settings.background;
    ui.horizontal(|ui| {
        ui.label("Background");
        ui.color_edit_button_rgb(&mut bg);
    });
    view.settings.background = bg;
    if session.sequence.as_ref().is_some_and(|s| s.has_cameras()) {
        ui.checkbox(&mut session.use_pose_camera, "HaMeR camera view");
        ui.horizontal(|ui| {
            if session.footage.source.is_some() {
                ui.add_enabled(
                    session.use_pose_camera,
                    egui::Checkbox::new(&mut session.footage.show, "show source images"),
                )
                .on_disabled_hover_text("they show in the HaMeR camera view");
            }
            if ui
                .button("Source images…")
                .on_hover_text(
                    "the images (a folder) or video (.mp4, typed or dropped) HaMeR ran on, \
                     drawn behind the hand in the HaMeR camera view and in exports",
                )
                .clicked()
            {
                dialogs.open(FileRole::SourceImages, session);
            }
        });
    }
}

/// Display > Networks: the engine the embedding networks run on. CUDA and Metal need the
/// avatar on their device, so they are chosen at start (`--nets`) and only shown here.
fn networks_choice(ui: &mut egui::Ui, session: &mut Session) {
    use crate::engine::NetsChoice;
    let mut choice = session.nets_choice;
    let label = |c: NetsChoice| match c {
        NetsChoice::Auto => "auto",
        NetsChoice::Cpu => "CPU",
        NetsChoice::Wgpu => "GPU (wgpu)",
        NetsChoice::Cuda => "CUDA",
        NetsChoice::Metal => "Metal",
    };
    ui.horizontal(|ui| {
        egui::ComboBox::from_id_salt("nets")
            .selected_text(label(choice))
            .show_ui(ui, |ui| {
                for c in [NetsChoice::Auto, NetsChoice::Cpu, NetsChoice::Wgpu] {
                    ui.selectable_value(&mut choice, c, label(c));
                }
            });
        ui.label("Networks").on_hover_text(format!(
            "what runs the three embedding networks; now: {}",
            if session.nets_engine.is_empty() {
                "(starting)"
            } else {
                &session.nets_engine
            }
        ));
    });
    session.set_nets_choice(choice);
    let mut precision = session.precision();
    let bf16 = crate::nn::Precision::Bf16.check_supported();
    ui.horizontal(|ui| {
        ui.radio_value(&mut precision, crate::nn::Precision::F32, "f32");
        ui.add_enabled_ui(bf16.is_ok(), |ui| {
            ui.radio_value(&mut precision, crate::nn::Precision::Bf16, "bf16")
                .on_disabled_hover_text(bf16.clone().err().unwrap_or_default());
        });
        ui.label("Precision").on_hover_text(
            "arithmetic of the networks and the neural image where the CPU runs them: bf16 \
             is faster on CPUs with AVX-512 BF16, with ~1e-3 errors (docs/performance.md)",
        );
    });
    session.set_precision(precision);
}

/// Display > Networks: whether the networks run on the render GPU inside the frame.
fn nets_in_frame_choice(ui: &mut egui::Ui, view: &mut super::display::ViewSettings) {
    use super::display::{IN_FRAME_BUDGET_MS, NetsInFrame};
    ui.horizontal(|ui| {
        for c in NetsInFrame::ALL {
            ui.radio_value(&mut view.nets_in_frame, c, c.name());
        }
        ui.label("In the frame").on_hover_text(format!(
            "run the networks on the render GPU inside each frame, their outputs never copied \
             through the host: auto does on a hardware GPU where they take at most \
             {IN_FRAME_BUDGET_MS} ms; else the worker runs them and the hand catches up"
        ));
    });
}

/// The colour scale of the heat-map modes (`render_settings::heat_color`), low to high.
fn heat_legend(ui: &mut egui::Ui, low: &str, high: &str) {
    ui.horizontal(|ui| {
        ui.label(low);
        let (rect, _) = ui.allocate_exact_size(egui::vec2(120.0, 12.0), egui::Sense::hover());
        let steps = 40;
        for i in 0..steps {
            let t = (i as f32 + 0.5) / steps as f32;
            let [r, g, b] = crate::render_settings::heat_color(t).map(|c| (c * 255.0) as u8);
            let x0 = rect.left() + rect.width() * i as f32 / steps as f32;
            let x1 = rect.left() + rect.width() * (i + 1) as f32 / steps as f32;
            ui.painter().rect_filled(
                egui::Rect::from_min_max(egui::pos2(x0, rect.top()), egui::pos2(x1, rect.bottom())),
                0.0,
                egui::Color32::from_rgb(r, g, b),
            );
        }
        ui.label(high);
    });
}

/// Global keyboard shortcuts (skipped only while a text field is being edited).
pub fn shortcuts(
    keys: Res<ButtonInput<KeyCode>>,
    mut session: ResMut<Session>,
    (mut view, mut panels): (ResMut<ViewSettings>, ResMut<Panels>),
    mut dialogs: ResMut<Dialogs>,
    mut outputs: ResMut<OutputRequests>,
    focus: Res<KeyboardFocus>,
    mut exit: MessageWriter<AppExit>,
) {
    if focus.text_editing {
        return;
    }
    let ctrl = keys.pressed(KeyCode::ControlLeft) || keys.pressed(KeyCode::ControlRight);
    let shift = keys.pressed(KeyCode::ShiftLeft) || keys.pressed(KeyCode::ShiftRight);
    if ctrl {
        if keys.just_pressed(KeyCode::KeyS) {
            if shift {
                outputs.request_clean_screenshot();
            } else {
                outputs.screenshot = true;
            }
        }
        if keys.just_pressed(KeyCode::KeyO) {
            dialogs.open(FileRole::Avatar, &mut session);
        }
        if keys.just_pressed(KeyCode::KeyP) {
            dialogs.open(FileRole::Poses, &mut session);
        }
        if keys.just_pressed(KeyCode::KeyE) {
            dialogs.open(FileRole::ExportMesh, &mut session);
        }
        if keys.just_pressed(KeyCode::KeyQ) {
            exit.write(AppExit::Success);
        }
        return;
    }
    if keys.just_pressed(KeyCode::Space) {
        session.toggle_playing();
    }
    if keys.just_pressed(KeyCode::ArrowRight) && session.frame_count() > 0 {
        session.timeline.playing = false;
        let f = session.timeline.frame + 1;
        session.go_to_frame(f);
    }
    if keys.just_pressed(KeyCode::ArrowLeft) && session.frame_count() > 0 {
        session.timeline.playing = false;
        let f = session.timeline.frame.saturating_sub(1);
        session.go_to_frame(f);
    }
    if keys.just_pressed(KeyCode::Home) {
        session.timeline.playing = false;
        session.go_to_frame(0);
    }
    if keys.just_pressed(KeyCode::End) {
        session.timeline.playing = false;
        session.go_to_frame(usize::MAX);
    }
    if keys.just_pressed(KeyCode::KeyW) {
        view.wireframe = !view.wireframe;
    }
    if keys.just_pressed(KeyCode::KeyG) {
        view.grid = !view.grid;
    }
    if keys.just_pressed(KeyCode::KeyT) {
        panels.show_stats = !panels.show_stats;
    }
    if keys.just_pressed(KeyCode::KeyM) {
        panels.show_log = !panels.show_log;
    }
    if keys.just_pressed(KeyCode::Tab) {
        panels.show_ui = !panels.show_ui;
    }
    if keys.just_pressed(KeyCode::F1) {
        panels.show_help = !panels.show_help;
    }
    const DIGITS: [KeyCode; 7] = [
        KeyCode::Digit1,
        KeyCode::Digit2,
        KeyCode::Digit3,
        KeyCode::Digit4,
        KeyCode::Digit5,
        KeyCode::Digit6,
        KeyCode::Digit7,
    ];
    for (k, mode) in DIGITS.into_iter().zip(ShadingMode::ALL) {
        if keys.just_pressed(k) {
            view.settings.mode = mode;
        }
    }
}
