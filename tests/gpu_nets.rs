//! The embedding networks in wgpu compute shaders (run on Mesa's lavapipe in CI) against
//! XHand's own outputs and against the candle path.
#![cfg(feature = "gpu")]

mod common;

use candle_core::Device;
use common::{assert_close, fixture, floats, random_net, tensors};
use xhand::avatar::Avatar;
use xhand::gpu::nets::{GemmKernel, GemmSupport};
use xhand::gpu::{GpuContext, GpuNets};
use xhand::nn::{EmbeddingNets, Embeddings};
use xhand::pose::load_pose_file;
use xhand::synthetic::SyntheticSpec;

fn gpu() -> GpuContext {
    GpuContext::headless().unwrap_or_else(|e| {
        panic!("{e}\n(the GPU tests need a Vulkan driver; scripts/test.sh installs lavapipe)")
    })
}

/// XHand's tolerance for the networks' outputs (tests/fixtures/oracle/README.md).
const NET_TOL: f32 = 1e-5;

fn compare(what: &str, got: &Embeddings, want: &Embeddings, tol: f32) {
    assert_close(&format!("{what} delta"), &got.delta, &want.delta, tol);
    assert_close(
        &format!("{what} code_delta"),
        &got.code_delta,
        &want.code_delta,
        tol,
    );
    assert_close(&format!("{what} albedo"), &got.albedo, &want.albedo, tol);
    assert_close(
        &format!("{what} code_albedo"),
        &got.code_albedo,
        &want.code_albedo,
        tol,
    );
    assert_close(
        &format!("{what} lbs_weights"),
        &got.lbs_weights,
        &want.lbs_weights,
        tol,
    );
}

#[test]
fn wgpu_nets_match_xhand_on_the_oracle_avatars() {
    let ctx = gpu();
    for file in ["oracle/avatar.safetensors", "oracle/avatar_raw.safetensors"] {
        let avatar = Avatar::load(&fixture(file), &Device::Cpu).unwrap();
        let nets = GpuNets::new(&ctx.device, &ctx.queue, &avatar.nets, &ctx.gemm).unwrap();
        assert_matches_oracle(&ctx, &nets, file, |_| NET_TOL);
    }
}

/// `nets`' outputs at the oracle's four poses against XHand's, output `k` within `tol(k)`.
fn assert_matches_oracle(ctx: &GpuContext, nets: &GpuNets, what: &str, tol: impl Fn(&str) -> f32) {
    let expected = tensors("oracle/expected.safetensors");
    for i in 0..4 {
        let seq = load_pose_file(&fixture(&format!("oracle/pose{i}.json"))).unwrap();
        let e = nets.eval(ctx, &seq.frames[0].pose).unwrap();
        for (k, got) in [
            ("delta", &e.delta),
            ("code_delta", &e.code_delta),
            ("albedo", &e.albedo),
            ("code_albedo", &e.code_albedo),
            ("lbs_weights", &e.lbs_weights),
        ] {
            let want = floats(&expected, &format!("{k}.{i}")).1;
            assert_close(&format!("{what} pose {i} {k}"), got, &want, tol(k));
        }
    }
}

#[test]
fn wgpu_nets_match_candle_on_a_paper_size_avatar() {
    let ctx = gpu();
    let avatar = SyntheticSpec::paper_size().avatar(&Device::Cpu).unwrap();
    let nets = GpuNets::new(&ctx.device, &ctx.queue, &avatar.nets, &ctx.gemm).unwrap();
    let mut pose = [0.0f32; 48];
    for (i, p) in pose.iter_mut().enumerate() {
        *p = ((i * 37 % 11) as f32 - 5.0) * 0.08;
    }
    let want = avatar.nets.eval(&pose).unwrap();
    let got = nets.eval(&ctx, &pose).unwrap();
    compare("paper size", &got, &want, 1e-4);
}

#[test]
fn uneven_widths_one_layer_and_width_one_work() {
    let ctx = gpu();
    let pose: [f32; 48] = std::array::from_fn(|i| (i as f32 * 0.37).sin() * 0.5);
    for (name, delta, color, lbs, v) in [
        (
            "uneven",
            vec![37, 5, 70, 10],
            vec![130, 10],
            vec![65, 3],
            301,
        ),
        ("one layer", vec![10], vec![7], vec![16], 64),
        ("width one", vec![1, 1, 1], vec![1], vec![1, 2], 1),
    ] {
        let nets = EmbeddingNets::new(
            random_net(&delta, 3, v, 1),
            random_net(&color, 3, v, 2),
            random_net(&lbs, 16, v, 3),
            Device::Cpu,
        );
        let want = nets.eval_candle(&pose).unwrap();
        let got = GpuNets::new(&ctx.device, &ctx.queue, &nets, &ctx.gemm)
            .unwrap()
            .eval(&ctx, &pose)
            .unwrap();
        compare(name, &got, &want, 1e-5);
    }
}

/// `xhand eval ARGS --avatar AVATAR --pose POSE --out OUT`.
fn eval(
    args: &[&str],
    avatar: &std::path::Path,
    pose: &std::path::Path,
    out: &std::path::Path,
) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_xhand"))
        .arg("eval")
        .args(args)
        .arg("--avatar")
        .arg(avatar)
        .arg("--pose")
        .arg(pose)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn eval_with_wgpu_nets_matches_eval_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let avatar = fixture("oracle/avatar_raw.safetensors");
    let pose = fixture("oracle/pose2.json");
    let run = |nets: &str| {
        let out = dir.path().join(format!("{nets}.safetensors"));
        let o = eval(&["--nets", nets], &avatar, &pose, &out);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        xhand::avatar::TensorFile::open(&out).unwrap()
    };
    let (cpu, wgpu) = (run("cpu"), run("wgpu"));
    assert!(
        wgpu.metadata()["nets"].starts_with("wgpu on"),
        "{:?}",
        wgpu.metadata()
    );
    for name in [
        "delta",
        "code_delta",
        "albedo",
        "code_albedo",
        "lbs_weights",
        "vertices",
    ] {
        let (_, a) = floats(&cpu, name);
        let (_, b) = floats(&wgpu, name);
        assert_close(name, &b, &a, 1e-5);
    }
}

/// One network run alone (what `xhand bench --gpu` times per network) writes its own
/// outputs and leaves the others' as they were.
#[test]
fn one_network_runs_alone() {
    let ctx = gpu();
    let avatar = SyntheticSpec::test_avatar().avatar(&Device::Cpu).unwrap();
    let nets = GpuNets::new(&ctx.device, &ctx.queue, &avatar.nets, &ctx.gemm).unwrap();
    let a = [0.1f32; 48];
    let b: [f32; 48] = std::array::from_fn(|i| (i as f32 * 0.3).sin());
    let at_a = nets.eval(&ctx, &a).unwrap();
    let at_b = nets.eval(&ctx, &b).unwrap();
    nets.run(&ctx, &a).unwrap();
    nets.run_nets(&ctx, &b, &[0]).unwrap();
    let read = |buf: &wgpu::Buffer, n: usize| {
        let mut v = xhand::gpu::read_buffer_f32(&ctx.device, &ctx.queue, buf).unwrap();
        v.truncate(n);
        v
    };
    let [d, c, _] = nets.buffers();
    let v = nets.num_vertices();
    assert_close(
        "delta, run alone for b",
        &read(&d.out, 3 * v),
        &at_b.delta,
        NET_TOL,
    );
    assert_close(
        "albedo, still a's",
        &read(&c.out, 3 * v),
        &at_a.albedo,
        NET_TOL,
    );
    assert!(at_a.delta != at_b.delta, "the two poses differ");
    assert_eq!(nets.macs(), (0..3).map(|k| nets.net_macs(k)).sum::<usize>());
    assert!(nets.net_macs(0) > 0 && nets.net_macs(3) == 0);
}

/// The opt-in half-precision kernel (lavapipe has SHADER_F16) against XHand's outputs: within
/// the error docs/performance.md gives for it, and really half precision (not the f32 sums).
#[test]
fn the_f16_kernel_stays_within_its_measured_error() {
    let ctx = gpu();
    assert_eq!(
        ctx.gemm.unavailable(GemmKernel::F16),
        None,
        "lavapipe has SHADER_F16; the GPU context asks for it"
    );
    let avatar = Avatar::load(&fixture("oracle/avatar.safetensors"), &Device::Cpu).unwrap();
    let with = |kernel| {
        GpuNets::with_kernel(&ctx.device, &ctx.queue, &avatar.nets, kernel, &ctx.gemm).unwrap()
    };
    let (f16, tiled, tiled_again) = (
        with(GemmKernel::F16),
        with(GemmKernel::Tiled),
        with(GemmKernel::Tiled),
    );
    assert_eq!(f16.kernel(), GemmKernel::F16);
    let relative = f16
        .difference_from(&tiled, &ctx.device, &ctx.queue)
        .unwrap();
    assert!(
        relative > 1e-5 && relative < 5e-3,
        "f16 vs f32: {relative:e}"
    );
    // Two builds of one kernel give the same outputs: what the cooperative-matrix check
    // compares against.
    let same = tiled_again
        .difference_from(&tiled, &ctx.device, &ctx.queue)
        .unwrap();
    assert_eq!(same, 0.0);
    // Measured on lavapipe: delta 5.7e-6 m, albedo 3.6e-4, skinning weights 5.0e-5,
    // codes 2.0e-3 (the albedo code, up to 2.9 in size).
    assert_matches_oracle(&ctx, &f16, "f16", |k| match k {
        "delta" | "code_delta" => 2e-5,
        "albedo" => 1e-3,
        "code_albedo" => 1e-2,
        _ => 5e-4,
    });
}

/// A kernel the GPU lacks is refused by name, and the automatic choice falls back to the
/// tiled kernel (lavapipe has no cooperative matrices). On a GPU with them, `coop` either
/// passes its check against `tiled` or is refused for failing it.
#[test]
fn a_kernel_the_gpu_lacks_is_refused() {
    let ctx = gpu();
    let avatar = SyntheticSpec::test_avatar().avatar(&Device::Cpu).unwrap();
    let coop = GpuNets::with_kernel(
        &ctx.device,
        &ctx.queue,
        &avatar.nets,
        GemmKernel::Coop,
        &ctx.gemm,
    );
    let auto = GpuNets::new(&ctx.device, &ctx.queue, &avatar.nets, &ctx.gemm).unwrap();
    match (ctx.gemm.unavailable(GemmKernel::Coop), coop) {
        (Some(_), Ok(_)) => panic!("a kernel the GPU lacks was built"),
        (Some(why), Err(e)) => {
            let e = e.to_string();
            assert!(e.contains("`coop`") && e.contains(&why), "{e}");
            assert_eq!(auto.kernel(), GemmKernel::Tiled);
        }
        (None, Ok(n)) => assert_eq!(
            (n.kernel(), auto.kernel()),
            (GemmKernel::Coop, GemmKernel::Coop)
        ),
        (None, Err(e)) => assert_eq!(auto.kernel(), GemmKernel::Tiled, "{e}"),
    }
    let none = GemmSupport::tiled_only();
    let e = GpuNets::with_kernel(
        &ctx.device,
        &ctx.queue,
        &avatar.nets,
        GemmKernel::F16,
        &none,
    );
    assert!(e.is_err_and(|e| e.to_string().contains("SHADER_F16")));
}

/// `--gemm` on the command line: the kernel shows in the output's engine, and it is refused
/// where the networks do not run on wgpu.
#[test]
fn eval_takes_the_gemm_kernel_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        eval(
            args,
            &fixture("oracle/avatar.safetensors"),
            &fixture("oracle/pose1.json"),
            &dir.path().join("out.safetensors"),
        )
    };
    let o = run(&["--nets", "wgpu", "--gemm", "f16"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = xhand::avatar::TensorFile::open(&dir.path().join("out.safetensors")).unwrap();
    assert!(
        out.metadata()["nets"].ends_with("f16 GEMM"),
        "{:?}",
        out.metadata()
    );
    let o = run(&["--nets", "cpu", "--gemm", "f16"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--gemm applies to the wgpu networks"), "{err}");
}

/// `xhand bench --gpu` times every GPU stage, the networks with the kernel they ran and
/// their GFLOP/s, and both whole-frame variants.
#[test]
fn bench_times_every_gpu_stage() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_xhand"))
        .args(["bench", "--gpu", "--runs", "1", "--json", "--avatar"])
        .arg(fixture("oracle/avatar.safetensors"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let stages = report["gpu_stages"].as_array().unwrap();
    let find = |prefix: &str| {
        stages
            .iter()
            .find(|s| s["stage"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no stage {prefix}…: {stages:#?}"))
    };
    for prefix in [
        "gpu: embedding nets (wgpu ",
        "gpu: delta_net (wgpu ",
        "gpu: color_net (wgpu ",
        "gpu: lbs_net (wgpu ",
    ] {
        let s = find(prefix);
        assert!(s["gflops"].as_f64().unwrap() > 0.0, "{s}");
    }
    for prefix in [
        "gpu: skinning + normals",
        "gpu: visibility raster",
        "gpu: whole frame, outputs via the host",
        "gpu: whole frame, no host round trip",
    ] {
        let s = find(prefix);
        let (min, median) = (
            s["min_ms"].as_f64().unwrap(),
            s["median_ms"].as_f64().unwrap(),
        );
        assert!(min > 0.0 && min <= median, "{s}");
    }
    assert!(report["gpu_adapter"].is_string());
}
