//! Baking the embedded default avatar (`xhand bake-default`): the MIT-licensed WebXR hand
//! rigged onto MANO's skeleton ([`rig`]), reduced and subdivided to XHand's resolution, a
//! procedural appearance ([`appearance`]) learned by XHand's networks with candle-nn
//! ([`train`]). Deterministic for a given seed. See docs/default-avatar.md.

pub mod appearance;
pub mod poses;
pub mod rig;
pub mod train;

use std::time::Instant;

use anyhow::Context;
use candle_core::{Device, Tensor};
use nalgebra::Vector3;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Serialize;

use crate::avatar::write::{FloatStorage, TensorWriter};
use crate::avatar::{Avatar, FORMAT_TAG};
use crate::camera::Camera;
use crate::cpu_render::{CodeTable, RendererInputs, pixel_attributes};
use crate::mesh::{self, decimate, subdivide};
use crate::nn::{ConditionNet, renderer_input_width};
use crate::pose::PoseFrame;
use crate::shading::directional_sh;
use crate::{NUM_JOINTS, POSE_DIM, SH_DIM};
use appearance::{Appearance, HandState, reference_shade};
use poses::{default_lights, random_rotation, relaxed_pose_mean, sample_full_pose};
use rig::RiggedHand;
use train::{CODE_DIM, NetVars, RendererVars, Schedule, descriptor_latents, mse, softmax_last};

/// Width of the per-vertex `render_code` (XHand: 20). Its values are all zero: the default
/// avatar's appearance is fully described by the other inputs.
pub const RENDER_CODE_DIM: usize = 20;

/// The displacement net's training unit, metres (0.1 mm).
const DELTA_UNIT_M: f32 = 1e-4;

/// Sizes, step counts and seed of a bake.
#[derive(Clone, Debug, Serialize)]
pub struct BakeConfig {
    pub seed: u64,
    /// Reduce the welded source mesh to at most this many faces before subdividing.
    pub source_faces: usize,
    /// Rounds of Loop subdivision (each quadruples the faces).
    pub subdivisions: usize,
    /// `(width, depth)` of delta_net, color_net and lbs_net.
    pub delta: (usize, usize),
    pub color: (usize, usize),
    pub lbs: (usize, usize),
    pub renderer_hidden: usize,
    pub delta_steps: usize,
    pub color_steps: usize,
    pub lbs_steps: usize,
    pub renderer_steps: usize,
    /// Vertices and poses per step of the embedding nets.
    pub vertex_batch: usize,
    pub pose_batch: usize,
    /// Pixels per renderer step, training images and their size.
    pub pixel_batch: usize,
    pub train_images: usize,
    pub image_size: u32,
    pub learning_rate: f64,
    #[serde(skip)]
    pub storage: FloatStorage,
}

impl BakeConfig {
    /// The committed default avatar.
    pub fn default_avatar() -> Self {
        Self {
            seed: 2024,
            source_faces: 1540,
            subdivisions: 3,
            delta: (64, 4),
            color: (32, 3),
            lbs: (32, 2),
            renderer_hidden: 64,
            delta_steps: 2000,
            color_steps: 800,
            lbs_steps: 150,
            renderer_steps: 3000,
            vertex_batch: 4096,
            pose_batch: 4,
            pixel_batch: 4096,
            train_images: 240,
            image_size: 96,
            learning_rate: 2e-3,
            storage: FloatStorage::F16,
        }
    }

    /// Multiplies every training step count by `factor` (at least one step each).
    pub fn scale_steps(&mut self, factor: f64) {
        for s in [
            &mut self.delta_steps,
            &mut self.color_steps,
            &mut self.lbs_steps,
            &mut self.renderer_steps,
        ] {
            *s = ((*s as f64 * factor).round() as usize).max(1);
        }
    }

    /// A bake of a few seconds on a small mesh, for tests.
    pub fn quick() -> Self {
        Self {
            source_faces: 400,
            subdivisions: 1,
            delta: (32, 2),
            color: (16, 2),
            lbs: (16, 2),
            renderer_hidden: 16,
            delta_steps: 500,
            color_steps: 200,
            lbs_steps: 40,
            renderer_steps: 400,
            vertex_batch: 512,
            pose_batch: 2,
            pixel_batch: 512,
            train_images: 3,
            image_size: 64,
            ..Self::default_avatar()
        }
    }
}

/// A loss curve: `(step, value)` samples.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LossCurve {
    pub unit: String,
    pub points: Vec<(usize, f32)>,
}

impl LossCurve {
    /// First and last recorded values.
    pub fn first_last(&self) -> (f32, f32) {
        let first = self.points.first().map_or(f32::NAN, |p| p.1);
        let last = self.points.last().map_or(f32::NAN, |p| p.1);
        (first, last)
    }
}

/// What a bake measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BakeReport {
    pub source_vertices: usize,
    pub source_faces: usize,
    pub welded_vertices: usize,
    pub reduced_faces: usize,
    pub vertices: usize,
    pub faces: usize,
    pub delta_curve: LossCurve,
    pub color_curve: LossCurve,
    pub lbs_curve: LossCurve,
    pub renderer_curve: LossCurve,
    /// Held-out poses, all vertices.
    pub displacement_target_rms_mm: f32,
    pub displacement_rmse_mm: f32,
    pub displacement_max_error_mm: f32,
    pub albedo_mae: f32,
    pub albedo_max_error: f32,
    pub lbs_mae: f32,
    pub lbs_max_error: f32,
    /// Held-out poses and views, hand pixels, against the reference shading.
    pub renderer_psnr_db: f32,
    /// The same pixels with SH shading alone, for comparison.
    pub sh_only_psnr_db: f32,
    pub renderer_train_pixels: usize,
    pub seconds: Vec<(String, f64)>,
}

/// The baked avatar file contents and the report.
pub struct Baked {
    /// With the configured float storage.
    pub writer: TensorWriter,
    /// The same avatar with every float stored as F32 (for measuring what F16 costs).
    pub writer_f32: TensorWriter,
    pub report: BakeReport,
}

struct Timer(Vec<(String, f64)>, Instant);

impl Timer {
    fn lap(&mut self, name: &str) {
        self.0
            .push((name.to_string(), self.1.elapsed().as_secs_f64()));
        self.1 = Instant::now();
    }
}

/// Rigs, welds, reduces and subdivides the source hand, filling the mesh counts of `report`:
/// the rest mesh the avatar is built on (joints and tips as rigged).
pub fn rest_mesh(
    glb: &[u8],
    source_name: &str,
    config: &BakeConfig,
    report: &mut BakeReport,
) -> anyhow::Result<RiggedHand> {
    let hand = rig::load_glb(glb, source_name)?;
    report.source_vertices = hand.verts.len();
    report.source_faces = hand.faces.len();
    let welded = decimate::weld(&hand.verts, &hand.faces, 1e-5);
    let weights = welded.carry(&hand.weights, NUM_JOINTS);
    report.welded_vertices = welded.verts.len();
    let reduced = decimate::decimate(
        &welded.verts,
        &welded.faces,
        &weights,
        NUM_JOINTS,
        config.source_faces,
    )
    .map_err(|e| anyhow::anyhow!("{source_name}: reducing the mesh failed: {e}"))?;
    report.reduced_faces = reduced.faces.len();
    let (mut verts, mut faces, mut weights) = (reduced.verts, reduced.faces, reduced.attrs);
    for _ in 0..config.subdivisions {
        let s = subdivide::subdivide(&verts, &faces, subdivide::Scheme::Loop);
        weights = s.carry(&weights, NUM_JOINTS);
        verts = s.verts;
        faces = s.faces;
    }
    // Outward normals: flip the winding if the mesh encloses negative volume.
    let volume: f32 = faces
        .iter()
        .map(|f| {
            let [a, b, c] = f.map(|i| verts[i as usize]);
            a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0])
                + a[2] * (b[0] * c[1] - b[1] * c[0])
        })
        .sum();
    if volume < 0.0 {
        faces.iter_mut().for_each(|f| f.swap(1, 2));
    }
    for row in weights.chunks_exact_mut(NUM_JOINTS) {
        let sum: f32 = row.iter().sum();
        row.iter_mut().for_each(|w| *w /= sum.max(1e-12));
    }
    report.vertices = verts.len();
    report.faces = faces.len();
    Ok(RiggedHand {
        verts,
        faces,
        weights,
        ..hand
    })
}

/// Everything the embedding-net training needs per step.
struct Targets<'a> {
    appearance: &'a Appearance,
    pose_mean: [f32; POSE_DIM],
}

impl Targets<'_> {
    fn state(&self, pose: &[f32; POSE_DIM]) -> HandState {
        HandState::from_full_pose(&std::array::from_fn(|i| pose[i] + self.pose_mean[i]))
    }
}

/// Compares a network output with its targets: `(loss to minimise, value to record)`.
type LossFn = dyn Fn(&Tensor, &Tensor) -> candle_core::Result<(Tensor, Tensor)>;

/// Trains one condition network on `steps` random (pose, vertex subset) batches; `target`
/// gives the per-vertex target row for a state, `loss` compares the network output with the
/// targets and returns a loss and the value to record (same unit as `unit`).
#[allow(clippy::too_many_arguments)]
fn train_net(
    name: &str,
    vars: &NetVars,
    config: &BakeConfig,
    steps: usize,
    targets: &Targets,
    width: usize,
    target: &dyn Fn(usize, &HandState) -> Vec<f32>,
    loss: &LossFn,
    unit: &str,
    focus: &[u32],
    rng: &mut StdRng,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<LossCurve> {
    let device = Device::Cpu;
    let v = targets.appearance.len();
    let mut opt = Schedule::new(vars.param_groups(config.learning_rate, 10.0), steps)?;
    let mut curve = LossCurve {
        unit: unit.to_string(),
        points: Vec::new(),
    };
    let every = (steps / 20).max(1);
    let n = config.vertex_batch.min(v);
    // Half of each batch from the vertices whose targets change with the pose.
    let draw = |rng: &mut StdRng| -> Vec<u32> {
        (0..n)
            .map(|k| {
                if k % 2 == 1 && !focus.is_empty() {
                    focus[rng.random_range(0..focus.len())]
                } else {
                    rng.random_range(0..v as u32)
                }
            })
            .collect()
    };
    // A fixed validation batch drawn the same way (its own poses and vertices), so the
    // curve is not the noise of the random training batches.
    let mut val_rng = StdRng::seed_from_u64(config.seed ^ 0xa11d);
    let val_idx = draw(&mut val_rng);
    let val_idx_t = Tensor::from_vec(val_idx.clone(), n, &device)?;
    let val_poses: Vec<[f32; POSE_DIM]> = (0..4)
        .map(|_| {
            let full = sample_full_pose(&mut val_rng);
            std::array::from_fn(|i| full[i] - targets.pose_mean[i])
        })
        .collect();
    let batch_loss = |net: &ConditionNet,
                      idx: &[u32],
                      poses: &[[f32; POSE_DIM]]|
     -> candle_core::Result<(Tensor, f32)> {
        let mut total: Option<Tensor> = None;
        let mut shown = 0.0f32;
        for pose in poses {
            let state = targets.state(pose);
            let want: Vec<f32> = idx
                .iter()
                .flat_map(|&i| target(i as usize, &state))
                .collect();
            let want = Tensor::from_vec(want, (idx.len(), width), &device)?;
            let cond: Vec<f32> = pose.iter().map(|p| p / std::f32::consts::PI).collect();
            let (out, _) = net.forward(&Tensor::from_vec(cond, (1, POSE_DIM), &device)?)?;
            let (l, value) = loss(&out, &want)?;
            shown += value.to_scalar::<f32>()? / poses.len() as f32;
            total = Some(match total {
                Some(t) => (t + l)?,
                None => l,
            });
        }
        let total = total.unwrap_or(Tensor::new(0f32, &device)?);
        Ok(((total / poses.len() as f64)?, shown))
    };
    for step in 0..=steps {
        if step % every == 0 || step == steps {
            let (_, value) = batch_loss(&vars.net(Some(&val_idx_t))?, &val_idx, &val_poses)?;
            curve.points.push((step, value));
            log(&format!("{name} step {step:>5}/{steps}: {value:.5} {unit}"));
        }
        if step == steps {
            break;
        }
        let idx = draw(rng);
        let idx_t = Tensor::from_vec(idx.clone(), n, &device)?;
        let poses: Vec<[f32; POSE_DIM]> = (0..config.pose_batch)
            .map(|_| {
                let full = sample_full_pose(rng);
                std::array::from_fn(|i| full[i] - targets.pose_mean[i])
            })
            .collect();
        let (l, _) = batch_loss(&vars.net(Some(&idx_t))?, &idx, &poses)?;
        opt.step(&l, step)?;
    }
    Ok(curve)
}

/// One rendered training or test view: renderer inputs, reference colours and SH colours.
struct PixelSet {
    inputs: Vec<f32>,
    reference: Vec<f32>,
    sh_only: Vec<f32>,
}

fn render_pixels(
    avatar: &Avatar,
    rng: &mut StdRng,
    config: &BakeConfig,
    pose_mean: &[f32; POSE_DIM],
    lights: &[[f32; SH_DIM]; 4],
    out: &mut PixelSet,
) -> anyhow::Result<()> {
    let full = sample_full_pose(rng);
    let mut frame = PoseFrame {
        pose: std::array::from_fn(|i| full[i] - pose_mean[i]),
        ..PoseFrame::default()
    };
    frame.sh = Some(if rng.random_bool(0.5) {
        lights[rng.random_range(0..4)]
    } else {
        let d = random_rotation(rng, 1.0);
        let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt().max(1e-6);
        directional_sh(
            d.map(|x| x / n),
            rng.random_range(0.2..0.5),
            rng.random_range(0.45..0.75),
        )
    });
    let posed = avatar.evaluate(&frame, 0)?;
    let (lo, hi) = mesh::bounding_box(&posed.geometry.vertices);
    let dir = random_rotation(rng, 1.0);
    let dir = Vector3::new(dir[0] as f64, dir[1] as f64, dir[2] as f64)
        .try_normalize(1e-9)
        .unwrap_or(-Vector3::y());
    let up = if dir.x.abs() > 0.9 {
        Vector3::y()
    } else {
        -Vector3::x()
    };
    let size = config.image_size;
    let camera = Camera::framing_dir(lo, hi, dir, up, size, size);
    let vis = mesh::raster::rasterize(&posed.geometry.vertices, &avatar.template.faces, &camera);
    let attrs = pixel_attributes(&vis, &avatar.template.faces, &posed);
    let n = attrs.pixels.len();
    let codes = CodeTable::new(avatar, &posed);
    let inputs = RendererInputs {
        avatar,
        frame: &posed,
        codes: &codes,
        camera: &camera,
        vis: &vis,
        attrs: &attrs,
    };
    out.inputs.extend(inputs.rows(0..n));
    let sign = posed.geometry.drive.normal_sign();
    for k in 0..n {
        let normal = attrs.normals[k].map(|c| c * sign);
        out.reference
            .extend(reference_shade(attrs.albedo[k], normal, &posed.sh));
        out.sh_only.extend(
            crate::shading::sh_color(attrs.albedo[k], normal, &posed.sh).map(|c| c.clamp(0.0, 1.0)),
        );
    }
    Ok(())
}

fn psnr(a: &[f32], b: &[f32]) -> f32 {
    let mse = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>() / a.len().max(1) as f32;
    -10.0 * mse.max(1e-12).log10()
}

/// Writes the template, the three networks, SH rows, render codes and metadata.
fn write_base(
    rest: &RiggedHand,
    pose_mean: &[f32; POSE_DIM],
    nets: [(&NetVars, &str); 3],
    storage: FloatStorage,
) -> anyhow::Result<TensorWriter> {
    let mut w = TensorWriter::new();
    let v = rest.verts.len();
    w.template(&rest.verts, &rest.faces, &rest.joints, pose_mean);
    for (vars, prefix) in nets {
        vars.write(&mut w, prefix, storage)?;
    }
    w.floats(
        "render_code",
        &[v, RENDER_CODE_DIM],
        &vec![0.0; v * RENDER_CODE_DIM],
        storage,
    );
    let lights: Vec<f32> = default_lights().iter().flatten().copied().collect();
    w.f32("sh_coeffs", &[4, SH_DIM], &lights);
    w.meta("format", FORMAT_TAG)
        .meta("hand_type", "right")
        .meta("color_order", "rgb")
        .meta("name", "xhand default hand")
        .meta(
            "description",
            "synthetic demo avatar trained by the xhand project from the MIT-licensed WebXR \
             generic-hand mesh (procedural skin, wrinkles and shading); not a capture of a \
             real person",
        );
    Ok(w)
}

/// Runs the whole bake. `log` receives progress lines (loss values as they fall).
pub fn bake(
    glb: &[u8],
    source_name: &str,
    config: &BakeConfig,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<Baked> {
    let mut report = BakeReport::default();
    let mut timer = Timer(Vec::new(), Instant::now());
    let mut rng = StdRng::seed_from_u64(config.seed);
    let device = Device::Cpu;

    let rest = rest_mesh(glb, source_name, config, &mut report)?;
    let normals = mesh::vertex_normals(&rest.verts, &rest.faces);
    log(&format!(
        "mesh: {} source vertices / {} faces → welded {} vertices → {} faces → {} subdivisions: {} vertices, {} faces",
        report.source_vertices,
        report.source_faces,
        report.welded_vertices,
        report.reduced_faces,
        config.subdivisions,
        report.vertices,
        report.faces
    ));
    let appearance = Appearance::new(
        &rest.verts,
        &normals,
        &rest.weights,
        &rest.joints,
        &rest.tips,
    );
    let pose_mean = relaxed_pose_mean();
    let targets = Targets {
        appearance: &appearance,
        pose_mean,
    };
    let v = rest.verts.len();
    timer.lap("mesh");

    // x_mean as XHand initialises it: the targets' mean over poses (raw displacement,
    // pre-sigmoid albedo) and log(1000 (w + 1e-6)) for the skinning weights.
    let mut mean_d = vec![0.0f32; v * 3];
    let mut mean_a = vec![0.0f32; v * 3];
    let init_poses = 32;
    // Range of each vertex's displacement over the poses, to find where it changes.
    let mut lo_hi = vec![(f32::INFINITY, f32::NEG_INFINITY); v];
    let mut response = vec![0.0f32; v * init_poses];
    for p in 0..init_poses {
        let full = sample_full_pose(&mut rng);
        let state = HandState::from_full_pose(&full);
        for i in 0..v {
            let d = appearance.displacement(i, &state);
            let a = appearance.albedo(i, &state);
            for k in 0..3 {
                mean_d[3 * i + k] += d[k] / init_poses as f32;
                mean_a[3 * i + k] += a[k] / init_poses as f32;
            }
            let mm = appearance.displacement_mm(i, &state);
            lo_hi[i] = (lo_hi[i].0.min(mm), lo_hi[i].1.max(mm));
            response[i * init_poses + p] = mm;
        }
    }
    let focus: Vec<u32> = (0..v as u32)
        .filter(|&i| lo_hi[i as usize].1 - lo_hi[i as usize].0 > 0.02)
        .collect();
    log(&format!(
        "{} of {v} vertices change shape with the pose",
        focus.len()
    ));
    let logit = |x: f32| {
        let x = x.clamp(0.01, 0.99);
        (x / (1.0 - x)).ln()
    };
    let x_mean_color: Vec<f32> = mean_a.iter().map(|&a| logit(a)).collect();
    let latent = descriptor_latents(&response, init_poses, &normals);
    let x_mean_lbs: Vec<f32> = rest
        .weights
        .iter()
        .map(|&w| (1000.0 * (w + 1e-6)).ln())
        .collect();
    // The displacement net trains in units of DELTA_UNIT_M (pose-dependent changes of order
    // ten units, so that Adam's steps are small against them) and is stored in metres.
    let mean_d_units: Vec<f32> = mean_d.iter().map(|d| d / DELTA_UNIT_M).collect();
    let delta = NetVars::new(
        &mut rng,
        config.delta,
        mean_d_units,
        3,
        0.01,
        DELTA_UNIT_M as f64,
        &latent,
        &device,
    )?;
    let color = NetVars::new(
        &mut rng,
        config.color,
        x_mean_color,
        3,
        0.1,
        1.0,
        &latent,
        &device,
    )?;
    let lbs = NetVars::new(
        &mut rng, config.lbs, x_mean_lbs, NUM_JOINTS, 0.1, 1.0, &latent, &device,
    )?;

    report.delta_curve = train_net(
        "delta_net",
        &delta,
        config,
        config.delta_steps,
        &targets,
        3,
        &|i, s| {
            appearance
                .displacement(i, s)
                .map(|x| x / DELTA_UNIT_M)
                .to_vec()
        },
        &|out, want| {
            let l = mse(out, want)?;
            Ok((
                l.clone(),
                l.sqrt()?.affine(DELTA_UNIT_M as f64 * 1000.0, 0.0)?,
            ))
        },
        "mm RMSE",
        &focus,
        &mut rng,
        log,
    )?;
    timer.lap("delta_net");
    report.color_curve = train_net(
        "color_net",
        &color,
        config,
        config.color_steps,
        &targets,
        3,
        &|i, s| appearance.albedo(i, s).to_vec(),
        &|out, want| {
            let l = mse(&candle_nn::ops::sigmoid(out)?, want)?;
            Ok((l.clone(), l.sqrt()?))
        },
        "albedo RMSE",
        &focus,
        &mut rng,
        log,
    )?;
    timer.lap("color_net");
    let weights = &rest.weights;
    report.lbs_curve = train_net(
        "lbs_net",
        &lbs,
        config,
        config.lbs_steps,
        &targets,
        NUM_JOINTS,
        &|i, _| weights[i * NUM_JOINTS..(i + 1) * NUM_JOINTS].to_vec(),
        &|out, want| {
            let l = mse(&softmax_last(out)?, want)?;
            Ok((l.affine(100.0, 0.0)?, l.sqrt()?))
        },
        "weight RMSE",
        &[],
        &mut rng,
        log,
    )?;
    timer.lap("lbs_net");

    // Held-out poses, every vertex.
    let (mut sq_d, mut max_d, mut sq_t, mut abs_a, mut max_a, mut abs_w, mut max_w) =
        (0.0f64, 0.0f32, 0.0f64, 0.0f64, 0.0f32, 0.0f64, 0.0f32);
    let held_out = 8;
    let mut eval_rng = StdRng::seed_from_u64(config.seed ^ 0x5eed);
    let (dn, cn, ln) = (delta.net(None)?, color.net(None)?, lbs.net(None)?);
    for _ in 0..held_out {
        let full = sample_full_pose(&mut eval_rng);
        let pose: [f32; POSE_DIM] = std::array::from_fn(|i| full[i] - pose_mean[i]);
        let state = HandState::from_full_pose(&full);
        let cond: Vec<f32> = pose.iter().map(|p| p / std::f32::consts::PI).collect();
        let cond = Tensor::from_vec(cond, (1, POSE_DIM), &device)?;
        let d = dn.forward(&cond)?.0.flatten_all()?.to_vec1::<f32>()?;
        let a = candle_nn::ops::sigmoid(&cn.forward(&cond)?.0)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let w = softmax_last(&ln.forward(&cond)?.0)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        for i in 0..v {
            let td = appearance.displacement(i, &state);
            let ta = appearance.albedo(i, &state);
            let mut e2 = 0.0f32;
            for k in 0..3 {
                e2 += ((d[3 * i + k] * DELTA_UNIT_M - td[k]) * 1000.0).powi(2);
                let ea = (a[3 * i + k] - ta[k]).abs();
                abs_a += ea as f64;
                max_a = max_a.max(ea);
            }
            sq_d += e2 as f64;
            max_d = max_d.max(e2.sqrt());
            sq_t += (appearance.displacement_mm(i, &state) as f64).powi(2);
            for j in 0..NUM_JOINTS {
                let ew = (w[i * NUM_JOINTS + j] - weights[i * NUM_JOINTS + j]).abs();
                abs_w += ew as f64;
                max_w = max_w.max(ew);
            }
        }
    }
    let count = (held_out * v) as f64;
    report.displacement_rmse_mm = (sq_d / count).sqrt() as f32;
    report.displacement_max_error_mm = max_d;
    report.displacement_target_rms_mm = (sq_t / count).sqrt() as f32;
    report.albedo_mae = (abs_a / (3.0 * count)) as f32;
    report.albedo_max_error = max_a;
    report.lbs_mae = (abs_w / (NUM_JOINTS as f64 * count)) as f32;
    report.lbs_max_error = max_w;
    log(&format!(
        "held-out: displacement RMSE {:.3} mm (targets RMS {:.3} mm, max error {:.3} mm), albedo MAE {:.4}, skinning weight MAE {:.5}",
        report.displacement_rmse_mm,
        report.displacement_target_rms_mm,
        report.displacement_max_error_mm,
        report.albedo_mae,
        report.lbs_mae
    ));
    timer.lap("evaluation");

    // The neural renderer, on pixels of the avatar as it now renders.
    let input = renderer_input_width(2 * CODE_DIM + RENDER_CODE_DIM);
    let renderer = RendererVars::new(&mut rng, input, config.renderer_hidden, &device)?;
    let nets = [
        (&delta, "delta_net"),
        (&color, "color_net"),
        (&lbs, "lbs_net"),
    ];
    let mut staged = write_base(&rest, &pose_mean, nets, FloatStorage::F32)?;
    renderer.write(&mut staged, FloatStorage::F32)?;
    let avatar = Avatar::from_bytes("<bake>", staged.to_bytes()?, &device)
        .context("the staged avatar does not load")?;
    let lights = default_lights();
    let mut train_set = PixelSet {
        inputs: Vec::new(),
        reference: Vec::new(),
        sh_only: Vec::new(),
    };
    for _ in 0..config.train_images {
        render_pixels(
            &avatar,
            &mut rng,
            config,
            &pose_mean,
            &lights,
            &mut train_set,
        )?;
    }
    let n_px = train_set.reference.len() / 3;
    report.renderer_train_pixels = n_px;
    log(&format!(
        "renderer: {n_px} training pixels from {} views",
        config.train_images
    ));
    anyhow::ensure!(n_px > 0, "no hand pixels in the renderer's training views");
    let x_all = Tensor::from_vec(train_set.inputs, (n_px, input), &device)?;
    let y_all = Tensor::from_vec(train_set.reference, (n_px, 3), &device)?;
    timer.lap("renderer data");
    let mut opt = Schedule::new(
        vec![(renderer.vars(), config.learning_rate)],
        config.renderer_steps,
    )?;
    let mut curve = LossCurve {
        unit: "PSNR dB (training batch)".into(),
        points: Vec::new(),
    };
    let every = (config.renderer_steps / 20).max(1);
    let batch = config.pixel_batch.min(n_px);
    for step in 0..config.renderer_steps {
        let idx: Vec<u32> = (0..batch)
            .map(|_| rng.random_range(0..n_px as u32))
            .collect();
        let idx = Tensor::from_vec(idx, batch, &device)?;
        let out = renderer
            .renderer()?
            .forward(&x_all.index_select(&idx, 0)?)?;
        let loss = mse(&out, &y_all.index_select(&idx, 0)?)?;
        let value = loss.to_scalar::<f32>()?;
        opt.step(&loss, step)?;
        if step % every == 0 || step + 1 == config.renderer_steps {
            let db = -10.0 * value.max(1e-12).log10();
            curve.points.push((step, db));
            log(&format!(
                "renderer step {step:>5}/{}: {db:.2} dB",
                config.renderer_steps
            ));
        }
    }
    report.renderer_curve = curve;
    timer.lap("renderer");

    // Held-out views.
    let mut test_set = PixelSet {
        inputs: Vec::new(),
        reference: Vec::new(),
        sh_only: Vec::new(),
    };
    for _ in 0..4 {
        render_pixels(
            &avatar,
            &mut eval_rng,
            config,
            &pose_mean,
            &lights,
            &mut test_set,
        )?;
    }
    let n_test = test_set.reference.len() / 3;
    let x = Tensor::from_vec(test_set.inputs, (n_test, input), &device)?;
    let pred = renderer
        .renderer()?
        .forward(&x)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    report.renderer_psnr_db = psnr(&pred, &test_set.reference);
    report.sh_only_psnr_db = psnr(&test_set.sh_only, &test_set.reference);
    log(&format!(
        "held-out views: neural renderer {:.2} dB, SH alone {:.2} dB against the reference shading",
        report.renderer_psnr_db, report.sh_only_psnr_db
    ));

    let mut writer = write_base(&rest, &pose_mean, nets, config.storage)?;
    renderer.write(&mut writer, config.storage)?;
    let mut writer_f32 = write_base(&rest, &pose_mean, nets, FloatStorage::F32)?;
    renderer.write(&mut writer_f32, FloatStorage::F32)?;
    timer.lap("held-out views");
    report.seconds = timer.0;
    Ok(Baked {
        writer,
        writer_f32,
        report,
    })
}
