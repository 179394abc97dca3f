//! The math against XHand's own PyTorch outputs (tests/fixtures/oracle, see its README for
//! the tolerances used here).

mod common;

use candle_core::{Device, Tensor};
use common::{assert_close, fixture, flat3, floats, tensors};
use xhand::avatar::Avatar;
use xhand::mesh::vertex_normals;
use xhand::nn::{Linear, NeuralRenderer, Precision, posenc};
use xhand::pose::load_pose_file;
use xhand::shading::sh_color;

const NET_TOL: f32 = 1e-5;
const POS_TOL: f32 = 1e-6;

fn avatars() -> Vec<(&'static str, Avatar)> {
    ["oracle/avatar.safetensors", "oracle/avatar_raw.safetensors"]
        .into_iter()
        .map(|f| {
            (
                f,
                Avatar::load(&fixture(f), &Device::Cpu).unwrap_or_else(|e| panic!("{e}")),
            )
        })
        .collect()
}

#[test]
fn networks_skinning_and_shading_match_xhand_for_every_pose() {
    let expected = tensors("oracle/expected.safetensors");
    for (file, avatar) in avatars() {
        for i in 0..4 {
            let seq = load_pose_file(&fixture(&format!("oracle/pose{i}.json"))).unwrap();
            let frame = &seq.frames[0];
            let posed = avatar.evaluate(frame, 0).unwrap();
            let e = &posed.embeddings;
            let want = |k: &str| floats(&expected, &format!("{k}.{i}")).1;
            let ctx = |k: &str| format!("{file} pose {i} {k}");
            assert_close(&ctx("delta"), &e.delta, &want("delta"), NET_TOL);
            assert_close(
                &ctx("code_delta"),
                &e.code_delta,
                &want("code_delta"),
                NET_TOL,
            );
            assert_close(&ctx("albedo"), &e.albedo, &want("albedo"), NET_TOL);
            assert_close(
                &ctx("code_albedo"),
                &e.code_albedo,
                &want("code_albedo"),
                NET_TOL,
            );
            assert_close(
                &ctx("lbs_weights"),
                &e.lbs_weights,
                &want("lbs_weights"),
                NET_TOL,
            );
            assert_close(
                &ctx("vertices"),
                &flat3(&posed.geometry.vertices),
                &want("vertices"),
                POS_TOL,
            );
            // End to end, normals amplify float noise where face normals nearly cancel.
            assert_close(
                &ctx("normals (end to end)"),
                &flat3(&posed.geometry.normals),
                &want("normals"),
                2e-4,
            );
            assert_close(
                &ctx("sh_color (end to end)"),
                &flat3(&posed.vertex_sh_colors()),
                &want("sh_color"),
                2e-4,
            );
        }
    }
}

#[test]
fn normals_and_sh_staged_from_oracle_inputs() {
    let expected = tensors("oracle/expected.safetensors");
    let (_, avatar) = avatars().remove(0);
    for i in 0..4 {
        let want = |k: &str| floats(&expected, &format!("{k}.{i}")).1;
        let verts: Vec<[f32; 3]> = want("vertices")
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        let normals = vertex_normals(&verts, &avatar.template.faces);
        assert_close(
            &format!("pose {i} normals"),
            &flat3(&normals),
            &want("normals"),
            1e-5,
        );
        // Unreferenced vertices 35 and 233 get exactly zero.
        assert_eq!(normals[35], [0.0; 3]);
        assert_eq!(normals[233], [0.0; 3]);

        let sh_row = load_pose_file(&fixture(&format!("oracle/pose{i}.json")))
            .unwrap()
            .frames[0]
            .sh
            .unwrap();
        let albedo = want("albedo");
        let n = want("normals");
        let colors: Vec<f32> = (0..verts.len())
            .flat_map(|v| {
                sh_color(
                    [albedo[3 * v], albedo[3 * v + 1], albedo[3 * v + 2]],
                    [n[3 * v], n[3 * v + 1], n[3 * v + 2]],
                    &sh_row,
                )
            })
            .collect();
        assert_close(
            &format!("pose {i} sh_color"),
            &colors,
            &want("sh_color"),
            1e-5,
        );
    }
}

#[test]
fn kinematics_match_xhand_intermediates() {
    let vectors = tensors("oracle/xhand_vectors.safetensors");
    let (_, poses) = floats(&vectors, "in.pose");
    let (_, r_want) = floats(&vectors, "int.R");
    let (_, a_want) = floats(&vectors, "int.A");
    let (_, jt_want) = floats(&vectors, "int.J_transformed");
    let (_, j_want) = floats(&vectors, "int.J");
    let (_, full_want) = floats(&vectors, "int.full_pose");
    for (file, avatar) in avatars() {
        let sk = &avatar.template.skeleton;
        let joints: Vec<f32> = sk
            .joints()
            .iter()
            .flat_map(|j| [j.x as f32, j.y as f32, j.z as f32])
            .collect();
        assert_close(&format!("{file} J"), &joints, &j_want, POS_TOL);
        for i in 0..4 {
            let pose: [f32; 48] = std::array::from_fn(|k| poses[48 * i + k]);
            assert_close(
                "full_pose",
                &sk.full_pose(&pose),
                &full_want[48 * i..48 * (i + 1)],
                1e-6,
            );
            let t = sk.transforms(&pose);
            let r: Vec<f32> = t
                .rotations
                .iter()
                .flat_map(|m| {
                    (0..3).flat_map(move |row| (0..3).map(move |col| m[(row, col)] as f32))
                })
                .collect();
            assert_close(
                &format!("pose {i} R"),
                &r,
                &r_want[144 * i..144 * (i + 1)],
                1e-5,
            );
            let a: Vec<f32> = t
                .skinning
                .iter()
                .flat_map(|m| {
                    (0..4).flat_map(move |row| (0..4).map(move |col| m[(row, col)] as f32))
                })
                .collect();
            assert_close(
                &format!("pose {i} A"),
                &a,
                &a_want[256 * i..256 * (i + 1)],
                1e-5,
            );
            let jt: Vec<f32> = t
                .posed_joints
                .iter()
                .flat_map(|p| [p.x as f32, p.y as f32, p.z as f32])
                .collect();
            assert_close(
                &format!("pose {i} J_transformed"),
                &jt,
                &jt_want[48 * i..48 * (i + 1)],
                POS_TOL,
            );
        }
    }
}

#[test]
fn every_layer_and_the_basis_mix_match() {
    let vectors = tensors("oracle/xhand_vectors.safetensors");
    let ids = vectors.ints("dbg.vertex_ids", &[Some(4)]).unwrap().data;
    let (_, poses) = floats(&vectors, "in.pose");
    let pose3: [f32; 48] = std::array::from_fn(|k| poses[48 * 3 + k]);
    let (_, cond_want) = floats(&vectors, "int.condition");
    for (file, avatar) in avatars() {
        let cond = avatar.nets.condition(&pose3).unwrap();
        assert_close(
            "condition",
            &cond.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            &cond_want[144..192],
            1e-6,
        );
        for (name, net) in [
            ("delta_net", &avatar.nets.delta),
            ("color_net", &avatar.nets.color),
            ("lbs_net", &avatar.nets.lbs),
        ] {
            let mix = net.mix().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_close(
                &format!("{name} static_softmax"),
                &mix,
                &floats(&vectors, &format!("int.{name}.static_softmax")).1,
                1e-6,
            );
            let outs = net.layer_outputs(&cond).unwrap();
            for (l, out) in outs.iter().enumerate() {
                let rows: Vec<f32> = ids
                    .iter()
                    .flat_map(|&v| out.get(v as usize).unwrap().to_vec1::<f32>().unwrap())
                    .collect();
                let want = floats(&vectors, &format!("dbg.{name}.lin{l}_out")).1;
                assert_close(&format!("{file} {name} lin{l}"), &rows, &want, NET_TOL);
            }
        }
    }
}

#[test]
fn weight_norm_folding_matches_the_folded_file() {
    let (_, folded) = avatars().remove(0);
    let (_, raw) = avatars().remove(1);
    let cond = folded.nets.condition(&[0.1; 48]).unwrap();
    for (a, b) in [
        (&folded.nets.delta, &raw.nets.delta),
        (&folded.nets.lbs, &raw.nets.lbs),
    ] {
        let la = a.layer_outputs(&cond).unwrap();
        let lb = b.layer_outputs(&cond).unwrap();
        for (x, y) in la.iter().zip(&lb) {
            let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_close("folded vs unfolded layer output", &x, &y, 1e-5);
        }
    }
}

#[test]
fn renderer_and_positional_encoding_match() {
    let file = tensors("oracle/renderer.safetensors");
    let layers: Vec<Linear> = (1..=8)
        .map(|k| {
            let (ws, w) = floats(&file, &format!("renderer.model.linear{k}.weight"));
            let (_, b) = floats(&file, &format!("renderer.model.linear{k}.bias"));
            let b_len = b.len();
            Linear::new(
                Tensor::from_vec(w, (ws[0], ws[1]), &Device::Cpu).unwrap(),
                Tensor::from_vec(b, b_len, &Device::Cpu).unwrap(),
            )
            .unwrap()
        })
        .collect();
    let renderer = NeuralRenderer::new(layers).unwrap();
    assert_eq!(renderer.input_dim(), xhand::nn::renderer_input_width(40));
    let (xs, x) = floats(&file, "in.renderer_x");
    let xt = Tensor::from_vec(x, (xs[0], xs[1]), &Device::Cpu).unwrap();
    let out = renderer
        .forward(&xt)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_close(
        "renderer output",
        &out,
        &floats(&file, "out.renderer").1,
        1e-5,
    );

    let (_, pts) = floats(&file, "in.pe_points");
    let pe: Vec<f32> = pts
        .chunks_exact(3)
        .flat_map(|p| posenc::encode([p[0], p[1], p[2]]))
        .collect();
    assert_close("positional encoding", &pe, &floats(&file, "out.pe").1, 1e-5);
}

/// The opt-in bf16 CPU path against XHand's outputs: measured, bounded, never the default.
/// Where this CPU lacks AVX-512 BF16 the choice is refused by name instead.
#[test]
fn bf16_networks_stay_near_xhand_or_are_refused() {
    let expected = tensors("oracle/expected.safetensors");
    for (file, mut avatar) in avatars() {
        assert_eq!(
            avatar.nets.precision(),
            Precision::F32,
            "f32 is the default"
        );
        if let Err(e) = Precision::Bf16.check_supported() {
            let refused = avatar.set_precision(Precision::Bf16).unwrap_err();
            assert_eq!(refused, e);
            assert!(refused.contains("AVX-512 BF16"), "{refused}");
            assert_eq!(avatar.nets.precision(), Precision::F32);
            continue;
        }
        avatar.set_precision(Precision::Bf16).unwrap();
        for i in 0..4 {
            let seq = load_pose_file(&fixture(&format!("oracle/pose{i}.json"))).unwrap();
            let posed = avatar.evaluate(&seq.frames[0], 0).unwrap();
            let e = &posed.embeddings;
            let want = |k: &str| floats(&expected, &format!("{k}.{i}")).1;
            let ctx = |k: &str| format!("{file} pose {i} {k} (bf16)");
            // Bounds a few times the errors measured (docs/performance.md); each also
            // shows bf16 really ran: the f32 tolerance would fail.
            let worst = [
                assert_close(&ctx("delta"), &e.delta, &want("delta"), 2e-4),
                assert_close(&ctx("albedo"), &e.albedo, &want("albedo"), 1e-2),
                assert_close(
                    &ctx("lbs_weights"),
                    &e.lbs_weights,
                    &want("lbs_weights"),
                    5e-3,
                ),
                assert_close(
                    &ctx("vertices"),
                    &flat3(&posed.geometry.vertices),
                    &want("vertices"),
                    2e-4,
                ),
            ];
            eprintln!("{file} pose {i}: bf16 max |diff| delta, albedo, lbs, vertices {worst:?}");
            assert!(worst.iter().any(|&w| w > NET_TOL), "bf16 gave f32's values");
        }
    }
}

/// `--tf32` (candle's TF32 tensor-core matmuls on CUDA) emulated on the CPU: both operands of
/// every product of the three networks rounded to TF32's 10-bit mantissa (to nearest, ties to
/// even), sums in f32. The error it adds over XHand's f32 poses, measured here and bounded a
/// few times above what was measured (docs/performance.md).
#[test]
fn tf32_matmuls_emulated_stay_near_f32() {
    let tf32 = |t: &Tensor| -> candle_core::Result<Tensor> {
        let rounded: Vec<f32> = (t.flatten_all()?.to_vec1::<f32>()?)
            .into_iter()
            .map(round_to_tf32)
            .collect();
        Tensor::from_vec(rounded, t.shape(), t.device())
    };
    let vectors = tensors("oracle/xhand_vectors.safetensors");
    let (_, poses) = floats(&vectors, "in.pose");
    for (file, avatar) in avatars() {
        let mut worst = [0f32; 3];
        for pose in poses.chunks_exact(48) {
            let pose: [f32; 48] = std::array::from_fn(|k| pose[k]);
            let cond = avatar.nets.condition(&pose).unwrap();
            let nets = [&avatar.nets.delta, &avatar.nets.color, &avatar.nets.lbs];
            for (k, net) in nets.into_iter().enumerate() {
                let (exact, _) = net.forward(&cond).unwrap();
                let (reduced, _) = net.forward_with(&cond, &tf32).unwrap();
                let diff = (exact - reduced).unwrap().abs().unwrap();
                let max = diff.flatten_all().unwrap().max(0).unwrap();
                worst[k] = worst[k].max(max.to_scalar::<f32>().unwrap());
            }
        }
        // Outputs before the heads: displacement (m), albedo logits, skinning logits.
        eprintln!("{file}: TF32 (emulated) max |diff| delta, color, lbs outputs {worst:?}");
        assert!(
            worst.iter().all(|&w| w > 0.0),
            "the rounding changed nothing"
        );
        // Measured: 7.7e-6 m, 2.1e-3, 1.8e-3 (both oracle avatars).
        assert!(worst[0] < 4e-5, "delta: {} m", worst[0]);
        assert!(worst[1] < 1e-2 && worst[2] < 1e-2, "{worst:?}");
    }
}

/// `x` rounded to TF32: the 13 low mantissa bits dropped, to nearest with ties to even.
fn round_to_tf32(x: f32) -> f32 {
    if !x.is_finite() {
        return x;
    }
    let b = x.to_bits();
    let lsb = (b >> 13) & 1;
    f32::from_bits(b.wrapping_add(0x0fff + lsb) & !0x1fff)
}

#[test]
fn tf32_rounding_keeps_ten_mantissa_bits() {
    assert_eq!(round_to_tf32(1.0), 1.0);
    // 1 + 2⁻¹⁰ is representable; 1 + 2⁻¹¹ is a tie and goes to the even neighbour, 1.
    assert_eq!(round_to_tf32(1.0 + 2f32.powi(-10)), 1.0 + 2f32.powi(-10));
    assert_eq!(round_to_tf32(1.0 + 2f32.powi(-11)), 1.0);
    assert_eq!(
        round_to_tf32(1.0 + 3.0 * 2f32.powi(-11)),
        1.0 + 2f32.powi(-9)
    );
    assert_eq!(round_to_tf32(-1.0 - 2f32.powi(-12)), -1.0);
    let x = 0.123_456_79f32;
    assert!((round_to_tf32(x) - x).abs() <= x * 2f32.powi(-11));
}
