//! InterHand2.6M MANO annotations (`InterHand2.6M_{split}_MANO_NeuralAnnot.json`):
//! `{capture: {frame: {"right": {"pose": [48], "shape": [10], "trans": [3]} | null,
//! "left": ...}}}`. These files reach hundreds of MB, so they are streamed through serde
//! visitors: the document is never built as a `Value`, other captures are skipped after
//! counting their frames, and only the chosen capture's hands are kept.
//!
//! Poses are used verbatim: axis-angle, root first, relative to MANO's mean pose, the way
//! XHand's data loader feeds them (`get_data.py` L253-260, L333-343).

use std::cell::RefCell;
use std::fmt;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::hamer::list_some;
use super::value::{check_range, natural_cmp, syntax_error};
use super::{
    DEFAULT_FPS, LoadedPoses, PoseError, PoseFileSummary, PoseFormat, PoseFrame, PoseLoadOptions,
    PoseSequence,
};
use crate::POSE_DIM;
use crate::hand::Handedness;

/// The largest InterHand annotation file read (streamed): 2 GiB − 1.
pub const MAX_INTERHAND_FILE_BYTES: u64 = (2 << 30) - 1;

/// One hand of one frame.
#[derive(Clone, Copy, Debug)]
struct IhHand {
    pose: [f32; POSE_DIM],
    trans: [f32; 3],
}

#[derive(Clone, Debug)]
struct IhFrame {
    id: String,
    right: Option<IhHand>,
    left: Option<IhHand>,
}

/// What one capture holds.
#[derive(Clone, Debug)]
struct CaptureInfo {
    name: String,
    frames: usize,
    right: usize,
    left: usize,
}

/// What the streaming pass collects.
#[derive(Default)]
struct Collector {
    /// Parse this capture fully (`None`: the first one).
    want_capture: Option<String>,
    /// Keep only this hand (`None`: both).
    want_hand: Option<Handedness>,
    /// Only count (for `inspect_poses`).
    summary_only: bool,
    captures: Vec<CaptureInfo>,
    /// Index in `captures` of the fully parsed capture.
    chosen: Option<usize>,
    frames: Vec<IhFrame>,
    /// The content error that stopped the parse, with its place in the document.
    error: Option<(String, String)>,
}

impl Collector {
    fn wants(&self, name: &str) -> bool {
        if self.summary_only || self.chosen.is_some() {
            return false;
        }
        match &self.want_capture {
            None => true,
            Some(c) => same_id(c, name),
        }
    }

    fn fail<E: de::Error>(&mut self, at: String, problem: String) -> E {
        let e = E::custom(&problem);
        if self.error.is_none() {
            self.error = Some((at, problem));
        }
        e
    }
}

/// `"7"` matches `"07"`: ids compared as numbers when both are.
fn same_id(a: &str, b: &str) -> bool {
    a == b || matches!((a.parse::<u64>(), b.parse::<u64>()), (Ok(x), Ok(y)) if x == y)
}

fn key_at(parent: &str, key: &str) -> String {
    format!("{parent}[{key:?}]")
}

/// Runs the streaming pass over `read`; errors carry line and column.
fn run<R: Read>(path: &Path, read: R, col: Collector) -> Result<Collector, PoseError> {
    let cell = RefCell::new(col);
    let mut de = serde_json::Deserializer::from_reader(read);
    let result = Root { col: &cell }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    let col = cell.into_inner();
    match result {
        Ok(()) => Ok(col),
        Err(e) => Err(match (e.classify(), col.error) {
            (serde_json::error::Category::Io, _) => {
                PoseError::file(path, format!("cannot read it: {e}"))
            }
            (_, Some((at, problem))) => PoseError {
                path: path.to_path_buf(),
                line_col: Some((e.line(), e.column())),
                at: Some(at),
                problem,
            },
            _ => syntax_error(path, &e),
        }),
    }
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, PoseError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| PoseError::file(path, format!("cannot read it: {e}")))?;
    if meta.is_dir() {
        return Err(PoseError::file(path, "it is a folder, not a pose file"));
    }
    if meta.len() > MAX_INTERHAND_FILE_BYTES {
        return Err(PoseError::file(
            path,
            format!(
                "it is {:.1} GB; InterHand annotation files are read up to {} MB",
                meta.len() as f64 / 1e9,
                (MAX_INTERHAND_FILE_BYTES + 1) >> 20
            ),
        ));
    }
    let f = std::fs::File::open(path)
        .map_err(|e| PoseError::file(path, format!("cannot read it: {e}")))?;
    Ok(BufReader::with_capacity(1 << 20, f))
}

/// Captures, hands and frame counts of an InterHand file (one streaming pass).
pub(super) fn inspect_file(path: &Path) -> Result<PoseFileSummary, PoseError> {
    let col = Collector {
        summary_only: true,
        ..Collector::default()
    };
    summary(path, &run(path, open(path)?, col)?)
}

/// [`inspect_file`] for a document already in memory.
pub(super) fn inspect_bytes(path: &Path, bytes: &[u8]) -> Result<PoseFileSummary, PoseError> {
    let col = Collector {
        summary_only: true,
        ..Collector::default()
    };
    summary(path, &run(path, bytes, col)?)
}

/// Loads one capture and hand of an InterHand file.
pub(super) fn load_file(path: &Path, opts: &PoseLoadOptions) -> Result<LoadedPoses, PoseError> {
    let col = run(path, open(path)?, collector(opts))?;
    finish(path, col, opts)
}

/// [`load_file`] for a document already in memory.
pub(super) fn load_bytes(
    path: &Path,
    bytes: &[u8],
    opts: &PoseLoadOptions,
) -> Result<LoadedPoses, PoseError> {
    let col = run(path, bytes, collector(opts))?;
    finish(path, col, opts)
}

fn collector(opts: &PoseLoadOptions) -> Collector {
    Collector {
        want_capture: opts.capture.clone(),
        want_hand: opts.hand,
        ..Collector::default()
    }
}

fn sorted_captures(col: &Collector) -> Vec<&CaptureInfo> {
    let mut caps: Vec<&CaptureInfo> = col.captures.iter().collect();
    caps.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    caps
}

fn summary(path: &Path, col: &Collector) -> Result<PoseFileSummary, PoseError> {
    if col.captures.is_empty() {
        return Err(PoseError::file(
            path,
            "the InterHand annotation file has no captures",
        ));
    }
    let caps = sorted_captures(col);
    let mut hands = Vec::new();
    if caps.iter().any(|c| c.right > 0) {
        hands.push(Handedness::Right);
    }
    if caps.iter().any(|c| c.left > 0) {
        hands.push(Handedness::Left);
    }
    Ok(PoseFileSummary {
        format: PoseFormat::InterHand,
        captures: caps.iter().map(|c| c.name.clone()).collect(),
        capture_frames: caps.iter().map(|c| c.frames).collect(),
        hands,
        frames: caps.iter().map(|c| c.frames).sum(),
    })
}

fn capture_list(col: &Collector) -> String {
    let caps = sorted_captures(col);
    let items: Vec<String> = caps
        .iter()
        .map(|c| format!("{} ({} frames)", c.name, c.frames))
        .collect();
    list_some(&items, 20)
}

fn finish(path: &Path, col: Collector, opts: &PoseLoadOptions) -> Result<LoadedPoses, PoseError> {
    if col.captures.is_empty() {
        return Err(PoseError::file(
            path,
            "the InterHand annotation file has no captures",
        ));
    }
    let Some(ci) = col.chosen else {
        let wanted = opts.capture.as_deref().unwrap_or_default();
        return Err(PoseError::file(
            path,
            format!(
                "there is no capture `{wanted}`; the file holds {}",
                capture_list(&col)
            ),
        ));
    };
    if opts.capture.is_none() && col.captures.len() > 1 {
        return Err(PoseError::file(
            path,
            format!(
                "the file holds {} captures: {}; choose one with --capture",
                col.captures.len(),
                capture_list(&col)
            ),
        ));
    }
    let cap = &col.captures[ci];
    let hand = match opts.hand {
        Some(h) => h,
        None if cap.right > 0 && cap.left > 0 => {
            return Err(PoseError::file(
                path,
                format!(
                    "capture {} holds both hands (right in {} frames, left in {}); choose one: \
                     --hand right or --hand left",
                    cap.name, cap.right, cap.left
                ),
            ));
        }
        None if cap.left > 0 => Handedness::Left,
        None => Handedness::Right,
    };
    let present = if hand == Handedness::Right {
        cap.right
    } else {
        cap.left
    };
    if present == 0 {
        return Err(PoseError::file(
            path,
            format!(
                "capture {} has no {hand} hand in any of its {} frames (right: {}, left: {})",
                cap.name, cap.frames, cap.right, cap.left
            ),
        ));
    }
    let mut frames = col.frames;
    // Frame ids are numbers (`int(img_name[5:-4])`); order them as numbers, not text.
    frames.sort_by(|a, b| match (a.id.parse::<u64>(), b.id.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => natural_cmp(&a.id, &b.id),
    });
    let mut out = Vec::with_capacity(frames.len());
    let mut labels = Vec::with_capacity(frames.len());
    let mut file_frames = Vec::with_capacity(frames.len());
    let mut missing = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let h = if hand == Handedness::Right {
            f.right
        } else {
            f.left
        };
        match h {
            Some(h) => {
                out.push(PoseFrame {
                    pose: h.pose,
                    trans: h.trans,
                    scale: 1.0,
                    hand: Some(hand),
                    sh: None,
                });
                labels.push(f.id.clone());
                file_frames.push(i);
            }
            None => missing.push(f.id.clone()),
        }
    }
    let mut warnings = Vec::new();
    if !missing.is_empty() && !opts.quiet_missing_hand {
        warnings.push(format!(
            "{} of {} frames of capture {} have no {hand} hand (null) and were left out \
             (frames {})",
            missing.len(),
            frames.len(),
            cap.name,
            list_some(&missing, 8)
        ));
    }
    // `opts.pose_mean` is not used: InterHand poses are mean-relative already.
    Ok(LoadedPoses {
        sequence: PoseSequence {
            fps: opts.fps.unwrap_or(DEFAULT_FPS),
            frames: out,
            labels: Some(labels),
            source: Some(path.to_path_buf()),
        },
        format: PoseFormat::InterHand,
        warnings,
        cameras: None,
        file_frames: Some(file_frames),
    })
}

// ---- serde visitors -------------------------------------------------------------------

struct Root<'c> {
    col: &'c RefCell<Collector>,
}

impl<'de> DeserializeSeed<'de> for Root<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Root<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of captures")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key::<String>()? {
            let full = self.col.borrow().wants(&name);
            let index = self.col.borrow().captures.len();
            self.col.borrow_mut().captures.push(CaptureInfo {
                name: name.clone(),
                frames: 0,
                right: 0,
                left: 0,
            });
            if full {
                self.col.borrow_mut().chosen = Some(index);
            }
            map.next_value_seed(CaptureSeed {
                col: self.col,
                at: key_at("", &name),
                index,
                full,
            })?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(wrong(self.col, "", "an object of captures", "a list"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(wrong(self.col, "", "an object of captures", "a string"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(wrong(self.col, "", "an object of captures", "a number"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(wrong(self.col, "", "an object of captures", "a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(wrong(self.col, "", "an object of captures", "a number"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(wrong(self.col, "", "an object of captures", "a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(wrong(self.col, "", "an object of captures", "null"))
    }
}

fn wrong<E: de::Error>(col: &RefCell<Collector>, at: &str, expected: &str, found: &str) -> E {
    col.borrow_mut().fail(
        if at.is_empty() {
            "the top level".to_string()
        } else {
            at.to_string()
        },
        format!(
            "expected {expected} (InterHand2.6M MANO annotations: {{capture: {{frame: \
             {{\"right\": {{pose, shape, trans}} | null, \"left\": ...}}}}}}), found {found}"
        ),
    )
}

/// Implements the non-map visits of a visitor as "wrong type" errors.
macro_rules! only_maps {
    ($expected:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(wrong(self.col, &self.at, $expected, "a list"))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(wrong(self.col, &self.at, $expected, "a string"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(wrong(self.col, &self.at, $expected, "a number"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(wrong(self.col, &self.at, $expected, "a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(wrong(self.col, &self.at, $expected, "a number"))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(wrong(self.col, &self.at, $expected, "a boolean"))
        }
    };
}

struct CaptureSeed<'c> {
    col: &'c RefCell<Collector>,
    at: String,
    index: usize,
    full: bool,
}

impl<'de> DeserializeSeed<'de> for CaptureSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CaptureSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of frames")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(id) = map.next_key::<String>()? {
            let (right, left) = map.next_value_seed(FrameSeed {
                col: self.col,
                at: key_at(&self.at, &id),
                full: self.full,
            })?;
            let mut col = self.col.borrow_mut();
            let info = &mut col.captures[self.index];
            info.frames += 1;
            info.right += right.present() as usize;
            info.left += left.present() as usize;
            if self.full {
                col.frames.push(IhFrame {
                    id,
                    right: right.kept(),
                    left: left.kept(),
                });
            }
        }
        Ok(())
    }
    /// A capture of `null`: no frames.
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    only_maps!("an object of frames");
}

/// What a frame said about one hand.
enum Slot {
    Absent,
    /// Present but not kept (another hand or capture was chosen).
    Skipped,
    Kept(Box<IhHand>),
}

impl Slot {
    fn present(&self) -> bool {
        !matches!(self, Slot::Absent)
    }
    fn kept(self) -> Option<IhHand> {
        match self {
            Slot::Kept(h) => Some(*h),
            _ => None,
        }
    }
}

struct FrameSeed<'c> {
    col: &'c RefCell<Collector>,
    at: String,
    full: bool,
}

impl<'de> DeserializeSeed<'de> for FrameSeed<'_> {
    type Value = (Slot, Slot);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(Slot, Slot), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FrameSeed<'_> {
    type Value = (Slot, Slot);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with `right` and `left`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(Slot, Slot), A::Error> {
        let (mut right, mut left) = (Slot::Absent, Slot::Absent);
        while let Some(key) = map.next_key::<String>()? {
            let hand = match key.as_str() {
                "right" => Handedness::Right,
                "left" => Handedness::Left,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let keep = self.full && self.col.borrow().want_hand.is_none_or(|h| h == hand);
            let slot = if keep {
                match map.next_value_seed(HandSeed {
                    col: self.col,
                    at: format!("{}.{key}", self.at),
                })? {
                    Some(h) => Slot::Kept(Box::new(h)),
                    None => Slot::Absent,
                }
            } else {
                match map.next_value::<Option<IgnoredAny>>()? {
                    Some(_) => Slot::Skipped,
                    None => Slot::Absent,
                }
            };
            match hand {
                Handedness::Right => right = slot,
                Handedness::Left => left = slot,
            }
        }
        Ok((right, left))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(Slot, Slot), E> {
        Ok((Slot::Absent, Slot::Absent))
    }
    only_maps!("an object with `right` and `left`");
}

struct HandSeed<'c> {
    col: &'c RefCell<Collector>,
    at: String,
}

impl<'de> DeserializeSeed<'de> for HandSeed<'_> {
    type Value = Option<IhHand>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<IhHand>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HandSeed<'_> {
    type Value = Option<IhHand>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a hand object or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<IhHand>, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<IhHand>, A::Error> {
        let mut pose = None;
        let mut trans = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "pose" => {
                    pose = Some(map.next_value_seed(Numbers::<POSE_DIM> {
                        col: self.col,
                        at: format!("{}.pose", self.at),
                    })?)
                }
                "trans" => {
                    trans = Some(map.next_value_seed(Numbers::<3> {
                        col: self.col,
                        at: format!("{}.trans", self.at),
                    })?)
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let Some(pose) = pose else {
            return Err(self.col.borrow_mut().fail(
                self.at.clone(),
                "the hand has no `pose` (48 axis-angle numbers)".to_string(),
            ));
        };
        Ok(Some(IhHand {
            pose,
            trans: trans.unwrap_or([0.0; 3]),
        }))
    }
    only_maps!("a hand object {pose, shape, trans} or null");
}

/// Exactly `N` finite numbers.
struct Numbers<'c, const N: usize> {
    col: &'c RefCell<Collector>,
    at: String,
}

impl<'de, const N: usize> DeserializeSeed<'de> for Numbers<'_, N> {
    type Value = [f32; N];
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<[f32; N], D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Numbers<'_, N> {
    type Value = [f32; N];
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a list of {N} numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[f32; N], A::Error> {
        let mut out = [0.0f32; N];
        let mut n = 0usize;
        while let Some(s) = seq.next_element::<Scalar>()? {
            let x = match s {
                Scalar::Num(x) => x,
                Scalar::Other(k) => {
                    return Err(self.col.borrow_mut().fail(
                        format!("{}[{n}]", self.at),
                        format!("expected a number, found {k}"),
                    ));
                }
            };
            let x = check_range(x)
                .map_err(|p| self.col.borrow_mut().fail(format!("{}[{n}]", self.at), p))?;
            if n < N {
                out[n] = x as f32;
            }
            n += 1;
        }
        if n != N {
            return Err(self
                .col
                .borrow_mut()
                .fail(self.at.clone(), format!("expected {N} numbers, found {n}")));
        }
        Ok(out)
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<[f32; N], A::Error> {
        Err(self.type_error("an object"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<[f32; N], E> {
        Err(self.type_error("a string"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<[f32; N], E> {
        Err(self.type_error("a number"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<[f32; N], E> {
        Err(self.type_error("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<[f32; N], E> {
        Err(self.type_error("a number"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<[f32; N], E> {
        Err(self.type_error("a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<[f32; N], E> {
        Err(self.type_error("null"))
    }
}

impl<const N: usize> Numbers<'_, N> {
    fn type_error<E: de::Error>(&self, found: &str) -> E {
        self.col.borrow_mut().fail(
            self.at.clone(),
            format!("expected a list of {N} numbers, found {found}"),
        )
    }
}

/// Any JSON value, reduced to "a number" or what else it was.
enum Scalar {
    Num(f64),
    Other(&'static str),
}

impl<'de> de::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Num(v as f64))
    }
    fn visit_str<E>(self, _: &str) -> Result<Scalar, E> {
        Ok(Scalar::Other("a string"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other("a boolean"))
    }
    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("a list"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("an object"))
    }
}

/// Whether the start of a document looks like InterHand annotations:
/// `{ "capture" : { "frame" : { "right"|"left" : ...` or `... "frame" : null`, possibly after
/// empty captures (`"capture": {}`).
pub(super) fn sniff(prefix: &[u8]) -> bool {
    let mut p = Sniffer { s: prefix, i: 0 };
    if !p.punct(b'{') {
        return false;
    }
    loop {
        if !(p.string().is_some() && p.punct(b':') && p.punct(b'{')) {
            return false;
        }
        if p.punct(b'}') {
            // An empty capture; look at the next one.
            if p.punct(b',') {
                continue;
            }
            return false;
        }
        return p.string().is_some()
            && p.punct(b':')
            && (p.literal(b"null")
                || (p.punct(b'{') && matches!(p.string().as_deref(), Some("right" | "left"))));
    }
}

struct Sniffer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Sniffer<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn punct(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn literal(&mut self, lit: &[u8]) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }
    /// A short string without escapes.
    fn string(&mut self) -> Option<String> {
        if !self.punct(b'"') {
            return None;
        }
        let start = self.i;
        while self.i < self.s.len() && self.i - start < 256 {
            match self.s[self.i] {
                b'"' => {
                    let s = std::str::from_utf8(&self.s[start..self.i])
                        .ok()?
                        .to_string();
                    self.i += 1;
                    return Some(s);
                }
                b'\\' => return None,
                _ => self.i += 1,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_layout() {
        assert!(sniff(b"{\"0\": {\"12\": {\"right\": {\"pose\": [0"));
        assert!(sniff(b" {\n \"3\" :{ \"1\":{\"left\":null"));
        assert!(sniff(b"{\"0\": {\"12\": null"));
        assert!(sniff(
            b"{\"0\": {}, \"1\": {}, \"2\": {\"5\": {\"left\": null"
        ));
        assert!(!sniff(b"{\"0\": {}}"));
        assert!(!sniff(b"{\"pose\": [0, 0"));
        assert!(!sniff(b"{\"frames\": [{\"pose\""));
        assert!(!sniff(b"{\"img\": {\"hands\": {\"x\""));
        assert!(!sniff(b""));
    }

    #[test]
    fn same_ids() {
        assert!(same_id("7", "07"));
        assert!(!same_id("7", "8"));
        assert!(same_id("a", "a"));
    }
}
