//! Poses and pose sequences, and the files they come from.
//!
//! [`PoseFrame`] is what one rendered frame needs: XHand's 48-d axis-angle pose (relative to
//! the avatar's `pose_mean`), translation, scale, which hand it is, and optionally SH
//! lighting. [`PoseSequence`] is a list of frames with a frame rate.
//!
//! Files: the project's own JSON ([`PoseFormat::Xhand`]), HaMeR dumps
//! ([`PoseFormat::Hamer`]) and InterHand2.6M MANO annotations ([`PoseFormat::InterHand`]),
//! detected automatically. [`inspect_poses`] says what a file holds (captures, hands,
//! frames); [`load_poses`] reads one capture and hand of it. `docs/poses.md` describes every
//! layout and conversion.

mod hamer;
mod hamer_out;
mod hands;
mod interhand;
mod json;
mod npz;
pub mod presets;
mod value;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use hamer::{
    HAMER_CROP_FOCAL, HAMER_CROP_SIZE, ROTATION_REPAIR_TOL, ROTATION_SILENT_TOL, pose_to_matrices,
};
pub use hands::{HandChoice, SceneSequence, load_hands, load_scene};
pub use interhand::MAX_INTERHAND_FILE_BYTES;
pub use json::{MAX_POSE_FILE_BYTES, parse_pose_json, to_json as sequence_to_json};

use crate::camera::Camera;
use crate::hand::{Handedness, mirror_pose};
use crate::{POSE_DIM, SH_DIM};

/// The error for frame `index` of a sequence of `len` frames read from `source`.
fn no_such_frame(index: usize, len: usize, source: Option<&Path>) -> PoseError {
    PoseError {
        path: source.map(Path::to_path_buf).unwrap_or_default(),
        line_col: None,
        at: None,
        problem: format!(
            "frame {index} does not exist; the sequence has {len} frame{} (0..{})",
            if len == 1 { "" } else { "s" },
            len.saturating_sub(1)
        ),
    }
}

/// Largest magnitude accepted for any pose value (radians, metres or SH units).
pub const MAX_ABS_VALUE: f64 = 1000.0;
/// Frame rate of sequences that do not say.
pub const DEFAULT_FPS: f32 = 30.0;

/// One frame's pose.
#[derive(Clone, Debug, PartialEq)]
pub struct PoseFrame {
    /// Axis-angle per joint (global orientation, then 15 joints), relative to `pose_mean`.
    pub pose: [f32; POSE_DIM],
    /// Translation in metres, added after scaling.
    pub trans: [f32; 3],
    /// Uniform scale.
    pub scale: f32,
    /// The hand the pose describes; `None` means the avatar's own hand.
    pub hand: Option<Handedness>,
    /// SH lighting for this frame (channel-major 27), or `None` for the avatar's.
    pub sh: Option<[f32; SH_DIM]>,
}

impl Default for PoseFrame {
    fn default() -> Self {
        Self {
            pose: [0.0; POSE_DIM],
            trans: [0.0; 3],
            scale: 1.0,
            hand: None,
            sh: None,
        }
    }
}

/// A sequence of frames played at `fps`.
#[derive(Clone, Debug, PartialEq)]
pub struct PoseSequence {
    pub fps: f32,
    pub frames: Vec<PoseFrame>,
    /// Human-readable labels per frame (e.g. InterHand frame ids), same length as `frames`
    /// when present.
    pub labels: Option<Vec<String>>,
    /// The file it came from.
    pub source: Option<PathBuf>,
}

impl PoseSequence {
    /// A one-frame sequence.
    pub fn single(frame: PoseFrame) -> Self {
        Self {
            fps: DEFAULT_FPS,
            frames: vec![frame],
            labels: None,
            source: None,
        }
    }

    /// Number of frames (never 0 for a parsed file).
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frame `index`, or an error naming the valid range.
    pub fn frame(&self, index: usize) -> Result<&PoseFrame, PoseError> {
        (self.frames.get(index))
            .ok_or_else(|| no_such_frame(index, self.frames.len(), self.source.as_deref()))
    }

    /// Duration in seconds.
    pub fn duration(&self) -> f32 {
        self.frames.len() as f32 / self.fps
    }
}

/// A problem with a pose file.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}{}{}: {problem}", path.display(), fmt_line_col(line_col), fmt_at(at))]
pub struct PoseError {
    pub path: PathBuf,
    /// 1-based line and column for syntax errors.
    pub line_col: Option<(usize, usize)>,
    /// Where inside the document, e.g. `frames[12].pose[3]`.
    pub at: Option<String>,
    pub problem: String,
}

fn fmt_line_col(lc: &Option<(usize, usize)>) -> String {
    lc.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default()
}

fn fmt_at(at: &Option<String>) -> String {
    at.as_ref().map(|a| format!(" at {a}")).unwrap_or_default()
}

impl PoseError {
    /// An error about the whole file.
    pub fn file(path: &Path, problem: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            line_col: None,
            at: None,
            problem: problem.into(),
        }
    }
}

/// The kinds of pose file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum PoseFormat {
    /// The project's own pose JSON (`{"pose": [48]}` or `{"fps", "frames"}`).
    #[value(name = "xhand")]
    Xhand,
    /// A JSON dump of HaMeR's outputs (rotation matrices or axis-angle, flat-hand relative).
    #[value(name = "hamer")]
    Hamer,
    /// InterHand2.6M MANO annotations (`{capture: {frame: {right, left}}}`).
    #[value(name = "interhand")]
    InterHand,
    /// MANO parameters as numpy's `.npz` (`global_orient`, `hand_pose`, `transl` per frame;
    /// what smplx-based tools such as aitviewer read).
    #[value(name = "npz")]
    Npz,
}

impl PoseFormat {
    /// Short lower-case name, as `--format` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Xhand => "xhand",
            Self::Hamer => "hamer",
            Self::InterHand => "interhand",
            Self::Npz => "npz",
        }
    }
}

impl std::fmt::Display for PoseFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to read from a pose file, and for which avatar.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoseLoadOptions {
    /// Force a format instead of detecting it.
    pub format: Option<PoseFormat>,
    /// InterHand capture id; required when the file holds several.
    pub capture: Option<String>,
    /// Which hand to read; required when the file holds both.
    pub hand: Option<Handedness>,
    /// Frame rate, overriding the file's (default [`DEFAULT_FPS`]).
    pub fps: Option<f32>,
    /// The target avatar's `pose_mean` (MANO's `hands_mean`, zeros for the root). Formats
    /// whose rotations are relative to the flat hand (HaMeR) subtract it, so frames come out
    /// relative to the mean like every [`PoseFrame`]; `None` subtracts nothing (with a
    /// warning). Formats that are mean-relative already (xhand, InterHand) ignore it.
    pub pose_mean: Option<[f32; POSE_DIM]>,
    /// The hand whose MANO model `pose_mean` comes from (the avatar's hand). A frame of the
    /// other hand subtracts the mirrored mean.
    pub pose_mean_hand: Handedness,
    /// Leave out frames without the chosen hand silently (the other hand's sequence shows
    /// them: [`load_hands`]).
    pub quiet_missing_hand: bool,
}

impl PoseLoadOptions {
    /// Options that convert poses for `avatar` (its `pose_mean` and hand), detecting the
    /// format and choosing nothing else.
    pub fn for_avatar(avatar: &crate::avatar::Avatar) -> Self {
        Self {
            pose_mean: Some(*avatar.template.skeleton.pose_mean()),
            pose_mean_hand: avatar.hand,
            ..Self::default()
        }
    }
}

/// What a pose file holds, for a picker.
#[derive(Clone, Debug, PartialEq)]
pub struct PoseFileSummary {
    pub format: PoseFormat,
    /// Capture ids in numeric order (InterHand only; empty otherwise).
    pub captures: Vec<String>,
    /// Frames in each capture, parallel to `captures`.
    pub capture_frames: Vec<usize>,
    /// Hands that occur (right first). Empty for xhand files whose frames name no hand.
    pub hands: Vec<Handedness>,
    /// Frames in the file (all captures together for InterHand; before choosing a hand).
    pub frames: usize,
}

/// A loaded pose sequence and what came with it.
#[derive(Clone, Debug)]
pub struct LoadedPoses {
    pub sequence: PoseSequence,
    pub format: PoseFormat,
    /// Things the user should know (frames left out, matrices repaired, defaults used).
    pub warnings: Vec<String>,
    /// Per-frame cameras the file defines (HaMeR's camera), parallel to the frames; `None`
    /// when no frame has one.
    pub cameras: Option<Vec<Option<Camera>>>,
    /// Each frame's place in the file's own frame order (HaMeR's images, InterHand's frame
    /// ids in numeric order), parallel to the frames: what matches the frames of a file's
    /// two hands ([`load_hands`]). `None`: the frames are the file's, in order.
    pub file_frames: Option<Vec<usize>>,
}

/// A flat-hand-relative pose of `hand` made relative to the avatar's mean: `flat − mean`,
/// with the mean mirrored when it belongs to the other hand (MANO_LEFT is the mirror of
/// MANO_RIGHT). Subtraction in axis-angle space is the exact inverse of the skeleton's
/// `pose + pose_mean`.
pub fn mean_relative(
    flat: &[f32; POSE_DIM],
    hand: Handedness,
    pose_mean: &[f32; POSE_DIM],
    mean_hand: Handedness,
) -> [f32; POSE_DIM] {
    let mean = mean_of_hand(hand, pose_mean, mean_hand);
    std::array::from_fn(|i| flat[i] - mean[i])
}

/// The inverse of [`mean_relative`]: the flat-hand-relative pose `pose + mean` of `hand`.
pub fn flat_relative(
    pose: &[f32; POSE_DIM],
    hand: Handedness,
    pose_mean: &[f32; POSE_DIM],
    mean_hand: Handedness,
) -> [f32; POSE_DIM] {
    let mean = mean_of_hand(hand, pose_mean, mean_hand);
    std::array::from_fn(|i| pose[i] + mean[i])
}

/// `pose_mean` (of a `mean_hand` MANO model) for `hand`: mirrored for the other hand.
fn mean_of_hand(
    hand: Handedness,
    pose_mean: &[f32; POSE_DIM],
    mean_hand: Handedness,
) -> [f32; POSE_DIM] {
    if hand == mean_hand {
        *pose_mean
    } else {
        mirror_pose(pose_mean)
    }
}

/// Re-expresses a frame converted for one avatar's mean (`old_mean` of `old_hand`) for
/// another avatar's (`new_mean` of `new_hand`), keeping the flat-hand rotation the file gave:
/// what loading a flat-relative file (HaMeR) for the new avatar would have produced. A
/// frame that named no hand keeps showing the old avatar's side.
pub fn reconvert_for_mean(
    frame: &mut PoseFrame,
    old_mean: &[f32; POSE_DIM],
    old_hand: Handedness,
    new_mean: &[f32; POSE_DIM],
    new_hand: Handedness,
) {
    let hand = frame.hand.unwrap_or(old_hand);
    let flat = flat_relative(&frame.pose, hand, old_mean, old_hand);
    frame.pose = mean_relative(&flat, hand, new_mean, new_hand);
    if frame.hand.is_none() && old_hand != new_hand {
        frame.hand = Some(old_hand);
    }
}

/// Bytes read to detect an InterHand file before deciding how to read the rest.
const SNIFF_BYTES: u64 = 64 << 10;

/// A document read as text (xhand or HaMeR) or recognised as InterHand by its start.
enum Opened {
    InterHandStream,
    Text(serde_json::Value, String),
    Npz(Vec<u8>),
}

/// A zip file's first bytes (`.npz` is a zip of `.npy` arrays).
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

fn open(path: &Path, forced: Option<PoseFormat>) -> Result<Opened, PoseError> {
    if forced == Some(PoseFormat::InterHand) {
        return Ok(Opened::InterHandStream);
    }
    if forced.is_none() {
        let meta = std::fs::metadata(path)
            .map_err(|e| PoseError::file(path, format!("cannot read it: {e}")))?;
        if meta.is_file() {
            let mut prefix = Vec::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(SNIFF_BYTES).read_to_end(&mut prefix))
                .map_err(|e| PoseError::file(path, format!("cannot read it: {e}")))?;
            if interhand::sniff(&prefix) {
                return Ok(Opened::InterHandStream);
            }
            if prefix.starts_with(ZIP_MAGIC) {
                return Ok(Opened::Npz(read_bytes(path, MAX_POSE_FILE_BYTES)?));
            }
        }
    }
    if forced == Some(PoseFormat::Npz) {
        return Ok(Opened::Npz(read_bytes(path, MAX_POSE_FILE_BYTES)?));
    }
    let text = read_text(path, MAX_POSE_FILE_BYTES)?;
    let v = value::parse_pruned(path, &text)?;
    Ok(Opened::Text(v, text))
}

/// The format of an already parsed document (InterHand files that did not sniff as such,
/// e.g. with an empty first capture, are recognised here).
fn detect(v: &serde_json::Value) -> PoseFormat {
    use serde_json::Value;
    let Some(o) = v.as_object() else {
        return PoseFormat::Hamer;
    };
    let first_frame_keys = o
        .get("frames")
        .and_then(Value::as_array)
        .and_then(|f| f.first())
        .and_then(Value::as_object);
    // Only the xhand format's own keys: xhand, whatever else might match.
    let own = |m: &serde_json::Map<String, Value>, extra: &[&str]| {
        m.keys()
            .all(|k| json::FRAME_KEYS.contains(&k.as_str()) || extra.contains(&k.as_str()))
    };
    if (o.contains_key("pose") || o.contains_key("frames"))
        && ((own(o, &["fps", "frames"]) && first_frame_keys.is_none_or(|f| own(f, &[])))
            || (!hamer::has_hamer_keys(o) && !first_frame_keys.is_some_and(hamer::has_hamer_keys)))
    {
        return PoseFormat::Xhand;
    }
    // {capture: {frame: {right|left: ...}}}: every capture an object (or null) of frames,
    // and the first frame found keyed by hand.
    let captures_ok = !o.is_empty() && o.values().all(|c| c.is_object() || c.is_null());
    let first_frame = o
        .values()
        .filter_map(Value::as_object)
        .find_map(|c| c.values().next());
    let frame_ok = first_frame.is_some_and(|f| {
        f.as_object().is_some_and(|f| {
            !f.is_empty()
                && f.keys().all(|k| k == "right" || k == "left")
                && f.values()
                    .all(|h| h.is_null() || h.as_object().is_some_and(|h| h.contains_key("pose")))
        })
    });
    if captures_ok && frame_ok {
        return PoseFormat::InterHand;
    }
    PoseFormat::Hamer
}

/// Says what a pose file holds: format, captures, hands and frame count. Reads the whole
/// file (streamed for InterHand) and validates what it needs to count.
pub fn inspect_poses(path: &Path) -> Result<PoseFileSummary, PoseError> {
    match open(path, None)? {
        Opened::InterHandStream => interhand::inspect_file(path),
        Opened::Npz(bytes) => {
            let seq = npz::from_npz(path, &bytes)?;
            let mut hands = Vec::new();
            for h in [Handedness::Right, Handedness::Left] {
                if seq.frames.iter().any(|f| f.hand == Some(h)) {
                    hands.push(h);
                }
            }
            Ok(PoseFileSummary {
                format: PoseFormat::Npz,
                captures: Vec::new(),
                capture_frames: Vec::new(),
                hands,
                frames: seq.len(),
            })
        }
        Opened::Text(v, text) => match detect(&v) {
            PoseFormat::Xhand => {
                let seq = json::from_value(path, &v)?;
                let mut hands: Vec<Handedness> = Vec::new();
                for h in [Handedness::Right, Handedness::Left] {
                    if seq.frames.iter().any(|f| f.hand == Some(h)) {
                        hands.push(h);
                    }
                }
                Ok(PoseFileSummary {
                    format: PoseFormat::Xhand,
                    captures: Vec::new(),
                    capture_frames: Vec::new(),
                    hands,
                    frames: seq.len(),
                })
            }
            PoseFormat::Hamer => Ok(parse_hamer(path, &v, true)?.summary()),
            PoseFormat::InterHand => interhand::inspect_bytes(path, text.as_bytes()),
            PoseFormat::Npz => Err(PoseError::file(path, "it is text, not an .npz archive")),
        },
    }
}

/// Reads a pose file in any supported format as one sequence. When the file holds several
/// captures or both hands and `opts` does not choose, the error lists the choices.
pub fn load_poses(path: &Path, opts: &PoseLoadOptions) -> Result<LoadedPoses, PoseError> {
    if let Some(fps) = opts.fps
        && !(fps.is_finite() && fps > 0.0 && fps <= 10_000.0)
    {
        return Err(PoseError::file(
            path,
            format!("frame rate {fps} is not in 0..10000 fps"),
        ));
    }
    let (format, v, text) = match open(path, opts.format)? {
        Opened::InterHandStream => return interhand::load_file(path, opts),
        Opened::Npz(bytes) => return load_npz(path, &bytes, opts),
        Opened::Text(v, text) => (opts.format.unwrap_or_else(|| detect(&v)), v, text),
    };
    match format {
        PoseFormat::Xhand => {
            let mut sequence = json::from_value(path, &v)?;
            let mut warnings = Vec::new();
            if opts.capture.is_some() {
                warnings.push("an xhand pose file has no captures; --capture was ignored".into());
            }
            if opts.hand.is_some() {
                warnings
                    .push("an xhand pose file has one pose per frame; --hand was ignored".into());
            }
            if let Some(fps) = opts.fps {
                sequence.fps = fps;
            }
            Ok(LoadedPoses {
                sequence,
                format,
                warnings,
                cameras: None,
                file_frames: None,
            })
        }
        PoseFormat::Hamer => parse_hamer(path, &v, opts.format.is_none())?.select(path, opts),
        PoseFormat::InterHand => interhand::load_bytes(path, text.as_bytes(), opts),
        PoseFormat::Npz => Err(PoseError::file(path, "it is text, not an .npz archive")),
    }
}

/// An `.npz` of MANO parameters, one hand chosen when it holds both.
fn load_npz(path: &Path, bytes: &[u8], opts: &PoseLoadOptions) -> Result<LoadedPoses, PoseError> {
    let mut sequence = npz::from_npz(path, bytes)?;
    let mut warnings = Vec::new();
    let sides: Vec<Handedness> = [Handedness::Right, Handedness::Left]
        .into_iter()
        .filter(|h| sequence.frames.iter().any(|f| f.hand == Some(*h)))
        .collect();
    match (opts.hand, sides.len()) {
        (Some(h), _) => {
            let before = sequence.len();
            sequence.frames.retain(|f| f.hand.is_none_or(|x| x == h));
            if sequence.is_empty() {
                return Err(PoseError::file(path, format!("it has no {h} hand frames")));
            }
            if sequence.len() < before {
                warnings.push(format!(
                    "{} of {before} frames are of the other hand and were left out",
                    before - sequence.len()
                ));
            }
        }
        (None, 2) => {
            return Err(PoseError::file(
                path,
                "it holds right and left hand frames; choose one with --hand right|left",
            ));
        }
        _ => {}
    }
    if opts.capture.is_some() {
        warnings.push("an .npz pose file has no captures; --capture was ignored".into());
    }
    if let Some(fps) = opts.fps {
        sequence.fps = fps;
    }
    Ok(LoadedPoses {
        sequence,
        format: PoseFormat::Npz,
        warnings,
        cameras: None,
        file_frames: None,
    })
}

/// Writes `seq` to `path` as `format`, atomically: xhand pose JSON, MANO `.npz`, or a
/// HaMeR-style dump (whose flat-hand rotations need the mean the frames are relative to:
/// `pose_mean` of a `mean_hand` MANO model, the avatar's). InterHand files are read only.
pub fn save_poses(
    path: &Path,
    seq: &PoseSequence,
    format: PoseFormat,
    pose_mean: &[f32; POSE_DIM],
    mean_hand: Handedness,
) -> anyhow::Result<()> {
    let bytes = match format {
        PoseFormat::Xhand => json::to_json(seq).into_bytes(),
        PoseFormat::Npz => npz::to_npz(seq),
        PoseFormat::Hamer => hamer_out::to_hamer_json(seq, pose_mean, mean_hand).into_bytes(),
        PoseFormat::InterHand => anyhow::bail!(
            "{}: writing InterHand2.6M files is not supported; write xhand, hamer or npz",
            path.display()
        ),
    };
    crate::image_io::write_atomically(path, &bytes)
}

/// The format a file name asks for when saving: `.npz` → MANO parameters, `.hamer.json` →
/// a HaMeR-style dump, else xhand pose JSON.
pub fn save_format_for(path: &Path) -> PoseFormat {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".npz") {
        PoseFormat::Npz
    } else if name.ends_with(".hamer.json") {
        PoseFormat::Hamer
    } else {
        PoseFormat::Xhand
    }
}

/// Reads a whole binary file of at most `max_bytes`, with errors naming the file.
fn read_bytes(path: &Path, max_bytes: u64) -> Result<Vec<u8>, PoseError> {
    crate::user_files::read_capped(path, max_bytes, "pose files")
        .map_err(|p| PoseError::file(path, p))
}

/// Parses a HaMeR document; when the format was guessed and nothing in the document looks
/// like a hand, says that the file is of no known kind instead of what HaMeR lacks.
fn parse_hamer(
    path: &Path,
    v: &serde_json::Value,
    guessed: bool,
) -> Result<hamer::HamerDoc, PoseError> {
    hamer::HamerDoc::parse(path, v).map_err(|e| {
        let empty_list = v.as_array().is_some_and(|a| a.is_empty());
        if guessed && !empty_list && !hamer::mentions_hands(v, 0) {
            PoseError::file(
                path,
                format!(
                    "not a pose file this program knows: expected the xhand pose format (an \
                     object with `pose` or `frames`), a HaMeR dump (hand objects with \
                     `pred_mano_params`, or `global_orient` and `hand_pose`) or InterHand2.6M \
                     MANO annotations ({{capture: {{frame: {{right, left}}}}}}); found {}",
                    hamer::describe(v)
                ),
            )
        } else {
            e
        }
    })
}

/// Reads a pose file of any format with default options (the first capture's only hand;
/// HaMeR poses without mean subtraction). Prefer [`load_poses`], which also reports
/// warnings and cameras.
pub fn load_pose_file(path: &Path) -> Result<PoseSequence, PoseError> {
    Ok(load_poses(path, &PoseLoadOptions::default())?.sequence)
}

/// Reads a UTF-8 text file of at most `max_bytes`, with errors naming the file.
pub fn read_text(path: &Path, max_bytes: u64) -> Result<String, PoseError> {
    let bytes = read_bytes(path, max_bytes)?;
    String::from_utf8(bytes).map_err(|e| {
        PoseError::file(
            path,
            format!(
                "it is not UTF-8 text (invalid byte at offset {}); is it a binary file?",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconverting_for_another_mean_equals_loading_for_it() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/poses/hamer_frames.json");
        let mean_a: [f32; POSE_DIM] = std::array::from_fn(|i| 0.01 * i as f32);
        let mean_b: [f32; POSE_DIM] = std::array::from_fn(|i| 0.3 - 0.02 * i as f32);
        let load = |mean, hand| {
            let opts = PoseLoadOptions {
                pose_mean: Some(mean),
                pose_mean_hand: hand,
                hand: Some(Handedness::Right),
                ..PoseLoadOptions::default()
            };
            load_poses(&path, &opts).unwrap().sequence.frames
        };
        for new_hand in [Handedness::Right, Handedness::Left] {
            let mut frames = load(mean_a, Handedness::Right);
            let want = load(mean_b, new_hand);
            for f in &mut frames {
                reconvert_for_mean(f, &mean_a, Handedness::Right, &mean_b, new_hand);
            }
            for (f, w) in frames.iter().zip(&want) {
                assert!(
                    f.pose
                        .iter()
                        .zip(&w.pose)
                        .all(|(a, b)| (a - b).abs() < 1e-5)
                );
                let side = |h: Option<Handedness>| h.unwrap_or(Handedness::Right);
                assert_eq!(side(f.hand), side(w.hand));
            }
        }
    }
}
