//! Opening files: native dialogs (rfd), drag-and-drop onto the window, recent files.
//! Loading runs on a thread; errors become messages and the current avatar and pose stay.

use std::path::{Path, PathBuf};

use bevy::prelude::*;
use bevy::window::FileDragAndDrop;

use super::session::{AvatarLoaded, PoseChoice, PoseLoadOutcome, Session};
use super::worker::Pending;
use crate::avatar::Avatar;
use crate::pose::{PoseLoadOptions, inspect_poses, load_poses};
use crate::user_config::ManoFiles;

/// What a picked file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRole {
    Avatar,
    Poses,
    ExportMesh,
    /// The MANO model file for an XHand checkpoint being opened.
    Mano,
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
                    .add_filter("XHand avatar or checkpoint", &["safetensors", "pth", "pt"])
                    .pick_file(),
                FileRole::Mano => dialog
                    .set_title("Choose the MANO model file of this avatar's hand")
                    .add_filter(
                        "MANO model (MANO_RIGHT.pkl, MANO_LEFT.pkl, .npz)",
                        &["pkl", "npz"],
                    )
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
        Some("safetensors" | "pth" | "pt" | "ckpt") => Some(FileRole::Avatar),
        Some("json") => Some(FileRole::Poses),
        Some("pkl" | "npz") => Some(FileRole::Mano),
        _ => None,
    }
}

/// Starts loading `path` as an avatar or poses (by extension); unknown kinds are an error.
pub fn open_path(session: &mut Session, path: PathBuf) {
    match role_of(&path) {
        Some(FileRole::Avatar) => start_avatar_load(session, path),
        Some(FileRole::Poses) => start_pose_load(session, path, None, None),
        Some(FileRole::Mano) => use_mano_file(session, path),
        _ => session.error(format!(
            "{}: not an avatar (.safetensors), an XHand checkpoint (.pth) or a pose file (.json); nothing was changed",
            path.display()
        )),
    }
}

/// A MANO file chosen or dropped: it completes the checkpoint waiting for one.
fn use_mano_file(session: &mut Session, mano: PathBuf) {
    match session.mano_prompt.take() {
        Some((checkpoint, _)) => start_avatar_load_with(session, checkpoint, Some(mano)),
        None => session.error(format!(
            "{}: a MANO model file is only needed with an XHand checkpoint; open the checkpoint (.pth) first",
            mano.display()
        )),
    }
}

/// Loads an avatar and its rest-pose embeddings on a thread.
pub fn start_avatar_load(session: &mut Session, path: PathBuf) {
    start_avatar_load_with(session, path, None);
}

/// Loads an avatar file, or imports an XHand checkpoint with `mano` (else the MANO file
/// remembered for its hand; with none, the user is asked).
pub fn start_avatar_load_with(session: &mut Session, path: PathBuf, mano: Option<PathBuf>) {
    session.mano_prompt = None;
    let device = session.avatar.avatar.nets.device().clone();
    let p = path.clone();
    let pending = Pending::spawn("xhand-load-avatar", move || {
        let mut mano_used = None;
        if crate::torch::is_checkpoint(&p) {
            let hand = crate::torch::checkpoint_hand(&p).map_err(|e| e.to_string())?;
            match mano.or_else(|| ManoFiles::load().get(hand)) {
                Some(m) => mano_used = Some(m),
                None => return Ok(AvatarLoaded::NeedsMano(hand)),
            }
        }
        let avatar = Avatar::open(&p, mano_used.as_deref(), &device).map_err(|e| e.to_string())?;
        let emb = avatar
            .embed(&crate::pose::PoseFrame::default())
            .map_err(|e| format!("{}: the networks failed: {e}", p.display()))?;
        Ok(AvatarLoaded::Ready(Box::new((avatar, emb)), mano_used))
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
                FileRole::Mano => use_mano_file(&mut session, path),
            },
            Some(Ok(None)) if role == FileRole::Mano => {
                // Cancelled, or no dialog could be shown (rfd reports both alike): the
                // checkpoint keeps waiting for a dropped MANO file.
                if let Some((ck, _)) = &session.mano_prompt {
                    let text = format!(
                        "{}: no MANO file chosen — drop it onto the window to open the checkpoint",
                        ck.display()
                    );
                    session.info(text);
                }
            }
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
            Some(Ok(Ok(AvatarLoaded::Ready(loaded, mano)))) => {
                let (avatar, emb) = *loaded;
                let name = avatar.name.clone();
                let hand = avatar.hand;
                let notes: Vec<String> = avatar
                    .import_warnings
                    .iter()
                    .cloned()
                    .chain(avatar.summary.unused_warning())
                    .collect();
                session.set_avatar(avatar, emb, Some(path.clone()));
                session.remember(path.clone());
                session.info(format!("avatar `{name}` loaded"));
                for n in notes {
                    session.info(format!("{}: {n}", path.display()));
                }
                if let Some(m) = mano
                    && let Err(e) = ManoFiles::load().remember(hand, &m)
                {
                    session.error(format!(
                        "could not remember the MANO file for next time: {e}"
                    ));
                }
            }
            Some(Ok(Ok(AvatarLoaded::NeedsMano(hand)))) => {
                session.info(format!(
                    "{} is an XHand checkpoint: choose the MANO model file of its {hand} hand (MANO_{}.pkl) — or drop it onto the window",
                    path.display(),
                    hand.as_str().to_ascii_uppercase()
                ));
                session.mano_prompt = Some((path, hand));
                dialogs.open(FileRole::Mano);
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
