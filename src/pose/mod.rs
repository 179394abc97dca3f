//! Poses and pose sequences, and the files they come from.
//!
//! [`PoseFrame`] is what one rendered frame needs: XHand's 48-d axis-angle pose (relative to
//! the avatar's `pose_mean`), translation, scale, which hand it is, and optionally SH
//! lighting. [`PoseSequence`] is a list of frames with a frame rate.

mod json;

use std::path::{Path, PathBuf};

pub use json::{MAX_POSE_FILE_BYTES, parse_pose_json};

use crate::hand::Handedness;
use crate::{POSE_DIM, SH_DIM};

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
        self.frames.get(index).ok_or_else(|| PoseError {
            path: self.source.clone().unwrap_or_default(),
            line_col: None,
            at: None,
            problem: format!(
                "frame {index} does not exist; the sequence has {} frame{} (0..{})",
                self.frames.len(),
                if self.frames.len() == 1 { "" } else { "s" },
                self.frames.len().saturating_sub(1)
            ),
        })
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

/// Reads a pose file (the project's JSON format).
pub fn load_pose_file(path: &Path) -> Result<PoseSequence, PoseError> {
    let text = read_text(path, MAX_POSE_FILE_BYTES)?;
    let mut seq = parse_pose_json(path, &text)?;
    seq.source = Some(path.to_path_buf());
    Ok(seq)
}

/// Reads a UTF-8 text file of at most `max_bytes`, with errors naming the file.
pub fn read_text(path: &Path, max_bytes: u64) -> Result<String, PoseError> {
    use std::io::Read;
    let meta = std::fs::metadata(path)
        .map_err(|e| PoseError::file(path, format!("cannot read it: {e}")))?;
    if meta.is_dir() {
        return Err(PoseError::file(path, "it is a folder, not a pose file"));
    }
    if meta.len() > max_bytes {
        return Err(PoseError::file(
            path,
            format!(
                "it is {:.1} MB; pose files are at most {} MB",
                meta.len() as f64 / 1e6,
                max_bytes >> 20
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(max_bytes + 1).read_to_end(&mut bytes))
        .map_err(|e| PoseError::file(path, format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > max_bytes {
        return Err(PoseError::file(
            path,
            "it grew past the size limit while being read",
        ));
    }
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
