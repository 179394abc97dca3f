//! A generated corpus of broken avatar and pose files: each must be rejected with an error
//! that names the file and the problem, and nothing may panic.

mod common;

use std::io::Write;
use std::path::Path;

use candle_core::Device;
use xhand::avatar::write::TensorWriter;
use xhand::avatar::{Avatar, AvatarError};
use xhand::pose::load_pose_file;
use xhand::synthetic::SyntheticSpec;

fn valid() -> TensorWriter {
    SyntheticSpec::test_avatar().build()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Loads `bytes` as an avatar file and returns the error text, asserting that it names the
/// file and contains every one of `needles`.
fn rejects(dir: &Path, name: &str, bytes: &[u8], needles: &[&str]) -> String {
    let path = write(dir, name, bytes);
    let result = std::panic::catch_unwind(|| Avatar::load(&path, &Device::Cpu));
    let err = match result {
        Err(_) => panic!("{name}: loading panicked"),
        Ok(Ok(_)) => panic!("{name}: a broken file was accepted"),
        Ok(Err(e)) => e.to_string(),
    };
    assert!(
        err.contains(name),
        "{name}: error does not name the file: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "{name}: error lacks `{n}`: {err}");
    }
    err
}

fn mutated(f: impl FnOnce(&mut TensorWriter)) -> Vec<u8> {
    let mut w = valid();
    f(&mut w);
    w.to_bytes().unwrap()
}

#[test]
fn valid_avatar_loads() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ok.safetensors", &valid().to_bytes().unwrap());
    Avatar::load(&p, &Device::Cpu).unwrap();
}

#[test]
fn corrupt_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = valid().to_bytes().unwrap();
    rejects(d, "empty.safetensors", b"", &["not a safetensors file"]);
    rejects(
        d,
        "truncated.safetensors",
        &good[..good.len() / 2],
        &["truncated"],
    );
    rejects(d, "header-only.safetensors", &good[..200], &[]);
    let mut extra = good.clone();
    extra.extend_from_slice(b"junk");
    rejects(d, "trailing.safetensors", &extra, &["trailing"]);
    // Random bytes (a fixed LCG so the corpus is reproducible).
    let mut x = 12345u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect();
    rejects(d, "noise.safetensors", &noise, &[]);
    rejects(d, "pose.safetensors", br#"{"pose": [0, 0, 0]}"#, &["JSON"]);
    // A header that claims 10^12 elements for a tiny buffer.
    let header = br#"{"verts":{"dtype":"F32","shape":[1000000000000,3],"data_offsets":[0,12]}}"#;
    let mut huge = (header.len() as u64).to_le_bytes().to_vec();
    huge.extend_from_slice(header);
    huge.extend_from_slice(&[0u8; 12]);
    rejects(d, "huge-claim.safetensors", &huge, &["size"]);
    // A header length beyond the file.
    let mut lying = (1u64 << 40).to_le_bytes().to_vec();
    lying.extend_from_slice(b"{}");
    rejects(d, "lying-length.safetensors", &lying, &[]);
}

#[test]
fn oversized_and_non_files_are_rejected_without_reading() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("two-gigabytes.safetensors");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(2_000_000_000).unwrap(); // sparse: no disk used
    let err = Avatar::load(&big, &Device::Cpu).unwrap_err().to_string();
    assert!(
        err.contains("two-gigabytes") && err.contains("2.0 GB"),
        "{err}"
    );
    let err = Avatar::load(dir.path(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("folder"), "{err}");
    let err = Avatar::load(&dir.path().join("missing.safetensors"), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing.safetensors") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn invalid_contents_name_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v = |w: &TensorWriter| {
        let bytes = w.to_bytes().unwrap();
        let a = Avatar::from_bytes("x", bytes, &Device::Cpu).unwrap();
        a.num_vertices()
    };
    let nv = v(&valid());

    let oob = format!("index {nv}");
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "no-verts",
            mutated(|w| {
                w.remove("verts");
            }),
            vec!["`verts`", "missing"],
        ),
        (
            "no-lbs-layer",
            mutated(|w| {
                w.remove("lbs_net.lin0.weight");
            }),
            vec!["lbs_net.lin0.weight", "missing"],
        ),
        (
            "no-joints",
            mutated(|w| {
                w.remove("joints");
            }),
            vec!["joints", "J_regressor"],
        ),
        (
            "nan-weight",
            mutated(|w| {
                let mut data = vec![0.1f32; 32 * 32];
                data[17] = f32::NAN;
                w.f32("delta_net.lin1.weight", &[32, 32], &data);
            }),
            vec!["delta_net.lin1.weight", "non-finite", "17"],
        ),
        (
            "inf-verts",
            mutated(|w| {
                let mut data = vec![0.0f32; nv * 3];
                data[5] = f32::INFINITY;
                w.f32("verts", &[nv, 3], &data);
            }),
            vec!["`verts`", "non-finite"],
        ),
        (
            "wrong-width",
            mutated(|w| {
                w.f32("delta_net.lin1.weight", &[32, 31], &vec![0.1; 32 * 31]);
            }),
            vec!["delta_net.lin1.weight", "[32, 31]", "expected [?, 32]"],
        ),
        (
            "wrong-latent",
            mutated(|w| {
                w.f32("color_net.latent_code", &[nv, 12], &vec![0.1; nv * 12]);
            }),
            vec!["color_net.lin0.weight", "latent_code width 12"],
        ),
        (
            "zero-width-layer",
            mutated(|w| {
                w.f32("delta_net.lin1.weight", &[0, 32], &[]);
            }),
            vec!["delta_net.lin1.weight", "empty dimension"],
        ),
        (
            "zero-latent",
            mutated(|w| {
                w.f32("color_net.latent_code", &[nv, 0], &[]);
            }),
            vec!["color_net.latent_code", "empty dimension"],
        ),
        (
            "wrong-static",
            mutated(|w| {
                w.f32("lbs_net.static_code", &[10, 15], &vec![0.1; 150]);
            }),
            vec!["lbs_net.static_code", "[10, 15]"],
        ),
        (
            "verts-rank",
            mutated(|w| {
                w.f32("verts", &[nv * 3], &vec![0.0; nv * 3]);
            }),
            vec!["`verts`", "expected [?, 3]"],
        ),
        (
            "face-oob",
            mutated(|w| {
                w.i32("faces", &[1, 3], &[0, 1, nv as i32]);
            }),
            vec!["`faces`", &oob],
        ),
        (
            "face-negative",
            mutated(|w| {
                w.i64("faces", &[1, 3], &[0, -1, 2]);
            }),
            vec!["`faces`", "-1"],
        ),
        (
            "float-faces",
            mutated(|w| {
                w.f32("faces", &[1, 3], &[0.0, 1.0, 2.0]);
            }),
            vec!["`faces`", "F32", "integer"],
        ),
        (
            "int-verts",
            mutated(|w| {
                w.i32("verts", &[3, 3], &[0; 9]);
            }),
            vec!["`verts`", "I32", "float"],
        ),
        (
            "parents-cycle",
            mutated(|w| {
                let mut p = xhand::skeleton::MANO_PARENTS;
                p[1] = 3;
                w.i64("parents", &[16], &p);
            }),
            vec!["`parents`", "cycle"],
        ),
        (
            "parents-root",
            mutated(|w| {
                let mut p = xhand::skeleton::MANO_PARENTS;
                p[0] = 0;
                w.i64("parents", &[16], &p);
            }),
            vec!["`parents`", "root"],
        ),
        (
            "parents-short",
            mutated(|w| {
                w.i64("parents", &[15], &xhand::skeleton::MANO_PARENTS[..15]);
            }),
            vec!["`parents`", "[15]"],
        ),
        (
            "hand-type",
            mutated(|w| {
                w.meta("hand_type", "both");
            }),
            vec!["hand_type", "both"],
        ),
        (
            "color-order",
            mutated(|w| {
                w.meta("color_order", "xyz");
            }),
            vec!["color_order"],
        ),
        (
            "renderer-no-code",
            mutated(|w| {
                w.remove("render_code");
            }),
            vec!["render_code"],
        ),
        (
            "renderer-wrong-input",
            mutated(|w| {
                w.f32(
                    "renderer.model.linear1.weight",
                    &[64, 270],
                    &vec![0.0; 64 * 270],
                );
            }),
            vec!["renderer.model.linear1.weight", "271"],
        ),
        (
            "renderer-skip",
            mutated(|w| {
                w.f32(
                    "renderer.model.linear4.weight",
                    &[64, 64],
                    &vec![0.0; 64 * 64],
                );
            }),
            vec!["renderer.model.linear4.weight", "expected [?, 335]"],
        ),
        (
            "zero-norm",
            mutated(|w| {
                w.remove("delta_net.lin2.weight");
                w.f32("delta_net.lin2.weight_v", &[32, 32], &vec![0.0; 32 * 32]);
                w.f32("delta_net.lin2.weight_g", &[32, 1], &[1.0; 32]);
            }),
            vec!["delta_net.lin2.weight_v", "zero norm"],
        ),
        (
            "half-weight-norm",
            mutated(|w| {
                w.remove("delta_net.lin2.weight");
                w.f32("delta_net.lin2.weight_v", &[32, 32], &vec![1.0; 32 * 32]);
            }),
            vec!["delta_net.lin2.weight_g", "missing"],
        ),
        (
            "no-sh",
            mutated(|w| {
                w.remove("sh_coeffs");
            }),
            vec!["sh_coeffs"],
        ),
        (
            "empty-sh",
            mutated(|w| {
                w.f32("sh_coeffs", &[0, 27], &[]);
            }),
            vec!["sh_coeffs", "empty dimension"],
        ),
        (
            "pose-mean",
            mutated(|w| {
                w.f32("pose_mean", &[45], &[0.0; 45]);
            }),
            vec!["pose_mean", "[48]"],
        ),
    ];
    for (name, bytes, needles) in cases {
        rejects(d, &format!("{name}.safetensors"), &bytes, &needles);
    }
}

#[test]
fn half_precision_avatars_load_and_match_f32() {
    let mut spec = SyntheticSpec::test_avatar();
    let full = spec.avatar(&Device::Cpu).unwrap();
    spec.storage = xhand::avatar::write::FloatStorage::F16;
    let half = spec.avatar(&Device::Cpu).unwrap();
    assert!(half.summary.dtypes.contains(&xhand::avatar::FloatKind::F16));
    let f = xhand::pose::PoseFrame::default();
    let a = full.evaluate(&f, 0).unwrap();
    let b = half.evaluate(&f, 0).unwrap();
    common::assert_close(
        "f16 vs f32 vertices",
        &common::flat3(&a.geometry.vertices),
        &common::flat3(&b.geometry.vertices),
        2e-3,
    );
}

fn pose_rejects(dir: &Path, name: &str, text: &[u8], needles: &[&str]) {
    let path = write(dir, name, text);
    let result = std::panic::catch_unwind(|| load_pose_file(&path));
    let err = match result {
        Err(_) => panic!("{name}: pose parsing panicked"),
        Ok(Ok(_)) => panic!("{name}: a broken pose file was accepted"),
        Ok(Err(e)) => e.to_string(),
    };
    assert!(
        err.contains(name),
        "{name}: error does not name the file: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "{name}: error lacks `{n}`: {err}");
    }
}

#[test]
fn broken_pose_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let z = |n: usize| vec!["0"; n].join(",");
    pose_rejects(d, "empty.json", b"", &["malformed JSON", ":1:"]);
    pose_rejects(
        d,
        "syntax.json",
        b"{\n  \"pose\": [0, 0,\n  ]\n}",
        &[":3:", "malformed"],
    );
    pose_rejects(
        d,
        "short.json",
        format!("{{\"pose\":[{}]}}", z(47)).as_bytes(),
        &["pose", "expected 48", "found 47"],
    );
    pose_rejects(
        d,
        "nan.json",
        format!("{{\"pose\":[{},NaN]}}", z(47)).as_bytes(),
        &["malformed"],
    );
    pose_rejects(
        d,
        "string.json",
        format!("{{\"pose\":[{},\"x\"]}}", z(47)).as_bytes(),
        &["pose[47]", "a string"],
    );
    pose_rejects(
        d,
        "huge-value.json",
        format!("{{\"pose\":[{},1e300]}}", z(47)).as_bytes(),
        &["pose[47]", "out of range"],
    );
    pose_rejects(
        d,
        "overflow.json",
        format!("{{\"pose\":[{},1e999]}}", z(47)).as_bytes(),
        &["malformed"],
    );
    pose_rejects(
        d,
        "no-frames.json",
        b"{\"fps\": 30, \"frames\": []}",
        &["empty"],
    );
    pose_rejects(
        d,
        "bad-frame.json",
        format!("{{\"frames\":[{{\"pose\":[{}]}}, 3]}}", z(48)).as_bytes(),
        &["frames[1]", "found a number"],
    );
    pose_rejects(
        d,
        "bad-hand.json",
        format!("{{\"pose\":[{}], \"hand\":\"both\"}}", z(48)).as_bytes(),
        &["hand", "both"],
    );
    pose_rejects(
        d,
        "bad-trans.json",
        format!("{{\"pose\":[{}], \"trans\":[1,2]}}", z(48)).as_bytes(),
        &["trans", "expected 3"],
    );
    pose_rejects(
        d,
        "bad-scale.json",
        format!("{{\"pose\":[{}], \"scale\":0}}", z(48)).as_bytes(),
        &["scale", "positive"],
    );
    pose_rejects(
        d,
        "bad-sh.json",
        format!("{{\"pose\":[{}], \"sh\":[1]}}", z(48)).as_bytes(),
        &["sh", "expected 27"],
    );
    pose_rejects(
        d,
        "bad-fps.json",
        format!("{{\"fps\": -1, \"frames\":[{{\"pose\":[{}]}}]}}", z(48)).as_bytes(),
        &["fps"],
    );
    pose_rejects(d, "list.json", b"[1, 2, 3]", &["not a pose file"]);
    pose_rejects(d, "neither.json", b"{\"poses\": []}", &["not a pose file"]);
    pose_rejects(d, "binary.json", &[0xff, 0xfe, 0x00, 0x81], &["not UTF-8"]);
    let big = d.join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2_000_000_000)
        .unwrap();
    let err = load_pose_file(&big).unwrap_err().to_string();
    assert!(err.contains("big.json") && err.contains("MB"), "{err}");
    // Deeply nested JSON must not overflow the stack.
    let mut deep = std::fs::File::create(d.join("deep.json")).unwrap();
    deep.write_all(&vec![b'['; 100_000]).unwrap();
    pose_rejects(d, "deep.json", &vec![b'['; 100_000], &["malformed"]);
}

#[test]
fn error_types_are_typed() {
    let e = Avatar::from_bytes("mem", vec![1, 2, 3], &Device::Cpu).unwrap_err();
    assert!(matches!(e, AvatarError::File { .. }));
}
