//! The `xhand` command line end to end on a generated test avatar.

mod common;

use std::path::Path;
use std::process::Command;

use xhand::avatar::TensorFile;
use xhand::synthetic::SyntheticSpec;

fn xhand(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xhand"))
        .args(args)
        .output()
        .expect("run xhand");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn setup(dir: &Path) -> (String, String) {
    let avatar = dir.join("avatar.safetensors");
    SyntheticSpec::test_avatar().build().save(&avatar).unwrap();
    let pose = dir.join("seq.json");
    let mut p = [0.0f32; 48];
    p[14] = 0.8;
    let frame = |s: f32| {
        format!(
            "{{\"pose\":{:?}, \"trans\":[0.01,0,0]}}",
            p.iter().map(|x| x * s).collect::<Vec<_>>()
        )
    };
    std::fs::write(
        &pose,
        format!(
            "{{\"fps\": 10, \"frames\": [{}, {}, {}]}}",
            frame(0.0),
            frame(0.5),
            frame(1.0)
        ),
    )
    .unwrap();
    (avatar.display().to_string(), pose.display().to_string())
}

#[test]
fn info_validates_and_summarises() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, _) = setup(dir.path());
    let (ok, text) = xhand(&["info", &avatar]);
    assert!(ok, "{text}");
    for needle in [
        "valid XHand avatar",
        "vertices",
        "delta_net",
        "renderer:",
        "SH views:",
        "parameters:",
        "dtype:       F32",
        "hand:        right",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"not an avatar").unwrap();
    let (ok, text) = xhand(&["info", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(text.contains("bad.safetensors"), "{text}");
}

#[test]
fn eval_writes_all_outputs_matching_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, pose) = setup(dir.path());
    let out = dir.path().join("eval.safetensors");
    let (ok, text) = xhand(&[
        "eval",
        "--avatar",
        &avatar,
        "--pose",
        &pose,
        "--frame",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let f = TensorFile::open(&out).unwrap();
    let a = xhand::avatar::Avatar::load(Path::new(&avatar), &candle_core::Device::Cpu).unwrap();
    let frame = xhand::pose::load_pose_file(Path::new(&pose))
        .unwrap()
        .frames[2]
        .clone();
    let posed = a.evaluate(&frame, 0).unwrap();
    let v = a.num_vertices();
    for (name, width) in [
        ("delta", 3),
        ("code_delta", 10),
        ("albedo", 3),
        ("code_albedo", 10),
        ("lbs_weights", 16),
        ("vertices", 3),
        ("normals", 3),
        ("sh_color", 3),
    ] {
        let t = f
            .floats(name, &[Some(v), Some(width)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(t.data.iter().all(|x| x.is_finite()));
        if name == "vertices" {
            common::assert_close(
                "eval vertices",
                &t.data,
                &common::flat3(&posed.geometry.vertices),
                0.0,
            );
        }
    }
}

/// `--tf32` is candle-on-CUDA only: elsewhere it is refused by name, nothing written.
#[test]
fn tf32_is_refused_where_the_networks_are_not_on_cuda() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, pose) = setup(dir.path());
    let out = dir.path().join("eval.safetensors");
    for nets in ["cpu", "auto"] {
        let (ok, text) = xhand(&[
            "eval",
            "--nets",
            nets,
            "--tf32",
            "--avatar",
            &avatar,
            "--pose",
            &pose,
            "--out",
            out.to_str().unwrap(),
        ]);
        if nets == "auto" && candle_core::utils::cuda_is_available() {
            continue;
        }
        assert!(!ok, "--nets {nets} --tf32 was accepted: {text}");
        assert!(text.contains("--tf32 applies to candle on CUDA"), "{text}");
        assert!(!out.exists());
    }
}

#[test]
fn render_single_all_frames_and_modes() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, pose) = setup(dir.path());
    let png = dir.path().join("f.png");
    let (ok, text) = xhand(&[
        "render",
        "--avatar",
        &avatar,
        "--pose",
        &pose,
        "--frame",
        "1",
        "--mode",
        "sh",
        "--width",
        "64",
        "--height",
        "96",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let img = xhand::image_io::Rgba8::load(&png).unwrap();
    assert_eq!((img.width, img.height), (64, 96));
    let frames = dir.path().join("frames");
    let (ok, text) = xhand(&[
        "render",
        "--avatar",
        &avatar,
        "--pose",
        &pose,
        "--all",
        "--width",
        "48",
        "--height",
        "64",
        "--out",
        frames.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let mut names: Vec<String> = std::fs::read_dir(&frames)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["0000.png", "0001.png", "0002.png"]);
    let a = xhand::image_io::Rgba8::load(&frames.join("0000.png")).unwrap();
    let c = xhand::image_io::Rgba8::load(&frames.join("0002.png")).unwrap();
    assert_ne!(a, c, "a bending finger must change the image");
    let (ok, text) = xhand(&[
        "render",
        "--avatar",
        &avatar,
        "--frame",
        "9",
        "--pose",
        &pose,
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("frame 9 does not exist"), "{text}");
}

#[test]
fn export_mesh_writes_obj_and_ply() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, pose) = setup(dir.path());
    let a = xhand::avatar::Avatar::load(Path::new(&avatar), &candle_core::Device::Cpu).unwrap();
    let obj = dir.path().join("m.obj");
    let (ok, text) = xhand(&[
        "export-mesh",
        "--avatar",
        &avatar,
        "--pose",
        &pose,
        "--out",
        obj.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let s = std::fs::read_to_string(&obj).unwrap();
    assert_eq!(
        s.lines().filter(|l| l.starts_with("v ")).count(),
        a.num_vertices()
    );
    assert_eq!(
        s.lines().filter(|l| l.starts_with("f ")).count(),
        a.num_faces()
    );
    let first_v: Vec<f32> = s
        .lines()
        .find(|l| l.starts_with("v "))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(first_v.len(), 6, "position and colour");
    let ply = dir.path().join("m.ply");
    let (ok, text) = xhand(&[
        "export-mesh",
        "--avatar",
        &avatar,
        "--sh",
        "--out",
        ply.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let b = std::fs::read(&ply).unwrap();
    let header_end = b.windows(11).position(|w| w == b"end_header\n").unwrap() + 11;
    assert_eq!(
        b.len() - header_end,
        a.num_vertices() * 15 + a.num_faces() * 13
    );
    let (ok, text) = xhand(&[
        "export-mesh",
        "--avatar",
        &avatar,
        "--out",
        dir.path().join("m.stl").to_str().unwrap(),
    ]);
    assert!(!ok && text.contains(".obj or .ply"), "{text}");
    // Both hands of an image in one mesh: twice the vertices and faces, the second hand's
    // faces indexing its own vertices; --hand right keeps one.
    let two = common::fixture("poses/hamer_image_two_hands.json");
    let count = |extra: &[&str]| {
        let mut args = vec!["export-mesh", "--avatar", &avatar, "--pose"];
        let two = two.display().to_string();
        args.push(&two);
        args.extend_from_slice(&["--out", obj.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let (ok, text) = xhand(&args);
        assert!(ok, "{text}");
        let s = std::fs::read_to_string(&obj).unwrap();
        let v = s.lines().filter(|l| l.starts_with("v ")).count();
        let top = (s.lines().filter(|l| l.starts_with("f ")))
            .flat_map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .map(|i| i.parse::<usize>().unwrap())
            })
            .max()
            .unwrap();
        (v, s.lines().filter(|l| l.starts_with("f ")).count(), top)
    };
    let (nv, nf) = (a.num_vertices(), a.num_faces());
    assert_eq!(count(&[]), (2 * nv, 2 * nf, 2 * nv), "both hands");
    assert_eq!(count(&["--hand", "right"]), (nv, nf, nv), "the right hand");
}

#[test]
fn bench_reports_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, _) = setup(dir.path());
    let (ok, text) = xhand(&["bench", "--avatar", &avatar, "--runs", "1", "--json"]);
    assert!(ok, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let stages: Vec<&str> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    for s in [
        "delta_net",
        "color_net",
        "lbs_net",
        "kinematics",
        "skinning",
        "normals",
        "raster",
    ] {
        assert!(stages.contains(&s), "missing stage {s}: {stages:?}");
    }
    assert!(v["gemm_gflops"].as_f64().unwrap() > 0.0);
}

#[test]
fn help_is_available_everywhere() {
    for sub in [
        "info",
        "eval",
        "render",
        "export-mesh",
        "convert-poses",
        "bench",
        "make-test-avatar",
        "bake-default",
    ] {
        let (ok, text) = xhand(&[sub, "--help"]);
        assert!(ok && text.contains("Usage"), "{sub}: {text}");
    }
}

/// Pixels that are not background black.
fn lit_pixels(path: &Path) -> usize {
    let img = xhand::image_io::Rgba8::load(path).unwrap();
    img.pixels
        .iter()
        .filter(|p| p[0] > 0 || p[1] > 0 || p[2] > 0)
        .count()
}

fn pose_fixture(name: &str) -> String {
    common::fixture(&format!("poses/{name}"))
        .display()
        .to_string()
}

#[test]
fn render_hamer_and_interhand_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, _) = setup(dir.path());
    let png = dir.path().join("m.png");
    let out = png.to_str().unwrap();
    let size = ["--width", "64", "--height", "64", "--mode", "mask"];
    let run = |extra: &[&str]| {
        let mut args = vec!["render", "--avatar", &avatar, "--out", out];
        args.extend_from_slice(&size);
        args.extend_from_slice(extra);
        xhand(&args)
    };
    // HaMeR, an image with both hands: the left one, shown mirrored on the right avatar.
    let two = pose_fixture("hamer_image_two_hands.json");
    let (ok, text) = run(&["--pose", &two, "--hand", "left"]);
    assert!(ok, "{text}");
    assert!(text.contains("mirrored"), "{text}");
    assert!(lit_pixels(&png) > 20, "the hand is visible");
    // Other commands show one hand: a file with both asks which.
    let (ok, text) = xhand(&["eval", "--avatar", &avatar, "--pose", &two, "--out", out]);
    assert!(
        !ok && text.contains("--hand right or --hand left"),
        "{text}"
    );
    let (ok, text) = xhand(&[
        "eval", "--avatar", &avatar, "--pose", &two, "--hand", "both", "--out", out,
    ]);
    assert!(
        !ok && text.contains("`xhand render` shows both hands"),
        "{text}"
    );
    // HaMeR's own camera (pred_cam_t_full, focal from the image size).
    let (ok, text) = run(&[
        "--pose",
        &pose_fixture("hamer_single.json"),
        "--pose-camera",
    ]);
    assert!(ok, "{text}");
    assert!(lit_pixels(&png) > 4, "the hand is in HaMeR's view");
    let img = xhand::image_io::Rgba8::load(&png).unwrap();
    assert_eq!(
        (img.width, img.height),
        (64, 48),
        "the camera's 640x480 aspect"
    );
    // A sequence with per-frame records, forced format, last frame.
    let (ok, text) = run(&[
        "--pose",
        &pose_fixture("hamer_frames.json"),
        "--format",
        "hamer",
        "--hand",
        "right",
        "--frame",
        "3",
    ]);
    assert!(ok, "{text}");
    // InterHand: capture and hand chosen, frame 2 in numeric order (frame id 10).
    let ih = pose_fixture("interhand.json");
    let (ok, text) = run(&[
        "--pose",
        &ih,
        "--capture",
        "2",
        "--hand",
        "right",
        "--frame",
        "2",
    ]);
    assert!(ok, "{text}");
    assert!(lit_pixels(&png) > 20);
    let (ok, text) = run(&["--pose", &ih]);
    assert!(
        !ok && text.contains("interhand.json") && text.contains("2 (4 frames), 10 (3 frames)"),
        "{text}"
    );
    let (ok, text) = run(&[
        "--pose",
        &ih,
        "--capture",
        "2",
        "--hand",
        "left",
        "--frame",
        "3",
    ]);
    assert!(!ok && text.contains("frame 3 does not exist"), "{text}");
    // --pose-camera without a camera in the file.
    let (ok, text) = run(&["--pose", &ih, "--capture", "10", "--pose-camera"]);
    assert!(!ok && text.contains("no camera"), "{text}");
}

/// The RGBA pixels of a PNG.
fn pixels(path: &Path) -> Vec<[u8; 4]> {
    xhand::image_io::Rgba8::load(path).unwrap().pixels
}

#[test]
fn both_hands_render_together_each_with_its_avatar() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, _) = setup(dir.path());
    let other = dir.path().join("other.safetensors");
    SyntheticSpec {
        seed: 99, // the test avatar's is 7
        ..SyntheticSpec::test_avatar()
    }
    .build()
    .save(&other)
    .unwrap();
    let two = pose_fixture("hamer_image_two_hands.json");
    let render = |name: &str, extra: &[&str]| {
        let png = dir.path().join(name);
        let mut args = vec![
            "render",
            "--avatar",
            &avatar,
            "--pose",
            &two,
            "--pose-camera",
        ];
        args.extend_from_slice(&["--width", "128", "--height", "128", "--out"]);
        let out = png.display().to_string();
        args.push(&out);
        args.extend_from_slice(extra);
        let (ok, text) = xhand(&args);
        assert!(ok, "{extra:?}: {text}");
        (png, text)
    };
    // The image's two hands, one camera: both (the default for a file with both) covers
    // exactly what each covers alone (they do not overlap in this image).
    let (both, text) = render("both.png", &["--mode", "mask"]);
    assert!(
        text.contains("left hand; the right avatar shows it mirrored"),
        "{text}"
    );
    let (right, _) = render("right.png", &["--mode", "mask", "--hand", "right"]);
    let (left, _) = render("left.png", &["--mode", "mask", "--hand", "left"]);
    let (nb, nr, nl) = (lit_pixels(&both), lit_pixels(&right), lit_pixels(&left));
    assert!(nr > 20 && nl > 20, "each hand is in view: {nr}, {nl}");
    assert_eq!(nb, nr + nl, "both = right + left");
    let (explicit, _) = render("explicit.png", &["--mode", "mask", "--hand", "both"]);
    assert_eq!(pixels(&explicit), pixels(&both));
    // --left-avatar shows the left hand with another avatar: the right hand's pixels stay,
    // the left hand's change.
    let (same, _) = render("albedo.png", &["--mode", "albedo"]);
    let other = other.display().to_string();
    let (changed, _) = render(
        "albedo_left.png",
        &["--mode", "albedo", "--left-avatar", &other],
    );
    let right_mask = pixels(&right);
    let (same, changed) = (pixels(&same), pixels(&changed));
    let mut left_differs = 0;
    for i in 0..same.len() {
        if right_mask[i][0] > 0 {
            assert_eq!(same[i], changed[i], "pixel {i} of the right hand");
        } else if same[i] != changed[i] {
            left_differs += 1;
        }
    }
    assert!(
        left_differs > 10,
        "the left hand's avatar changed {left_differs} pixels"
    );
}

#[test]
fn eval_and_export_accept_every_pose_format() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, _) = setup(dir.path());
    let a = xhand::avatar::Avatar::load(Path::new(&avatar), &candle_core::Device::Cpu).unwrap();
    let out = dir.path().join("e.safetensors");
    let (ok, text) = xhand(&[
        "eval",
        "--avatar",
        &avatar,
        "--pose",
        &pose_fixture("hamer_frames.json"),
        "--hand",
        "left",
        "--frame",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    // Same as the library with the avatar's pose_mean.
    let opts = xhand::pose::PoseLoadOptions {
        hand: Some(xhand::hand::Handedness::Left),
        ..xhand::pose::PoseLoadOptions::for_avatar(&a)
    };
    let loaded =
        xhand::pose::load_poses(&common::fixture("poses/hamer_frames.json"), &opts).unwrap();
    let posed = a.evaluate(&loaded.sequence.frames[1], 0).unwrap();
    let f = TensorFile::open(&out).unwrap();
    let t = f
        .floats("vertices", &[Some(a.num_vertices()), Some(3)])
        .unwrap();
    common::assert_close(
        "eval vertices",
        &t.data,
        &common::flat3(&posed.geometry.vertices),
        0.0,
    );
    let obj = dir.path().join("m.obj");
    let (ok, text) = xhand(&[
        "export-mesh",
        "--avatar",
        &avatar,
        "--pose",
        &pose_fixture("interhand.json"),
        "--capture",
        "10",
        "--out",
        obj.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let (ok, text) = xhand(&[
        "export-mesh",
        "--avatar",
        &avatar,
        "--capture",
        "10",
        "--out",
        obj.to_str().unwrap(),
    ]);
    assert!(
        !ok && text.contains("--pose"),
        "--capture needs --pose: {text}"
    );
}

#[test]
fn without_avatar_commands_use_the_default_hand_and_presets_pose_it() {
    let (ok, text) = xhand(&["info"]);
    assert!(ok, "{text}");
    assert!(text.contains("xhand default hand"), "{text}");
    assert!(
        text.contains("not a capture of a real person"),
        "info must say what the default avatar is:\n{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open.png");
    let fist = dir.path().join("fist.png");
    for (preset, out) in [("open", &open), ("fist", &fist)] {
        let (ok, text) = xhand(&[
            "render",
            "--preset",
            preset,
            "--mode",
            "mask",
            "--width",
            "160",
            "--height",
            "240",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(ok, "{text}");
    }
    // Two different silhouettes.
    let (a, b) = (
        xhand::image_io::Rgba8::load(&open).unwrap(),
        xhand::image_io::Rgba8::load(&fist).unwrap(),
    );
    let differ = a
        .pixels
        .iter()
        .zip(&b.pixels)
        .filter(|(x, y)| x != y)
        .count();
    assert!(lit_pixels(&open) > 0 && lit_pixels(&fist) > 0);
    assert!(
        differ > a.pixels.len() / 20,
        "open and fist masks nearly equal"
    );
    let (ok, text) = xhand(&["render", "--preset", "nonsense", "--out", "x.png"]);
    assert!(!ok && text.contains("nonsense"), "{text}");
}

#[test]
fn impossible_images_and_cameras_are_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, pose) = setup(dir.path());
    let out = dir.path().join("big.png");
    let (ok, text) = xhand(&[
        "render",
        "--avatar",
        &avatar,
        "--pose",
        &pose,
        "--mode",
        "neural",
        "--width",
        "16384",
        "--height",
        "16384",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !ok && text.contains("16384x16384") && text.contains("MiB"),
        "{text}"
    );
    let camera = |focal: f64, r00: f64| {
        serde_json::json!({
            "campos": [0.0, 0.0, -500.0],
            "camrot": [[r00, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            "focal": [focal, focal],
            "princpt": [128.0, 128.0]
        })
        .to_string()
    };
    for (text_in, want) in [
        (camera(-100.0, 1.0), "focal"),
        (camera(500.0, 2.0), "not a rotation"),
    ] {
        let cam = dir.path().join("cam.json");
        std::fs::write(&cam, text_in).unwrap();
        let (ok, text) = xhand(&[
            "render",
            "--avatar",
            &avatar,
            "--pose",
            &pose,
            "--camera",
            cam.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            !ok && text.contains("cam.json") && text.contains(want),
            "{text}"
        );
    }
    let good = dir.path().join("good.json");
    std::fs::write(&good, camera(500.0, 1.0)).unwrap();
    let (ok, text) = xhand(&[
        "render",
        "--avatar",
        &avatar,
        "--pose",
        &pose,
        "--camera",
        good.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
}

#[test]
fn convert_poses_round_trips_through_npz_and_refuses_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, pose) = setup(dir.path());
    let npz = dir.path().join("out").join("seq.npz");
    let back = dir.path().join("back.json");
    let (ok, text) = xhand(&[
        "convert-poses",
        &pose,
        "--to",
        "npz",
        "--out",
        npz.to_str().unwrap(),
        "--avatar",
        &avatar,
    ]);
    assert!(ok && text.contains("3 frame(s)"), "{text}");
    assert_eq!(
        &std::fs::read(&npz).unwrap()[..4],
        b"PK\x03\x04",
        "a zip (.npz)"
    );
    let (ok, text) = xhand(&[
        "convert-poses",
        npz.to_str().unwrap(),
        "--to",
        "xhand",
        "--out",
        back.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let a = xhand::pose::load_pose_file(Path::new(&pose)).unwrap();
    let b = xhand::pose::load_pose_file(&back).unwrap();
    assert_eq!(a.fps, b.fps);
    assert_eq!(a.frames.len(), b.frames.len());
    for (x, y) in a.frames.iter().zip(&b.frames) {
        let worst = x
            .pose
            .iter()
            .zip(&y.pose)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max);
        assert!(
            worst <= 1e-5 && x.trans == y.trans && x.scale == y.scale,
            "{x:?} vs {y:?}"
        );
    }
    // Through a HaMeR-style dump and back (flat-hand matrices, the avatar's mean added back).
    let dump = dir.path().join("seq.hamer.json");
    let back2 = dir.path().join("back2.json");
    for (input, to, out) in [
        (pose.as_str(), "hamer", dump.to_str().unwrap()),
        (dump.to_str().unwrap(), "xhand", back2.to_str().unwrap()),
    ] {
        let (ok, text) = xhand(&[
            "convert-poses",
            input,
            "--to",
            to,
            "--out",
            out,
            "--avatar",
            &avatar,
        ]);
        assert!(ok, "{text}");
    }
    let c = xhand::pose::load_pose_file(&back2).unwrap();
    for (x, y) in a.frames.iter().zip(&c.frames) {
        let worst = x
            .pose
            .iter()
            .zip(&y.pose)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max);
        assert!(
            worst <= 1e-5 && x.trans == y.trans,
            "hamer round trip: {worst}"
        );
    }
    assert!((c.fps - a.fps).abs() < 1e-3);
    // A HaMeR dump converts too (cameras are left out, with a note).
    let hamer = common::fixture("poses/hamer_single.json");
    let out = dir.path().join("hamer.json");
    let (ok, text) = xhand(&[
        "convert-poses",
        hamer.to_str().unwrap(),
        "--to",
        "xhand",
        "--out",
        out.to_str().unwrap(),
        "--avatar",
        &avatar,
    ]);
    assert!(ok && text.contains("cameras"), "{text}");
    // A truncated .npz names the file and the problem.
    let bytes = std::fs::read(&npz).unwrap();
    let bad = dir.path().join("bad.npz");
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    let (ok, text) = xhand(&[
        "convert-poses",
        bad.to_str().unwrap(),
        "--to",
        "xhand",
        "--out",
        back.to_str().unwrap(),
    ]);
    assert!(
        !ok && text.contains("bad.npz") && text.contains("corrupt"),
        "{text}"
    );
}

#[test]
fn a_constant_environment_renders_like_the_equivalent_constant_sh() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, _) = setup(dir.path());
    // A uniform sky of radiance (0.6, 0.8, 1.0) …
    let sky = [0.6f32, 0.8, 1.0];
    let pixels: Vec<image::Rgb<f32>> = (0..64 * 32).map(|_| image::Rgb(sky)).collect();
    let mut bytes = Vec::new();
    image::codecs::hdr::HdrEncoder::new(&mut bytes)
        .encode(&pixels, 64, 32)
        .unwrap();
    let env = dir.path().join("sky.hdr");
    std::fs::write(&env, &bytes).unwrap();
    // … and the SH vector that lights every normal with exactly that (DC only, 0.8 out).
    let mut sh = vec![0.0f32; 27];
    for ch in 0..3 {
        sh[ch * 9] = sky[ch] / xhand::shading::SH_C0 - xhand::shading::SH_AMBIENT;
    }
    let pose = dir.path().join("lit.json");
    std::fs::write(
        &pose,
        serde_json::json!({"pose": vec![0.0; 48], "sh": sh}).to_string(),
    )
    .unwrap();
    let (a, b) = (dir.path().join("env.png"), dir.path().join("sh.png"));
    for (extra, out) in [
        (
            vec!["--env", env.to_str().unwrap(), "--env-rotation", "90"],
            &a,
        ),
        (vec!["--pose", pose.to_str().unwrap()], &b),
    ] {
        let mut args = vec![
            "render",
            "--avatar",
            &avatar,
            "--mode",
            "sh",
            "--width",
            "96",
            "--height",
            "128",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let (ok, text) = xhand(&args);
        assert!(ok, "{text}");
    }
    let (a, b) = (
        xhand::image_io::Rgba8::load(&a).unwrap(),
        xhand::image_io::Rgba8::load(&b).unwrap(),
    );
    let worst = a
        .pixels
        .iter()
        .zip(&b.pixels)
        .flat_map(|(p, q)| (0..3).map(move |k| p[k].abs_diff(q[k])))
        .max()
        .unwrap();
    assert!(
        worst <= 2,
        "environment and SH images differ by {worst} levels"
    );
    assert!(a.pixels.iter().any(|p| p[0] > 20), "the hand is lit");
}

#[test]
fn the_avatar_lands_on_the_source_image_where_the_camera_puts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, _) = setup(dir.path());
    let pose = common::fixture("poses/hamer_single.json"); // a 640x480 HaMeR camera
    let bg = dir.path().join("frame.png");
    let mut img = image::RgbaImage::new(640, 480);
    for (x, y, p) in img.enumerate_pixels_mut() {
        *p = image::Rgba([(x % 256) as u8, (y % 256) as u8, 77, 255]);
    }
    img.save(&bg).unwrap();
    let (over, mask) = (dir.path().join("over.png"), dir.path().join("mask.png"));
    let common_args = [
        "--avatar",
        &avatar,
        "--pose",
        pose.to_str().unwrap(),
        "--pose-camera",
    ];
    let mut a: Vec<&str> = vec!["render"];
    a.extend(common_args);
    a.extend([
        "--mode",
        "sh",
        "--background-image",
        bg.to_str().unwrap(),
        "--out",
    ]);
    a.push(over.to_str().unwrap());
    let (ok, text) = xhand(&a);
    assert!(ok, "{text}");
    let mut b: Vec<&str> = vec!["render"];
    b.extend(common_args);
    b.extend([
        "--mode", "mask", "--width", "640", "--height", "480", "--out",
    ]);
    b.push(mask.to_str().unwrap());
    let (ok, text) = xhand(&b);
    assert!(ok, "{text}");
    let (over, mask, bg) = (
        xhand::image_io::Rgba8::load(&over).unwrap(),
        xhand::image_io::Rgba8::load(&mask).unwrap(),
        xhand::image_io::Rgba8::load(&bg).unwrap(),
    );
    assert_eq!(
        (over.width, over.height),
        (640, 480),
        "the source image's size"
    );
    let hand: Vec<bool> = mask.pixels.iter().map(|p| p[0] > 127).collect();
    let covered = hand.iter().filter(|&&h| h).count();
    assert!(covered > 200, "the hand is in view ({covered} px)");
    for (i, &h) in hand.iter().enumerate() {
        if !h {
            assert_eq!(
                over.pixels[i], bg.pixels[i],
                "pixel {i} outside the hand changed"
            );
        }
    }
    let drawn = (0..hand.len())
        .filter(|&i| hand[i] && over.pixels[i] != bg.pixels[i])
        .count();
    assert!(
        drawn * 10 > covered * 9,
        "the hand is drawn where the mask says ({drawn}/{covered})"
    );
}

/// Decodes every frame of an MP4 with the crates xhand writes it with.
fn decode_all(path: &Path) -> (xhand::video::VideoReader, Vec<xhand::image_io::Rgba8>) {
    let mut reader = xhand::video::VideoReader::open(path).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = reader.next_frame().unwrap() {
        frames.push(f);
    }
    (reader, frames)
}

#[test]
fn sequences_and_turntables_become_mp4_videos_matching_the_png_renders() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, pose) = setup(dir.path());
    let run = |extra: &[&str], out: &Path| {
        let mut args = vec![
            "render", "--avatar", &avatar, "--pose", &pose, "--mode", "sh", "--width", "64",
            "--height", "96",
        ];
        args.extend(extra);
        args.extend(["--out", out.to_str().unwrap()]);
        xhand(&args)
    };
    let (pngs, clip) = (dir.path().join("pngs"), dir.path().join("clip.mp4"));
    let (ok, text) = run(&["--all"], &pngs);
    assert!(ok, "{text}");
    let (ok, text) = run(&["--all"], &clip);
    assert!(ok, "{text}");
    let (reader, frames) = decode_all(&clip);
    assert_eq!((reader.width, reader.height), (64, 96));
    assert!(
        (reader.fps - 10.0).abs() < 1e-3,
        "the file's fps: {}",
        reader.fps
    );
    assert_eq!(frames.len(), 3);
    for (i, f) in frames.iter().enumerate() {
        let png = xhand::image_io::Rgba8::load(&pngs.join(format!("{i:04}.png"))).unwrap();
        let db = xhand::image_io::psnr(f, &png, None);
        assert!(db > 30.0, "frame {i}: {db:.1} dB against the PNG");
    }

    // A turntable: N frames, the first one the plain render, the others turned.
    let (single, turn) = (dir.path().join("one.png"), dir.path().join("turn.mp4"));
    let (ok, text) = run(&["--frame", "2"], &single);
    assert!(ok, "{text}");
    let (ok, text) = run(
        &[
            "--frame",
            "2",
            "--turntable",
            "8",
            "--fps",
            "24",
            "--bitrate",
            "800",
        ],
        &turn,
    );
    assert!(ok, "{text}");
    let (reader, frames) = decode_all(&turn);
    assert_eq!(frames.len(), 8);
    assert!((reader.fps - 24.0).abs() < 1e-3, "{}", reader.fps);
    let still = xhand::image_io::Rgba8::load(&single).unwrap();
    assert!(xhand::image_io::psnr(&frames[0], &still, None) > 30.0);
    assert!(
        xhand::image_io::psnr(&frames[4], &still, None) < 25.0,
        "half a turn shows the other side"
    );

    // What cannot be a video is refused before any work.
    let (ok, text) = run(&[], &dir.path().join("single.mp4"));
    assert!(
        !ok && text.contains("--all") && text.contains("--turntable"),
        "{text}"
    );
    let mut odd = vec!["render", "--avatar", &avatar, "--all", "--pose", &pose];
    odd.extend(["--width", "63", "--height", "96", "--out"]);
    let odd_out = dir.path().join("odd.mp4");
    odd.push(odd_out.to_str().unwrap());
    let (ok, text) = xhand(&odd);
    assert!(
        !ok && text.contains("even") && text.contains("64x96"),
        "{text}"
    );
    assert!(!odd_out.exists());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".part")), "{names:?}");
}

#[test]
fn the_avatar_is_drawn_over_the_frames_of_a_source_video() {
    let dir = tempfile::tempdir().unwrap();
    let (avatar, _) = setup(dir.path());
    let pose = common::fixture("poses/hamer_single.json"); // a 640x480 HaMeR camera
    let footage = dir.path().join("footage.mp4");
    let mut writer = xhand::video::VideoWriter::create(&footage, 640, 480, 30.0, None).unwrap();
    for t in 0..2u32 {
        let pixels = (0..640 * 480u32)
            .map(|i| {
                [
                    ((i % 640 + t * 40) % 256) as u8,
                    ((i / 640) % 256) as u8,
                    90,
                    255,
                ]
            })
            .collect();
        writer
            .push(&xhand::image_io::Rgba8 {
                width: 640,
                height: 480,
                pixels,
            })
            .unwrap();
    }
    writer.finish().unwrap();
    let (_, frames) = decode_all(&footage);
    let out = dir.path().join("over.png");
    let (ok, text) = xhand(&[
        "render",
        "--avatar",
        &avatar,
        "--pose",
        pose.to_str().unwrap(),
        "--pose-camera",
        "--mode",
        "sh",
        "--background-image",
        footage.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let over = xhand::image_io::Rgba8::load(&out).unwrap();
    assert_eq!((over.width, over.height), (640, 480));
    let same = over
        .pixels
        .iter()
        .zip(&frames[0].pixels)
        .filter(|(a, b)| a == b)
        .count();
    let changed = over.pixels.len() - same;
    assert!(changed > 200, "the hand is drawn ({changed} px)");
    assert!(
        changed * 5 < over.pixels.len(),
        "the rest is the video's first frame"
    );

    // A corrupt video is named in the error.
    let bad = dir.path().join("broken.mp4");
    std::fs::write(&bad, b"\0\0\0\x18ftypisom but then nothing useful").unwrap();
    let (ok, text) = xhand(&[
        "render",
        "--avatar",
        &avatar,
        "--pose",
        pose.to_str().unwrap(),
        "--pose-camera",
        "--background-image",
        bad.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("broken.mp4"), "{text}");
}
