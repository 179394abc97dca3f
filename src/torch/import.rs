//! XHand checkpoint + MANO model → an xhand avatar file.
//!
//! The avatar holds every `state_dict()` entry under XHand's own name with its dtype and bits
//! unchanged (weight norm stays unfolded), the template XHand keeps outside its state_dict
//! (`verts`, `faces`, `template_v`), and from the MANO file the joint regressor, the joints
//! `J = J_regressor · template_v` (computed in f64, stored as f32), `parents` and
//! `pose_mean = [0, 0, 0] + hands_mean` — what XHand's forward uses (spec §6). XHand trained on
//! OpenCV images, so the colours are marked `color_order = bgr`.

use std::path::Path;

use super::ImportError;
use super::checkpoint::{Checkpoint, Elem, HostTensor};
use super::mano::{MANO_VERTICES, ManoModel};
use super::xhand::XHandCheckpoint;
use crate::avatar::write::TensorWriter;
use crate::hand::Handedness;
use crate::mesh::subdivide::{Scheme, subdivide};
use crate::nn::posenc::{PE_DIRS, PE_NUM_DIRS};
use crate::{NUM_JOINTS, POSE_DIM};

/// Mean distance between the MANO file's own regressed joints and the checkpoint's above
/// which the MANO file is taken to be of the other hand. The right file lies within ~3 cm of
/// a right-hand template (shape differences); the left file's joints are mirrored, ~30 cm off.
pub const WRONG_HAND_DISTANCE_M: f64 = 0.10;

/// Loop-subdivision rounds XHand applies to MANO's 778-vertex mesh (49,281 vertices).
const XHAND_SUBDIVISIONS: usize = 3;

/// An imported avatar, ready to write or load.
pub struct Imported {
    pub writer: TensorWriter,
    pub report: ImportReport,
}

/// What an import found, for the command's summary.
#[derive(Clone, Debug)]
pub struct ImportReport {
    /// `module.Class` of the checkpoint's root (or `state_dict`).
    pub root_class: String,
    pub hand: Handedness,
    pub vertices: usize,
    pub faces: usize,
    /// state_dict tensors copied.
    pub state_dict_tensors: usize,
    /// Stale plain attributes left out (weight norm's `lin{i}.weight`).
    pub skipped_attributes: Vec<String>,
    /// Mean distance (m) between MANO's own regressed joints and the checkpoint's.
    pub mano_joint_distance_m: Option<f64>,
    /// Things the user should know (a template made from MANO, unusual flags, …).
    pub warnings: Vec<String>,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "checkpoint:  {}", self.root_class)?;
        writeln!(f, "hand:        {}", self.hand)?;
        writeln!(
            f,
            "mesh:        {} vertices, {} faces",
            self.vertices, self.faces
        )?;
        writeln!(
            f,
            "state_dict:  {} tensors copied unchanged",
            self.state_dict_tensors
        )?;
        if !self.skipped_attributes.is_empty() {
            writeln!(
                f,
                "skipped:     {} stale weight-norm `weight` attributes (weight_g/weight_v kept)",
                self.skipped_attributes.len()
            )?;
        }
        if let Some(d) = self.mano_joint_distance_m {
            writeln!(
                f,
                "MANO joints: {:.1} mm from the checkpoint's template (same hand)",
                d * 1e3
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "warning:     {w}")?;
        }
        Ok(())
    }
}

/// Imports `checkpoint` (a `torch.save` of XHand's module or of its state_dict) with the
/// MANO model file `mano`.
pub fn import(checkpoint: &Path, mano: &Path) -> Result<Imported, ImportError> {
    let ck = Checkpoint::open(checkpoint)?;
    let xh = XHandCheckpoint::from_checkpoint(&ck)?;
    let mano = ManoModel::open(mano)?;
    assemble(checkpoint, &xh, &mano)
}

/// Builds the avatar from a parsed checkpoint and MANO model.
pub fn assemble(
    path: &Path,
    xh: &XHandCheckpoint,
    mano: &ManoModel,
) -> Result<Imported, ImportError> {
    let fail = |p: String| ImportError::new(path, p);
    let mut warnings = Vec::new();
    let mut w = TensorWriter::new();
    for (name, t) in &xh.state_dict {
        w.raw(name, t.elem.safetensors(), &t.shape, &t.data);
    }
    let expected_v = xh
        .state_dict
        .iter()
        .find(|(n, _)| n == "delta_net.latent_code")
        .map(|(_, t)| t.shape[0])
        .ok_or_else(|| {
            fail(
                "it has no `delta_net.latent_code`: not an XHand checkpoint (or not a trained one)"
                    .into(),
            )
        })?;

    // The template: the checkpoint's attributes, or (state_dict files) MANO's mesh
    // subdivided as XHand does.
    let (verts, faces, template_v) = match (&xh.verts, &xh.faces, &xh.template_v) {
        (Some(v), Some(f), Some(t)) => (v.clone(), f.clone(), t.clone()),
        _ => {
            let (Some(vt), Some(mf)) = (&mano.v_template, &mano.faces) else {
                return Err(fail(
                    "it holds no template (`verts`, `faces`, `template_v`) and the MANO file has no \
                     `v_template`/`f` to build one from"
                        .into(),
                ));
            };
            warnings.push(
                "the checkpoint is a bare state_dict without XHand's template: using MANO's \
                 unshaped `v_template`, Loop-subdivided 3× as XHand does (the subject's shape is \
                 lost; save the whole module with torch.save(xhand, …) to keep it)"
                    .into(),
            );
            let mut v: Vec<[f32; 3]> = vt.iter().map(|p| p.map(|x| x as f32)).collect();
            let mut f = mf.clone();
            for _ in 0..XHAND_SUBDIVISIONS {
                let s = subdivide(&v, &f, Scheme::Loop);
                v = s.verts;
                f = s.faces;
            }
            let tv: Vec<f32> = vt.iter().flat_map(|p| p.map(|x| x as f32)).collect();
            (
                f32_tensor(&[v.len(), 3], v.iter().flatten().copied()),
                HostTensor {
                    elem: Elem::I32,
                    shape: vec![f.len(), 3],
                    data: f
                        .iter()
                        .flatten()
                        .flat_map(|&i| (i as i32).to_le_bytes())
                        .collect(),
                },
                f32_tensor(&[vt.len(), 3], tv.into_iter()),
            )
        }
    };
    if verts.shape.len() != 2 || verts.shape[1] != 3 || verts.shape[0] != expected_v {
        let problem = if xh.verts.is_none() {
            format!(
                "it is a bare state_dict without XHand's template; rebuilt from MANO the template \
                 has {} vertices, but the networks' latent codes are for {expected_v} vertices — \
                 save the whole module (torch.save(xhand, …)) instead",
                verts.shape[0]
            )
        } else {
            format!(
                "`verts` has shape {:?}, but the networks' latent codes are for {expected_v} vertices",
                verts.shape
            )
        };
        return Err(fail(problem));
    }
    let faces = int32_faces(&faces, expected_v).map_err(|p| fail(format!("`faces` {p}")))?;
    if template_v.shape != [mano.num_vertices, 3] {
        return Err(fail(format!(
            "`template_v` has shape {:?}; the MANO file's regressor expects [{}, 3]",
            template_v.shape, mano.num_vertices
        )));
    }
    if mano.num_vertices != MANO_VERTICES {
        warnings.push(format!(
            "the MANO regressor is for {} vertices, not MANO's {MANO_VERTICES}",
            mano.num_vertices
        ));
    }
    w.raw("verts", verts.elem.safetensors(), &verts.shape, &verts.data);
    w.raw("faces", faces.elem.safetensors(), &faces.shape, &faces.data);
    w.raw(
        "template_v",
        template_v.elem.safetensors(),
        &template_v.shape,
        &template_v.data,
    );

    // Joints from the subject's template; the MANO file's own template tells which hand it is.
    let tv: Vec<[f64; 3]> = template_v
        .to_f32()
        .chunks_exact(3)
        .map(|c| [c[0] as f64, c[1] as f64, c[2] as f64])
        .collect();
    let joints = mano.regress_joints(&tv);
    let hand = match xh.hand_type.as_deref() {
        None => Handedness::Right,
        Some(s) => Handedness::parse(s).ok_or_else(|| {
            fail(format!(
                "its `hand_type` is `{s}`; expected `right` or `left`"
            ))
        })?,
    };
    let mut distance = None;
    if let Some(vt) = &mano.v_template {
        let own = mano.regress_joints(vt);
        let d = own
            .iter()
            .zip(&joints)
            .map(|(a, b)| {
                ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
            })
            .sum::<f64>()
            / NUM_JOINTS as f64;
        if d > WRONG_HAND_DISTANCE_M {
            let other = match hand {
                Handedness::Right => "MANO_LEFT",
                Handedness::Left => "MANO_RIGHT",
            };
            return Err(ImportError::new(
                &mano.path,
                format!(
                    "this MANO file is for the other hand: its joints lie {:.0} mm from the {hand} \
                     checkpoint's template on average (the matching file is within ~30 mm); it \
                     looks like {other} — pass {}.pkl",
                    d * 1e3,
                    match hand {
                        Handedness::Right => "MANO_RIGHT",
                        Handedness::Left => "MANO_LEFT",
                    }
                ),
            ));
        }
        distance = Some(d);
    } else {
        warnings.push(
            "the MANO file has no `v_template`: could not check it is for the same hand".into(),
        );
    }
    let jr: Vec<f32> = mano.j_regressor.iter().map(|&x| x as f32).collect();
    w.f32("J_regressor", &[NUM_JOINTS, mano.num_vertices], &jr);
    let joints_f32: Vec<f32> = joints.iter().flatten().map(|&x| x as f32).collect();
    w.f32("joints", &[NUM_JOINTS, 3], &joints_f32);
    w.i64("parents", &[NUM_JOINTS], &mano.parents);
    let mut pose_mean = vec![0.0f32; 3];
    pose_mean.extend(mano.hands_mean.iter().map(|&x| x as f32));
    debug_assert_eq!(pose_mean.len(), POSE_DIM);
    w.f32("pose_mean", &[POSE_DIM], &pose_mean);

    if let Some(dirs) = &xh.pe_dirs {
        let d = dirs.to_f32();
        let matches = dirs.shape == [3, PE_NUM_DIRS]
            && (0..3).all(|c| {
                (0..PE_NUM_DIRS).all(|j| (d[c * PE_NUM_DIRS + j] - PE_DIRS[j][c]).abs() < 1e-6)
            });
        if !matches {
            warnings.push(
                "the checkpoint's positional-encoding directions (`pe.dirs`) differ from XHand's; \
                 the neural renderer will not match training"
                    .into(),
            );
        }
    }

    let file_name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    w.meta("hand_type", hand.as_str());
    w.meta("color_order", "bgr");
    w.meta(
        "source",
        &format!(
            "imported by xhand {} from {} ({}) with MANO file {}",
            env!("CARGO_PKG_VERSION"),
            file_name(path),
            xh.root_class,
            file_name(&mano.path)
        ),
    );
    Ok(Imported {
        writer: w,
        report: ImportReport {
            root_class: xh.root_class.clone(),
            hand,
            vertices: expected_v,
            faces: faces.shape[0],
            state_dict_tensors: xh.state_dict.len(),
            skipped_attributes: xh.skipped_attributes.clone(),
            mano_joint_distance_m: distance,
            warnings,
        },
    })
}

fn f32_tensor(shape: &[usize], values: impl Iterator<Item = f32>) -> HostTensor {
    HostTensor {
        elem: Elem::F32,
        shape: shape.to_vec(),
        data: values.flat_map(f32::to_le_bytes).collect(),
    }
}

/// Faces as int32 `[F, 3]` with every index below `num_v` (XHand stores int32; int64 is
/// narrowed).
fn int32_faces(faces: &HostTensor, num_v: usize) -> Result<HostTensor, String> {
    if faces.shape.len() != 2 || faces.shape[1] != 3 || faces.shape[0] == 0 {
        return Err(format!("has shape {:?}; expected [F, 3]", faces.shape));
    }
    if !matches!(faces.elem, Elem::I32 | Elem::I64) {
        return Err(format!(
            "has element type {:?}; expected integers",
            faces.elem
        ));
    }
    let vals = faces.to_f64();
    if let Some(bad) = vals.iter().find(|&&i| i < 0.0 || i >= num_v as f64) {
        return Err(format!(
            "holds vertex index {bad}; indices must be in 0..{num_v}"
        ));
    }
    Ok(HostTensor {
        elem: Elem::I32,
        shape: faces.shape.clone(),
        data: vals
            .iter()
            .flat_map(|&i| (i as i32).to_le_bytes())
            .collect(),
    })
}
