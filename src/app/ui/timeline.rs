//! The timeline of a loaded sequence: play/pause, step, scrub, speed, loop, edited frames,
//! precompute (with its memory cost), render to PNGs.

use bevy_egui::egui;

use crate::app::messages::Messages;
use crate::app::output::{self, OutputRequests};
use crate::app::session::Session;

pub fn timeline(
    ui: &mut egui::Ui,
    session: &mut Session,
    messages: &mut Messages,
    outputs: &mut OutputRequests,
) {
    let n = session.frame_count();
    let fps = session.fps();
    ui.horizontal(|ui| {
        if ui
            .button("First")
            .on_hover_text("first frame (Home)")
            .clicked()
        {
            session.timeline.playing = false;
            session.go_to_frame(0);
        }
        if ui
            .button("Prev")
            .on_hover_text("previous frame (Left arrow)")
            .clicked()
        {
            session.timeline.playing = false;
            let f = session.timeline.frame.saturating_sub(1);
            session.go_to_frame(f);
        }
        let label = if session.timeline.playing {
            "Pause"
        } else {
            "Play"
        };
        if ui.button(label).on_hover_text("Space").clicked() {
            session.toggle_playing();
        }
        if ui
            .button("Next")
            .on_hover_text("next frame (Right arrow)")
            .clicked()
        {
            session.timeline.playing = false;
            let f = session.timeline.frame + 1;
            session.go_to_frame(f);
        }
        if ui
            .button("Last")
            .on_hover_text("last frame (End)")
            .clicked()
        {
            session.timeline.playing = false;
            session.go_to_frame(usize::MAX);
        }
        let mut f = session.timeline.frame;
        let width = (ui.available_width() - 480.0).max(120.0);
        ui.spacing_mut().slider_width = width;
        if ui
            .add(egui::Slider::new(&mut f, 0..=n.saturating_sub(1)).show_value(false))
            .changed()
        {
            session.timeline.playing = false;
            session.go_to_frame(f);
        }
        ui.label(format!(
            "frame {} / {}  ·  {:.2} s / {:.2} s",
            session.timeline.frame + 1,
            n,
            session.timeline.time,
            n as f32 / fps
        ));
        if let Some(label) = session
            .sequence
            .as_ref()
            .and_then(|s| s.scene.label(session.timeline.frame))
        {
            ui.label(egui::RichText::new(format!("id {label}")).weak());
        }
        if session.frame_edited() {
            ui.colored_label(egui::Color32::from_rgb(240, 190, 80), "edited")
                .on_hover_text(
                    "this frame's pose was changed here; File > Save sequence… keeps it",
                );
        }
        if let Some(n) = session
            .sequence
            .as_ref()
            .map(|s| s.edited.len())
            .filter(|&n| n > 0)
        {
            ui.label(egui::RichText::new(format!("{n} frame(s) edited")).weak());
        }
    });
    ui.horizontal(|ui| {
        ui.add(egui::Slider::new(&mut session.timeline.speed, 0.1..=4.0).logarithmic(true).text("speed"));
        ui.checkbox(&mut session.timeline.looping, "loop");
        ui.label(format!("{fps:.1} fps"));
        if let Some(seq) = &session.sequence {
            let name = seq.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            ui.label(egui::RichText::new(format!("{name} ({})", seq.format())).weak())
                .on_hover_text(seq.path.display().to_string());
        }
        ui.separator();
        match session.jobs.precompute.clone() {
            Some(p) if !p.is_finished() => {
                ui.add(egui::ProgressBar::new(p.fraction()).desired_width(160.0).text(format!("precomputing {}", p.status_text())));
                if ui.small_button("cancel").clicked() {
                    p.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            _ => {
                let per_frame: usize = session.hands.iter().map(|h| h.embeddings.embeddings.heap_bytes()).sum();
                let bytes = per_frame * n;
                let mib = bytes as f64 / (1024.0 * 1024.0);
                let over = bytes > output::PRECOMPUTE_MAX_BYTES;
                let hover = if over {
                    format!("the cache would need {mib:.0} MiB for {n} frames; only the first {} frames are kept (about {} MiB)", output::precompute_frames(session), output::PRECOMPUTE_MAX_BYTES >> 20)
                } else {
                    format!("run the networks for every frame in the background, then play from the cache (about {mib:.0} MiB of memory)")
                };
                if ui.button("Precompute all frames").on_hover_text(hover).clicked() {
                    output::start_precompute(session, messages);
                }
            }
        }
        export_status(ui, session, outputs);
    });
}

/// The running export's progress bar and cancel button, else the "Export MP4" button (for
/// the timeline; the File menu has PNGs and turntables).
pub fn export_status(ui: &mut egui::Ui, session: &mut Session, outputs: &mut OutputRequests) {
    match session.jobs.export.clone() {
        Some(job) if !job.progress.is_finished() => {
            let what = match job.kind {
                super::super::export::ExportKind::Timeline => "exporting",
                super::super::export::ExportKind::Turntable(_) => "turntable",
            };
            ui.add(
                egui::ProgressBar::new(job.progress.fraction())
                    .desired_width(180.0)
                    .text(format!("{what} {}", job.progress.status_text())),
            )
            .on_hover_text(job.path.display().to_string());
            if ui.small_button("cancel").clicked() {
                job.progress.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        _ => {
            if session.frame_count() > 0
                && ui
                .button("Export MP4")
                .on_hover_text("the timeline as the viewport shows it, into the output folder (File menu: PNGs, turntable)")
                .clicked()
            {
                outputs.export = Some((
                    super::super::export::ExportKind::Timeline,
                    super::super::export::ExportFormat::Mp4,
                ));
            }
        }
    }
}
