//! Opening files: native dialogs (rfd), drag-and-drop onto the window, recent files.
//! Loading runs on a thread; errors become messages and the current avatar and pose stay.

use std::path::{Path, PathBuf};

use bevy::prelude::*;
use bevy::window::FileDragAndDrop;

use super::session::{PoseChoice, PoseLoadOutcome, Session};
use super::worker::Pending;
use crate::avatar::Avatar;
use crate::pose::{PoseLoadOptions, inspect_poses, load_poses};

/// What a picked file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRole {
    Avatar,
    Poses,
    ExportMesh,
}

/// Open native dialogs.
#[derive(Resource, Default)]
pub struct Dialogs {
    pending: Vec<(FileRole, Pending<Option<PathBuf>>)>,
}

impl Dialogs {
    /// Shows a native open (or save) dialog on a thread.
    pub fn open(&mut self, role: FileRole) {
        let pending = Pending::spawn("xhand-dialog", move || {
            let dialog = rfd::FileDialog::new();
            match role {
                FileRole::Avatar => dialog
                    .add_filter("XHand avatar", &["safetensors"])
                    .pick_file(),
                FileRole::Poses => dialog
                    .add_filter("Poses (xhand, HaMeR, InterHand2.6M)", &["json"])
                    .pick_file(),
                FileRole::ExportMesh => dialog
                    .add_filter("Mesh", &["obj", "ply"])
                    .set_file_name("hand.obj")
                    .save_file(),
            }
        });
        self.pending.push((role, pending));
    }
}

/// How a dropped or opened path is treated, from its extension.
pub fn role_of(path: &Path) -> Option<FileRole> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("safetensors") => Some(FileRole::Avatar),
        Some("json") => Some(FileRole::Poses),
        _ => None,
    }
}

/// Starts loading `path` as an avatar or poses (by extension); unknown kinds are an error.
pub fn open_path(session: &mut Session, path: PathBuf) {
    match role_of(&path) {
        Some(FileRole::Avatar) => start_avatar_load(session, path),
        Some(FileRole::Poses) => start_pose_load(session, path, None, None),
        _ => session.error(format!(
            "{}: not an avatar (.safetensors) or a pose file (.json); nothing was changed",
            path.display()
        )),
    }
}

/// Loads an avatar and its rest-pose embeddings on a thread.
pub fn start_avatar_load(session: &mut Session, path: PathBuf) {
    let device = session.avatar.avatar.nets.device().clone();
    let p = path.clone();
    let pending = Pending::spawn("xhand-load-avatar", move || {
        let avatar = Avatar::load(&p, &device).map_err(|e| e.to_string())?;
        let emb = avatar
            .embed(&crate::pose::PoseFrame::default())
            .map_err(|e| format!("{}: the networks failed: {e}", p.display()))?;
        Ok((avatar, emb))
    });
    session.info(format!("loading {} …", path.display()));
    session.loading_avatar = Some((path, pending));
}

/// Loads poses on a thread; asks which capture/hand first when the file holds several.
pub fn start_pose_load(
    session: &mut Session,
    path: PathBuf,
    capture: Option<String>,
    hand: Option<crate::hand::Handedness>,
) {
    let opts = PoseLoadOptions {
        capture,
        hand,
        ..PoseLoadOptions::for_avatar(&session.avatar.avatar)
    };
    let p = path.clone();
    let pending = Pending::spawn("xhand-load-poses", move || {
        if opts.capture.is_none() && opts.hand.is_none() {
            let summary = inspect_poses(&p).map_err(|e| e.to_string())?;
            if summary.captures.len() > 1 || summary.hands.len() > 1 {
                return Ok(PoseLoadOutcome::Choose(summary));
            }
        }
        load_poses(&p, &opts)
            .map(PoseLoadOutcome::Loaded)
            .map_err(|e| e.to_string())
    });
    session.loading_poses = Some((path, pending));
}

/// Collects finished loads and dialog results; reads dropped files.
pub fn poll_files(
    mut session: ResMut<Session>,
    mut dialogs: ResMut<Dialogs>,
    mut drops: MessageReader<FileDragAndDrop>,
) {
    for drop in drops.read() {
        if let FileDragAndDrop::DroppedFile { path_buf, .. } = drop {
            open_path(&mut session, path_buf.clone());
        }
    }
    let mut still = Vec::new();
    for (role, pending) in dialogs.pending.drain(..) {
        match pending.poll() {
            None => still.push((role, pending)),
            Some(Ok(Some(path))) => match role {
                FileRole::Avatar => start_avatar_load(&mut session, path),
                FileRole::Poses => start_pose_load(&mut session, path, None, None),
                FileRole::ExportMesh => super::output::export_mesh(&mut session, &path),
            },
            Some(Ok(None)) => {}
            Some(Err(e)) => session.error(format!(
                "the file dialog failed: {e}; drop the file onto the window instead"
            )),
        }
    }
    dialogs.pending = still;

    if let Some((path, pending)) = session.loading_avatar.take() {
        match pending.poll() {
            None => session.loading_avatar = Some((path, pending)),
            Some(Ok(Ok((avatar, emb)))) => {
                let name = avatar.name.clone();
                session.set_avatar(avatar, emb, Some(path.clone()));
                session.remember(path);
                session.info(format!("avatar `{name}` loaded"));
            }
            Some(Ok(Err(e))) | Some(Err(e)) => {
                session.error(format!("{e} — the current avatar stays loaded"))
            }
        }
    }
    if let Some((path, pending)) = session.loading_poses.take() {
        match pending.poll() {
            None => session.loading_poses = Some((path, pending)),
            Some(Ok(Ok(PoseLoadOutcome::Loaded(poses)))) => {
                for w in &poses.warnings {
                    session.info(format!("{}: {w}", path.display()));
                }
                let n = poses.sequence.len();
                let mirrored = poses
                    .sequence
                    .frames
                    .iter()
                    .any(|f| f.hand.is_some_and(|h| h != session.avatar.avatar.hand));
                session.set_sequence(poses, path.clone());
                session.remember(path.clone());
                session.info(format!(
                    "{}: {n} frame{} loaded{}",
                    path.display(),
                    if n == 1 { "" } else { "s" },
                    if mirrored {
                        " (a hand of the other side: shown mirrored)"
                    } else {
                        ""
                    }
                ));
            }
            Some(Ok(Ok(PoseLoadOutcome::Choose(summary)))) => {
                session.pose_choice = Some(PoseChoice {
                    capture: summary.captures.first().cloned(),
                    hand: summary.hands.first().copied(),
                    summary,
                    path,
                });
            }
            Some(Ok(Err(e))) | Some(Err(e)) => {
                session.error(format!("{e} — the current poses stay loaded"))
            }
        }
    }
}
