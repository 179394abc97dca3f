//! Rig conversion: a skinned glTF hand (the WebXR "generic-hand", 25 joints) onto MANO's
//! 16 joints, placed in MANO's canonical right-hand frame (docs/default-avatar.md).

use std::collections::HashMap;

use nalgebra::{Matrix3, Matrix4, Vector3};

use crate::NUM_JOINTS;

/// The MIT-licensed right hand the default avatar is baked from (assets/generic-hand).
pub const GENERIC_HAND_GLB: &[u8] = include_bytes!("../../assets/generic-hand/right.glb");

/// Where MANO_RIGHT's regressed rest wrist joint lies (metres): about 9.6 cm along +x from
/// the middle finger's knuckle, which sits near the origin (docs/default-avatar.md).
pub const MANO_WRIST: [f32; 3] = [0.0957, 0.0064, 0.0062];

/// glTF joint name → MANO joint it folds into. Metacarpals fold into the wrist (MANO has
/// none), tips into the distal joint; the thumb's metacarpal is MANO's `thumb1`.
const JOINT_MAP: [(&str, usize); 25] = [
    ("wrist", 0),
    ("thumb-metacarpal", 13),
    ("thumb-phalanx-proximal", 14),
    ("thumb-phalanx-distal", 15),
    ("thumb-tip", 15),
    ("index-finger-metacarpal", 0),
    ("index-finger-phalanx-proximal", 1),
    ("index-finger-phalanx-intermediate", 2),
    ("index-finger-phalanx-distal", 3),
    ("index-finger-tip", 3),
    ("middle-finger-metacarpal", 0),
    ("middle-finger-phalanx-proximal", 4),
    ("middle-finger-phalanx-intermediate", 5),
    ("middle-finger-phalanx-distal", 6),
    ("middle-finger-tip", 6),
    ("ring-finger-metacarpal", 0),
    ("ring-finger-phalanx-proximal", 10),
    ("ring-finger-phalanx-intermediate", 11),
    ("ring-finger-phalanx-distal", 12),
    ("ring-finger-tip", 12),
    ("pinky-finger-metacarpal", 0),
    ("pinky-finger-phalanx-proximal", 7),
    ("pinky-finger-phalanx-intermediate", 8),
    ("pinky-finger-phalanx-distal", 9),
    ("pinky-finger-tip", 9),
];

/// glTF joint whose position is each MANO joint's position.
const JOINT_POSITION: [&str; NUM_JOINTS] = [
    "wrist",
    "index-finger-phalanx-proximal",
    "index-finger-phalanx-intermediate",
    "index-finger-phalanx-distal",
    "middle-finger-phalanx-proximal",
    "middle-finger-phalanx-intermediate",
    "middle-finger-phalanx-distal",
    "pinky-finger-phalanx-proximal",
    "pinky-finger-phalanx-intermediate",
    "pinky-finger-phalanx-distal",
    "ring-finger-phalanx-proximal",
    "ring-finger-phalanx-intermediate",
    "ring-finger-phalanx-distal",
    "thumb-metacarpal",
    "thumb-phalanx-proximal",
    "thumb-phalanx-distal",
];

/// Fingertip joints, in MANO's finger order (index, middle, pinky, ring, thumb).
const TIP_NAMES: [&str; 5] = [
    "index-finger-tip",
    "middle-finger-tip",
    "pinky-finger-tip",
    "ring-finger-tip",
    "thumb-tip",
];

/// A hand mesh skinned to MANO's 16 joints, in MANO's canonical right-hand frame.
#[derive(Clone, Debug)]
pub struct RiggedHand {
    pub verts: Vec<[f32; 3]>,
    pub faces: Vec<[u32; 3]>,
    /// Skinning weights `[V, 16]`, rows summing to 1.
    pub weights: Vec<f32>,
    pub joints: [[f32; 3]; NUM_JOINTS],
    /// Fingertips (index, middle, pinky, ring, thumb).
    pub tips: [[f32; 3]; 5],
}

/// A problem reading or converting the rigged hand.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {problem}")]
pub struct RigError {
    pub source_name: String,
    pub problem: String,
}

/// Reads a skinned glTF binary (`.glb`) with the WebXR hand skeleton and converts it.
/// Any file gives a hand or an error naming the problem.
pub fn load_glb(bytes: &[u8], source_name: &str) -> Result<RiggedHand, RigError> {
    // The accessors are checked before they are read; this only guards against a reader
    // panic we did not foresee in the gltf crate on a crafted file.
    std::panic::catch_unwind(|| convert(bytes, source_name)).unwrap_or_else(|_| {
        Err(RigError {
            source_name: source_name.to_string(),
            problem: "the glTF reader failed on this file (malformed buffers)".into(),
        })
    })
}

/// Checks that `accessor` holds `count ≥ 1` elements of the expected kind, laid out so that
/// the gltf crate's readers can read it.
fn check_accessor(
    accessor: &gltf::Accessor,
    what: &str,
    types: &[gltf::accessor::DataType],
    dims: gltf::accessor::Dimensions,
) -> Result<(), String> {
    if accessor.count() == 0 {
        return Err(format!("{what} is empty"));
    }
    if !types.contains(&accessor.data_type()) || accessor.dimensions() != dims {
        return Err(format!(
            "{what} has {:?} {:?} elements; expected {dims:?} of {types:?}",
            accessor.dimensions(),
            accessor.data_type()
        ));
    }
    let Some(view) = accessor.view() else {
        return Err(format!(
            "{what} has no buffer view (sparse accessors are not supported)"
        ));
    };
    if view.stride().is_some_and(|s| s < accessor.size()) {
        return Err(format!("{what}'s byte stride is smaller than one element"));
    }
    Ok(())
}

fn convert(bytes: &[u8], source_name: &str) -> Result<RiggedHand, RigError> {
    use gltf::accessor::{DataType, Dimensions};
    let err = |problem: String| RigError {
        source_name: source_name.to_string(),
        problem,
    };
    let gltf = gltf::Gltf::from_slice(bytes).map_err(|e| err(format!("not a glTF file: {e}")))?;
    let blob = gltf.blob.as_deref();

    let (mesh_node, skin) = gltf
        .document
        .nodes()
        .find_map(|n| Some((n.clone(), n.skin()?)).filter(|_| n.mesh().is_some()))
        .ok_or_else(|| err("no skinned mesh".into()))?;

    // Bind pose, as glTF defines it: joint j sits at inverse(inverseBindMatrix_j)'s origin
    // in the mesh's space (the mesh node's own transform does not apply to skinned meshes).
    let ibm = skin
        .inverse_bind_matrices()
        .ok_or_else(|| err("the skin has no inverseBindMatrices".into()))?;
    check_accessor(
        &ibm,
        "inverseBindMatrices",
        &[DataType::F32],
        Dimensions::Mat4,
    )
    .map_err(err)?;
    let reader = skin.reader(|b| if b.index() == 0 { blob } else { None });
    let matrices: Vec<[[f32; 4]; 4]> = reader
        .read_inverse_bind_matrices()
        .ok_or_else(|| err("cannot read inverseBindMatrices".into()))?
        .collect();
    let names: HashMap<&str, usize> = JOINT_MAP.iter().copied().collect();
    let mut to_mano = Vec::new();
    let mut position: HashMap<String, Vector3<f64>> = HashMap::new();
    for (k, joint) in skin.joints().enumerate() {
        let name = joint.name().unwrap_or_default().to_string();
        let m = names.get(name.as_str()).ok_or_else(|| {
            err(format!(
                "unexpected joint `{name}` (not the WebXR hand skeleton)"
            ))
        })?;
        to_mano.push(*m);
        let ib = matrices
            .get(k)
            .ok_or_else(|| err(format!("no inverse bind matrix for joint `{name}`")))?;
        let bind = Matrix4::from_fn(|r, c| ib[c][r] as f64)
            .try_inverse()
            .ok_or_else(|| err(format!("joint `{name}`'s inverse bind matrix is singular")))?;
        let p = Vector3::new(bind[(0, 3)], bind[(1, 3)], bind[(2, 3)]);
        if !p.iter().all(|x| x.is_finite()) {
            return Err(err(format!("joint `{name}` is not finite")));
        }
        position.insert(name, p);
    }
    let at = |name: &str| {
        position
            .get(name)
            .copied()
            .ok_or_else(|| err(format!("joint `{name}` is missing")))
    };

    let mut verts = Vec::new();
    let mut faces = Vec::new();
    let mut weights = Vec::new();
    let mesh = mesh_node.mesh().ok_or_else(|| err("no mesh".into()))?;
    for prim in mesh.primitives() {
        let attr = |sem: gltf::Semantic, what: &str, types: &[DataType], dims| {
            let a = prim
                .get(&sem)
                .ok_or_else(|| err(format!("mesh has no {what}")))?;
            check_accessor(&a, what, types, dims).map_err(err)
        };
        attr(
            gltf::Semantic::Positions,
            "POSITION",
            &[DataType::F32],
            Dimensions::Vec3,
        )?;
        let joint_types = [DataType::U8, DataType::U16];
        attr(
            gltf::Semantic::Joints(0),
            "JOINTS_0",
            &joint_types,
            Dimensions::Vec4,
        )?;
        let weight_types = [DataType::F32, DataType::U8, DataType::U16];
        attr(
            gltf::Semantic::Weights(0),
            "WEIGHTS_0",
            &weight_types,
            Dimensions::Vec4,
        )?;
        let index_types = [DataType::U8, DataType::U16, DataType::U32];
        match prim.indices() {
            Some(a) => {
                check_accessor(&a, "indices", &index_types, Dimensions::Scalar).map_err(err)?
            }
            None => return Err(err("mesh has no indices".into())),
        }
        let reader = prim.reader(|b| if b.index() == 0 { blob } else { None });
        let base = verts.len() as u32;
        let pos: Vec<[f32; 3]> = reader
            .read_positions()
            .ok_or_else(|| err("mesh has no POSITION".into()))?
            .collect();
        let joints: Vec<[u16; 4]> = reader
            .read_joints(0)
            .ok_or_else(|| err("mesh has no JOINTS_0".into()))?
            .into_u16()
            .collect();
        let wts: Vec<[f32; 4]> = reader
            .read_weights(0)
            .ok_or_else(|| err("mesh has no WEIGHTS_0".into()))?
            .into_f32()
            .collect();
        if joints.len() != pos.len() || wts.len() != pos.len() {
            return Err(err(
                "JOINTS_0/WEIGHTS_0 and POSITION differ in length".into()
            ));
        }
        for ((p, j), w) in pos.iter().zip(&joints).zip(&wts) {
            if !p.iter().all(|x| x.is_finite()) {
                return Err(err("a vertex position is not finite".into()));
            }
            verts.push(p.map(|x| x as f64));
            let mut row = [0.0f32; NUM_JOINTS];
            for (&ji, &wi) in j.iter().zip(w) {
                if wi == 0.0 {
                    continue; // padding influences may name any joint
                }
                let m = to_mano.get(ji as usize).ok_or_else(|| {
                    err(format!(
                        "JOINTS_0 refers to joint {ji}, the skin has {}",
                        to_mano.len()
                    ))
                })?;
                row[*m] += wi;
            }
            let sum: f32 = row.iter().sum();
            if !(sum > 1e-6 && sum.is_finite()) {
                return Err(err("a vertex has no valid skinning weight".into()));
            }
            weights.extend(row.map(|x| x / sum));
        }
        let idx: Vec<u32> = reader
            .read_indices()
            .ok_or_else(|| err("mesh has no indices".into()))?
            .into_u32()
            .collect();
        for t in idx.chunks_exact(3) {
            if t.iter().any(|&i| i as usize >= pos.len()) {
                return Err(err("a face index is out of range".into()));
            }
            faces.push([base + t[0], base + t[1], base + t[2]]);
        }
    }

    // MANO frame: fingers along −x, palm facing −y, thumb towards +z, wrist at MANO_WRIST.
    let wrist = at("wrist")?;
    let degenerate =
        || err("the wrist and knuckles are too close to define the hand's axes".into());
    let finger = (at("middle-finger-phalanx-proximal")? - wrist)
        .try_normalize(1e-6)
        .ok_or_else(degenerate)?;
    let across = at("index-finger-phalanx-proximal")? - at("pinky-finger-phalanx-proximal")?;
    let thumb_side = (across - finger * across.dot(&finger))
        .try_normalize(1e-6)
        .ok_or_else(degenerate)?;
    let palm = thumb_side.cross(&finger);
    // Chirality: a relaxed hand's fingers curl slightly towards the palm. For a right hand
    // that is `thumb_side × finger`; a left hand curls the other way.
    let mut curl = 0.0;
    for f in ["index", "middle", "ring", "pinky"] {
        let base = at(&format!("{f}-finger-phalanx-proximal"))?;
        curl += (at(&format!("{f}-finger-tip"))? - base).dot(&palm);
    }
    if curl.is_nan() || curl <= 0.0 {
        return Err(err(
            "the fingers curl away from a right hand's palm: not a right hand".into(),
        ));
    }
    let source = Matrix3::from_columns(&[finger, palm, thumb_side]);
    let target = Matrix3::<f64>::from_columns(&[-Vector3::x(), -Vector3::y(), Vector3::z()]);
    let rot = target * source.transpose();
    let origin = Vector3::new(
        MANO_WRIST[0] as f64,
        MANO_WRIST[1] as f64,
        MANO_WRIST[2] as f64,
    );
    let place = |p: Vector3<f64>| -> [f32; 3] {
        let q: Vector3<f64> = rot * (p - wrist) + origin;
        [q.x as f32, q.y as f32, q.z as f32]
    };
    let verts = verts
        .into_iter()
        .map(|v| place(Vector3::new(v[0], v[1], v[2])))
        .collect();
    let mut joints = [[0.0f32; 3]; NUM_JOINTS];
    for (j, name) in JOINT_POSITION.iter().enumerate() {
        joints[j] = place(at(name)?);
    }
    let mut tips = [[0.0f32; 3]; 5];
    for (t, name) in TIP_NAMES.iter().enumerate() {
        tips[t] = place(at(name)?);
    }
    Ok(RiggedHand {
        verts,
        faces,
        weights,
        joints,
        tips,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_hand_lands_in_mano_frame() {
        let hand = load_glb(GENERIC_HAND_GLB, "right.glb").unwrap();
        assert_eq!(hand.verts.len() * NUM_JOINTS, hand.weights.len());
        let j = hand.joints;
        // Wrist where MANO has it, middle knuckle near the origin, fingers towards −x.
        assert_eq!(j[0], MANO_WRIST);
        assert!(j[4][0].abs() < 0.02, "middle MCP x = {}", j[4][0]);
        assert!(hand.tips[1][0] < j[6][0] && j[6][0] < j[5][0] && j[5][0] < j[4][0]);
        // Index towards +z of the pinky, thumb on the +z side.
        assert!(j[1][2] > j[10][2] && j[10][2] > j[7][2]);
        assert!(j[13][2] > j[1][2]);
        // Every weight row sums to one.
        for row in hand.weights.chunks_exact(NUM_JOINTS) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    /// The bundled file with one byte sequence of its JSON replaced (same length).
    fn patched(from: &str, to: &str) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let mut bytes = GENERIC_HAND_GLB.to_vec();
        let at = bytes
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .expect("pattern in right.glb");
        bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
        bytes
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(load_glb(b"not a glb", "x.glb").is_err());
        let cut = &GENERIC_HAND_GLB[..GENERIC_HAND_GLB.len() / 2];
        assert!(load_glb(cut, "cut.glb").is_err());
        // JOINTS_0 as floats: rejected before the reader (which would panic) sees it.
        let e = load_glb(
            &patched("\"componentType\":5121", "\"componentType\":5126"),
            "j.glb",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("j.glb: JOINTS_0"), "{e}");
        // A joint that is not in the WebXR skeleton.
        let e = load_glb(
            &patched("\"name\":\"wrist\"", "\"name\":\"wrisT\""),
            "n.glb",
        )
        .unwrap_err();
        assert!(e.to_string().contains("wrisT"), "{e}");
        let left = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/generic-hand/left.glb"
        ));
        if let Ok(bytes) = left {
            let e = load_glb(&bytes, "left.glb").unwrap_err();
            assert!(e.to_string().contains("not a right hand"), "{e}");
        }
    }
}
