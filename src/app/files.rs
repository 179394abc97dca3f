//! Opening and saving files: native dialogs (rfd) with a typed-path fallback, drag-and-drop
//! onto the window, recent files.
//! Loading runs on a thread; errors become messages and the current avatar and pose stay.

use super::messages::Messages;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::window::FileDragAndDrop;

use super::session::{AvatarLoaded, PoseChoice, PoseLoadOutcome, Session};
use super::worker::Pending;
use crate::avatar::Avatar;
use crate::hand::Handedness;
use crate::pose::{HandChoice, PoseFormat, PoseLoadOptions, inspect_poses};
use crate::user_config::ManoFiles;

/// What a picked file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRole {
    Avatar,
    /// An avatar for the left hands (the main one keeps the right hands).
    LeftAvatar,
    Poses,
    ExportMesh,
    /// The MANO model file for an XHand checkpoint being opened.
    Mano,
    /// Save the pose shown (xhand pose JSON).
    SavePose,
    /// Save the loaded sequence with its edits (xhand pose JSON).
    SaveSequence,
    /// Choose the folder outputs go to.
    OutputFolder,
    /// An equirectangular environment map to light with.
    EnvMap,
    /// The images (a folder) or video the pose file's camera saw.
    SourceImages,
}

impl FileRole {
    /// The title of its dialog or path field.
    pub fn title(self) -> &'static str {
        match self {
            Self::Avatar => "Open an avatar or XHand checkpoint",
            Self::LeftAvatar => "Open an avatar or XHand checkpoint for the left hands",
            Self::Poses => "Open a pose file",
            Self::ExportMesh => "Export the posed mesh (.obj or .ply)",
            Self::Mano => "The MANO model file of this checkpoint's hand",
            Self::SavePose => "Save the pose shown",
            Self::SaveSequence => "Save the sequence",
            Self::OutputFolder => "Folder for screenshots, renders and exports",
            Self::EnvMap => "Open an environment map (.hdr, .exr)",
            Self::SourceImages => "The source images of the pose file (a folder, or an .mp4)",
        }
    }

    /// Whether the path names a file or folder to be written (it need not exist).
    pub fn writes(self) -> bool {
        matches!(
            self,
            Self::ExportMesh | Self::SavePose | Self::SaveSequence | Self::OutputFolder
        )
    }
}

/// A path typed or pasted by the user, for when no native dialog can be shown (and always
/// offered beside one).
#[derive(Clone, Debug)]
pub struct PathPrompt {
    pub role: FileRole,
    pub text: String,
    /// Why the field is shown, or what was wrong with the last path.
    pub note: Option<String>,
}

/// A native dialog that returns "cancelled" this soon failed to appear (rfd reports both
/// alike; no person cancels a dialog within a quarter second).
const DIALOG_FAILED_WITHIN: Duration = Duration::from_millis(250);

/// Native dialogs on threads, and the typed-path fallback.
#[derive(Resource)]
pub struct Dialogs {
    pending: Vec<(FileRole, Instant, Pending<Option<PathBuf>>)>,
    /// Whether native dialogs can appear here: a desktop portal (D-Bus) or zenity on Linux.
    /// Turned off when one fails to show.
    pub native: bool,
    /// The path field, when open.
    pub prompt: Option<PathPrompt>,
}

impl Default for Dialogs {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            native: native_dialogs_available(),
            prompt: None,
        }
    }
}

/// Whether this machine can show native file dialogs (rfd's xdg-portal backend needs a
/// D-Bus session with the desktop portal, or zenity as its fallback).
pub fn native_dialogs_available() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let on_path = |exe: &str| {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(exe).is_file()))
    };
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() || on_path("zenity")
}

/// A readable, sortable UTC time stamp for file names: `2026-12-05_19-30-12`.
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    timestamp_of(secs)
}

/// [`timestamp`] of a Unix time (civil-from-days, proleptic Gregorian calendar).
pub fn timestamp_of(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}_{:02}-{:02}-{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A new output name in `dir`: `{prefix}-{time stamp}{ext}`, with `-2`, `-3` … added when
/// that name exists or was handed out already in this run (two screenshots in one second,
/// one still being written, must not overwrite each other).
pub fn unique_output_path(dir: &Path, prefix: &str, ext: &str) -> PathBuf {
    static HANDED_OUT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let stamp = timestamp();
    let mut taken = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut n = 1;
    loop {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        let path = dir.join(format!("{prefix}-{stamp}{suffix}{ext}"));
        if !path.exists() && !taken.contains(&path) {
            taken.push(path.clone());
            return path;
        }
        n += 1;
    }
}

/// The file a save role suggests in the output folder.
fn default_save_path(role: FileRole, session: &Session) -> Option<PathBuf> {
    let dir = &session.output_dir;
    Some(match role {
        FileRole::ExportMesh => unique_output_path(dir, "xhand-mesh", ".obj"),
        FileRole::SavePose => unique_output_path(dir, "xhand-pose", ".json"),
        FileRole::SaveSequence => unique_output_path(dir, "xhand-sequence", ".json"),
        FileRole::OutputFolder => dir.clone(),
        _ => return None,
    })
}

impl Dialogs {
    /// Asks for a path for `role`: a native dialog on a thread where one can be shown,
    /// else the path field.
    pub fn open(&mut self, role: FileRole, session: &mut Session) {
        let suggested = default_save_path(role, session);
        if !self.native {
            self.prompt = Some(PathPrompt {
                role,
                text: suggested
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                note: None,
            });
            return;
        }
        let output_dir = session.output_dir.clone();
        let pending = Pending::spawn("xhand-dialog", move || {
            let dialog = rfd::FileDialog::new().set_title(role.title());
            let dialog = match &suggested {
                Some(p) if role.writes() => {
                    let _ = std::fs::create_dir_all(&output_dir);
                    let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                    let d = dialog.set_directory(&output_dir);
                    match name {
                        Some(n) if role != FileRole::OutputFolder => d.set_file_name(n),
                        _ => d,
                    }
                }
                _ => dialog,
            };
            match role {
                FileRole::Avatar | FileRole::LeftAvatar => dialog
                    .add_filter("XHand avatar or checkpoint", &["safetensors", "pth", "pt"])
                    .pick_file(),
                FileRole::Mano => dialog
                    .add_filter(
                        "MANO model (MANO_RIGHT.pkl, MANO_LEFT.pkl, .npz)",
                        &["pkl", "npz"],
                    )
                    .pick_file(),
                FileRole::Poses => dialog
                    .add_filter("Poses (xhand, HaMeR, InterHand2.6M)", &["json"])
                    .pick_file(),
                FileRole::ExportMesh => dialog.add_filter("Mesh", &["obj", "ply"]).save_file(),
                FileRole::SavePose | FileRole::SaveSequence => dialog
                    .add_filter("xhand poses", &["json"])
                    .add_filter("MANO parameters (smplx, aitviewer)", &["npz"])
                    .add_filter("HaMeR-style dump (name it *.hamer.json)", &["json"])
                    .save_file(),
                FileRole::OutputFolder => dialog.pick_folder(),
                FileRole::EnvMap => dialog
                    .add_filter("Environment map (equirectangular)", &["hdr", "exr"])
                    .pick_file(),
                // A folder here; a video can be typed in the path field or dropped.
                FileRole::SourceImages => dialog.pick_folder(),
            }
        });
        self.pending.push((role, Instant::now(), pending));
    }

    /// Whether a native dialog is open.
    pub fn is_waiting(&self) -> bool {
        !self.pending.is_empty()
    }
}

/// Dialogs and path fields, dropped files, and background loads of avatars, poses and
/// environment maps.
pub struct FilesPlugin;

impl Plugin for FilesPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Dialogs>()
            .add_systems(Update, poll_files.in_set(super::ViewerSet::Files));
    }
}

/// Acts on a path chosen for `role` (from a dialog, the path field, or a script).
pub fn use_path(session: &mut Session, messages: &mut Messages, role: FileRole, path: PathBuf) {
    match role {
        FileRole::Avatar => start_avatar_load(session, messages, path),
        FileRole::LeftAvatar => start_avatar_load_for(session, messages, path, true),
        FileRole::Poses => start_pose_load(session, path, None, None),
        FileRole::ExportMesh => super::output::export_mesh(session, messages, &path),
        FileRole::Mano => use_mano_file(session, messages, path),
        FileRole::SavePose | FileRole::SaveSequence => save_poses(session, messages, role, &path),
        FileRole::EnvMap => start_env_load(session, path),
        FileRole::SourceImages => super::footage::choose(session, messages, path),
        FileRole::OutputFolder => match std::fs::create_dir_all(&path) {
            Ok(()) => {
                let dir = path.canonicalize().unwrap_or(path);
                if let Err(e) = crate::user_config::remember_output_dir(&dir) {
                    messages.error(format!("could not remember the output folder: {e}"));
                }
                messages.info(format!("outputs now go to {}", dir.display()));
                session.output_dir = dir;
            }
            Err(e) => messages.error(format!(
                "{}: cannot create the folder: {e}; outputs still go to {}",
                path.display(),
                session.output_dir.display()
            )),
        },
    }
}

/// Writes the pose shown, or the whole sequence with its edits, as xhand pose JSON.
fn save_poses(session: &mut Session, messages: &mut Messages, role: FileRole, path: &Path) {
    let hand = session.selected.min(session.hands.len() - 1);
    let seq = match (&session.sequence, role) {
        // The selected hand's track (a pose file holds one hand's sequence).
        (Some(s), FileRole::SaveSequence) => s.scene.hands[hand].1.sequence.clone(),
        (None, FileRole::SaveSequence) => {
            messages.error("no sequence is loaded: use Save pose… for the pose shown");
            return;
        }
        _ => crate::pose::PoseSequence::single(session.pose().clone()),
    };
    let avatar = session.avatar_of(hand).avatar.clone();
    let result = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or(Ok(()), std::fs::create_dir_all)
        .map_err(anyhow::Error::from)
        .and_then(|_| {
            crate::pose::save_poses(
                path,
                &seq,
                crate::pose::save_format_for(path),
                avatar.template.skeleton.pose_mean(),
                avatar.hand,
            )
        });
    match result {
        Ok(()) => messages.info_with_folder(
            format!(
                "saved {} frame(s) to {}",
                seq.len(),
                absolute(path).display()
            ),
            path,
        ),
        Err(e) => messages.error(format!("{}: cannot save: {e:#}", path.display())),
    }
}

/// `path` made absolute against the working directory (for messages).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Checks a typed path before using it: files to open must exist.
pub fn check_typed_path(role: FileRole, text: &str) -> Result<PathBuf, String> {
    let text = text.trim().trim_matches(['"', '\'']);
    if text.is_empty() {
        return Err("type or paste a path".into());
    }
    let path = PathBuf::from(text);
    if role == FileRole::SourceImages {
        return if path.exists() {
            Ok(path)
        } else {
            Err(format!("{}: no such folder or file", path.display()))
        };
    }
    if !role.writes() && !path.is_file() {
        return Err(format!("{}: no such file", path.display()));
    }
    if role.writes() && path.is_dir() && role != FileRole::OutputFolder {
        return Err(format!("{} is a folder: add a file name", path.display()));
    }
    Ok(path)
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
        Some("pkl") => Some(FileRole::Mano),
        Some("hdr" | "exr") => Some(FileRole::EnvMap),
        Some("mp4") => Some(FileRole::SourceImages),
        _ if path.is_dir() => Some(FileRole::SourceImages),
        _ => None,
    }
}

/// Starts loading `path` as an avatar or poses (by extension); unknown kinds are an error.
pub fn open_path(session: &mut Session, messages: &mut Messages, path: PathBuf) {
    match role_of(&path) {
        Some(FileRole::Avatar) => start_avatar_load(session, messages, path),
        Some(FileRole::Poses) => start_pose_load(session, path, None, None),
        Some(FileRole::Mano) => use_mano_file(session, messages, path),
        Some(FileRole::EnvMap) => start_env_load(session, path),
        Some(FileRole::SourceImages) => super::footage::choose(session, messages, path),
        None if is_npz(&path) => {
            // An .npz is MANO parameters (poses) — or a MANO model when a checkpoint waits.
            if session.mano_prompt.is_some() {
                use_mano_file(session, messages, path)
            } else {
                start_pose_load(session, path, None, None)
            }
        }
        _ => messages.error(format!(
            "{}: not an avatar (.safetensors), an XHand checkpoint (.pth) or a pose file (.json); nothing was changed",
            path.display()
        )),
    }
}

fn is_npz(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"))
}

/// Reads an environment map on a thread; when ready it lights the hand.
pub fn start_env_load(session: &mut Session, path: PathBuf) {
    let p = path.clone();
    let pending = Pending::spawn("xhand-load-env", move || {
        crate::envmap::EnvironmentMap::load(&p)
            .map(|e| e.downsampled(crate::envmap::PROJECTION_WIDTH))
            .map_err(|e| format!("{e:#}"))
    });
    session.loading_env = Some((path, pending));
}

/// A MANO file chosen or dropped: it completes the checkpoint waiting for one.
fn use_mano_file(session: &mut Session, messages: &mut Messages, mano: PathBuf) {
    match session.mano_prompt.take() {
        Some((checkpoint, _)) => start_avatar_load_with(session, messages, checkpoint, Some(mano)),
        None => messages.error(format!(
            "{}: a MANO model file is only needed with an XHand checkpoint; open the checkpoint (.pth) first",
            mano.display()
        )),
    }
}

/// Loads an avatar and its rest-pose embeddings on a thread, as the main avatar.
pub fn start_avatar_load(session: &mut Session, messages: &mut Messages, path: PathBuf) {
    start_avatar_load_for(session, messages, path, false);
}

/// Loads an avatar as the main one, or (`left`) for the left hands.
pub fn start_avatar_load_for(
    session: &mut Session,
    messages: &mut Messages,
    path: PathBuf,
    left: bool,
) {
    session.loading_left_avatar = left;
    start_avatar_load_with(session, messages, path, None);
}

/// Loads an avatar file, or imports an XHand checkpoint with `mano` (else the MANO file
/// remembered for its hand; with none, the user is asked).
pub fn start_avatar_load_with(
    session: &mut Session,
    messages: &mut Messages,
    path: PathBuf,
    mano: Option<PathBuf>,
) {
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
    messages.info(format!("loading {} …", path.display()));
    session.loading_avatar = Some((path, pending));
}

/// Loads poses on a thread; asks which capture/hand first when the file holds several
/// captures, or both hands in a format that keeps them apart. Both hands of a HaMeR dump or
/// InterHand capture load together by default, each converted for the avatar that shows it.
pub fn start_pose_load(
    session: &mut Session,
    path: PathBuf,
    capture: Option<String>,
    hand: Option<HandChoice>,
) {
    let options = |side| PoseLoadOptions {
        capture: capture.clone(),
        ..PoseLoadOptions::for_avatar(&session.avatar_for(side).avatar)
    };
    let (right, left) = (options(Handedness::Right), options(Handedness::Left));
    let used = [Handedness::Right, Handedness::Left].map(|side| {
        let a = &session.avatar_for(side).avatar;
        (*a.template.skeleton.pose_mean(), a.hand)
    });
    let p = path.clone();
    let pending = Pending::spawn("xhand-load-poses", move || {
        if right.capture.is_none() && hand.is_none() {
            let summary = inspect_poses(&p).map_err(|e| e.to_string())?;
            let together = matches!(summary.format, PoseFormat::Hamer | PoseFormat::InterHand);
            if summary.captures.len() > 1 || (summary.hands.len() > 1 && !together) {
                return Ok(PoseLoadOutcome::Choose(summary));
            }
        }
        crate::pose::load_scene(&p, hand, &right, &left)
            .map(|scene| PoseLoadOutcome::Loaded(scene, Box::new(used)))
            .map_err(|e| e.to_string())
    });
    session.loading_poses = Some((path, pending));
}

/// Collects finished loads and dialog results; reads dropped files.
pub fn poll_files(
    mut session: ResMut<Session>,
    mut messages: ResMut<Messages>,
    mut lighting: ResMut<super::lighting::Lighting>,
    mut dialogs: ResMut<Dialogs>,
    mut drops: MessageReader<FileDragAndDrop>,
    mut orbit: ResMut<super::orbit::Orbit>,
) {
    for drop in drops.read() {
        if let FileDragAndDrop::DroppedFile { path_buf, .. } = drop {
            open_path(&mut session, &mut messages, path_buf.clone());
        }
    }
    let mut still = Vec::new();
    let mut failed = None;
    for (role, started, pending) in dialogs.pending.drain(..) {
        match pending.poll() {
            None => still.push((role, started, pending)),
            Some(Ok(Some(path))) => use_path(&mut session, &mut messages, role, path),
            Some(Ok(None)) if started.elapsed() < DIALOG_FAILED_WITHIN => failed = Some(role),
            Some(Ok(None)) if role == FileRole::Mano => {
                // Cancelled: the checkpoint keeps waiting for a dropped MANO file.
                if let Some((ck, _)) = &session.mano_prompt {
                    let text = format!(
                        "{}: no MANO file chosen — drop it onto the window to open the checkpoint",
                        ck.display()
                    );
                    messages.info(text);
                }
            }
            Some(Ok(None)) => {}
            Some(Err(_)) => failed = Some(role),
        }
    }
    dialogs.pending = still;
    if let Some(role) = failed {
        dialogs.native = false;
        let text = "no file dialog could be shown here (no desktop portal or zenity): type or paste the path instead";
        messages.error(text);
        dialogs.prompt = Some(PathPrompt {
            role,
            text: default_save_path(role, &session)
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            note: Some(text.into()),
        });
    }

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
                let left = std::mem::take(&mut session.loading_left_avatar);
                if left {
                    session.set_left_avatar(avatar, emb, Some(path.clone()));
                } else {
                    session.set_avatar(avatar, emb, Some(path.clone()));
                    lighting.avatar_changed(&session.avatar.avatar);
                }
                session.remember(path.clone());
                messages.info(format!(
                    "avatar `{name}` loaded{}",
                    if left { " for the left hands" } else { "" }
                ));
                for n in notes {
                    messages.info(format!("{}: {n}", path.display()));
                }
                if let Some(m) = mano
                    && let Err(e) = ManoFiles::load().remember(hand, &m)
                {
                    messages.error(format!(
                        "could not remember the MANO file for next time: {e}"
                    ));
                }
            }
            Some(Ok(Ok(AvatarLoaded::NeedsMano(hand)))) => {
                messages.info(format!(
                    "{} is an XHand checkpoint: choose the MANO model file of its {hand} hand (MANO_{}.pkl) — or drop it onto the window",
                    path.display(),
                    hand.as_str().to_ascii_uppercase()
                ));
                session.mano_prompt = Some((path, hand));
                dialogs.open(FileRole::Mano, &mut session);
            }
            Some(Ok(Err(e))) | Some(Err(e)) => {
                session.loading_left_avatar = false;
                messages.error(format!("{e} — the current avatar stays loaded"))
            }
        }
    }
    if let Some((path, pending)) = session.loading_env.take() {
        match pending.poll() {
            None => session.loading_env = Some((path, pending)),
            Some(Ok(Ok(env))) => {
                messages.info(format!(
                    "lighting from {} ({}x{} after downsampling)",
                    path.display(),
                    env.width,
                    env.height
                ));
                lighting.env_display = Some((
                    super::footage::next_backdrop_key(),
                    std::sync::Arc::new(env.display_image()),
                ));
                lighting.env = Some((path, std::sync::Arc::new(env)));
                lighting.light_from_environment(session.avatar.avatar.color_order);
            }
            Some(Ok(Err(e))) | Some(Err(e)) => {
                messages.error(format!("{e} — the lighting is unchanged"))
            }
        }
    }
    if let Some((path, pending)) = session.loading_poses.take() {
        match pending.poll() {
            None => session.loading_poses = Some((path, pending)),
            Some(Ok(Ok(PoseLoadOutcome::Loaded(scene, used)))) => {
                let name = path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into(),
                );
                for w in scene.warnings().cloned().collect::<Vec<_>>() {
                    messages.info(format!("{name}: {w}"));
                }
                let n = scene.len();
                let sides: Vec<Handedness> = scene.hands.iter().map(|(s, _)| *s).collect();
                session.set_loaded_sequence(scene, path.clone(), *used);
                session.remember(path.clone());
                // Frame the hand wherever the file puts it (HaMeR: metres from its camera).
                orbit.frame_requested = true;
                let what = match sides[..] {
                    [_, _] => " (both hands)".to_string(),
                    [side] if side != session.avatar_for(side).avatar.hand => {
                        " (a hand of the other side: shown mirrored)".to_string()
                    }
                    _ => String::new(),
                };
                messages.info(format!(
                    "{name}: {n} frame{} loaded{what}",
                    if n == 1 { "" } else { "s" },
                ));
            }
            Some(Ok(Ok(PoseLoadOutcome::Choose(summary)))) => {
                let together = matches!(summary.format, PoseFormat::Hamer | PoseFormat::InterHand);
                session.pose_choice = Some(PoseChoice {
                    capture: summary.captures.first().cloned(),
                    hand: match summary.hands[..] {
                        [_, _] if together => Some(HandChoice::Both),
                        [h, ..] => Some(HandChoice::from(h)),
                        [] => None,
                    },
                    summary,
                    path,
                });
            }
            Some(Ok(Err(e))) | Some(Err(e)) => {
                messages.error(format!("{e} — the current poses stay loaded"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_never_repeat_within_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let a = unique_output_path(dir.path(), "xhand-screenshot", ".png");
        let b = unique_output_path(dir.path(), "xhand-screenshot", ".png");
        assert_ne!(
            a, b,
            "the second name is taken even before the first file exists"
        );
        // A name whose file exists already is skipped too.
        let existing = dir.path().join(format!("xhand-mesh-{}.obj", timestamp()));
        std::fs::write(&existing, b"").unwrap();
        assert_ne!(
            unique_output_path(dir.path(), "xhand-mesh", ".obj"),
            existing
        );
        let name = b.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("xhand-screenshot-") && name.ends_with(".png"),
            "{name}"
        );
    }

    #[test]
    fn timestamps_are_readable_utc() {
        assert_eq!(timestamp_of(0), "1970-01-01_00-00-00");
        assert_eq!(timestamp_of(951_782_400), "2000-02-29_00-00-00");
        assert_eq!(timestamp_of(1_796_499_012), "2026-12-05_19-30-12");
    }

    #[test]
    fn typed_paths_are_checked_for_their_role() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.json");
        std::fs::write(&file, "{}").unwrap();
        let quoted = format!("  \"{}\" ", file.display());
        assert_eq!(check_typed_path(FileRole::Poses, &quoted), Ok(file.clone()));
        let missing = dir.path().join("missing.json");
        let e = check_typed_path(FileRole::Poses, missing.to_str().unwrap()).unwrap_err();
        assert!(e.contains("no such file"), "{e}");
        assert!(check_typed_path(FileRole::SavePose, missing.to_str().unwrap()).is_ok());
        let e = check_typed_path(FileRole::ExportMesh, dir.path().to_str().unwrap()).unwrap_err();
        assert!(e.contains("folder"), "{e}");
        assert!(check_typed_path(FileRole::OutputFolder, dir.path().to_str().unwrap()).is_ok());
        assert!(check_typed_path(FileRole::Avatar, "  ").is_err());
    }
}
