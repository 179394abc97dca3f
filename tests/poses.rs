//! Pose files of every format: the fixtures in `tests/fixtures/poses/` (generated here from
//! known poses; `XHAND_WRITE_FIXTURES=1 cargo test --no-default-features --test poses`
//! rewrites them), their round trips, left hands, HaMeR cameras, InterHand captures, and a
//! corpus of broken files that must be refused with errors naming file and place.

mod common;

use std::f32::consts::PI;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use xhand::POSE_DIM;
use xhand::hand::{HandDrive, Handedness, mirror_pose};
use xhand::pose::{
    LoadedPoses, PoseError, PoseFileSummary, PoseFormat, PoseLoadOptions, inspect_poses,
    load_hands, load_pose_file, load_poses, pose_to_matrices,
};

// ---- known poses and the fixture generator ----------------------------------------------

/// A fixed pseudo-random sequence in [-1, 1).
fn lcg(seed: u64) -> impl FnMut() -> f32 {
    let mut x = seed;
    move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Unit axis `i` of a few fixed directions.
fn axis(i: usize) -> [f32; 3] {
    let a: [[f32; 3]; 5] = [
        [1.0, 0.0, 0.0],
        [0.0, -1.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.267_261_24, -0.534_522_5, 0.801_783_7],
        [-0.872_871_5, 0.218_217_88, 0.436_435_77],
    ];
    a[i % a.len()]
}

fn scaled(ax: [f32; 3], angle: f32) -> [f32; 3] {
    ax.map(|c| c * angle)
}

/// The poses the HaMeR fixtures are made of (flat-hand relative, HaMeR's right-hand frame):
/// a general one, one with every joint near 0, one with joints near π, and a mix.
fn known_poses() -> Vec<[f32; POSE_DIM]> {
    let mut rnd = lcg(42);
    let general: [f32; POSE_DIM] = std::array::from_fn(|_| 0.8 * rnd());
    let mut near_zero = [0.0f32; POSE_DIM];
    for j in 0..16 {
        let angle = [0.0, 1e-7, 1e-5, 1e-3][j % 4];
        near_zero[3 * j..3 * j + 3].copy_from_slice(&scaled(axis(j), angle));
    }
    let mut near_pi = [0.0f32; POSE_DIM];
    for j in 0..16 {
        let angle = [PI - 1e-4, PI - 1e-3, PI - 2e-6, PI - 0.05][j % 4];
        near_pi[3 * j..3 * j + 3].copy_from_slice(&scaled(axis(j + 1), angle));
    }
    let mut mix = general;
    mix[0..3].copy_from_slice(&scaled(axis(3), 3.0));
    mix[3..6].copy_from_slice(&[0.0; 3]);
    mix[45..48].copy_from_slice(&scaled(axis(4), PI - 1e-4));
    vec![general, near_zero, near_pi, mix]
}

/// A pose_mean like MANO's: zeros for the root, gently curled fingers.
fn test_mean() -> [f32; POSE_DIM] {
    let mut rnd = lcg(7);
    std::array::from_fn(|i| if i < 3 { 0.0 } else { 0.3 * rnd() })
}

fn mat_json(m: &[f64; 9]) -> Value {
    json!([[m[0], m[1], m[2]], [m[3], m[4], m[5]], [m[6], m[7], m[8]]])
}

/// One hand as HaMeR's demo has it (`pred_mano_params` with [1,3,3] / [15,3,3]), optionally
/// with the batch dimension kept.
fn hamer_hand(pose: &[f32; POSE_DIM], is_right: bool, t_full: [f64; 3], batch: bool) -> Value {
    let (go, hp) = pose_to_matrices(pose);
    let go = json!([mat_json(&go[0])]);
    let hp = Value::Array(hp.iter().map(mat_json).collect());
    let right = if is_right { 1.0 } else { 0.0 };
    let wrap = |v: Value| if batch { json!([v]) } else { v };
    json!({
        "pred_cam": wrap(json!([0.9, 0.01, -0.02])),
        "pred_cam_t": wrap(json!([0.01, -0.02, 43.4])),
        "pred_cam_t_full": wrap(json!(t_full)),
        "focal_length": wrap(json!([5000.0, 5000.0])),
        "pred_mano_params": {
            "global_orient": wrap(go),
            "hand_pose": wrap(hp),
            "betas": wrap(json!([0.1, -0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])),
        },
        "is_right": wrap(json!(right)),
        "pred_vertices": wrap(json!([[0.0, 0.0, 0.0]])),
    })
}

const T_RIGHT: [f64; 3] = [0.05, -0.02, 30.0];
const T_LEFT: [f64; 3] = [-0.06, 0.01, 31.0];

/// InterHand-style hand.
fn ih_hand(seed: u64) -> Value {
    let mut rnd = lcg(seed);
    let pose: Vec<f32> = (0..48).map(|_| 0.5 * rnd()).collect();
    json!({
        "pose": pose,
        "shape": [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.1],
        "trans": [0.01 * seed as f32, 0.02, 0.9],
    })
}

/// Every fixture: file name and contents.
fn fixtures() -> Vec<(&'static str, Value)> {
    let p = known_poses();
    let aa = |pose: &[f32; POSE_DIM]| -> (Vec<f32>, Vec<f32>) {
        (pose[..3].to_vec(), pose[3..].to_vec())
    };
    let (go1, hp1) = aa(&p[1]);
    let (go3, hp3) = aa(&p[3]);
    vec![
        // L1, one hand object as the demo has it, with the image size.
        ("hamer_single.json", {
            let mut h = hamer_hand(&p[0], true, T_RIGHT, false);
            h["img_size"] = json!([640.0, 480.0]);
            h["box_center"] = json!([300.0, 200.0]);
            h["box_size"] = json!(180.0);
            h
        }),
        // L1, one image with a left and a right hand, batch dimension kept, grouped by image.
        ("hamer_image_two_hands.json", {
            let mut l = hamer_hand(&p[0], false, T_LEFT, true);
            let mut r = hamer_hand(&p[3], true, T_RIGHT, true);
            for h in [&mut l, &mut r] {
                h["img_path"] = json!("images/hands.jpg");
                h["img_size"] = json!([[1280.0, 720.0]]);
            }
            json!([l, r])
        }),
        // L1, per-frame records of a video: every known pose as a right hand, and as a left
        // hand in frames 1 and 3; timestamps at 24 fps.
        ("hamer_frames.json", {
            let frames: Vec<Value> = p
                .iter()
                .enumerate()
                .map(|(i, pose)| {
                    let mut hands = vec![hamer_hand(pose, true, T_RIGHT, false)];
                    if i % 2 == 1 {
                        hands.push(hamer_hand(pose, false, T_LEFT, false));
                    }
                    json!({
                        "frame_index": i,
                        "timestamp_sec": i as f64 / 24.0,
                        "img_size": [640, 480],
                        "hands": hands,
                    })
                })
                .collect();
            Value::Array(frames)
        }),
        // {frame_name: [hands...]}: natural key order (frame_2 before frame_10), an empty
        // frame, and a frame with two hands.
        (
            "hamer_video.json",
            json!({
                "frame_10.jpg": [hamer_hand(&p[2], true, T_RIGHT, false)],
                "frame_2.jpg": [hamer_hand(&p[1], true, T_RIGHT, false),
                                hamer_hand(&p[1], false, T_LEFT, false)],
                "frame_1.jpg": [hamer_hand(&p[0], true, T_RIGHT, false)],
                "frame_3.jpg": [],
            }),
        ),
        // L2, flat axis-angle: global_orient (3) + hand_pose (45), is_right / hand_type,
        // with and without a batch dimension, and a 48-d pose.
        (
            "hamer_axis_angle.json",
            json!([
                {"img_path": "a.jpg", "is_right": 1, "global_orient": go1, "hand_pose": hp1,
                 "betas": vec![0.0; 10], "transl": T_RIGHT},
                {"img_path": "b.jpg", "hand_type": "right", "global_orient": [go3],
                 "hand_pose": [hp3], "cam_t": [T_RIGHT], "img_size": [640, 480],
                 "scaled_focal": 12500.0},
                {"img_path": "c.jpg", "is_right": 0, "pose": p[0].to_vec(), "betas": vec![0.0; 10]},
            ]),
        ),
        // A left hand alone (the CLI renders it mirrored on a right avatar).
        ("hamer_left.json", {
            let mut h = hamer_hand(&p[0], false, T_LEFT, false);
            h["img_size"] = json!([640, 480]);
            h
        }),
        // InterHand2.6M MANO annotations: two captures, null hands, frame ids that order
        // differently as text (1, 10, 100, 2) and as numbers (1, 2, 10, 100).
        (
            "interhand.json",
            json!({
                "10": {
                    "5": {"right": ih_hand(5), "left": null},
                    "3": {"right": ih_hand(3), "left": null},
                    "4": {"right": ih_hand(4), "left": null},
                },
                "2": {
                    "10": {"right": ih_hand(11), "left": ih_hand(12)},
                    "2": {"right": ih_hand(21), "left": null},
                    "1": {"right": ih_hand(31), "left": ih_hand(32)},
                    "100": {"right": null, "left": ih_hand(42)},
                },
            }),
        ),
        // The project's own format.
        (
            "xhand_sequence.json",
            json!({
                "fps": 12,
                "frames": [
                    {"pose": vec![0.0; 48]},
                    {"pose": p[0].to_vec(), "trans": [0.0, 0.0, 0.1], "hand": "left"},
                ],
            }),
        ),
    ]
}

/// JSON with lists of numbers kept on one line.
fn pretty(v: &Value, indent: usize, out: &mut String) {
    let pad = |n: usize| " ".repeat(n);
    let flat = |v: &Value| match v {
        Value::Array(a) => a.iter().all(|x| match x {
            Value::Array(b) => b.iter().all(|y| !y.is_array() && !y.is_object()),
            Value::Object(_) => false,
            _ => true,
        }),
        Value::Object(o) => o.is_empty(),
        _ => true,
    };
    match v {
        _ if flat(v) => out.push_str(&serde_json::to_string(v).unwrap()),
        Value::Array(a) => {
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                out.push_str(&pad(indent + 2));
                pretty(x, indent + 2, out);
                out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(indent));
            out.push(']');
        }
        Value::Object(o) => {
            out.push_str("{\n");
            for (i, (k, x)) in o.iter().enumerate() {
                out.push_str(&format!("{}{}: ", pad(indent + 2), Value::from(k.as_str())));
                pretty(x, indent + 2, out);
                out.push_str(if i + 1 < o.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(indent));
            out.push('}');
        }
        _ => unreachable!(),
    }
}

fn fixture(name: &str) -> PathBuf {
    common::fixture(&format!("poses/{name}"))
}

/// Numbers equal within `tol`, everything else exactly.
fn same_json(a: &Value, b: &Value, tol: f64) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() <= tol
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q, tol))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w, tol)))
        }
        _ => a == b,
    }
}

#[test]
fn fixtures_match_their_generator() {
    let write = std::env::var_os("XHAND_WRITE_FIXTURES").is_some();
    for (name, v) in fixtures() {
        let path = fixture(name);
        if write {
            let mut s = String::new();
            pretty(&v, 0, &mut s);
            s.push('\n');
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, s).unwrap();
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{name}: {e}; regenerate with XHAND_WRITE_FIXTURES=1 cargo test --test poses")
        });
        let on_disk: Value = serde_json::from_str(&text).unwrap();
        assert!(
            same_json(&on_disk, &v, 1e-12),
            "{name} differs from its generator; regenerate with XHAND_WRITE_FIXTURES=1"
        );
    }
}

// ---- helpers -------------------------------------------------------------------------------

fn opts() -> PoseLoadOptions {
    PoseLoadOptions::default()
}

fn with_mean(hand: Option<Handedness>) -> PoseLoadOptions {
    PoseLoadOptions {
        hand,
        pose_mean: Some(test_mean()),
        pose_mean_hand: Handedness::Right,
        ..PoseLoadOptions::default()
    }
}

fn load(name: &str, o: &PoseLoadOptions) -> LoadedPoses {
    load_poses(&fixture(name), o).unwrap_or_else(|e| panic!("{e}"))
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn sub(a: &[f32; POSE_DIM], b: &[f32; POSE_DIM]) -> [f32; POSE_DIM] {
    std::array::from_fn(|i| a[i] - b[i])
}

// ---- HaMeR -----------------------------------------------------------------------------------

#[test]
fn hamer_matrices_round_trip_to_the_known_poses() {
    let poses = known_poses();
    // No pose_mean: the flat-relative poses themselves (with a warning).
    let l = load(
        "hamer_frames.json",
        &PoseLoadOptions {
            hand: Some(Handedness::Right),
            ..opts()
        },
    );
    assert_eq!(l.format, PoseFormat::Hamer);
    assert_eq!(l.sequence.len(), poses.len());
    assert!(
        l.warnings.iter().any(|w| w.contains("pose_mean")),
        "{:?}",
        l.warnings
    );
    for (i, (f, p)) in l.sequence.frames.iter().zip(&poses).enumerate() {
        let d = max_diff(&f.pose, p);
        assert!(d < 1e-5, "frame {i}: max |diff| {d:e}");
        assert_eq!(f.hand, Some(Handedness::Right));
        assert_eq!(f.trans, T_RIGHT.map(|x| x as f32));
    }
    // With the avatar's mean: flat − mean.
    let l = load("hamer_frames.json", &with_mean(Some(Handedness::Right)));
    assert!(!l.warnings.iter().any(|w| w.contains("pose_mean")));
    for (f, p) in l.sequence.frames.iter().zip(&poses) {
        assert!(max_diff(&f.pose, &sub(p, &test_mean())) < 1e-5);
    }
    // Timestamps give the frame rate; labels are the frame indices.
    assert!((l.sequence.fps - 24.0).abs() < 1e-3, "{}", l.sequence.fps);
    assert_eq!(l.sequence.labels.as_deref().unwrap(), ["0", "1", "2", "3"]);
}

#[test]
fn hamer_left_hands_are_mano_left_and_mirror_the_right_geometry() {
    let poses = known_poses();
    let l = load("hamer_frames.json", &with_mean(Some(Handedness::Left)));
    // Left hands are in frames 1 and 3 only; the others are left out with a warning.
    assert_eq!(l.sequence.labels.as_deref().unwrap(), ["1", "3"]);
    assert!(
        l.warnings.iter().any(|w| w.contains("no left hand")),
        "{:?}",
        l.warnings
    );
    for (f, p) in l.sequence.frames.iter().zip([&poses[1], &poses[3]]) {
        assert_eq!(f.hand, Some(Handedness::Left));
        // MANO_LEFT convention: the mirror of HaMeR's right-hand rotations, minus the
        // mirrored (left) mean.
        let expect = sub(&mirror_pose(p), &mirror_pose(&test_mean()));
        assert!(max_diff(&f.pose, &expect) < 1e-5);
        // A right avatar un-mirrors it back to exactly HaMeR's rotations minus its mean.
        let drive = HandDrive::new(Handedness::Right, f.hand);
        assert!(drive.mirrored);
        assert!(max_diff(&drive.avatar_pose(&f.pose), &sub(p, &test_mean())) < 1e-5);
    }
    // Geometry: on a right avatar the left hand is the x-mirror of the right-hand mesh
    // HaMeR predicted, placed at its own translation (the demo's verts[:,0] *= -1).
    let avatar = common::test_avatar();
    let o = PoseLoadOptions {
        hand: Some(Handedness::Left),
        ..PoseLoadOptions::for_avatar(&avatar)
    };
    let left = load_poses(&fixture("hamer_left.json"), &o).unwrap();
    let o = PoseLoadOptions {
        hand: Some(Handedness::Right),
        ..PoseLoadOptions::for_avatar(&avatar)
    };
    let right = load_poses(&fixture("hamer_single.json"), &o).unwrap();
    let lf = &left.sequence.frames[0];
    let rf = &right.sequence.frames[0];
    let lg = avatar.evaluate(lf, 0).unwrap().geometry;
    let rg = avatar.evaluate(rf, 0).unwrap().geometry;
    assert_eq!(lg.avatar_pose, rg.avatar_pose);
    for (a, b) in lg.vertices.iter().zip(&rg.vertices) {
        let a = [a[0] - lf.trans[0], a[1] - lf.trans[1], a[2] - lf.trans[2]];
        let b = [b[0] - rf.trans[0], b[1] - rf.trans[1], b[2] - rf.trans[2]];
        assert!(
            (a[0] + b[0]).abs() < 1e-5 && (a[1] - b[1]).abs() < 1e-5,
            "{a:?} {b:?}"
        );
        assert!((a[2] - b[2]).abs() < 1e-5);
    }
}

#[test]
fn hamer_camera_is_opencv_at_the_image_centre() {
    let l = load("hamer_single.json", &opts());
    let cams = l.cameras.as_ref().expect("a camera");
    let c = cams[0].as_ref().unwrap();
    // demo.py: scaled_focal_length = 5000 / 256 · max(W, H).
    assert!((c.fx - 5000.0 / 256.0 * 640.0).abs() < 1e-9 && c.fx == c.fy);
    assert_eq!((c.cx, c.cy, c.width, c.height), (320.0, 240.0, 640, 480));
    assert_eq!(c.rotation, nalgebra::Matrix3::identity());
    assert_eq!(c.center, nalgebra::Vector3::zeros());
    // The hand sits at pred_cam_t_full, in front of the camera.
    let f = &l.sequence.frames[0];
    assert_eq!(f.trans, T_RIGHT.map(|x| x as f32));
    let uv = c.project(f.trans).unwrap();
    assert!((uv[0] - (320.0 + c.fx * 0.05 / 30.0)).abs() < 1e-6);
    // Per-image size with a batch dimension: 1280 x 720.
    let l = load(
        "hamer_image_two_hands.json",
        &PoseLoadOptions {
            hand: Some(Handedness::Left),
            ..opts()
        },
    );
    let c = l.cameras.unwrap()[0].clone().unwrap();
    assert_eq!((c.width, c.height, c.cx), (1280, 720, 640.0));
    assert!((c.fx - 25000.0).abs() < 1e-9);
    assert_eq!(l.sequence.frames[0].trans, T_LEFT.map(|x| x as f32));
    assert_eq!(l.sequence.labels.as_deref().unwrap(), ["images/hands.jpg"]);
}

#[test]
fn hamer_layouts_load() {
    let poses = known_poses();
    // {frame_name: [hands]}: natural order, empty frame left out for the right hand.
    let l = load(
        "hamer_video.json",
        &PoseLoadOptions {
            hand: Some(Handedness::Right),
            ..opts()
        },
    );
    assert_eq!(
        l.sequence.labels.as_deref().unwrap(),
        ["frame_1.jpg", "frame_2.jpg", "frame_10.jpg"]
    );
    for (f, p) in l
        .sequence
        .frames
        .iter()
        .zip([&poses[0], &poses[1], &poses[2]])
    {
        assert!(max_diff(&f.pose, p) < 1e-5);
    }
    assert!(
        l.warnings.iter().any(|w| w.contains("30 fps")),
        "{:?}",
        l.warnings
    );
    assert!(
        l.warnings.iter().any(|w| w.contains("frame_3.jpg")),
        "{:?}",
        l.warnings
    );
    // Flat axis-angle, three spellings; the left one mirrored.
    let l = load(
        "hamer_axis_angle.json",
        &PoseLoadOptions {
            hand: Some(Handedness::Right),
            ..opts()
        },
    );
    assert_eq!(l.sequence.len(), 2);
    assert_eq!(l.sequence.frames[0].pose, poses[1]);
    assert_eq!(l.sequence.frames[1].pose, poses[3]);
    assert_eq!(l.sequence.frames[0].trans, T_RIGHT.map(|x| x as f32));
    let cams = l.cameras.unwrap();
    assert!(cams[0].is_none(), "no image size, no camera");
    assert_eq!(cams[1].as_ref().unwrap().fx, 12500.0);
    let l = load(
        "hamer_axis_angle.json",
        &PoseLoadOptions {
            hand: Some(Handedness::Left),
            ..opts()
        },
    );
    assert_eq!(l.sequence.frames[0].pose, mirror_pose(&poses[0]));
    assert_eq!(l.sequence.frames[0].hand, Some(Handedness::Left));
    // One hand object alone: its hand is chosen without asking.
    let l = load("hamer_single.json", &opts());
    assert_eq!(l.sequence.len(), 1);
    assert!(max_diff(&l.sequence.frames[0].pose, &poses[0]) < 1e-5);
    let l = load("hamer_left.json", &opts());
    assert_eq!(l.sequence.frames[0].hand, Some(Handedness::Left));
}

#[test]
fn several_hands_need_a_choice() {
    let e = load_poses(&fixture("hamer_image_two_hands.json"), &opts()).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("hamer_image_two_hands.json") && s.contains("--hand"),
        "{s}"
    );
    assert!(
        s.contains("right in 1 frame") && s.contains("left in 1 frame"),
        "{s}"
    );
    let e = load_poses(
        &fixture("hamer_single.json"),
        &PoseLoadOptions {
            hand: Some(Handedness::Left),
            ..opts()
        },
    )
    .unwrap_err();
    assert!(e.problem.contains("no left hand"), "{e}");
}

#[test]
fn inspect_summarises_every_fixture() {
    let s = |n: &str| inspect_poses(&fixture(n)).unwrap_or_else(|e| panic!("{e}"));
    let both = vec![Handedness::Right, Handedness::Left];
    let check = |sum: PoseFileSummary, f: PoseFormat, hands: &[Handedness], frames: usize| {
        assert_eq!(
            (sum.format, sum.hands.as_slice(), sum.frames),
            (f, hands, frames)
        );
    };
    check(
        s("hamer_single.json"),
        PoseFormat::Hamer,
        &[Handedness::Right],
        1,
    );
    check(s("hamer_image_two_hands.json"), PoseFormat::Hamer, &both, 1);
    check(s("hamer_frames.json"), PoseFormat::Hamer, &both, 4);
    check(s("hamer_video.json"), PoseFormat::Hamer, &both, 4);
    check(s("hamer_axis_angle.json"), PoseFormat::Hamer, &both, 3);
    check(
        s("hamer_left.json"),
        PoseFormat::Hamer,
        &[Handedness::Left],
        1,
    );
    check(
        s("xhand_sequence.json"),
        PoseFormat::Xhand,
        &[Handedness::Left],
        2,
    );
    let ih = s("interhand.json");
    assert_eq!(ih.captures, ["2", "10"]);
    assert_eq!(ih.capture_frames, [4, 3]);
    check(ih, PoseFormat::InterHand, &both, 7);
}

// ---- InterHand -----------------------------------------------------------------------------

fn ih_pose(seed: u64) -> Vec<f32> {
    let mut rnd = lcg(seed);
    (0..48).map(|_| 0.5 * rnd()).collect()
}

#[test]
fn both_hands_are_matched_frame_by_frame() {
    use Handedness::{Left, Right};
    // InterHand capture 2: right in frames 1, 2, 10; left in 1, 10, 100.
    let path = fixture("interhand.json");
    let o = PoseLoadOptions {
        capture: Some("2".into()),
        ..opts()
    };
    let s = load_hands(&path, &o, &o).unwrap();
    assert_eq!(s.len(), 4);
    let labels: Vec<_> = (0..4).map(|i| s.label(i).unwrap()).collect();
    assert_eq!(labels, ["1", "2", "10", "100"]);
    let sides: Vec<Vec<Handedness>> = (0..4)
        .map(|i| s.hands_at(i).iter().map(|(h, _)| *h).collect())
        .collect();
    assert_eq!(
        sides,
        [
            vec![Right, Left],
            vec![Right],
            vec![Right, Left],
            vec![Left]
        ]
    );
    // Each hand's frames are its own sequence's, in order.
    let alone = |h| {
        load_poses(
            &path,
            &PoseLoadOptions {
                hand: Some(h),
                ..o.clone()
            },
        )
        .unwrap()
        .sequence
        .frames
    };
    let (right, left) = (alone(Right), alone(Left));
    assert_eq!(*s.hands_at(3)[0].1, left[2]);
    assert_eq!(*s.hands_at(2)[0].1, right[2]);
    assert_eq!(*s.hands_at(2)[1].1, left[1]);
    // A frame missing one hand shows the other: nothing was left out, so no warning.
    assert_eq!(
        s.warnings().count(),
        0,
        "{:?}",
        s.warnings().collect::<Vec<_>>()
    );
    // HaMeR: one image with both hands and the camera they share.
    let s = load_hands(
        &fixture("hamer_image_two_hands.json"),
        &with_mean(None),
        &with_mean(None),
    )
    .unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s.hands_at(0).len(), 2);
    assert!(s.camera(0).is_some());
    // Files with one hand a frame cannot pair hands.
    let e = load_hands(&fixture("xhand_sequence.json"), &opts(), &opts()).unwrap_err();
    assert!(e.problem.contains("one hand a frame"), "{e}");
}

#[test]
fn interhand_captures_hands_and_numeric_order() {
    let path = fixture("interhand.json");
    // Two captures: the error lists them, in numeric order, with frame counts.
    let e = load_poses(&path, &opts()).unwrap_err().to_string();
    assert!(
        e.contains("interhand.json") && e.contains("--capture"),
        "{e}"
    );
    assert!(e.contains("2 (4 frames), 10 (3 frames)"), "{e}");
    // Capture 2 holds both hands.
    let o = |c: &str, h: Option<Handedness>| PoseLoadOptions {
        capture: Some(c.into()),
        hand: h,
        ..opts()
    };
    let e = load_poses(&path, &o("2", None)).unwrap_err().to_string();
    assert!(e.contains("both hands") && e.contains("--hand"), "{e}");
    // Numeric frame order 1, 2, 10, 100; null hands left out with a warning.
    let l = load_poses(&path, &o("2", Some(Handedness::Left))).unwrap();
    assert_eq!(l.format, PoseFormat::InterHand);
    assert_eq!(l.sequence.labels.as_deref().unwrap(), ["1", "10", "100"]);
    assert!(
        l.warnings.iter().any(|w| w.contains("(frames 2)")),
        "{:?}",
        l.warnings
    );
    let seeds = [32, 12, 42];
    for (f, s) in l.sequence.frames.iter().zip(seeds) {
        // Verbatim: no mean subtraction, no mirroring, metres.
        assert_eq!(f.pose.to_vec(), ih_pose(s));
        assert_eq!(f.hand, Some(Handedness::Left));
        assert_eq!(f.trans, [0.01 * s as f32, 0.02, 0.9]);
    }
    let l = load_poses(&path, &o("2", Some(Handedness::Right))).unwrap();
    assert_eq!(l.sequence.labels.as_deref().unwrap(), ["1", "2", "10"]);
    // A pose_mean changes nothing: InterHand poses are mean-relative already.
    let with = load_poses(
        &path,
        &PoseLoadOptions {
            pose_mean: Some(test_mean()),
            ..o("2", Some(Handedness::Right))
        },
    )
    .unwrap();
    assert_eq!(with.sequence.frames, l.sequence.frames);
    // Capture 10 has only right hands: no choice needed; "010" names it too.
    let l = load_poses(&path, &o("010", None)).unwrap();
    assert_eq!(l.sequence.labels.as_deref().unwrap(), ["3", "4", "5"]);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert!(l.cameras.is_none());
    let e = load_poses(&path, &o("10", Some(Handedness::Left))).unwrap_err();
    assert!(e.problem.contains("no left hand"), "{e}");
    let e = load_poses(&path, &o("7", None)).unwrap_err().to_string();
    assert!(
        e.contains("no capture `7`") && e.contains("2 (4 frames)"),
        "{e}"
    );
    // --fps sets the rate.
    let l = load_poses(
        &path,
        &PoseLoadOptions {
            fps: Some(5.0),
            ..o("10", None)
        },
    )
    .unwrap();
    assert_eq!(l.sequence.fps, 5.0);
}

#[test]
fn xhand_files_still_load_through_every_entry_point() {
    let path = fixture("xhand_sequence.json");
    let seq = load_pose_file(&path).unwrap();
    assert_eq!((seq.len(), seq.fps), (2, 12.0));
    let l = load_poses(
        &path,
        &PoseLoadOptions {
            hand: Some(Handedness::Right),
            ..with_mean(None)
        },
    )
    .unwrap();
    assert_eq!(
        l.sequence, seq,
        "pose_mean does not touch mean-relative files"
    );
    assert!(l.warnings.iter().any(|w| w.contains("--hand")));
    // Forcing another format reads it as that format (and fails clearly).
    let e = load_poses(
        &path,
        &PoseLoadOptions {
            format: Some(PoseFormat::Hamer),
            ..opts()
        },
    )
    .unwrap_err();
    assert!(e.problem.contains("hand object"), "{e}");
    let e = load_poses(
        &path,
        &PoseLoadOptions {
            format: Some(PoseFormat::InterHand),
            ..opts()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("frames"), "{e}");
}

// ---- broken files ----------------------------------------------------------------------

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Loads `text` and returns the error, asserting it names the file and every needle.
fn rejects(dir: &Path, name: &str, text: &str, o: &PoseLoadOptions, needles: &[&str]) -> PoseError {
    let path = write(dir, name, text);
    let result = std::panic::catch_unwind(|| load_poses(&path, o));
    let e = match result {
        Err(_) => panic!("{name}: loading panicked"),
        Ok(Ok(_)) => panic!("{name}: a broken file was accepted"),
        Ok(Err(e)) => e,
    };
    let s = e.to_string();
    assert!(
        s.contains(name),
        "{name}: error does not name the file: {s}"
    );
    for n in needles {
        assert!(s.contains(n), "{name}: error lacks `{n}`: {s}");
    }
    // Inspecting must not panic either.
    let _ = std::panic::catch_unwind(|| inspect_poses(&path)).expect("inspect panicked");
    e
}

/// A per-frame HaMeR dump with one right hand whose `hand_pose` is replaced.
fn hamer_with(f: impl FnOnce(&mut Value)) -> String {
    let mut h = hamer_hand(&known_poses()[0], true, T_RIGHT, false);
    f(&mut h);
    serde_json::to_string_pretty(&json!([{"frame_index": 0, "hands": [h]}])).unwrap()
}

#[test]
fn broken_hamer_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = opts();
    let hp = "[0].hands[0].pred_mano_params.hand_pose";
    // Far from a rotation.
    rejects(
        d,
        "scaled.json",
        &hamer_with(|h| {
            let m = &mut h["pred_mano_params"]["hand_pose"][3];
            *m = json!([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        }),
        &o,
        &[&format!("{hp}[3]"), "not a rotation", "RᵀR"],
    );
    // A reflection.
    rejects(
        d,
        "reflection.json",
        &hamer_with(|h| {
            h["pred_mano_params"]["hand_pose"][5] =
                json!([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        }),
        &o,
        &[&format!("{hp}[5]"), "det", "reflection"],
    );
    // Wrong joint count and shapes.
    rejects(
        d,
        "fourteen.json",
        &hamer_with(|h| {
            h["pred_mano_params"]["hand_pose"]
                .as_array_mut()
                .unwrap()
                .pop();
        }),
        &o,
        &[hp, "15 rotation matrices", "[14, 3, 3]"],
    );
    rejects(
        d,
        "ragged.json",
        &hamer_with(|h| {
            h["pred_mano_params"]["hand_pose"][2][1] = json!([0.0, 1.0]);
        }),
        &o,
        &[&format!("{hp}[2][1]"), "ragged"],
    );
    rejects(
        d,
        "string.json",
        &hamer_with(|h| {
            h["pred_mano_params"]["hand_pose"][2][1][0] = json!("0.5");
        }),
        &o,
        &[&format!("{hp}[2][1][0]"), "a string"],
    );
    rejects(
        d,
        "huge.json",
        &hamer_with(|h| {
            h["pred_mano_params"]["global_orient"][0][0][0] = json!(1e300);
        }),
        &o,
        &["global_orient[0][0][0]", "out of range"],
    );
    rejects(
        d,
        "no-orient.json",
        &hamer_with(|h| {
            h["pred_mano_params"]
                .as_object_mut()
                .unwrap()
                .remove("global_orient");
        }),
        &o,
        &["pred_mano_params", "no `global_orient`"],
    );
    rejects(
        d,
        "no-pose.json",
        &hamer_with(|h| {
            h["pred_mano_params"]
                .as_object_mut()
                .unwrap()
                .remove("hand_pose");
        }),
        &o,
        &["no `hand_pose`"],
    );
    rejects(
        d,
        "batch-mismatch.json",
        &hamer_with(|h| {
            let g = h["pred_mano_params"]["global_orient"].clone();
            h["pred_mano_params"]["global_orient"] = json!([g.clone(), g]);
        }),
        &o,
        &["global_orient", "holds 2 hands"],
    );
    rejects(
        d,
        "is-right.json",
        &hamer_with(|h| h["is_right"] = json!(2)),
        &o,
        &["[0].hands[0].is_right", "1 (right) or 0 (left)"],
    );
    rejects(
        d,
        "hand-type.json",
        &hamer_with(|h| {
            h.as_object_mut().unwrap().remove("is_right");
            h["hand_type"] = json!("both");
        }),
        &o,
        &["hand_type", "\"right\" or \"left\""],
    );
    rejects(
        d,
        "cam-t.json",
        &hamer_with(|h| h["pred_cam_t_full"] = json!([1.0, 2.0])),
        &o,
        &["pred_cam_t_full", "expected 3 numbers"],
    );
    rejects(
        d,
        "img-size.json",
        &hamer_with(|h| h["img_size"] = json!([0, 480])),
        &o,
        &["img_size", "out of range"],
    );
    rejects(
        d,
        "params-list.json",
        &hamer_with(|h| h["pred_mano_params"] = json!([1, 2])),
        &o,
        &["pred_mano_params", "found a list"],
    );
    // NaN / Infinity as Python's json.dump writes them are not JSON.
    let nan = hamer_with(|_| {}).replacen("0.01", "NaN", 1);
    rejects(d, "nan.json", &nan, &o, &["malformed JSON", ":"]);
    rejects(d, "empty-list.json", "[]", &o, &["empty"]);
    rejects(
        d,
        "no-hands.json",
        r#"[{"frame_index": 0, "hands": []}]"#,
        &o,
        &["no hands"],
    );
    rejects(
        d,
        "mixed.json",
        &format!(
            "[{}, 3]",
            serde_json::to_string(&hamer_hand(&known_poses()[0], true, T_RIGHT, false)).unwrap()
        ),
        &o,
        &["[1]", "expected a hand object", "a number"],
    );
    rejects(
        d,
        "unknown.json",
        r#"{"poses": [1, 2]}"#,
        &o,
        &["not a pose file"],
    );
    rejects(
        d,
        "numbers.json",
        "[1, 2, 3]",
        &o,
        &["not a pose file", "a list"],
    );
    // A nearly orthonormal matrix is repaired with a warning, not refused.
    let path = write(
        d,
        "noisy.json",
        &hamer_with(|h| {
            let m = &mut h["pred_mano_params"]["hand_pose"][0][0][0];
            *m = json!(m.as_f64().unwrap() + 0.01);
        }),
    );
    let l = load_poses(&path, &o).unwrap();
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("nearest rotation") && w.contains("hand_pose[0]")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn broken_interhand_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = PoseLoadOptions {
        hand: Some(Handedness::Right),
        ..opts()
    };
    let forced = PoseLoadOptions {
        format: Some(PoseFormat::InterHand),
        ..o.clone()
    };
    let doc = |right: Value| {
        serde_json::to_string_pretty(&json!({"0": {"7": {"right": right, "left": null}}})).unwrap()
    };
    let mut short = ih_hand(1);
    short["pose"].as_array_mut().unwrap().pop();
    let e = rejects(
        d,
        "short.json",
        &doc(short),
        &o,
        &["[\"0\"][\"7\"].right.pose", "expected 48 numbers, found 47"],
    );
    assert!(
        e.line_col.is_some(),
        "streamed errors carry line and column"
    );
    let mut s = ih_hand(1);
    s["pose"][3] = json!("x");
    rejects(
        d,
        "string.json",
        &doc(s),
        &o,
        &["right.pose[3]", "a string"],
    );
    let mut big = ih_hand(1);
    big["trans"][1] = json!(1e200);
    rejects(
        d,
        "huge.json",
        &doc(big),
        &o,
        &["right.trans[1]", "out of range"],
    );
    let mut no_pose = ih_hand(1);
    no_pose.as_object_mut().unwrap().remove("pose");
    rejects(
        d,
        "no-pose.json",
        &doc(no_pose),
        &o,
        &["right", "no `pose`"],
    );
    rejects(
        d,
        "hand-number.json",
        &doc(json!(5)),
        &o,
        &["right", "expected a hand object"],
    );
    rejects(
        d,
        "pose-object.json",
        &doc(json!({"pose": {"a": 1}})),
        &o,
        &["right.pose", "list of 48 numbers"],
    );
    rejects(
        d,
        "capture-list.json",
        r#"{"0": [1, 2]}"#,
        &forced,
        &["[\"0\"]", "object of frames"],
    );
    rejects(
        d,
        "top-list.json",
        "[1, 2]",
        &forced,
        &["object of captures", "found a list"],
    );
    rejects(d, "no-captures.json", "{}", &forced, &["no captures"]);
    let text = doc(ih_hand(1));
    rejects(
        d,
        "truncated.json",
        &text[..text.len() / 2],
        &o,
        &["malformed JSON"],
    );
    rejects(
        d,
        "nan.json",
        &text.replacen("0.02", "NaN", 1),
        &o,
        &["malformed JSON"],
    );
    rejects(
        d,
        "trailing.json",
        &format!("{text} {{}}"),
        &forced,
        &["malformed JSON", "trailing"],
    );
    rejects(
        d,
        "no-left.json",
        &text,
        &PoseLoadOptions {
            hand: Some(Handedness::Left),
            ..opts()
        },
        &["no left hand"],
    );
    rejects(
        d,
        "all-null.json",
        &doc(Value::Null),
        &PoseLoadOptions::default(),
        &["no right hand"],
    );
    // Above 2 GiB: refused before reading (sparse file, no disk used).
    let huge = d.join("huge-interhand.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(2_200_000_000)
        .unwrap();
    let e = load_poses(&huge, &forced).unwrap_err().to_string();
    assert!(
        e.contains("huge-interhand.json") && e.contains("2.2 GB"),
        "{e}"
    );
    // Undetected, the same file is not InterHand-shaped and meets the text-file cap.
    let e = load_poses(&huge, &o).unwrap_err().to_string();
    assert!(e.contains("MB"), "{e}");
}

#[test]
fn interhand_streaming_handles_a_larger_file() {
    // A few thousand frames over several captures: the chosen capture alone is kept.
    let dir = tempfile::tempdir().unwrap();
    let mut s = String::from("{");
    for c in 0..3 {
        if c > 0 {
            s.push(',');
        }
        s.push_str(&format!("\"{c}\": {{"));
        for f in 0..1500 {
            if f > 0 {
                s.push(',');
            }
            let pose = vec![format!("{}", (f % 7) as f32 * 0.01); 48].join(",");
            s.push_str(&format!(
                "\"{f}\": {{\"right\": {{\"pose\": [{pose}], \"shape\": [0,0,0,0,0,0,0,0,0,0], \
                 \"trans\": [0,0,{c}]}}, \"left\": null}}"
            ));
        }
        s.push('}');
    }
    s.push('}');
    let path = write(dir.path(), "many.json", &s);
    let sum = inspect_poses(&path).unwrap();
    assert_eq!((sum.captures.len(), sum.frames), (3, 4500));
    let l = load_poses(
        &path,
        &PoseLoadOptions {
            capture: Some("1".into()),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(l.sequence.len(), 1500);
    assert_eq!(l.sequence.frames[1499].trans, [0.0, 0.0, 1.0]);
    assert_eq!(l.sequence.labels.as_ref().unwrap()[1499], "1499");
    assert!((l.sequence.frames[13].pose[0] - 0.06).abs() < 1e-7);
}

#[test]
fn xhand_frames_with_every_key_are_not_taken_for_hamer() {
    // `hand` and `sh` next to `pose` (as the oracle's poses have them) stay the xhand format.
    let dir = tempfile::tempdir().unwrap();
    let z = vec!["0"; 48].join(",");
    let sh = vec!["0.1"; 27].join(",");
    let p = write(
        dir.path(),
        "full.json",
        &format!(
            "{{\"pose\": [{z}], \"trans\": [0,0,1], \"scale\": 1.0, \"sh\": [{sh}], \"hand\": \"left\"}}"
        ),
    );
    let l = load_poses(&p, &opts()).unwrap();
    assert_eq!(l.format, PoseFormat::Xhand);
    assert_eq!(l.sequence.frames[0].hand, Some(Handedness::Left));
    assert!(l.sequence.frames[0].sh.is_some());
    assert_eq!(inspect_poses(&p).unwrap().format, PoseFormat::Xhand);
}
