//! Importing real XHand checkpoints and MANO pickles (tests/fixtures/import, made by torch 1.13,
//! torch 2, Python 2.7 + chumpy), and refusing broken and hostile files.

#[path = "common/pickle_writer.rs"]
mod pickle_writer;

use std::path::{Path, PathBuf};

use candle_core::Device;
use pickle_writer::{PickleWriter, npy, npz, torch_zip};
use safetensors::SafeTensors;
use xhand::avatar::Avatar;
use xhand::torch::checkpoint::Checkpoint;
use xhand::torch::mano::ManoModel;
use xhand::torch::pickle::Pickle;
use xhand::torch::xhand::XHandCheckpoint;
use xhand::torch::{ImportError, import};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

const MANO_PY2: &str = "mano_like_right.pkl";
const MANO_PY3: &str = "mano_like_right_dechumpy_py3.pkl";

fn imported_bytes(ckpt: &str, mano: &str) -> Vec<u8> {
    let imp = import(&fixture(ckpt), &fixture(mano)).unwrap_or_else(|e| panic!("{e}"));
    imp.writer.to_bytes().unwrap()
}

/// Names, dtypes, shapes and bytes equal (joints to 1e-6), metadata as the README says.
fn assert_matches_expected(ours: &[u8], expected_file: &str) {
    let expected = std::fs::read(fixture(expected_file)).unwrap();
    let a = SafeTensors::deserialize(ours).unwrap();
    let b = SafeTensors::deserialize(&expected).unwrap();
    let mut na: Vec<String> = a.names().into_iter().map(String::from).collect();
    let mut nb: Vec<String> = b.names().into_iter().map(String::from).collect();
    na.sort();
    nb.sort();
    assert_eq!(na, nb, "tensor names");
    for name in &nb {
        let (ta, tb) = (a.tensor(name).unwrap(), b.tensor(name).unwrap());
        assert_eq!(ta.dtype(), tb.dtype(), "{name} dtype");
        assert_eq!(ta.shape(), tb.shape(), "{name} shape");
        if name == "joints" {
            let f = |d: &[u8]| -> Vec<f32> {
                d.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect()
            };
            for (x, y) in f(ta.data()).iter().zip(f(tb.data())) {
                assert!((x - y).abs() <= 1e-6, "joints {x} vs {y}");
            }
        } else {
            assert!(ta.data() == tb.data(), "{name}: values differ");
        }
    }
    let (_, meta_a) = SafeTensors::read_metadata(ours).unwrap();
    let (_, meta_b) = SafeTensors::read_metadata(&expected).unwrap();
    let (ma, mb) = (
        meta_a.metadata().clone().unwrap(),
        meta_b.metadata().clone().unwrap(),
    );
    for (k, v) in &mb {
        assert_eq!(ma.get(k), Some(v), "metadata {k}");
    }
    assert!(
        ma.get("source")
            .is_some_and(|s| s.contains("imported by xhand"))
    );
}

#[test]
fn torch_1_13_checkpoint_imports_bit_exactly() {
    assert_matches_expected(
        &imported_bytes("xhand_model_small.pth", MANO_PY2),
        "xhand_model_small_expected.safetensors",
    );
}

#[test]
fn torch_2_checkpoint_imports_bit_exactly() {
    assert_matches_expected(
        &imported_bytes("xhand_model_small_torch2.pth", MANO_PY2),
        "xhand_model_small_torch2_expected.safetensors",
    );
}

#[test]
fn cuda_checkpoint_imports_like_its_cpu_twin() {
    let cpu = imported_bytes("xhand_model_small.pth", MANO_PY2);
    let cuda = imported_bytes("xhand_model_small_cuda.pth", MANO_PY2);
    assert!(same_tensors(&cpu, &cuda));
}

/// Whether two safetensors files hold the same tensors bit for bit (the `source` note, which
/// names the input files, may differ).
fn same_tensors(a: &[u8], b: &[u8]) -> bool {
    let list = |b: &[u8]| {
        let st = SafeTensors::deserialize(b).unwrap();
        let mut v: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
            .collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    list(a) == list(b)
}

#[test]
fn python_2_and_python_3_mano_pickles_agree() {
    let a = ManoModel::open(&fixture(MANO_PY2)).unwrap();
    let b = ManoModel::open(&fixture(MANO_PY3)).unwrap();
    assert_eq!(a.j_regressor, b.j_regressor);
    assert_eq!(a.hands_mean, b.hands_mean);
    assert_eq!(a.parents, b.parents);
    assert_eq!(
        a.parents,
        [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
    );
    assert_eq!(a.v_template, b.v_template);
    assert_eq!(a.faces.as_ref().map(Vec::len), Some(1538));
    let nnz = a.j_regressor.iter().filter(|&&x| x != 0.0).count();
    assert_eq!(nnz, 192, "the CSC regressor's non-zeros");
    assert!(same_tensors(
        &imported_bytes("xhand_model_small.pth", MANO_PY2),
        &imported_bytes("xhand_model_small.pth", MANO_PY3)
    ));
}

#[test]
fn stale_weight_attributes_are_left_out_and_fortran_strides_honoured() {
    let ck = Checkpoint::open(&fixture("xhand_model_small.pth")).unwrap();
    let xh = XHandCheckpoint::from_checkpoint(&ck).unwrap();
    assert_eq!(xh.root_class, "models.XHand.XHand");
    assert_eq!(
        xh.skipped_attributes.len(),
        21,
        "{:?}",
        xh.skipped_attributes
    );
    assert!(
        xh.state_dict
            .iter()
            .all(|(n, _)| !n.ends_with(".lin0.weight"))
    );
    // pe.dirs is stored with strides (1, 3): read row-major it equals XHand's directions.
    let dirs = xh.pe_dirs.as_ref().unwrap().to_f32();
    for (j, d) in xhand::nn::posenc::PE_DIRS.iter().enumerate() {
        for c in 0..3 {
            assert!((dirs[c * 21 + j] - d[c]).abs() < 1e-6, "pe.dirs[{c}][{j}]");
        }
    }
    let imp = import(&fixture("xhand_model_small.pth"), &fixture(MANO_PY2)).unwrap();
    assert!(imp.report.warnings.is_empty(), "{:?}", imp.report.warnings);
    assert!(imp.report.mano_joint_distance_m.unwrap() < 0.03);
}

#[test]
fn a_checkpoint_opens_directly_and_evaluates_like_its_import() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imported.safetensors");
    std::fs::write(&out, imported_bytes("xhand_model_small.pth", MANO_PY2)).unwrap();
    let direct = Avatar::open(
        &fixture("xhand_model_small.pth"),
        Some(&fixture(MANO_PY2)),
        &Device::Cpu,
    )
    .unwrap();
    let file = Avatar::load(&out, &Device::Cpu).unwrap();
    assert!(
        direct.summary.unused.is_empty(),
        "{:?}",
        direct.summary.unused
    );
    assert_eq!(direct.summary.renderer_layers.len(), 8);
    let mut pose = xhand::pose::PoseFrame::default();
    pose.pose[5] = 0.7;
    pose.pose[20] = -0.4;
    let a = direct.embed(&pose).unwrap();
    let b = file.embed(&pose).unwrap();
    assert_eq!(a.delta, b.delta);
    assert_eq!(a.albedo, b.albedo);
    assert_eq!(a.lbs_weights, b.lbs_weights);
}

#[test]
fn a_checkpoint_without_mano_asks_for_it() {
    let e = Avatar::load(&fixture("xhand_model_small.pth"), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("xhand_model_small.pth") && e.contains("--mano"),
        "{e}"
    );
}

/// A MANO-like pickle (Python 3, protocol 2) with the given arrays.
fn mano_pickle(with_regressor: bool, mirror: bool) -> Vec<u8> {
    let m = ManoModel::open(&fixture(MANO_PY2)).unwrap();
    let mut w = PickleWriter::new();
    w.op(b"}").mark();
    if with_regressor {
        w.text("J_regressor")
            .ndarray_f64(&[16, 778], &m.j_regressor);
    }
    w.text("hands_mean").ndarray_f64(&[45], &m.hands_mean);
    let mut kt: Vec<i64> = m.parents.to_vec();
    kt[0] = 4294967295;
    kt.extend(0..16);
    w.text("kintree_table").ndarray_i64(&[2, 16], &kt);
    let vt: Vec<f64> = m
        .v_template
        .unwrap()
        .iter()
        .flat_map(|p| [if mirror { -p[0] } else { p[0] }, p[1], p[2]])
        .collect();
    w.text("v_template").ndarray_f64(&[778, 3], &vt);
    w.op(b"u");
    w.finish()
}

fn expect_error(result: Result<impl Sized, ImportError>, file: &Path, needle: &str) {
    match result {
        Ok(_) => panic!("{} was accepted", file.display()),
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains(&*file.file_name().unwrap().to_string_lossy()),
                "error does not name the file: {text}"
            );
            assert!(
                text.to_lowercase().contains(&needle.to_lowercase()),
                "error `{text}` does not mention `{needle}`"
            );
        }
    }
}

#[test]
fn a_dense_regressor_pickle_reads_and_the_wrong_hand_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let right = dir.path().join("right_dense.pkl");
    std::fs::write(&right, mano_pickle(true, false)).unwrap();
    let ours = import(&fixture("xhand_model_small.pth"), &right).unwrap();
    assert_matches_expected(
        &ours.writer.to_bytes().unwrap(),
        "xhand_model_small_expected.safetensors",
    );
    let left = dir.path().join("MANO_LEFT.pkl");
    std::fs::write(&left, mano_pickle(true, true)).unwrap();
    expect_error(
        import(&fixture("xhand_model_small.pth"), &left),
        &left,
        "other hand",
    );
    let no_reg = dir.path().join("no_regressor.pkl");
    std::fs::write(&no_reg, mano_pickle(false, false)).unwrap();
    expect_error(ManoModel::open(&no_reg), &no_reg, "J_regressor");
}

#[test]
fn an_smplx_npz_model_file_imports_like_the_pickle() {
    let m = ManoModel::open(&fixture(MANO_PY2)).unwrap();
    let f8 = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut kt: Vec<i64> = m.parents.to_vec();
    kt[0] = -1;
    kt.extend(0..16);
    let vt: Vec<f64> = m
        .v_template
        .clone()
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    let file = npz(&[
        ("J_regressor", npy("<f8", &[16, 778], &f8(&m.j_regressor))),
        ("hands_meanr", npy("<f8", &[45], &f8(&m.hands_mean))),
        ("hands_mean", npy("<f8", &[45], &f8(&m.hands_mean))),
        (
            "kintree_table",
            npy(
                "<i8",
                &[2, 16],
                &kt.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
            ),
        ),
        ("v_template", npy("<f8", &[778, 3], &f8(&vt))),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("MANO_RIGHT.npz");
    std::fs::write(&p, file).unwrap();
    let ours = import(&fixture("xhand_model_small.pth"), &p).unwrap();
    assert_matches_expected(
        &ours.writer.to_bytes().unwrap(),
        "xhand_model_small_expected.safetensors",
    );
}

/// Storage bytes and a state_dict pickle for the expected import's network tensors.
fn state_dict_zip(rename: Option<(&str, &str)>) -> Vec<u8> {
    let expected = std::fs::read(fixture("xhand_model_small_expected.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&expected).unwrap();
    let mut w = PickleWriter::new();
    w.global("collections", "OrderedDict").op(b")R").mark();
    let mut storages = Vec::new();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    for name in names {
        if [
            "verts",
            "faces",
            "template_v",
            "joints",
            "parents",
            "pose_mean",
            "J_regressor",
        ]
        .contains(&name.as_str())
        {
            continue;
        }
        let t = st.tensor(&name).unwrap();
        let key = storages.len().to_string();
        let numel: usize = t.shape().iter().product();
        let shape: Vec<i64> = t.shape().iter().map(|&s| s as i64).collect();
        let mut stride = vec![1i64; shape.len()];
        for k in (0..shape.len().saturating_sub(1)).rev() {
            stride[k] = stride[k + 1] * shape[k + 1];
        }
        let shown = match rename {
            Some((from, to)) if name == from => to.to_string(),
            _ => name.clone(),
        };
        w.text(&shown)
            .tensor("FloatStorage", &key, numel as i64, 0, &shape, &stride);
        storages.push((key, t.data().to_vec()));
    }
    w.op(b"u");
    let pkl = w.finish();
    let refs: Vec<(&str, Vec<u8>)> = storages
        .iter()
        .map(|(k, d)| (k.as_str(), d.clone()))
        .collect();
    torch_zip("archive", &pkl, &refs)
}

#[test]
fn a_state_dict_file_reads_and_needs_a_matching_template() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("state_dict.pth");
    std::fs::write(&p, state_dict_zip(None)).unwrap();
    let ck = Checkpoint::open(&p).unwrap();
    let xh = XHandCheckpoint::from_checkpoint(&ck).unwrap();
    assert_eq!(xh.root_class, "state_dict");
    assert!(xh.verts.is_none());
    assert_eq!(xh.state_dict.len(), 90, "network tensors");
    // Without XHand's template the MANO mesh is subdivided to 49,281 vertices, which these
    // 300-vertex networks do not fit: a clear error rather than a wrong avatar.
    expect_error(import(&p, &fixture(MANO_PY2)), &p, "300 vertices");
}

#[test]
fn a_misnamed_renderer_layer_is_reported_as_unused() {
    let dir = tempfile::tempdir().unwrap();
    let good = imported_bytes("xhand_model_small.pth", MANO_PY2);
    let st = SafeTensors::deserialize(&good).unwrap();
    let mut w = xhand::avatar::write::TensorWriter::new();
    for (name, t) in st.tensors() {
        let name = name.replace("renderer.model.linear1.", "renderer.model.lin1.");
        w.raw(&name, t.dtype(), t.shape(), t.data());
    }
    let p = dir.path().join("misnamed.safetensors");
    w.save(&p).unwrap();
    let a = Avatar::load(&p, &Device::Cpu).unwrap();
    assert!(a.renderer.is_none());
    let warn = a.summary.unused_warning().unwrap();
    assert!(
        warn.contains("renderer.model.lin1.weight") && warn.contains("SH only"),
        "{warn}"
    );
}

#[test]
fn broken_and_hostile_checkpoints_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let real = std::fs::read(fixture("xhand_model_small.pth")).unwrap();
    let open = |p: &Path| Checkpoint::open(p).and_then(|c| XHandCheckpoint::from_checkpoint(&c));

    let p = write("empty.pth", b"");
    expect_error(open(&p), &p, "empty");
    let p = write("truncated.pth", &real[..real.len() / 2]);
    expect_error(open(&p), &p, "zip");
    let p = write(
        "random.pth",
        &(0..5000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    );
    expect_error(open(&p), &p, "not a PyTorch checkpoint");
    let p = write("legacy.pth", b"\x80\x02\x8a\x0alZ\xfc\x9cF\xf9 j\xa8P\x19.");
    expect_error(open(&p), &p, "legacy");

    let p = write(
        "no_pkl.pth",
        &torch_zip("archive", b"", &[]).replace_name("archive/data.pkl", "archive/data.pkx"),
    );
    expect_error(open(&p), &p, "data.pkl");

    // A tensor whose storage record is missing, or shorter than it claims.
    let mut w = PickleWriter::new();
    w.op(b"}")
        .text("w")
        .tensor("FloatStorage", "0", 6, 0, &[2, 3], &[3, 1])
        .op(b"s");
    let pkl = w.finish();
    let p = write("missing_storage.pth", &torch_zip("archive", &pkl, &[]));
    expect_error(open(&p), &p, "missing");
    let p = write(
        "short_storage.pth",
        &torch_zip("archive", &pkl, &[("0", vec![0; 8])]),
    );
    expect_error(open(&p), &p, "bytes");

    // Element counts: negative, 10^12, and a view past its storage.
    for (name, numel, shape) in [
        ("negative.pth", -5i64, vec![2i64, 3]),
        ("huge.pth", 1_000_000_000_000, vec![1_000_000, 1_000_000]),
        ("overrun.pth", 6, vec![4, 3]),
    ] {
        let mut w = PickleWriter::new();
        let stride = vec![shape[1], 1];
        w.op(b"}")
            .text("w")
            .tensor("FloatStorage", "0", numel, 0, &shape, &stride)
            .op(b"s");
        let p = write(
            name,
            &torch_zip("archive", &w.finish(), &[("0", vec![0; 24])]),
        );
        let e = open(&p).err().unwrap_or_else(|| panic!("{name} accepted"));
        assert!(e.to_string().contains(name), "{e}");
    }

    // A 200,000-deep nesting bomb.
    let mut bomb = vec![0x80, 2];
    bomb.extend(std::iter::repeat_n(b']', 200_000));
    bomb.extend(std::iter::repeat_n(b'a', 199_999));
    bomb.push(b'.');
    let p = write("bomb.pth", &torch_zip("archive", &bomb, &[]));
    expect_error(open(&p), &p, "nest");

    // Pickles that would run code: nothing runs, and they are not checkpoints.
    let marker = dir.path().join("ran");
    let cmd = format!("touch {}", marker.display());
    for (name, module, func) in [
        ("os_system.pth", "os", "system"),
        ("eval.pth", "builtins", "eval"),
        ("posix.pth", "posix", "system"),
        ("subprocess.pth", "subprocess", "check_call"),
    ] {
        let mut w = PickleWriter::new();
        w.global(module, func).mark().text(&cmd).tuple().op(b"R");
        let p = write(name, &torch_zip("archive", &w.finish(), &[]));
        expect_error(open(&p), &p, "not an XHand module");
    }
    // The same inside a plausible state_dict: the call stays an inert value.
    let mut w = PickleWriter::new();
    w.op(b"}")
        .mark()
        .text("w")
        .tensor("FloatStorage", "0", 1, 0, &[1], &[1]);
    w.text("payload")
        .global("os", "system")
        .mark()
        .text(&cmd)
        .tuple()
        .op(b"R")
        .op(b"u");
    let p = write(
        "payload.pth",
        &torch_zip("archive", &w.finish(), &[("0", vec![0; 4])]),
    );
    let ck = Checkpoint::open(&p).unwrap();
    let xh = XHandCheckpoint::from_checkpoint(&ck).unwrap();
    assert_eq!(xh.state_dict.len(), 1);
    assert!(!marker.exists(), "a pickle ran a command");
}

trait ReplaceName {
    fn replace_name(self, from: &str, to: &str) -> Vec<u8>;
}

impl ReplaceName for Vec<u8> {
    /// Renames a zip entry in place (same length names).
    fn replace_name(mut self, from: &str, to: &str) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let (f, t) = (from.as_bytes(), to.as_bytes());
        let mut i = 0;
        while i + f.len() <= self.len() {
            if &self[i..i + f.len()] == f {
                self[i..i + f.len()].copy_from_slice(t);
            }
            i += 1;
        }
        self
    }
}

/// A small deterministic generator for the mutation test (no dependency on rand's streams).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn mutate(bytes: &[u8], rng: &mut SplitMix) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for _ in 0..1 + rng.next() % 4 {
        let i = (rng.next() % b.len() as u64) as usize;
        match rng.next() % 3 {
            0 => b[i] ^= 1 << (rng.next() % 8),
            1 => b[i] = rng.next() as u8,
            _ => b.truncate(i.max(1)),
        }
    }
    b
}

#[test]
fn thousands_of_byte_flips_never_panic() {
    // The zip layer checks CRCs, so flips in a checkpoint mostly stop there; each fixture's
    // pickle is mutated directly as well, then walked and imported like a checkpoint's.
    let mano = ManoModel::open(&fixture(MANO_PY2)).unwrap();
    let path = Path::new("mutant.pth");
    let mut rng = SplitMix(20261204);
    for (name, prefix) in [
        ("xhand_model_small.pth", "xhand_model_small"),
        ("xhand_model_small_cuda.pth", "xhand_model_small_cuda"),
        ("xhand_model_small_torch2.pth", "xhand_model_small_torch2"),
    ] {
        let ck_bytes = std::fs::read(fixture(name)).unwrap();
        let ck = Checkpoint::open(&fixture(name)).unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&ck_bytes)).unwrap();
        let mut pkl = Vec::new();
        std::io::Read::read_to_end(
            &mut zip.by_name(&format!("{prefix}/data.pkl")).unwrap(),
            &mut pkl,
        )
        .unwrap();
        for _ in 0..2000 {
            let m = mutate(&ck_bytes, &mut rng);
            if let Ok(c) = Checkpoint::from_bytes(path, &m)
                && let Ok(x) = XHandCheckpoint::from_checkpoint(&c)
            {
                let _ = xhand::torch::import::assemble(path, &x, &mano);
            }
            let m = mutate(&pkl, &mut rng);
            if let Ok(p) = Pickle::parse(&m) {
                let c = ck.with_pickle(p);
                if let Ok(x) = XHandCheckpoint::from_checkpoint(&c) {
                    let _ = xhand::torch::import::assemble(path, &x, &mano);
                }
            }
        }
    }
    for name in [MANO_PY2, MANO_PY3] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        for _ in 0..2000 {
            let m = mutate(&bytes, &mut rng);
            let _ = ManoModel::from_bytes(Path::new("mutant.pkl"), &m);
        }
    }
}

fn xhand_cli(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xhand"))
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

#[test]
fn import_info_and_eval_commands_take_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let pth = fixture("xhand_model_small.pth").display().to_string();
    let mano = fixture(MANO_PY2).display().to_string();
    let out = dir.path().join("hand.safetensors");
    let out_s = out.display().to_string();

    let (ok, text) = xhand_cli(&["import", &pth, "--mano", &mano, "--out", &out_s]);
    assert!(ok, "{text}");
    assert!(
        text.contains("21 stale weight-norm") && text.contains("300 vertices"),
        "{text}"
    );
    assert_matches_expected(
        &std::fs::read(&out).unwrap(),
        "xhand_model_small_expected.safetensors",
    );
    let (ok, text) = xhand_cli(&["import", &pth, "--mano", &mano, "--out", &out_s]);
    assert!(!ok && text.contains("--force"), "{text}");
    let (ok, text) = xhand_cli(&["import", &pth, "--mano", &mano, "--out", &out_s, "--force"]);
    assert!(ok, "{text}");

    let (ok, text) = xhand_cli(&["info", &pth, "--mano", &mano]);
    assert!(
        ok && text.contains("300 vertices") && text.contains("colours:     bgr"),
        "{text}"
    );
    let (ok, text) = xhand_cli(&["info", &pth]);
    assert!(!ok && text.contains("--mano"), "{text}");

    let pose = dir.path().join("pose.json");
    let mut p = [0.0f32; 48];
    p[7] = 0.6;
    p[31] = -0.3;
    std::fs::write(&pose, format!("{{\"pose\": {p:?}}}")).unwrap();
    let pose_s = pose.display().to_string();
    let (a, b) = (
        dir.path().join("a.safetensors"),
        dir.path().join("b.safetensors"),
    );
    let (ok, text) = xhand_cli(&[
        "eval",
        "--avatar",
        &pth,
        "--mano",
        &mano,
        "--pose",
        &pose_s,
        "--out",
        a.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let (ok, text) = xhand_cli(&[
        "eval",
        "--avatar",
        &out_s,
        "--pose",
        &pose_s,
        "--out",
        b.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(same_tensors(
        &std::fs::read(&a).unwrap(),
        &std::fs::read(&b).unwrap()
    ));
}

/// Dropping a checkpoint on the viewer asks for its MANO file once; dropping the MANO file
/// opens the avatar, and the next run opens the checkpoint without asking.
#[cfg(feature = "viewer")]
#[test]
fn the_viewer_opens_a_dropped_checkpoint_and_remembers_its_mano_file() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "the viewer tests need a display; run them with scripts/test.sh (Xvfb)"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let run = |name: &str, steps: serde_json::Value| -> serde_json::Value {
        let script = dir.path().join(format!("{name}.json"));
        let report = dir.path().join(format!("{name}-report.json"));
        let mut steps = steps.as_array().unwrap().clone();
        steps.push(serde_json::json!({"wait_idle": true}));
        steps.push(serde_json::json!({"report": report}));
        steps.push(serde_json::json!({"exit": 0}));
        std::fs::write(&script, serde_json::Value::Array(steps).to_string()).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_xhand"))
            .args(["view", "--width", "800", "--height", "500", "--script"])
            .arg(&script)
            .env("XDG_CONFIG_HOME", &config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
    };
    let pth = fixture("xhand_model_small.pth");
    let first = run(
        "first",
        serde_json::json!([
            {"wait_frames": 2}, {"drop_file": pth}, {"wait_frames": 5}, {"wait_idle": true},
            {"drop_file": fixture(MANO_PY2)}, {"wait_frames": 5}
        ]),
    );
    assert_eq!(first["avatar"], "xhand_model_small", "{first}");
    assert_eq!(first["vertices"], 300);
    let remembered = std::fs::read_to_string(config.join("xhand/mano.json")).unwrap();
    assert!(remembered.contains("mano_like_right.pkl"), "{remembered}");
    let second = run(
        "second",
        serde_json::json!([{"wait_frames": 2}, {"drop_file": pth}, {"wait_frames": 5}]),
    );
    assert_eq!(second["avatar"], "xhand_model_small", "{second}");
}
