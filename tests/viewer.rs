//! The viewer end to end: the real binary in a real window (Xvfb + lavapipe in CI), driven
//! by scripted steps, inspected through screenshots and state reports.
#![cfg(feature = "viewer")]

mod common;

use std::path::Path;
use std::process::Command;

use xhand::image_io::Rgba8;
use xhand::synthetic::SyntheticSpec;

fn xhand(args: &[&str], envs: &[(&str, Option<&str>)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xhand"));
    cmd.args(args);
    // Keep the recent-files list of test runs out of the user's configuration.
    cmd.env(
        "XDG_CONFIG_HOME",
        std::env::temp_dir().join("xhand-test-config"),
    );
    for (k, v) in envs {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().expect("run xhand");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn require_display() {
    assert!(
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some(),
        "the viewer tests need a display; run them with scripts/test.sh (Xvfb)"
    );
}

fn avatar_file(dir: &Path) -> String {
    let p = dir.join("avatar.safetensors");
    SyntheticSpec::test_avatar().build().save(&p).unwrap();
    p.display().to_string()
}

fn run_script(dir: &Path, avatar: &str, steps: serde_json::Value) -> String {
    let script = dir.join("script.json");
    std::fs::write(&script, steps.to_string()).unwrap();
    let (ok, text) = xhand(
        &[
            "view",
            avatar,
            "--width",
            "900",
            "--height",
            "600",
            "--script",
            script.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "viewer run failed:\n{text}");
    text
}

#[test]
fn without_arguments_the_viewer_shows_the_default_avatar() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.json");
    let report = dir.path().join("report.json");
    let shot = dir.path().join("default.png");
    std::fs::write(
        &script,
        serde_json::json!([
            {"wait_idle": true}, {"wait_frames": 2}, {"screenshot": shot}, {"report": report}, {"exit": 0}
        ])
        .to_string(),
    )
    .unwrap();
    let (ok, text) = xhand(
        &[
            "view",
            "--width",
            "800",
            "--height",
            "600",
            "--script",
            script.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "{text}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["avatar"], "xhand default hand", "{r}");
    assert!(r["errors"].as_array().unwrap().is_empty(), "{r}");
    assert!(Rgba8::load(&shot).is_ok());
}

#[test]
fn screenshot_run_saves_the_window_and_exits() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let out = dir.path().join("shot.png");
    let (ok, text) = xhand(
        &[
            "view",
            &avatar,
            "--width",
            "800",
            "--height",
            "600",
            "--screenshot",
            out.to_str().unwrap(),
            "--frames",
            "3",
        ],
        &[],
    );
    assert!(ok, "{text}");
    let img = Rgba8::load(&out).unwrap();
    assert_eq!((img.width, img.height), (800, 600));
    // The UI is there (menu bar text differs from the background) and so is the hand.
    let distinct: std::collections::HashSet<[u8; 4]> = img.pixels.iter().copied().collect();
    assert!(
        distinct.len() > 50,
        "a nearly uniform screenshot: {} colours",
        distinct.len()
    );
}

#[test]
fn a_joint_slider_changes_only_the_hand() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let a = dir.path().join("a.png");
    let b = dir.path().join("b.png");
    let report = dir.path().join("report.json");
    run_script(
        dir.path(),
        &avatar,
        serde_json::json!([
            {"show_ui": false}, {"mode": "sh"}, {"wait_frames": 3}, {"wait_idle": true}, {"wait_frames": 2},
            {"screenshot": a}, {"set_joint": [4, 2, 1.2]}, {"set_joint": [5, 2, 1.2]},
            {"wait_frames": 2}, {"wait_idle": true}, {"wait_frames": 2}, {"screenshot": b},
            {"report": report}, {"exit": 0}
        ]),
    );
    // The worker ran the networks for the new pose; on a software adapter (lavapipe) the
    // automatic engine choice keeps them on the CPU.
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let engine = r["nets_engine"].as_str().unwrap_or_default();
    assert!(engine.starts_with("CPU"), "nets ran on {engine:?}: {r}");
    let (ia, ib) = (Rgba8::load(&a).unwrap(), Rgba8::load(&b).unwrap());
    assert_eq!((ia.width, ia.height), (ib.width, ib.height));
    let bg = ia.pixels[0];
    let mut changed = 0;
    for (i, (pa, pb)) in ia.pixels.iter().zip(&ib.pixels).enumerate() {
        if pa != pb {
            changed += 1;
            assert!(
                *pa != bg || *pb != bg,
                "pixel {i} changed outside the hand ({pa:?} → {pb:?})"
            );
        }
    }
    assert!(
        changed > 500,
        "bending the middle finger changed only {changed} pixels"
    );
}

#[test]
fn dropping_files_loads_them_and_bad_files_keep_the_state() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let seq = dir.path().join("seq.json");
    let frame = |z: f32| {
        format!(
            "{{\"pose\": [{}]}}",
            (0..48)
                .map(|i| if i == 14 { z.to_string() } else { "0".into() })
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    std::fs::write(
        &seq,
        format!(
            "{{\"fps\": 12, \"frames\": [{}, {}, {}]}}",
            frame(0.0),
            frame(0.5),
            frame(1.0)
        ),
    )
    .unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"pose\": [1, 2").unwrap();
    let bad_avatar = dir.path().join("bad.safetensors");
    std::fs::write(&bad_avatar, b"not an avatar").unwrap();
    let hamer = common::fixture("poses/hamer_single.json");
    let r1 = dir.path().join("r1.json");
    let r2 = dir.path().join("r2.json");
    let r3 = dir.path().join("r3.json");
    run_script(
        dir.path(),
        &avatar,
        serde_json::json!([
            {"wait_frames": 2}, {"drop_file": seq}, {"wait_frames": 2}, {"wait_idle": true}, {"frame": 2},
            {"report": r1},
            {"drop_file": broken}, {"drop_file": bad_avatar}, {"wait_frames": 3}, {"wait_idle": true},
            {"report": r2},
            {"drop_file": hamer}, {"wait_frames": 2}, {"wait_idle": true}, {"report": r3}, {"exit": 0}
        ]),
    );
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let r1 = read(&r1);
    assert_eq!(r1["frames"], 3, "{r1}");
    assert_eq!(r1["frame"], 2);
    let r2 = read(&r2);
    assert_eq!(r2["frames"], 3, "the sequence must survive bad drops: {r2}");
    assert_eq!(r2["avatar"], r1["avatar"]);
    let errors = r2["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains("broken.json")),
        "{r2}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains("bad.safetensors")),
        "{r2}"
    );
    let r3 = read(&r3);
    assert!(r3["frames"].as_u64().unwrap() >= 1, "{r3}");
    assert!(
        r3["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("hamer_single.json")),
        "{r3}"
    );
}

#[test]
fn clear_errors_without_display_or_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let (ok, text) = xhand(
        &["view", &avatar, "--screenshot", "x.png"],
        &[("DISPLAY", None), ("WAYLAND_DISPLAY", None)],
    );
    assert!(!ok && text.contains("no display"), "{text}");
    require_display();
    let (ok, text) = xhand(
        &["view", &avatar, "--screenshot", "x.png"],
        &[
            ("VK_ICD_FILENAMES", Some("/nonexistent/icd.json")),
            ("VK_DRIVER_FILES", Some("/nonexistent/icd.json")),
            ("WGPU_BACKEND", Some("vulkan")),
        ],
    );
    assert!(!ok && text.contains("GPU adapter"), "{text}");
    let pose = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/poses/hamer_single.json");
    let (ok, text) = xhand(&["view", pose.to_str().unwrap()], &[]);
    assert!(
        !ok && text.contains("looks like a pose file") && text.contains("--pose"),
        "{text}"
    );
}

#[test]
fn the_grid_and_the_wireframe_show_with_neural_and_sh_shading() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let (neural, sh) = (dir.path().join("neural.png"), dir.path().join("sh.png"));
    let wired = dir.path().join("wired.png");
    run_script(
        dir.path(),
        &avatar,
        serde_json::json!([
            {"show_ui": false}, {"mode": "neural"}, {"wait_idle": true}, {"wait_frames": 20},
            {"wait_idle": true}, {"wait_frames": 20}, {"screenshot": neural},
            {"mode": "sh"}, {"wait_frames": 5}, {"screenshot": sh},
            {"mode": "neural"}, {"key": "W"}, {"wait_frames": 20}, {"wait_idle": true},
            {"wait_frames": 5}, {"screenshot": wired}, {"exit": 0}
        ]),
    );
    let (a, b) = (Rgba8::load(&neural).unwrap(), Rgba8::load(&sh).unwrap());
    // The left eighth of the window is background: grid lines on both, in the same places
    // (on a software adapter the neural image comes from the CPU, the SH one from the GPU).
    let strip: Vec<usize> = (0..a.height as usize)
        .flat_map(|r| (0..a.width as usize / 8).map(move |c| r * a.width as usize + c))
        .collect();
    let colours: std::collections::HashSet<[u8; 4]> = strip.iter().map(|&i| b.pixels[i]).collect();
    assert!(colours.len() > 3, "no grid lines in the SH view");
    let worst = strip
        .iter()
        .map(|&i| {
            (0..3)
                .map(|k| a.pixels[i][k].abs_diff(b.pixels[i][k]))
                .max()
                .unwrap()
        })
        .max()
        .unwrap();
    assert!(worst <= 3, "backgrounds differ by up to {worst} levels");
    // And the neural image was the one shown (the hands differ).
    assert!(a.pixels != b.pixels, "the neural view shows the SH image");
    // W draws the wireframe over the CPU's neural image too: darker lines, nothing lighter.
    let w = Rgba8::load(&wired).unwrap();
    let count = |f: &dyn Fn(&[u8; 4], &[u8; 4]) -> bool| {
        a.pixels
            .iter()
            .zip(&w.pixels)
            .filter(|(p, q)| f(p, q))
            .count()
    };
    let darker = count(&|p, q| (0..3).all(|k| q[k] + 20 < p[k]));
    let lighter = count(&|p, q| (0..3).any(|k| q[k] > p[k] + 20));
    assert!(
        darker > 200,
        "no wire lines over the neural image ({darker} px darker)"
    );
    assert_eq!(lighter, 0, "the wireframe only darkens");
}

/// Runs a script with a private configuration and home folder, no D-Bus session and no
/// zenity (so no native file dialog can appear, as on a bare X server), returning the
/// output and the home folder's path.
fn run_script_at_home(
    dir: &Path,
    avatar: &str,
    extra: &[&str],
    steps: serde_json::Value,
) -> String {
    let script = dir.join("script.json");
    std::fs::write(&script, steps.to_string()).unwrap();
    let home = dir.join("home");
    std::fs::create_dir_all(home.join("Pictures")).unwrap();
    let mut args = vec![
        "view",
        avatar,
        "--width",
        "900",
        "--height",
        "600",
        "--script",
        script.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (ok, text) = xhand(
        &args,
        &[
            ("HOME", Some(home.to_str().unwrap())),
            (
                "XDG_CONFIG_HOME",
                Some(dir.join("config").to_str().unwrap()),
            ),
            ("DBUS_SESSION_BUS_ADDRESS", None),
            ("PATH", Some("/nonexistent-xhand-test")),
        ],
    );
    assert!(ok, "viewer run failed:\n{text}");
    text
}

fn read_report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn shortcuts_path_fields_and_the_output_folder() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let r: Vec<_> = (0..5)
        .map(|i| dir.path().join(format!("r{i}.json")))
        .collect();
    let sky = dir.path().join("sky.hdr");
    let pixels: Vec<image::Rgb<f32>> = (0..32 * 16)
        .map(|i| image::Rgb([1.0 + (i % 32) as f32 / 8.0, 1.0, 0.5]))
        .collect();
    let mut bytes = Vec::new();
    image::codecs::hdr::HdrEncoder::new(&mut bytes)
        .encode(&pixels, 32, 16)
        .unwrap();
    std::fs::write(&sky, &bytes).unwrap();
    let mesh = dir.path().join("exports").join("hand.obj");
    let mesh2 = dir.path().join("exports").join("hand2.obj");
    let pose = dir.path().join("pose.json");
    let pose2 = dir.path().join("pose2.json");
    run_script_at_home(
        dir.path(),
        &avatar,
        &[],
        serde_json::json!([
            {"wait_idle": true},
            // Tab twice (panels off and on again) must not leave egui holding the keys.
            {"key": "Tab"}, {"wait_frames": 2}, {"key": "Tab"}, {"wait_frames": 2},
            {"key": "2"}, {"wait_frames": 2}, {"key": "W"}, {"wait_frames": 2},
            {"report": r[0]},
            // No native dialog here: Ctrl+E opens the path field, pre-filled in the output folder.
            {"key": "ctrl+E"}, {"wait_frames": 2}, {"report": r[1]},
            {"submit_path": mesh}, {"wait_frames": 2},
            {"set_joint": [2, 2, 0.9]}, {"open_dialog": "save_pose"}, {"submit_path": pose},
            // An export right after a slider change writes the new pose's details.
            {"set_joint": [5, 2, 0.7]}, {"open_dialog": "export_mesh"}, {"submit_path": mesh2},
            {"open_dialog": "save_pose"}, {"submit_path": pose2}, {"wait_idle": true},
            {"key": "ctrl+S"}, {"wait_frames": 3}, {"wait_idle": true}, {"report": r[2]},
            {"key": "ctrl+shift+S"}, {"wait_frames": 6}, {"wait_idle": true}, {"wait_frames": 2},
            {"report": r[3]},
            // An environment map dropped onto the window lights the hand.
            {"drop_file": sky}, {"wait_idle": true}, {"report": r[4]}, {"exit": 0}
        ]),
    );
    let r0 = read_report(&r[0]);
    assert_eq!(r0["mode"], "Sh", "the 2 key after Tab: {r0}");
    assert_eq!(r0["show_ui"], true);
    assert_eq!(r0["wireframe"], true);
    assert_eq!(r0["text_editing"], false);
    let r1 = read_report(&r[1]);
    assert_eq!(r1["native_dialogs"], false, "{r1}");
    assert_eq!(r1["path_prompt"], "ExportMesh", "{r1}");
    let out_dir = dir.path().join("home").join("Pictures").join("xhand");
    assert_eq!(r1["output_dir"], out_dir.to_str().unwrap());
    assert!(
        std::fs::metadata(&mesh).is_ok_and(|m| m.len() > 1000),
        "mesh written"
    );
    let saved = xhand::pose::load_pose_file(&pose).unwrap();
    assert_eq!(
        saved.frames[0].pose[8], 0.9,
        "the saved pose has the slider edit"
    );
    let r2 = read_report(&r[2]);
    let notes = r2["notes"].as_array().unwrap();
    let shot_note = notes
        .iter()
        .filter_map(|n| n.as_str())
        .find(|n| n.starts_with("saved ") && n.ends_with(".png"))
        .unwrap_or_else(|| panic!("no screenshot note: {r2}"));
    let shot = Path::new(&shot_note["saved ".len()..]);
    assert!(
        shot.is_absolute() && shot.starts_with(&out_dir),
        "{shot_note}"
    );
    let name = shot.file_name().unwrap().to_str().unwrap();
    // xhand-screenshot-YYYY-MM-DD_hh-mm-ss.png
    assert_eq!(
        name.len(),
        "xhand-screenshot-2026-12-05_19-30-12.png".len(),
        "{name}"
    );
    let r3 = read_report(&r[3]);
    assert_eq!(
        r3["show_ui"], true,
        "the panels come back after a clean screenshot"
    );
    let mut shots: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    shots.sort();
    assert_eq!(shots.len(), 2, "{shots:?}");
    let with_ui = Rgba8::load(shot).unwrap();
    let clean_path = shots.iter().find(|p| p.as_path() != shot).unwrap();
    let clean = Rgba8::load(clean_path).unwrap();
    // The menu bar (top rows) is in one and not the other.
    let w = with_ui.width as usize;
    let differs = (0..8 * w)
        .filter(|&i| with_ui.pixels[i] != clean.pixels[i])
        .count();
    assert!(
        differs > 2 * w,
        "the clean screenshot shows the panels ({differs} px differ)"
    );
    let r4 = read_report(&r[4]);
    assert_eq!(r4["light_source"], "Environment", "{r4}");
    assert!(r4["errors"].as_array().unwrap().is_empty(), "{r4}");
}

#[test]
fn a_travelling_sequence_is_framed_on_load_and_stays_in_view() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let poses = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/poses/hamer_video.json");
    let (r0, r1, shot) = (
        dir.path().join("r0.json"),
        dir.path().join("r1.json"),
        dir.path().join("travel.png"),
    );
    run_script_at_home(
        dir.path(),
        &avatar,
        &["--pose", poses.to_str().unwrap()],
        serde_json::json!([
            // A HaMeR video with both hands: they load together, no picker.
            {"wait_idle": true}, {"wait_frames": 3},
            {"report": r0}, {"key": "End"}, {"wait_idle": true}, {"wait_frames": 3}, {"report": r1},
            {"screenshot": shot}, {"exit": 0}
        ]),
    );
    for (r, margin) in [(read_report(&r0), 0.2), (read_report(&r1), 0.05)] {
        assert!(r["trans"][2].as_f64().unwrap() > 10.0, "HaMeR's depth: {r}");
        assert!(r["errors"].as_array().unwrap().is_empty(), "{r}");
        // Framed on load (centred); the last frame's pose turns the hand about its wrist,
        // and the view follows it: still in view.
        let p = &r["hand_on_screen"];
        let (x, y) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
        let inside = margin..1.0 - margin;
        assert!(
            inside.contains(&x) && inside.contains(&y),
            "hand off screen: {r}"
        );
        let notes = r["notes"].as_array().unwrap();
        assert!(
            notes
                .iter()
                .any(|n| n.as_str().unwrap().contains("frames loaded (both hands)")),
            "{r}"
        );
    }
}

/// A looping sequence played for a while: memory stays flat after warm-up (the 30-minute
/// version of this run is in docs/viewer.md).
#[test]
fn looped_playback_keeps_memory_flat() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let frames: Vec<_> = (0..90)
        .map(|i| {
            let mut p = [0.0f32; 48];
            p[5] = (i as f32 * 0.1).sin();
            p[14] = (i as f32 * 0.07).cos();
            serde_json::json!({"pose": p.to_vec(), "trans": [0.002 * i as f32, 0.0, 0.0]})
        })
        .collect();
    let seq = dir.path().join("seq.json");
    std::fs::write(
        &seq,
        serde_json::json!({"fps": 30, "frames": frames}).to_string(),
    )
    .unwrap();
    let r: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("m{i}.json")))
        .collect();
    run_script(
        dir.path(),
        &avatar,
        serde_json::json!([
            {"drop_file": seq}, {"wait_idle": true}, {"loop": true}, {"play": true},
            {"wait_frames": 60}, {"report": r[0]}, {"wait_frames": 120}, {"report": r[1]},
            {"wait_frames": 120}, {"report": r[2]}, {"exit": 0}
        ]),
    );
    let rss: Vec<f64> = r
        .iter()
        .map(|p| read_report(p)["memory_rss_mib"].as_f64().unwrap())
        .collect();
    let last = read_report(&r[2]);
    assert_eq!(last["playing"], true, "{last}");
    assert_eq!(last["frames"], 90);
    eprintln!("resident memory after warm-up, +120, +240 frames: {rss:?} MiB");
    assert!(
        rss[2] - rss[1] < 16.0,
        "memory grows while looping: {rss:?} MiB"
    );
}

/// An idle window draws nothing: the viewer redraws on input and while something changes
/// (Bevy's reactive mode), so after start-up its CPU time stands still.
#[cfg(target_os = "linux")]
#[test]
fn an_idle_viewer_uses_no_cpu() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_xhand"))
        .args(["view", &avatar, "--width", "900", "--height", "600"])
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ticks = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // utime and stime: fields 14 and 15 of proc(5); after the parenthesised name the
        // state is field 3, so they are the 12th and 13th tokens.
        let rest: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let field = |i: usize| rest.get(i).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
        field(11) + field(12)
    };
    // Once start-up, the first embedding and the CPU neural image (software adapter) have
    // settled — however long that takes next to other tests — a 3-second window passes with
    // (almost) no CPU time. 100 ticks = one core-second; a window that redraws continuously
    // takes ~500 here.
    let started = std::time::Instant::now();
    let mut windows = Vec::new();
    let mut before = ticks(child.id());
    let idle = loop {
        std::thread::sleep(std::time::Duration::from_secs(3));
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        let now = ticks(child.id());
        windows.push(now - before);
        before = now;
        // Started (it has done its start-up work) and quiet for the last window.
        if now > 50 && windows.last() < Some(&15) {
            break true;
        }
        if started.elapsed().as_secs() > 60 {
            break false;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        idle,
        "the viewer never went idle: CPU ticks per 3 s {windows:?}"
    );
}

/// A click outside an open combo list closes the list and does nothing else; the same
/// click with no list open reaches the widget under it (here the light-direction pad).
#[test]
fn a_click_outside_an_open_list_only_closes_it() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let (r0, r1) = (dir.path().join("r0.json"), dir.path().join("r1.json"));
    // A pose beyond ±180° on the index joint, whose values the open Index group shows.
    let mut p = [0.0f32; 48];
    p[5] = 3.3;
    let pose = dir.path().join("wide.json");
    std::fs::write(
        &pose,
        serde_json::json!({"frames": [{"pose": p.to_vec()}]}).to_string(),
    )
    .unwrap();
    let rp = dir.path().join("rp.json");
    // 900x600: the Shading combo at (628, 58), the lighting pad around (648, 397), radius 68.
    run_script(
        dir.path(),
        &avatar,
        serde_json::json!([
            {"wait_idle": true}, {"drop_file": pose}, {"wait_idle": true}, {"wait_frames": 3},
            {"report": rp},
            {"click": [628, 58]}, {"wait_frames": 3}, {"click": [650, 345]}, {"wait_frames": 3},
            {"report": r0},
            {"click": [650, 345]}, {"wait_frames": 3}, {"report": r1}, {"exit": 0}
        ]),
    );
    let rp = read_report(&rp);
    let shown = rp["pose"][5].as_f64().unwrap() as f32;
    assert_eq!(shown, 3.3, "showing a value beyond 180° changed it: {rp}");
    assert_eq!(rp["frame_edited"], false, "{rp}");
    let (r0, r1) = (read_report(&r0), read_report(&r1));
    assert_eq!(
        r0["light_source"], "Row(0)",
        "the click fell through the list: {r0}"
    );
    assert_eq!(r0["mode"], "Neural");
    assert_eq!(
        r1["light_source"], "Custom",
        "the pad is where the test clicks: {r1}"
    );
}

/// Every `.mp4` in `dir` whose name starts with `prefix`, decoded.
fn exported_video(dir: &Path, prefix: &str) -> (xhand::video::VideoReader, Vec<Rgba8>) {
    let path = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with(prefix) && name.ends_with(".mp4")
        })
        .unwrap_or_else(|| panic!("no {prefix}*.mp4 in {}", dir.display()));
    let mut reader = xhand::video::VideoReader::open(&path).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = reader.next_frame().unwrap() {
        frames.push(f);
    }
    (reader, frames)
}

/// PSNR of `frame` against the window screenshot's viewport area (its top half: notes
/// appear at the bottom).
fn psnr_against_viewport(frame: &Rgba8, shot: &Rgba8, viewport: [u32; 2]) -> f64 {
    let (w, h) = (frame.width, frame.height / 2);
    let crop = |img: &Rgba8, x0: u32, y0: u32| Rgba8 {
        width: w,
        height: h,
        pixels: (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| img.pixels[((y0 + y) * img.width + x0 + x) as usize])
            .collect(),
    };
    xhand::image_io::psnr(
        &crop(frame, 0, 0),
        &crop(shot, viewport[0], viewport[1]),
        None,
    )
}

#[test]
fn the_timeline_and_a_turntable_export_as_the_viewport_shows_them() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let poses = dir.path().join("seq.json");
    let frame = |bend: f32, x: f32| {
        let mut p = [0.0f32; 48];
        p[14] = bend;
        format!("{{\"pose\":{p:?}, \"trans\":[{x},0,0]}}")
    };
    std::fs::write(
        &poses,
        format!(
            "{{\"fps\": 12, \"frames\": [{}, {}, {}]}}",
            frame(0.0, 0.0),
            frame(0.6, 0.01),
            frame(1.2, 0.02)
        ),
    )
    .unwrap();
    let (shot, report) = (dir.path().join("shot.png"), dir.path().join("r.json"));
    run_script_at_home(
        dir.path(),
        &avatar,
        &["--pose", poses.to_str().unwrap()],
        serde_json::json!([
            {"wait_idle": true}, {"mode": "sh"}, {"key": "W"}, {"frame": 1}, {"wait_idle": true},
            {"wait_frames": 5}, {"screenshot": shot}, {"report": report},
            {"export": {"what": "video"}}, {"wait_frames": 2}, {"wait_idle": true},
            {"export": {"what": "turntable", "frames": 6}}, {"wait_frames": 2},
            {"wait_idle": true}, {"export": {"what": "turntable", "frames": 3000}},
            {"wait_frames": 3}, {"cancel_export": true}, {"wait_idle": true}, {"report": report},
            {"exit": 0}
        ]),
    );
    let r = read_report(&report);
    let out = Path::new(r["output_dir"].as_str().unwrap());
    let vp: Vec<f64> = r["viewport"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let origin = [vp[0].round() as u32, vp[1].round() as u32];
    let size = (((vp[2] - vp[0]) as u32) & !1, ((vp[3] - vp[1]) as u32) & !1);
    let shot = Rgba8::load(&shot).unwrap();

    let (reader, frames) = exported_video(out, "xhand-video-");
    assert_eq!(frames.len(), 3, "every frame of the timeline");
    assert_eq!((reader.width, reader.height), size, "the viewport's size");
    assert!(
        (reader.fps - 12.0).abs() < 1e-3,
        "the sequence's fps: {}",
        reader.fps
    );
    let db = psnr_against_viewport(&frames[1], &shot, origin);
    assert!(db > 28.0, "frame 1 is what the viewport showed: {db:.1} dB");
    assert!(
        psnr_against_viewport(&frames[2], &shot, origin) < db,
        "frame 2 differs more"
    );

    let (reader, turn) = exported_video(out, "xhand-turntable-");
    assert_eq!(turn.len(), 6);
    assert_eq!((reader.width, reader.height), size);
    let db = psnr_against_viewport(&turn[0], &shot, origin);
    assert!(db > 28.0, "the turntable starts from the view: {db:.1} dB");
    assert!(
        psnr_against_viewport(&turn[3], &shot, origin) < 24.0,
        "half a turn later"
    );
    let errors = r["errors"].as_array().unwrap();
    assert!(errors.is_empty(), "{r}");
    // The cancelled turntable left nothing behind.
    let notes = r["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("cancelled")),
        "{r}"
    );
    let names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let turntables = names
        .iter()
        .filter(|n| n.starts_with("xhand-turntable-"))
        .count();
    assert_eq!(turntables, 1, "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with(".part")), "{names:?}");
}

#[test]
fn source_images_show_behind_the_hand_and_go_into_the_export() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let pose = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/poses/hamer_single.json");
    // The footage: one 640x480 image (the dump's image size), a gradient.
    let folder = dir.path().join("frames");
    std::fs::create_dir_all(&folder).unwrap();
    let gradient = |x: u32, y: u32| [(x * 255 / 639) as u8, (y * 255 / 479) as u8, 60];
    image::RgbImage::from_fn(640, 480, |x, y| image::Rgb(gradient(x, y)))
        .save(folder.join("0001.png"))
        .unwrap();
    let (shot, report) = (dir.path().join("shot.png"), dir.path().join("r.json"));
    run_script_at_home(
        dir.path(),
        &avatar,
        &["--pose", pose.to_str().unwrap()],
        serde_json::json!([
            {"wait_idle": true}, {"mode": "sh"}, {"drop_file": folder}, {"wait_frames": 3},
            {"wait_idle": true}, {"wait_frames": 5}, {"screenshot": shot}, {"report": report},
            {"export": {"what": "video"}}, {"wait_frames": 2}, {"wait_idle": true},
            {"report": report}, {"exit": 0}
        ]),
    );
    let r = read_report(&report);
    assert_eq!(r["use_pose_camera"], true, "{r}");
    assert_eq!(r["footage_shown"], true, "{r}");
    assert!(r["errors"].as_array().unwrap().is_empty(), "{r}");
    // On screen: the footage stretched over the window (the pose camera's image), seen in the
    // viewport wherever the hand is not.
    let shot = Rgba8::load(&shot).unwrap();
    let vp: Vec<u32> = r["viewport"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as u32)
        .collect();
    let (mut near, mut total) = (0, 0);
    for y in (vp[1]..vp[3]).step_by(7) {
        for x in (vp[0]..vp[2]).step_by(7) {
            let g = gradient(x * 640 / shot.width, y * 480 / shot.height);
            let p = shot.pixels[(y * shot.width + x) as usize];
            total += 1;
            if (0..3).all(|k| p[k].abs_diff(g[k]) <= 6) {
                near += 1;
            }
        }
    }
    assert!(
        near * 10 > total * 7,
        "the footage shows in the viewport ({near}/{total})"
    );
    // The export: the footage's size, the hand over it.
    let out = Path::new(r["output_dir"].as_str().unwrap());
    let (reader, frames) = exported_video(out, "xhand-video-");
    assert_eq!((reader.width, reader.height), (640, 480));
    assert_eq!(frames.len(), 1);
    let footage = Rgba8::load(&folder.join("0001.png")).unwrap();
    let changed = frames[0]
        .pixels
        .iter()
        .zip(&footage.pixels)
        .filter(|(a, b)| (0..3).any(|k| a[k].abs_diff(b[k]) > 24))
        .count();
    assert!(changed > 200, "the hand is drawn ({changed} px)");
    assert!(
        changed * 5 < footage.pixels.len(),
        "the rest is the footage ({changed} px)"
    );
}

#[test]
fn an_environment_shows_behind_the_hand_as_exports_draw_it() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    // A smooth sky: red grows with longitude, green towards the ground.
    let (w, h) = (128usize, 64usize);
    let pixels: Vec<image::Rgb<f32>> = (0..w * h)
        .map(|i| {
            let (u, v) = ((i % w) as f32 / w as f32, (i / w) as f32 / h as f32);
            image::Rgb([0.1 + 0.8 * u, 0.2 + 0.6 * v, 0.45])
        })
        .collect();
    let sky = dir.path().join("sky.hdr");
    let mut bytes = Vec::new();
    image::codecs::hdr::HdrEncoder::new(&mut bytes)
        .encode(&pixels, w, h)
        .unwrap();
    std::fs::write(&sky, bytes).unwrap();
    let (shot, report) = (dir.path().join("shot.png"), dir.path().join("r.json"));
    run_script_at_home(
        dir.path(),
        &avatar,
        &[],
        serde_json::json!([
            {"wait_idle": true}, {"mode": "sh"}, {"drop_file": sky}, {"wait_frames": 3},
            {"wait_idle": true}, {"env_background": true}, {"wait_frames": 5},
            {"screenshot": shot}, {"report": report},
            {"export": {"what": "turntable", "frames": 4}}, {"wait_frames": 2},
            {"wait_idle": true}, {"exit": 0}
        ]),
    );
    let r = read_report(&report);
    assert!(
        r["backdrop"]
            .as_str()
            .unwrap_or("")
            .starts_with("Environment"),
        "{r}"
    );
    let vp: Vec<f64> = r["viewport"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let origin = [vp[0].round() as u32, vp[1].round() as u32];
    let shot = Rgba8::load(&shot).unwrap();
    // The sky varies across the view (it is not the flat background colour).
    let row = origin[1] + 20;
    let left = shot.pixels[(row * shot.width + origin[0] + 5) as usize];
    let right = shot.pixels[(row * shot.width + vp[2] as u32 - 5) as usize];
    assert!(
        left[0].abs_diff(right[0]) > 3 || left[1].abs_diff(right[1]) > 3,
        "a flat background: {left:?} {right:?}"
    );
    // The export draws the same view: the GPU composite on screen, the CPU lookup in the file.
    let out = Path::new(r["output_dir"].as_str().unwrap());
    let (_, turn) = exported_video(out, "xhand-turntable-");
    assert_eq!(turn.len(), 4);
    let db = psnr_against_viewport(&turn[0], &shot, origin);
    assert!(
        db > 28.0,
        "the exported environment matches the screen: {db:.1} dB"
    );
}

#[test]
fn the_networks_engine_is_chosen_at_start_and_in_the_display_panel() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let (r0, r1, r2, r3) = (
        dir.path().join("r0.json"),
        dir.path().join("r1.json"),
        dir.path().join("r2.json"),
        dir.path().join("r3.json"),
    );
    run_script_at_home(
        dir.path(),
        &avatar,
        &["--nets", "cpu"],
        serde_json::json!([
            {"wait_idle": true}, {"report": r0},
            {"nets": "wgpu"}, {"wait_frames": 2}, {"wait_idle": true}, {"report": r1},
            {"preset": "fist"}, {"wait_frames": 2}, {"wait_idle": true}, {"report": r2},
            {"nets": "cpu"}, {"precision": "bf16"}, {"wait_frames": 2}, {"wait_idle": true},
            {"report": r3},
            {"exit": 0}
        ]),
    );
    let engine = |p: &Path| read_report(p)["nets_engine"].as_str().unwrap().to_string();
    assert!(engine(&r0).starts_with("CPU"), "{}", engine(&r0));
    // The switch reruns the networks for the pose shown, then every pose uses it.
    assert!(engine(&r1).starts_with("wgpu on"), "{}", engine(&r1));
    let r2 = read_report(&r2);
    assert!(
        r2["nets_engine"].as_str().unwrap().starts_with("wgpu on"),
        "{r2}"
    );
    assert_eq!(r2["details_stale"], false, "{r2}");
    assert!(r2["errors"].as_array().unwrap().is_empty(), "{r2}");
    assert_eq!(r2["precision"], "f32", "{r2}");
    // bf16 on the CPU: taken where the CPU has AVX-512 BF16 (the pose shown recomputed),
    // else refused by name and f32 kept.
    let r3 = read_report(&r3);
    let errors = r3["errors"].to_string();
    if xhand::nn::Precision::Bf16.check_supported().is_ok() {
        assert_eq!(r3["precision"], "bf16", "{r3}");
        assert_eq!(r3["details_stale"], false, "{r3}");
        assert!(r3["errors"].as_array().unwrap().is_empty(), "{r3}");
    } else {
        assert_eq!(r3["precision"], "f32", "{r3}");
        assert!(errors.contains("AVX-512 BF16"), "{r3}");
    }
}

/// The networks in the frame on the render GPU (forced on: lavapipe's `auto` keeps the
/// worker) draw the hand as the worker's outputs do, pose after pose; off, the worker's
/// outputs are drawn again.
#[test]
fn the_networks_run_in_the_frame_on_the_render_gpu() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let p = |name: &str| dir.path().join(name);
    let settle = serde_json::json!([{"wait_frames": 3}, {"wait_idle": true}, {"wait_frames": 2}]);
    let mut steps = vec![
        serde_json::json!({"show_ui": false}),
        serde_json::json!({"mode": "displacement"}),
        serde_json::json!({"set_joint": [4, 2, 1.2]}),
    ];
    let shot = |steps: &mut Vec<serde_json::Value>, name: &str| {
        steps.extend(settle.as_array().unwrap().iter().cloned());
        steps.push(serde_json::json!({"screenshot": p(&format!("{name}.png"))}));
        steps.push(serde_json::json!({"report": p(&format!("{name}.json"))}));
    };
    shot(&mut steps, "worker");
    steps.push(serde_json::json!({"nets_in_frame": "on"}));
    shot(&mut steps, "in_frame");
    steps.push(serde_json::json!({"set_joint": [8, 2, 1.0]}));
    shot(&mut steps, "in_frame_bent");
    steps.push(serde_json::json!({"nets_in_frame": "off"}));
    shot(&mut steps, "worker_bent");
    steps.push(serde_json::json!({"exit": 0}));
    run_script(dir.path(), &avatar, serde_json::Value::Array(steps));
    let report = |name: &str| read_report(&p(&format!("{name}.json")));
    let image = |name: &str| Rgba8::load(&p(&format!("{name}.png"))).unwrap();
    for (name, in_frame) in [
        ("worker", false),
        ("in_frame", true),
        ("in_frame_bent", true),
        ("worker_bent", false),
    ] {
        let r = report(name);
        assert_eq!(r["nets_in_frame"], in_frame, "{name}: {r}");
        assert!(r["errors"].as_array().unwrap().is_empty(), "{name}: {r}");
    }
    // Displacement heat maps (the GPU networks' ‖D‖ and geometry) against the worker's.
    for (a, b) in [("in_frame", "worker"), ("in_frame_bent", "worker_bent")] {
        let (ia, ib) = (image(a), image(b));
        let p = xhand::image_io::psnr(&ia, &ib, None);
        eprintln!("{a} vs {b}: PSNR {p:.1} dB");
        assert!(p >= 35.0, "{a} vs {b}: PSNR {p} dB");
    }
    let changed = (image("in_frame").pixels.iter())
        .zip(&image("in_frame_bent").pixels)
        .filter(|(a, b)| a != b)
        .count();
    assert!(changed > 300, "the bent pose changed {changed} pixels");
}

/// Pixels of `img` inside the viewport `[x0, y0, x1, y1]` that are not the background colour
/// `bg`, counted in the left and the right half.
fn hand_pixels_by_half(img: &Rgba8, viewport: &[f64], bg: [u8; 3]) -> (usize, usize) {
    let [x0, y0, x1, y1] = [0, 1, 2, 3].map(|k| viewport[k].round() as u32);
    let mid = (x0 + x1) / 2;
    let (mut left, mut right) = (0, 0);
    for y in y0..y1.min(img.height) {
        for x in x0..x1.min(img.width) {
            let p = img.pixels[(y * img.width + x) as usize];
            // Mask mode: the hand white, far from the dark background and the grid.
            if p[..3].iter().zip(bg).all(|(a, b)| a.abs_diff(b) > 120) {
                if x < mid {
                    left += 1;
                } else {
                    right += 1;
                }
            }
        }
    }
    (left, right)
}

#[test]
fn both_hands_of_a_hamer_dump_and_an_interhand_capture_show_together() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let fixture = |name: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/poses")
            .join(name)
    };
    let two = fixture("hamer_image_two_hands.json").display().to_string();
    let interhand = fixture("interhand.json");
    let (shot, shot2) = (dir.path().join("shot.png"), dir.path().join("shot2.png"));
    let (r1, r2, r3) = (
        dir.path().join("r1.json"),
        dir.path().join("r2.json"),
        dir.path().join("r3.json"),
    );
    run_script_at_home(
        dir.path(),
        &avatar,
        &["--pose", &two],
        serde_json::json!([
            // Without panels (and their notes) the whole window is the viewport.
            {"wait_idle": true}, {"mode": "mask"}, {"show_ui": false}, {"wait_frames": 5},
            {"screenshot": shot}, {"report": r1},
            {"export": {"what": "video"}}, {"wait_frames": 2}, {"wait_idle": true},
            // The joints panel edits the hand chosen; the other keeps its pose.
            {"hand": "left"}, {"preset": "fist"}, {"wait_idle": true}, {"wait_frames": 3},
            {"screenshot": shot2}, {"report": r2},
            // An InterHand file with two captures: the picker's default is both hands.
            {"drop_file": interhand}, {"wait_frames": 3}, {"load_choice": true},
            {"wait_idle": true}, {"wait_frames": 3}, {"report": r3},
            {"exit": 0}
        ]),
    );
    let r = read_report(&r1);
    assert!(r["errors"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(r["hands_drawn"], 2, "{r}");
    let sides: Vec<&str> = (r["hands"].as_array().unwrap().iter())
        .map(|h| h["side"].as_str().unwrap())
        .collect();
    assert_eq!(sides, ["right", "left"]);
    // Framed on both: each half of the viewport shows a hand (the image's hands lie apart).
    let vp: Vec<f64> = (r["viewport"].as_array().unwrap().iter())
        .map(|v| v.as_f64().unwrap())
        .collect();
    let image = Rgba8::load(&shot).unwrap();
    let (left, right) = hand_pixels_by_half(&image, &vp, [41, 43, 51]);
    assert!(
        left > 200 && right > 200,
        "hand pixels by half: {left}, {right}"
    );
    // The grid shows behind them, scaled to the scene (HaMeR's hands lie 30 m out, a
    // metre apart): the viewport's top eighth, hand-free, has lines across it.
    let (x0, x1, y0) = (vp[0] as u32, vp[2] as u32, vp[1] as u32);
    let grid_pixels = (y0..y0 + (vp[3] - vp[1]) as u32 / 8)
        .flat_map(|y| (x0..x1).map(move |x| (y * image.width + x) as usize))
        .filter(|&i| image.pixels[i][..3] != [41, 43, 51])
        .count();
    assert!(
        grid_pixels > (x1 - x0) as usize,
        "grid pixels in the top eighth: {grid_pixels}"
    );
    // The export draws both hands as the viewport does.
    let out = Path::new(r["output_dir"].as_str().unwrap());
    let (_, frames) = exported_video(out, "xhand-video-");
    assert_eq!(frames.len(), 1);
    let origin = [vp[0].round() as u32, vp[1].round() as u32];
    let db = psnr_against_viewport(&frames[0], &image, origin);
    assert!(
        db > 28.0,
        "the export is what the viewport showed: {db:.1} dB"
    );

    let r2 = read_report(&r2);
    assert_eq!(r2["selected_hand"], 1);
    assert_eq!(
        r2["hands"][0]["pose"], r["hands"][0]["pose"],
        "the right hand is untouched"
    );
    assert_ne!(
        r2["hands"][1]["pose"], r["hands"][1]["pose"],
        "the left hand made a fist"
    );
    assert_eq!(r2["hands_drawn"], 2);
    let fist = Rgba8::load(&shot2).unwrap();
    let (left2, right2) = hand_pixels_by_half(&fist, &vp, [41, 43, 51]);
    assert!(
        (left2 == left) != (right2 == right),
        "only one hand's pixels changed: {left}/{right} → {left2}/{right2}"
    );

    let r3 = read_report(&r3);
    assert!(r3["errors"].as_array().unwrap().is_empty(), "{r3}");
    assert_eq!(r3["hands_drawn"], 2, "{r3}");
    assert!(r3["frames"].as_u64().unwrap() >= 2, "{r3}");
}

#[test]
fn a_gpu_error_is_shown_and_the_viewer_goes_on() {
    require_display();
    let dir = tempfile::tempdir().unwrap();
    let avatar = avatar_file(dir.path());
    let (r1, r2, shot) = (
        dir.path().join("r1.json"),
        dir.path().join("r2.json"),
        dir.path().join("after.png"),
    );
    // One error: reported, and the hand still drawn. Errors every frame: the hands stop
    // (their passes are the likely cause), the app keeps running and exits normally.
    run_script(
        dir.path(),
        &avatar,
        serde_json::json!([
            {"wait_idle": true}, {"mode": "mask"}, {"gpu_errors": 1}, {"wait_frames": 5},
            {"preset": "fist"}, {"wait_idle": true}, {"wait_frames": 3}, {"screenshot": shot},
            {"report": r1}, {"gpu_errors": 3}, {"wait_frames": 12}, {"report": r2}, {"exit": 0}
        ]),
    );
    let r1 = read_report(&r1);
    let errors = r1["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{r1}");
    let e = errors[0].as_str().unwrap();
    assert!(e.contains("the GPU reported an error (Validation"), "{e}");
    let img = Rgba8::load(&shot).unwrap();
    let white = img
        .pixels
        .iter()
        .filter(|p| p[..3] == [255, 255, 255])
        .count();
    assert!(
        white > 1000,
        "the hand is still drawn after the error: {white} pixels"
    );
    let r2 = read_report(&r2);
    let errors = r2["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e
            .as_str()
            .unwrap()
            .contains("the hands are no longer drawn")),
        "{r2}"
    );
    // Errors that go on without the hands: nothing can be drawn, the viewer closes with
    // the reason (not Bevy's bare quit, not a panic).
    let script = dir.path().join("fail.json");
    let steps = serde_json::json!([
        {"wait_idle": true}, {"gpu_errors": 8}, {"wait_frames": 30}, {"exit": 0}
    ]);
    std::fs::write(&script, steps.to_string()).unwrap();
    let (ok, text) = xhand(
        &["view", &avatar, "--script", script.to_str().unwrap()],
        &[],
    );
    assert!(!ok, "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        text.contains("error: the GPU keeps failing") && text.contains("the viewer has to close"),
        "{text}"
    );
}
