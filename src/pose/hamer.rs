//! HaMeR dumps: the JSON layouts people save HaMeR's outputs in (`docs/poses.md` lists them
//! with examples), turned into frames for one hand.
//!
//! HaMeR always predicts a **right** MANO hand, for left hands on a horizontally flipped
//! crop; its rotations are relative to the **flat** hand (smplx `MANOLayer` adds no mean).
//! A hand here keeps exactly that (`omega`, HaMeR's frame); [`HamerDoc::select`] then
//! expresses it for the requested hand and subtracts the target `pose_mean`.

use std::collections::BTreeMap;
use std::path::Path;

use nalgebra::{Matrix3, Vector3};
use serde_json::{Map, Value};

use super::value::{Ctx, Tensor, join, kind, natural_cmp};
use super::{DEFAULT_FPS, LoadedPoses, PoseError, PoseFormat, PoseFrame, PoseLoadOptions};
use super::{PoseFileSummary, PoseSequence, mean_relative};
use crate::camera::Camera;
use crate::hand::{Handedness, mirror_pose};
use crate::skeleton::{axis_angle, nearest_rotation, rodrigues};
use crate::{NUM_JOINTS, POSE_DIM};

/// HaMeR's focal length for its 256-pixel crop (`configs/__init__.py` `EXTRA.FOCAL_LENGTH`).
pub const HAMER_CROP_FOCAL: f64 = 5000.0;
/// HaMeR's crop size in pixels (`MODEL.IMAGE_SIZE`).
pub const HAMER_CROP_SIZE: f64 = 256.0;
/// Largest camera translation accepted, metres (HaMeR places hands tens to hundreds of
/// metres away behind a long focal length).
const MAX_TRANSLATION: f64 = 1e6;
/// Largest image side or focal length accepted, pixels.
const MAX_PIXELS: f64 = 1e7;
/// Rotation matrices within this of orthonormal (`max |RᵀR − I|`) are used silently
/// (JSON dumps rounded to 3–4 decimals land here).
pub const ROTATION_SILENT_TOL: f64 = 1e-3;
/// Matrices up to this far from orthonormal (and with `det > 0`) are replaced by the
/// nearest rotation with a warning; farther ones are refused.
pub const ROTATION_REPAIR_TOL: f64 = 0.1;

/// Keys holding the MANO parameters of a hand, nested (`pred_mano_params`) or flat.
const PARAM_KEYS: [&str; 3] = ["pred_mano_params", "mano_params", "mano"];
/// Keys that make an object a hand.
const HAND_KEYS: [&str; 5] = [
    "pred_mano_params",
    "mano_params",
    "global_orient",
    "hand_pose",
    "mano_pose",
];
/// Full 16-joint poses under other names.
const FULL_POSE_KEYS: [&str; 4] = ["full_pose", "mano_pose", "pose", "poses"];
/// Keys saying which hand (numeric flag).
const RIGHT_FLAG_KEYS: [&str; 2] = ["is_right", "right"];
/// Keys saying which hand (text).
const SIDE_TEXT_KEYS: [&str; 4] = ["hand_type", "handedness", "hand", "side"];
/// Full-image camera translations (`pred_cam_t_full`, demo.py L144; `cam_t` is the demo's
/// name for the same, L180).
const FULL_TRANS_KEYS: [&str; 5] = ["pred_cam_t_full", "cam_t_full", "cam_t", "transl", "trans"];
/// The crop camera's translation (hamer.py L118-121).
const CROP_TRANS_KEY: &str = "pred_cam_t";
/// Full-image focal lengths (demo.py L143 `scaled_focal_length`).
const FULL_FOCAL_KEYS: [&str; 3] = ["scaled_focal_length", "scaled_focal", "focal_length_full"];
/// Frame identifiers, used as labels and to group hands of one image.
const FRAME_ID_KEYS: [&str; 13] = [
    "frame_name",
    "frame",
    "frame_index",
    "frame_idx",
    "frame_id",
    "img_name",
    "img_path",
    "image_name",
    "image_path",
    "image",
    "imgname",
    "img_fn",
    "file_name",
];
const TIME_KEYS: [&str; 3] = ["timestamp_sec", "timestamp", "time"];

/// Where a hand's translation came from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Trans {
    /// Full-image camera frame (`pred_cam_t_full`): already for the un-mirrored image.
    Full([f64; 3]),
    /// HaMeR's 256-pixel crop camera (`pred_cam_t`): for a left hand, of the flipped crop.
    Crop([f64; 3]),
}

/// Camera facts a hand inherits from its record or the document.
#[derive(Clone, Copy, Debug, Default)]
struct Inherit {
    img_size: Option<[f64; 2]>,
    focal: Option<f64>,
    side: Option<Handedness>,
}

/// One hand as HaMeR predicted it.
#[derive(Clone, Debug)]
struct RawHand {
    /// Which hand was detected (right when the dump did not say).
    side: Handedness,
    /// Flat-hand-relative axis-angle in HaMeR's right-hand frame, root first.
    omega: [f64; POSE_DIM],
    trans: Option<Trans>,
    img_size: Option<[f64; 2]>,
    focal: Option<f64>,
}

#[derive(Clone, Debug, Default)]
struct RawFrame {
    label: Option<String>,
    time: Option<f64>,
    hands: Vec<RawHand>,
}

/// Non-orthonormal matrices that were repaired.
#[derive(Clone, Debug, Default)]
struct Repairs {
    count: usize,
    worst: f64,
    worst_at: String,
}

/// A parsed HaMeR document: frames of detected hands.
#[derive(Debug)]
pub(super) struct HamerDoc {
    frames: Vec<RawFrame>,
    fps: Option<f32>,
    repairs: Repairs,
    assumed_sides: usize,
}

/// Whether `o` is a hand object.
fn is_hand(o: &Map<String, Value>) -> bool {
    HAND_KEYS.iter().any(|k| o.contains_key(*k))
        || o.get("mano")
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key("global_orient") || m.contains_key("hand_pose"))
        // `pose` alone is the xhand format's key (with `hand`); HaMeR-like only next to
        // HaMeR's own keys.
        || (o.contains_key("pose")
            && ["is_right", "right", "hand_type", "handedness", "betas"]
                .iter()
                .any(|k| o.contains_key(*k)))
}

/// Whether `o` is a per-frame record `{frame_index, hands: [...]}`.
fn is_record(o: &Map<String, Value>) -> bool {
    o.contains_key("hands") && !is_hand(o)
}

/// Whether any object in `v` (top level or first frame) carries HaMeR's keys; used to tell
/// a HaMeR dump from the project's own format, which shares `pose` and `frames`.
pub(super) fn has_hamer_keys(o: &Map<String, Value>) -> bool {
    is_hand(o)
        || is_record(o)
        || ["betas", "pred_cam", CROP_TRANS_KEY, "pred_cam_t_full"]
            .iter()
            .chain(&RIGHT_FLAG_KEYS)
            .any(|k| o.contains_key(*k))
}

/// Whether `o`'s non-scalar entries are keyed by hand (`{"right": {...}, "left": {...}}`).
fn side_keyed(o: &Map<String, Value>) -> bool {
    let mut any = false;
    for (k, v) in o {
        if v.is_object() || v.is_array() {
            if Handedness::parse(k).is_none() || k.len() == 1 {
                return false;
            }
            any = true;
        }
    }
    any
}

/// `(hands, axis-angle per hand and joint)` decoded from one rotation tensor.
type FrameRotations = (usize, Vec<[f64; 3]>);

struct Parser<'a> {
    cx: Ctx<'a>,
    repairs: Repairs,
    assumed_sides: usize,
    fps: Option<f32>,
}

impl HamerDoc {
    /// Reads every frame and hand of a HaMeR document (all hands are validated, whichever
    /// is chosen later).
    pub(super) fn parse(path: &Path, v: &Value) -> Result<Self, PoseError> {
        let mut p = Parser {
            cx: Ctx { path },
            repairs: Repairs::default(),
            assumed_sides: 0,
            fps: None,
        };
        let frames = p.root(v)?;
        if frames.iter().all(|f| f.hands.is_empty()) {
            return Err(p.cx.err(
                "",
                "the HaMeR dump has no hands (every frame's hand list is empty)",
            ));
        }
        Ok(Self {
            frames,
            fps: p.fps,
            repairs: p.repairs,
            assumed_sides: p.assumed_sides,
        })
    }

    /// Number of frames and which hands occur.
    pub(super) fn summary(&self) -> PoseFileSummary {
        let (r, l) = self.side_counts();
        let mut hands = Vec::new();
        if r > 0 {
            hands.push(Handedness::Right);
        }
        if l > 0 {
            hands.push(Handedness::Left);
        }
        PoseFileSummary {
            format: PoseFormat::Hamer,
            captures: Vec::new(),
            capture_frames: Vec::new(),
            hands,
            frames: self.frames.len(),
        }
    }

    /// Frames containing a right / a left hand.
    fn side_counts(&self) -> (usize, usize) {
        let has = |f: &RawFrame, h| f.hands.iter().any(|x| x.side == h);
        (
            self.frames
                .iter()
                .filter(|f| has(f, Handedness::Right))
                .count(),
            self.frames
                .iter()
                .filter(|f| has(f, Handedness::Left))
                .count(),
        )
    }

    /// The frames of one hand, converted for the target avatar.
    pub(super) fn select(
        self,
        path: &Path,
        opts: &PoseLoadOptions,
    ) -> Result<LoadedPoses, PoseError> {
        let cx = Ctx { path };
        let (nr, nl) = self.side_counts();
        let hand = match opts.hand {
            Some(h) => {
                let n = if h == Handedness::Right { nr } else { nl };
                if n == 0 {
                    return Err(cx.err(
                        "",
                        format!(
                            "the HaMeR dump has no {h} hand; it has {} right and {} left \
                             (frames with a hand of that side)",
                            nr, nl
                        ),
                    ));
                }
                h
            }
            None if nr > 0 && nl > 0 => {
                return Err(cx.err(
                    "",
                    format!(
                        "the HaMeR dump holds both hands (right in {nr} frame{}, left in {nl} \
                         frame{}); choose one: --hand right or --hand left",
                        plural(nr),
                        plural(nl)
                    ),
                ));
            }
            None if nl > 0 => Handedness::Left,
            None => Handedness::Right,
        };
        let mut warnings = Vec::new();
        if opts.capture.is_some() {
            warnings.push("a HaMeR dump has no captures; --capture was ignored".to_string());
        }
        let (mean, mean_hand) = match opts.pose_mean {
            Some(m) => (m, opts.pose_mean_hand),
            None => {
                warnings.push(
                    "HaMeR rotations are relative to the flat hand and no target pose_mean was \
                     given, so none was subtracted: on an avatar whose pose_mean is not zero the \
                     fingers are off by MANO's mean pose"
                        .to_string(),
                );
                ([0.0; POSE_DIM], opts.pose_mean_hand)
            }
        };
        if self.repairs.count > 0 {
            warnings.push(format!(
                "{} rotation matri{} not orthonormal (worst max |RᵀR − I| = {:.3} at {}) and \
                 {} replaced by the nearest rotation",
                self.repairs.count,
                if self.repairs.count == 1 {
                    "x was"
                } else {
                    "ces were"
                },
                self.repairs.worst,
                self.repairs.worst_at,
                if self.repairs.count == 1 {
                    "was"
                } else {
                    "were"
                },
            ));
        }
        if self.assumed_sides > 0 {
            warnings.push(format!(
                "{} hand{} no `is_right` or `hand_type`; assumed right",
                self.assumed_sides,
                if self.assumed_sides == 1 {
                    " has"
                } else {
                    "s have"
                }
            ));
        }
        let have_labels = self.frames.iter().any(|f| f.label.is_some());
        let mut frames = Vec::new();
        let mut labels = Vec::new();
        let mut cameras = Vec::new();
        let mut times = Vec::new();
        let mut file_frames = Vec::new();
        let mut missing = Vec::new();
        let mut duplicates = 0usize;
        let mut no_image_size = 0usize;
        for (i, f) in self.frames.iter().enumerate() {
            let label = f.label.clone().unwrap_or_else(|| i.to_string());
            let mut of_side = f.hands.iter().filter(|h| h.side == hand);
            let Some(h) = of_side.next() else {
                missing.push(label);
                continue;
            };
            if of_side.next().is_some() {
                duplicates += 1;
            }
            let (frame, camera) = convert(h, hand, &mean, mean_hand);
            if camera.is_none() && matches!(h.trans, Some(Trans::Full(_))) {
                no_image_size += 1;
            }
            frames.push(frame);
            cameras.push(camera);
            labels.push(label);
            times.push(f.time);
            file_frames.push(i);
        }
        if !missing.is_empty() && !opts.quiet_missing_hand {
            warnings.push(format!(
                "{} of {} frames have no {hand} hand and were left out ({})",
                missing.len(),
                self.frames.len(),
                list_some(&missing, 8)
            ));
        }
        if duplicates > 0 {
            warnings.push(format!(
                "{duplicates} frame{} more than one {hand} hand (several people?); the first \
                 of each was used",
                if duplicates == 1 { " has" } else { "s have" }
            ));
        }
        if no_image_size > 0 {
            warnings.push(format!(
                "{no_image_size} hand{} a full-image translation but no image size \
                 (`img_size` [W, H]); no HaMeR camera for {}",
                if no_image_size == 1 { " has" } else { "s have" },
                if no_image_size == 1 { "it" } else { "them" }
            ));
        }
        let fps = match opts.fps.or(self.fps).or_else(|| fps_from_times(&times)) {
            Some(f) => f,
            None => {
                if frames.len() > 1 {
                    warnings.push(format!(
                        "the dump gives no frame rate; playing at {DEFAULT_FPS} fps (set one \
                         with --fps)"
                    ));
                }
                DEFAULT_FPS
            }
        };
        let cameras = cameras.iter().any(Option::is_some).then_some(cameras);
        Ok(LoadedPoses {
            sequence: PoseSequence {
                fps,
                frames,
                labels: have_labels.then_some(labels),
                source: Some(path.to_path_buf()),
            },
            format: PoseFormat::Hamer,
            warnings,
            cameras,
            file_frames: Some(file_frames),
        })
    }
}

/// Frame rate from per-frame timestamps (seconds), when they increase.
fn fps_from_times(times: &[Option<f64>]) -> Option<f32> {
    let t: Vec<f64> = times.iter().flatten().copied().collect();
    if t.len() < 2 || t.len() != times.len() {
        return None;
    }
    let span = t[t.len() - 1] - t[0];
    let fps = (t.len() - 1) as f64 / span;
    (span > 0.0 && fps.is_finite() && fps <= 10_000.0).then_some(fps as f32)
}

/// The avatar-ready frame and camera of one HaMeR hand.
fn convert(
    h: &RawHand,
    hand: Handedness,
    pose_mean: &[f32; POSE_DIM],
    mean_hand: Handedness,
) -> (PoseFrame, Option<Camera>) {
    // HaMeR's rotations describe a right hand (of the flipped crop for a left hand). For a
    // left hand, MANO_LEFT's rotations are their mirror M·R·M, M = diag(−1, 1, 1), i.e.
    // (x, y, z) → (x, −y, −z) per joint (hamer datasets/utils.py fliplr_params L394-397).
    let omega: [f32; POSE_DIM] = std::array::from_fn(|i| h.omega[i] as f32);
    let omega = match hand {
        Handedness::Right => omega,
        Handedness::Left => mirror_pose(&omega),
    };
    let pose = mean_relative(&omega, hand, pose_mean, mean_hand);
    let sign = hand.sign() as f64;
    let (trans, camera) = match h.trans {
        Some(Trans::Full(t)) => {
            let cam = h.img_size.map(|[w, hgt]| {
                // demo.py L143: the focal length HaMeR renders the full image with.
                let f = h
                    .focal
                    .unwrap_or(HAMER_CROP_FOCAL / HAMER_CROP_SIZE * w.max(hgt));
                pinhole(f, w, hgt)
            });
            (t, cam)
        }
        Some(Trans::Crop(t)) => {
            // The crop camera of a left hand looked at the flipped crop: mirror x back.
            let cam = pinhole(HAMER_CROP_FOCAL, HAMER_CROP_SIZE, HAMER_CROP_SIZE);
            ([t[0] * sign, t[1], t[2]], Some(cam))
        }
        None => ([0.0; 3], None),
    };
    let frame = PoseFrame {
        pose,
        trans: trans.map(|x| x as f32),
        scale: 1.0,
        hand: Some(hand),
        sh: None,
    };
    (frame, camera)
}

/// HaMeR's camera: OpenCV axes with the hand already in camera coordinates (identity
/// extrinsics) and the principal point at the image centre (renderer.py L367-370).
fn pinhole(f: f64, w: f64, h: f64) -> Camera {
    Camera {
        rotation: Matrix3::identity(),
        center: Vector3::zeros(),
        fx: f,
        fy: f,
        cx: w * 0.5,
        cy: h * 0.5,
        width: w.round() as u32,
        height: h.round() as u32,
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The first `n` items, then "…".
pub(super) fn list_some(items: &[String], n: usize) -> String {
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        s.push_str(&format!(", … ({} more)", items.len() - n));
    }
    s
}

impl Parser<'_> {
    fn root(&mut self, v: &Value) -> Result<Vec<RawFrame>, PoseError> {
        let inh = Inherit::default();
        match v {
            Value::Array(list) => self.list(list, "", &inh),
            Value::Object(o) => {
                // A hand object's own image size may be per hand; `hand` reads it.
                let inh = if is_hand(o) {
                    inh
                } else {
                    self.inherit(o, "", &inh)?
                };
                if let Some(f) = o.get("fps").filter(|f| !f.is_null()) {
                    let fps = self.cx.number(f, "fps")?;
                    if fps <= 0.0 {
                        return Err(self
                            .cx
                            .err("fps", format!("{fps} is not a positive frame rate")));
                    }
                    self.fps = Some(fps as f32);
                }
                if is_hand(o) {
                    // One hand object, possibly batched: each hand is its own frame.
                    let hands = self.hand(o, "", &inh)?;
                    Ok(hands
                        .into_iter()
                        .map(|h| RawFrame {
                            hands: vec![h],
                            ..RawFrame::default()
                        })
                        .collect())
                } else if is_record(o) {
                    Ok(vec![self.record(o, "", &inh, None)?])
                } else if let Some(frames) = o.get("frames") {
                    match frames {
                        Value::Array(l) => self.list(l, "frames", &inh),
                        Value::Object(m) => self.dict(m, "frames", &inh),
                        other => Err(self.cx.err(
                            "frames",
                            format!("expected a list of frames, found {}", kind(other)),
                        )),
                    }
                } else if side_keyed(o) {
                    Ok(vec![self.by_side(o, "", &inh, None)?])
                } else {
                    self.dict(o, "", &inh)
                }
            }
            other => Err(self.cx.err(
                "",
                format!(
                    "expected a HaMeR dump (an object or a list), found {}",
                    kind(other)
                ),
            )),
        }
    }

    /// Image size and focal length given at this level, else the inherited ones.
    fn inherit(
        &mut self,
        o: &Map<String, Value>,
        at: &str,
        inh: &Inherit,
    ) -> Result<Inherit, PoseError> {
        let mut out = *inh;
        if let Some(s) = self.img_size(o, at, 1, 0)? {
            out.img_size = Some(s);
        }
        if let Some(f) = self.focal(o, at, 1, 0)? {
            out.focal = Some(f);
        }
        Ok(out)
    }

    /// `{frame_key: hands}`: frames in natural key order, labelled by key.
    fn dict(
        &mut self,
        m: &Map<String, Value>,
        at: &str,
        inh: &Inherit,
    ) -> Result<Vec<RawFrame>, PoseError> {
        let mut keys: Vec<&String> = m
            .iter()
            .filter(|(_, v)| v.is_array() || v.is_object() || v.is_null())
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() {
            return Err(self.cx.err(
                at,
                "found no hands: expected hand objects (with `pred_mano_params`, or \
                 `global_orient` and `hand_pose`), a list of them, per-frame records with \
                 `hands`, or an object of frames",
            ));
        }
        keys.sort_by(|a, b| natural_cmp(a, b));
        let mut frames = Vec::with_capacity(keys.len());
        for k in keys {
            let here = join(at, k);
            let label = Some(k.clone());
            let frame = match &m[k] {
                Value::Null => RawFrame {
                    label,
                    ..RawFrame::default()
                },
                Value::Array(hands) => RawFrame {
                    label,
                    hands: self.hand_list(hands, &here, inh)?,
                    time: None,
                },
                Value::Object(o) if is_hand(o) => RawFrame {
                    label,
                    hands: self.hand(o, &here, inh)?,
                    time: None,
                },
                Value::Object(o) if is_record(o) => self.record(o, &here, inh, label)?,
                Value::Object(o) if side_keyed(o) => self.by_side(o, &here, inh, label)?,
                Value::Object(_) => {
                    return Err(self.cx.err(
                        &here,
                        "expected a hand object (with `pred_mano_params`, or `global_orient` \
                         and `hand_pose`), a list of hands, or a record with `hands`; found an \
                         object without those keys",
                    ));
                }
                _ => unreachable!("filtered above"),
            };
            frames.push(frame);
        }
        Ok(frames)
    }

    /// A top-level (or `frames`) list: of hands, of per-frame records, or of hand lists.
    fn list(
        &mut self,
        list: &[Value],
        at: &str,
        inh: &Inherit,
    ) -> Result<Vec<RawFrame>, PoseError> {
        let Some(first) = list.iter().find(|v| !v.is_null()) else {
            return Err(self
                .cx
                .err(at, "the list is empty; it needs at least one hand or frame"));
        };
        let item_at = |i: usize| format!("{at}[{i}]");
        match first {
            Value::Object(o) if is_hand(o) => {
                // One frame per hand, unless hands name their image: then grouped by it.
                let mut frames: Vec<RawFrame> = Vec::new();
                let mut by_label: BTreeMap<String, usize> = BTreeMap::new();
                for (i, v) in list.iter().enumerate() {
                    let o = match v {
                        Value::Null => continue,
                        Value::Object(o) if is_hand(o) => o,
                        other => return Err(self.not_hand(&item_at(i), other)),
                    };
                    let hands = self.hand(o, &item_at(i), inh)?;
                    match frame_label(o) {
                        Some(label) => {
                            let idx = *by_label.entry(label.clone()).or_insert_with(|| {
                                frames.push(RawFrame {
                                    label: Some(label),
                                    time: frame_time(o),
                                    hands: Vec::new(),
                                });
                                frames.len() - 1
                            });
                            frames[idx].hands.extend(hands);
                        }
                        None => frames.extend(hands.into_iter().map(|h| RawFrame {
                            hands: vec![h],
                            ..RawFrame::default()
                        })),
                    }
                }
                Ok(frames)
            }
            Value::Object(o) if is_record(o) => {
                let mut frames = Vec::with_capacity(list.len());
                for (i, v) in list.iter().enumerate() {
                    match v {
                        Value::Object(o) if is_record(o) => {
                            frames.push(self.record(o, &item_at(i), inh, None)?)
                        }
                        other => {
                            return Err(self.cx.err(
                                &item_at(i),
                                format!(
                                    "expected a frame record with `hands` like the list's \
                                     first entry, found {}",
                                    describe(other)
                                ),
                            ));
                        }
                    }
                }
                Ok(frames)
            }
            Value::Array(_) => {
                let mut frames = Vec::with_capacity(list.len());
                for (i, v) in list.iter().enumerate() {
                    match v {
                        Value::Array(hands) => frames.push(RawFrame {
                            hands: self.hand_list(hands, &item_at(i), inh)?,
                            ..RawFrame::default()
                        }),
                        other => {
                            return Err(self.cx.err(
                                &item_at(i),
                                format!(
                                    "expected a list of hands like the list's first entry, \
                                     found {}",
                                    kind(other)
                                ),
                            ));
                        }
                    }
                }
                Ok(frames)
            }
            other => {
                let i = list.iter().position(|v| !v.is_null()).unwrap_or(0);
                Err(self.not_hand(&item_at(i), other))
            }
        }
    }

    fn not_hand(&self, at: &str, v: &Value) -> PoseError {
        self.cx.err(
            at,
            format!(
                "expected a hand object (with `pred_mano_params`, or `global_orient` and \
                 `hand_pose`), found {}",
                describe(v)
            ),
        )
    }

    /// The hands of one frame.
    fn hand_list(
        &mut self,
        hands: &[Value],
        at: &str,
        inh: &Inherit,
    ) -> Result<Vec<RawHand>, PoseError> {
        let mut out = Vec::new();
        for (i, v) in hands.iter().enumerate() {
            let here = format!("{at}[{i}]");
            match v {
                Value::Null => {}
                Value::Object(o) if is_hand(o) => out.extend(self.hand(o, &here, inh)?),
                other => return Err(self.not_hand(&here, other)),
            }
        }
        Ok(out)
    }

    /// `{frame_index, timestamp_sec, hands: [...]}`.
    fn record(
        &mut self,
        o: &Map<String, Value>,
        at: &str,
        inh: &Inherit,
        label: Option<String>,
    ) -> Result<RawFrame, PoseError> {
        let inh = self.inherit(o, at, inh)?;
        let here = join(at, "hands");
        let hands = match o.get("hands") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(h)) => self.hand_list(h, &here, &inh)?,
            Some(Value::Object(h)) if is_hand(h) => self.hand(h, &here, &inh)?,
            Some(Value::Object(h)) if side_keyed(h) => self.by_side(h, &here, &inh, None)?.hands,
            Some(other) => {
                return Err(self.cx.err(
                    &here,
                    format!("expected a list of hand objects, found {}", describe(other)),
                ));
            }
        };
        Ok(RawFrame {
            label: frame_label(o).or(label),
            time: frame_time(o),
            hands,
        })
    }

    /// `{"right": hand, "left": hand}`: one frame, sides from the keys unless the hands say.
    fn by_side(
        &mut self,
        o: &Map<String, Value>,
        at: &str,
        inh: &Inherit,
        label: Option<String>,
    ) -> Result<RawFrame, PoseError> {
        let mut hands = Vec::new();
        for (k, v) in o {
            let Some(side) = Handedness::parse(k) else {
                continue;
            };
            let inh = Inherit {
                side: Some(side),
                ..*inh
            };
            let here = join(at, k);
            match v {
                Value::Null => {}
                Value::Object(h) if is_hand(h) => hands.extend(self.hand(h, &here, &inh)?),
                Value::Array(list) => hands.extend(self.hand_list(list, &here, &inh)?),
                other => return Err(self.not_hand(&here, other)),
            }
        }
        Ok(RawFrame {
            label: frame_label(o).or(label),
            time: frame_time(o),
            hands,
        })
    }

    /// One hand object; a batched one (`[B, 15, 3, 3]`) gives B hands.
    fn hand(
        &mut self,
        o: &Map<String, Value>,
        at: &str,
        inh: &Inherit,
    ) -> Result<Vec<RawHand>, PoseError> {
        let (params, pat) = match PARAM_KEYS.iter().find_map(|k| o.get(*k).map(|v| (*k, v))) {
            Some((k, Value::Object(p))) => (p, join(at, k)),
            Some((k, other)) => {
                return Err(self.cx.err(
                    &join(at, k),
                    format!(
                        "expected an object with `global_orient`, `hand_pose` and `betas`, \
                         found {}",
                        kind(other)
                    ),
                ));
            }
            None => (o, at.to_string()),
        };
        let get = |k: &str| {
            params
                .get(k)
                .filter(|v| !v.is_null())
                .map(|v| (v, join(&pat, k)))
        };
        let go = get("global_orient");
        let hp = get("hand_pose");
        let full = FULL_POSE_KEYS.iter().find_map(|k| get(k));
        let expected = "expected `global_orient` (one 3x3 matrix or 3 axis-angle numbers) and \
                        `hand_pose` (15 3x3 matrices or 45 numbers), or a 16-joint pose";
        // (batch size, axis-angle per joint for all hands)
        let (b, omega): (usize, Vec<[f64; 3]>) = match (go, hp, full) {
            (Some((gv, gat)), Some((hv, hat)), _) => {
                let ht = self.cx.tensor(hv, &hat)?;
                let (b, hp_aa) = self.rotations(&ht, 15, None)?.ok_or_else(|| {
                    self.cx.err(
                        &hat,
                        format!(
                            "expected 15 rotation matrices ([15, 3, 3], optionally with a \
                             batch dimension) or 45 axis-angle numbers ([45] or [15, 3]); \
                             found shape {}",
                            ht.shape_text()
                        ),
                    )
                })?;
                let gt = self.cx.tensor(gv, &gat)?;
                let (gb, go_aa) = self.rotations(&gt, 1, Some(b))?.ok_or_else(|| {
                    self.cx.err(
                        &gat,
                        format!(
                            "expected one rotation matrix ([1, 3, 3] or [3, 3]) or 3 \
                             axis-angle numbers per hand; found shape {}",
                            gt.shape_text()
                        ),
                    )
                })?;
                if gb != b {
                    return Err(self.cx.err(
                        &gat,
                        format!("holds {gb} hand{} but `hand_pose` holds {b}", plural(gb)),
                    ));
                }
                let mut all = Vec::with_capacity(b * NUM_JOINTS);
                for i in 0..b {
                    all.push(go_aa[i]);
                    all.extend_from_slice(&hp_aa[15 * i..15 * (i + 1)]);
                }
                (b, all)
            }
            (None, Some((v, vat)), _) | (None, None, Some((v, vat))) => {
                let t = self.cx.tensor(v, &vat)?;
                match self.rotations(&t, NUM_JOINTS, None)? {
                    Some(x) => x,
                    None if self.rotations(&t, 15, None).ok().flatten().is_some() => {
                        return Err(self.cx.err(
                            &pat,
                            format!(
                                "has `hand_pose` with 15 joints but no `global_orient`; {expected}"
                            ),
                        ));
                    }
                    None => {
                        return Err(self.cx.err(
                            &vat,
                            format!(
                                "expected 16 rotation matrices or 48 axis-angle numbers (root \
                                 first); found shape {}",
                                t.shape_text()
                            ),
                        ));
                    }
                }
            }
            (Some(_), None, _) => {
                return Err(self.cx.err(
                    &pat,
                    format!("has `global_orient` but no `hand_pose`; {expected}"),
                ));
            }
            (None, None, None) => return Err(self.cx.err(&pat, format!("no pose: {expected}"))),
        };
        let sides = self.sides(o, at, b, inh)?;
        let trans = self.trans(o, params, at, &pat, b)?;
        let mut hands = Vec::with_capacity(b);
        for i in 0..b {
            let inh_i = Inherit {
                img_size: self.img_size(o, at, b, i)?.or(inh.img_size),
                focal: self.focal(o, at, b, i)?.or(inh.focal),
                ..*inh
            };
            let mut w = [0.0f64; POSE_DIM];
            for j in 0..NUM_JOINTS {
                w[3 * j..3 * j + 3].copy_from_slice(&omega[i * NUM_JOINTS + j]);
            }
            let (side, assumed) = sides[i];
            if assumed {
                self.assumed_sides += 1;
            }
            hands.push(RawHand {
                side,
                omega: w,
                trans: trans[i],
                img_size: inh_i.img_size,
                focal: inh_i.focal,
            });
        }
        Ok(hands)
    }

    /// Decodes `t` as `j` rotations per hand: matrices `[..., j, 3, 3]` or axis-angle
    /// `[..., j, 3]` / `[..., 3j]`. `None` when the shape fits neither.
    fn rotations(
        &mut self,
        t: &Tensor,
        j: usize,
        b_hint: Option<usize>,
    ) -> Result<Option<FrameRotations>, PoseError> {
        let s = &t.shape;
        let n = t.numel();
        let last = |k: usize| s.len().checked_sub(k).map(|i| s[i]);
        let mats = n > 0
            && last(1) == Some(3)
            && last(2) == Some(3)
            && (j == 1 || last(3) == Some(j))
            && n.is_multiple_of(9 * j);
        let aa = n > 0
            && (last(1) == Some(3 * j) || (last(1) == Some(3) && (j == 1 || last(2) == Some(j))))
            && n.is_multiple_of(3 * j);
        let use_mats = match (mats, aa) {
            (true, true) => b_hint != Some(n / (3 * j)) || b_hint == Some(n / (9 * j)),
            (m, _) => m,
        };
        if use_mats {
            let count = n / 9;
            let mut out = Vec::with_capacity(count);
            for k in 0..count {
                let d = &t.data[9 * k..9 * k + 9];
                let m = Matrix3::from_row_slice(d);
                out.push(self.matrix_to_aa(&m, &t.group_at(k, 2))?);
            }
            Ok(Some((count / j, out)))
        } else if aa {
            let out = t
                .data
                .chunks_exact(3)
                .map(|c| [c[0], c[1], c[2]])
                .collect::<Vec<_>>();
            Ok(Some((n / (3 * j), out)))
        } else {
            Ok(None)
        }
    }

    /// Checks (and if close, repairs) a rotation matrix and takes its axis-angle.
    fn matrix_to_aa(&mut self, m: &Matrix3<f64>, at: &str) -> Result<[f64; 3], PoseError> {
        let (rot, defect) = nearest_rotation(m);
        let rot = match rot {
            Some(r) if defect.orthogonality < ROTATION_REPAIR_TOL => r,
            Some(_) => {
                return Err(self.cx.err(
                    at,
                    format!(
                        "is not a rotation matrix: max |RᵀR − I| = {:.3} (up to \
                         {ROTATION_REPAIR_TOL} is repaired); expected a 3x3 rotation",
                        defect.orthogonality
                    ),
                ));
            }
            None => {
                return Err(self.cx.err(
                    at,
                    format!(
                        "is not a rotation matrix: det = {:.3} ({}); expected a 3x3 rotation \
                         with det = 1",
                        defect.det,
                        if defect.det < -0.5 {
                            "a reflection"
                        } else {
                            "degenerate"
                        }
                    ),
                ));
            }
        };
        if defect.orthogonality > ROTATION_SILENT_TOL {
            self.repairs.count += 1;
            if defect.orthogonality > self.repairs.worst {
                self.repairs.worst = defect.orthogonality;
                self.repairs.worst_at = at.to_string();
            }
        }
        Ok(axis_angle(&rot))
    }

    /// Which hand each of `b` hands is: `is_right` (0/1, a boolean, or a list of them),
    /// `hand_type` ("left"/"right", or a list), the parent's key, or assumed right.
    fn sides(
        &self,
        o: &Map<String, Value>,
        at: &str,
        b: usize,
        inh: &Inherit,
    ) -> Result<Vec<(Handedness, bool)>, PoseError> {
        let per = |v: &Value, here: &str| -> Result<Vec<Value>, PoseError> {
            let flat = flatten(v);
            if flat.len() == 1 {
                Ok(vec![flat[0].clone(); b])
            } else if flat.len() == b {
                Ok(flat)
            } else {
                Err(self.cx.err(
                    here,
                    format!(
                        "expected 1 or {b} entries (one per hand), found {}",
                        flat.len()
                    ),
                ))
            }
        };
        if let Some((k, v)) = RIGHT_FLAG_KEYS
            .iter()
            .find_map(|k| o.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
        {
            let here = join(at, k);
            return per(v, &here)?
                .iter()
                .map(|x| {
                    let r = match x {
                        Value::Bool(b) => Some(*b),
                        Value::Number(n) => match n.as_f64() {
                            Some(1.0) => Some(true),
                            Some(0.0) => Some(false),
                            _ => None,
                        },
                        _ => None,
                    };
                    r.map(|r| {
                        (
                            if r {
                                Handedness::Right
                            } else {
                                Handedness::Left
                            },
                            false,
                        )
                    })
                    .ok_or_else(|| {
                        self.cx
                            .err(&here, format!("expected 1 (right) or 0 (left), found {x}"))
                    })
                })
                .collect();
        }
        if let Some((k, v)) = SIDE_TEXT_KEYS
            .iter()
            .find_map(|k| o.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
        {
            let here = join(at, k);
            return per(v, &here)?
                .iter()
                .map(|x| {
                    x.as_str()
                        .and_then(Handedness::parse)
                        .map(|h| (h, false))
                        .ok_or_else(|| {
                            self.cx
                                .err(&here, format!("expected \"right\" or \"left\", found {x}"))
                        })
                })
                .collect();
        }
        Ok(vec![
            (
                inh.side.unwrap_or(Handedness::Right),
                inh.side.is_none()
            );
            b
        ])
    }

    /// Each hand's translation: full-image if given, else the crop camera's.
    fn trans(
        &self,
        o: &Map<String, Value>,
        params: &Map<String, Value>,
        at: &str,
        pat: &str,
        b: usize,
    ) -> Result<Vec<Option<Trans>>, PoseError> {
        let find = |keys: &[&str]| {
            keys.iter().find_map(|k| {
                o.get(*k)
                    .filter(|v| !v.is_null())
                    .map(|v| (v, join(at, k)))
                    .or_else(|| {
                        params
                            .get(*k)
                            .filter(|v| !v.is_null())
                            .map(|v| (v, join(pat, k)))
                    })
            })
        };
        let (v, here, full) = match find(&FULL_TRANS_KEYS) {
            Some((v, h)) => (v, h, true),
            None => match find(&[CROP_TRANS_KEY]) {
                Some((v, h)) => (v, h, false),
                None => return Ok(vec![None; b]),
            },
        };
        let t = self.cx.tensor_max(v, &here, MAX_TRANSLATION)?;
        (0..b)
            .map(|i| {
                let x = self.per_hand(&t, b, 3, i)?;
                let x = [x[0], x[1], x[2]];
                Ok(Some(if full { Trans::Full(x) } else { Trans::Crop(x) }))
            })
            .collect()
    }

    /// Hand `i`'s slice of `t`: `width` numbers shared by all hands or `b·width` in all.
    fn per_hand<'t>(
        &self,
        t: &'t Tensor,
        b: usize,
        width: usize,
        i: usize,
    ) -> Result<&'t [f64], PoseError> {
        if t.numel() == width {
            Ok(&t.data)
        } else if t.numel() == b * width {
            Ok(&t.data[i * width..(i + 1) * width])
        } else {
            Err(self.cx.err(
                &t.at,
                format!(
                    "expected {width} numbers{}, found shape {}",
                    if b > 1 {
                        format!(" (or {b}x{width}, one row per hand)")
                    } else {
                        String::new()
                    },
                    t.shape_text()
                ),
            ))
        }
    }

    /// Image size `[W, H]` in pixels from `img_size`/`image_size` or `img_w`+`img_h`.
    fn img_size(
        &self,
        o: &Map<String, Value>,
        at: &str,
        b: usize,
        i: usize,
    ) -> Result<Option<[f64; 2]>, PoseError> {
        let size = if let Some((k, v)) = ["img_size", "image_size"]
            .iter()
            .find_map(|k| o.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
        {
            let t = self.cx.tensor_max(v, &join(at, k), MAX_PIXELS)?;
            let s = self.per_hand(&t, b, 2, i)?;
            Some(([s[0], s[1]], join(at, k)))
        } else {
            let pair = [
                ("img_w", "img_h"),
                ("image_width", "image_height"),
                ("width", "height"),
            ]
            .into_iter()
            .find(|(w, h)| o.contains_key(*w) && o.contains_key(*h));
            match pair {
                Some((w, h)) => Some((
                    [
                        self.cx.number_max(&o[w], &join(at, w), MAX_PIXELS)?,
                        self.cx.number_max(&o[h], &join(at, h), MAX_PIXELS)?,
                    ],
                    join(at, w),
                )),
                None => None,
            }
        };
        match size {
            Some((s, here)) => {
                if s.iter().any(|&x| !(1.0..=65536.0).contains(&x)) {
                    return Err(self.cx.err(
                        &here,
                        format!(
                            "image size {} x {} is out of range (1..65536 pixels)",
                            s[0], s[1]
                        ),
                    ));
                }
                Ok(Some(s))
            }
            None => Ok(None),
        }
    }

    /// Full-image focal length in pixels. `focal_length` equal to HaMeR's crop focal (5000)
    /// is the crop camera's and is not used for the full image.
    fn focal(
        &self,
        o: &Map<String, Value>,
        at: &str,
        b: usize,
        i: usize,
    ) -> Result<Option<f64>, PoseError> {
        let found = FULL_FOCAL_KEYS
            .iter()
            .chain(&["focal_length"])
            .find_map(|k| o.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)));
        let Some((k, v)) = found else {
            return Ok(None);
        };
        let t = self.cx.tensor_max(v, &join(at, k), MAX_PIXELS)?;
        let f = if t.numel() == 1 {
            t.data[0]
        } else if t.numel() == 2 || t.numel() == 2 * b {
            self.per_hand(&t, b, 2, i)?[0]
        } else {
            self.per_hand(&t, b, 1, i)?[0]
        };
        if f <= 0.0 {
            return Err(self
                .cx
                .err(&join(at, k), format!("{f} is not a positive focal length")));
        }
        if k == "focal_length" && (f - HAMER_CROP_FOCAL).abs() < 1e-6 {
            return Ok(None);
        }
        Ok(Some(f))
    }
}

/// All scalars of a (nested) list, or the value itself.
fn flatten(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.iter().flat_map(flatten).collect(),
        other => vec![other.clone()],
    }
}

/// A frame id from a frame record or a hand object.
fn frame_label(o: &Map<String, Value>) -> Option<String> {
    FRAME_ID_KEYS.iter().find_map(|k| match o.get(*k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

fn frame_time(o: &Map<String, Value>) -> Option<f64> {
    TIME_KEYS
        .iter()
        .find_map(|k| o.get(*k).and_then(Value::as_f64))
        .filter(|t| t.is_finite())
}

/// Whether any object within `v` (to a modest depth) is a hand or a frame record.
pub(super) fn mentions_hands(v: &Value, depth: usize) -> bool {
    if depth > 6 {
        return false;
    }
    match v {
        Value::Object(o) => {
            is_hand(o) || is_record(o) || o.values().any(|x| mentions_hands(x, depth + 1))
        }
        Value::Array(a) => a.iter().take(64).any(|x| mentions_hands(x, depth + 1)),
        _ => false,
    }
}

/// "an object with keys `a`, `b`" / "a number" for messages.
pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let keys: Vec<String> = o.keys().take(6).map(|k| format!("`{k}`")).collect();
            if keys.is_empty() {
                "an empty object".into()
            } else {
                format!("an object with keys {}", keys.join(", "))
            }
        }
        other => kind(other).to_string(),
    }
}

/// HaMeR-style rotation matrices of a 48-d axis-angle pose, for writing test dumps:
/// `[global_orient [1,3,3], hand_pose [15,3,3]]` via the project's Rodrigues.
pub fn pose_to_matrices(pose: &[f32; POSE_DIM]) -> ([[f64; 9]; 1], [[f64; 9]; 15]) {
    let m = |j: usize| {
        let r = rodrigues([pose[3 * j], pose[3 * j + 1], pose[3 * j + 2]]);
        let mut out = [0.0; 9];
        for row in 0..3 {
            for col in 0..3 {
                out[3 * row + col] = r[(row, col)];
            }
        }
        out
    };
    ([m(0)], std::array::from_fn(|j| m(j + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<HamerDoc, PoseError> {
        HamerDoc::parse(Path::new("h.json"), &serde_json::from_str(s).unwrap())
    }

    #[test]
    fn batched_matrices_and_flat_axis_angle() {
        let eye = "[[1,0,0],[0,1,0],[0,0,1]]";
        let hp = vec![eye; 15].join(",");
        let doc = parse(&format!(
            "{{\"pred_mano_params\": {{\"global_orient\": [[{eye}],[{eye}]], \"hand_pose\": \
             [[{hp}],[{hp}]]}}, \"is_right\": [1, 0]}}"
        ))
        .unwrap();
        assert_eq!(doc.frames.len(), 2);
        assert_eq!(doc.frames[1].hands[0].side, Handedness::Left);
        let z45 = vec!["0.1"; 45].join(",");
        let doc = parse(&format!(
            "[{{\"global_orient\": [0.5,0,0], \"hand_pose\": [{z45}], \"hand_type\": \"left\"}}]"
        ))
        .unwrap();
        assert_eq!(doc.frames[0].hands[0].omega[0], 0.5);
        assert_eq!(doc.frames[0].hands[0].omega[47], 0.1);
        assert_eq!(doc.assumed_sides, 0);
    }

    #[test]
    fn shapes_that_fit_nothing_are_named() {
        let e = parse("{\"global_orient\": [0,0,0], \"hand_pose\": [1,2,3]}").unwrap_err();
        assert_eq!(e.at.as_deref(), Some("hand_pose"));
        assert!(e.problem.contains("[3]"), "{e}");
        let z45 = vec!["0"; 45].join(",");
        let e = parse(&format!(
            "{{\"global_orient\": [0,0], \"hand_pose\": [{z45}]}}"
        ))
        .unwrap_err();
        assert_eq!(e.at.as_deref(), Some("global_orient"));
    }

    #[test]
    fn fps_from_timestamps() {
        assert_eq!(
            fps_from_times(&[Some(0.0), Some(0.5), Some(1.0)]),
            Some(2.0)
        );
        assert_eq!(fps_from_times(&[Some(0.0), None]), None);
        assert_eq!(fps_from_times(&[Some(1.0), Some(1.0)]), None);
    }
}
