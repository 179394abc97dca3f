//! MANO kinematics (XHand `repose.lbs_pose` with smplx's `batch_rodrigues` and
//! `batch_global_rigid_transformation`): pose → per-joint rotations → rigid chain →
//! skinning transforms `A_j`.

use nalgebra::{Matrix3, Matrix4, Quaternion, Rotation3, UnitQuaternion, Vector3};

use crate::{NUM_JOINTS, POSE_DIM};

/// smplx adds this to every axis-angle component before taking the norm
/// (`models/smplx.py` L15-22), so a zero rotation gives exactly the identity.
pub const RODRIGUES_EPS: f64 = 1e-8;

/// XHand's Rodrigues: angle `‖θ + ε‖`, axis `θ / angle`, through a normalised quaternion.
pub fn rodrigues(aa: [f32; 3]) -> Matrix3<f64> {
    let t = Vector3::new(aa[0] as f64, aa[1] as f64, aa[2] as f64);
    let angle = (t + Vector3::repeat(RODRIGUES_EPS)).norm();
    let axis = t / angle;
    let (s, c) = (angle * 0.5).sin_cos();
    let q = Quaternion::new(c, s * axis.x, s * axis.y, s * axis.z);
    UnitQuaternion::from_quaternion(q)
        .to_rotation_matrix()
        .into_inner()
}

/// Axis-angle (principal value: angle in `[0, π]`) of a rotation matrix, robust near 0 and
/// near π. The matrix becomes a unit quaternion by the branch-on-largest-component method
/// (nalgebra's `from_rotation_matrix`), so the axis stays accurate where the skew part of `R`
/// vanishes (angle π, where `Rotation3::scaled_axis` would return zero); the angle is
/// `2·atan2(|v|, w)` with `w ≥ 0`, accurate at both ends. `r` must be orthonormal (see
/// [`nearest_rotation`]).
pub fn axis_angle(r: &Matrix3<f64>) -> [f64; 3] {
    let q = UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(*r));
    let (mut w, mut v) = (q.w, q.imag());
    if w < 0.0 {
        w = -w;
        v = -v;
    }
    let s = v.norm();
    let angle = 2.0 * s.atan2(w);
    // angle / s → 2 / w as s → 0 (w → 1 there).
    let k = if s > 1e-12 { angle / s } else { 2.0 / w };
    [v.x * k, v.y * k, v.z * k]
}

/// How far a 3x3 matrix is from a rotation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RotationDefect {
    /// `max |MᵀM − I|` over the nine entries.
    pub orthogonality: f64,
    /// `det M`.
    pub det: f64,
}

/// The rotation nearest to `m` in the Frobenius norm (the polar factor `U·Vᵀ` of its SVD),
/// with how far `m` was from orthonormal. `None` when `det m ≤ 0` (a reflection or a
/// degenerate matrix has no nearest proper rotation worth using).
pub fn nearest_rotation(m: &Matrix3<f64>) -> (Option<Matrix3<f64>>, RotationDefect) {
    let gram = m.transpose() * m - Matrix3::identity();
    let defect = RotationDefect {
        orthogonality: gram.abs().max(),
        det: m.determinant(),
    };
    if defect.det.is_nan() || defect.det <= 0.0 {
        return (None, defect);
    }
    let svd = m.svd(true, true);
    let rot = match (svd.u, svd.v_t) {
        (Some(u), Some(v_t)) => u * v_t,
        _ => return (None, defect),
    };
    (Some(rot), defect)
}

/// The rest skeleton of an avatar: joint positions, parents and MANO's mean pose.
#[derive(Clone, Debug)]
pub struct Skeleton {
    joints: [Vector3<f64>; NUM_JOINTS],
    parents: [Option<usize>; NUM_JOINTS],
    /// Joints ordered so that every parent comes before its children.
    order: [usize; NUM_JOINTS],
    pose_mean: [f32; POSE_DIM],
}

/// Result of posing the skeleton.
#[derive(Clone, Debug)]
pub struct JointTransforms {
    /// `R_j` of `pose + pose_mean`.
    pub rotations: [Matrix3<f64>; NUM_JOINTS],
    /// Posed joint positions (the translation of `G_j`).
    pub posed_joints: [Vector3<f64>; NUM_JOINTS],
    /// Skinning transforms `A_j = G_j` with translation `t − R·J_j`.
    pub skinning: [Matrix4<f64>; NUM_JOINTS],
}

impl JointTransforms {
    /// Skinning transforms as column-major f32 4x4 matrices (for GPU upload).
    pub fn skinning_f32(&self) -> [[f32; 16]; NUM_JOINTS] {
        let mut out = [[0.0f32; 16]; NUM_JOINTS];
        for (o, a) in out.iter_mut().zip(&self.skinning) {
            for (dst, src) in o.iter_mut().zip(a.as_slice()) {
                *dst = *src as f32;
            }
        }
        out
    }
}

/// Why a parent table is not a tree rooted at joint 0.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SkeletonError {
    #[error("parents[0] = {0}; the root (joint 0) must have parent -1")]
    RootHasParent(i64),
    #[error(
        "parents[{joint}] = {parent}; it must be -1 only for joint 0 and otherwise a joint index 0..15"
    )]
    BadParent { joint: usize, parent: i64 },
    #[error("parents form a cycle through joint {0}; they must form a tree rooted at joint 0")]
    Cycle(usize),
}

impl Skeleton {
    /// Builds a skeleton, checking that `parents` is a tree rooted at joint 0.
    pub fn new(
        joints: [[f32; 3]; NUM_JOINTS],
        parents: [i64; NUM_JOINTS],
        pose_mean: [f32; POSE_DIM],
    ) -> Result<Self, SkeletonError> {
        if parents[0] != -1 {
            return Err(SkeletonError::RootHasParent(parents[0]));
        }
        let mut par = [None; NUM_JOINTS];
        for j in 1..NUM_JOINTS {
            let p = parents[j];
            if !(0..NUM_JOINTS as i64).contains(&p) || p == j as i64 {
                return Err(SkeletonError::BadParent {
                    joint: j,
                    parent: p,
                });
            }
            par[j] = Some(p as usize);
        }
        // Depth of each joint; a walk longer than NUM_JOINTS means a cycle.
        let mut depth = [0usize; NUM_JOINTS];
        for (j, depth_j) in depth.iter_mut().enumerate() {
            let mut cur = j;
            let mut d = 0;
            while let Some(p) = par[cur] {
                cur = p;
                d += 1;
                if d > NUM_JOINTS {
                    return Err(SkeletonError::Cycle(j));
                }
            }
            *depth_j = d;
        }
        let mut order: [usize; NUM_JOINTS] = std::array::from_fn(|i| i);
        order.sort_by_key(|&j| (depth[j], j));
        Ok(Self {
            joints: joints.map(|j| Vector3::new(j[0] as f64, j[1] as f64, j[2] as f64)),
            parents: par,
            order,
            pose_mean,
        })
    }

    /// Rest joint positions.
    pub fn joints(&self) -> &[Vector3<f64>; NUM_JOINTS] {
        &self.joints
    }

    /// Parent of each joint (`None` for the root).
    pub fn parents(&self) -> &[Option<usize>; NUM_JOINTS] {
        &self.parents
    }

    /// MANO's mean pose added before skinning (zeros for the root).
    pub fn pose_mean(&self) -> &[f32; POSE_DIM] {
        &self.pose_mean
    }

    /// `pose + pose_mean`, the rotations actually applied (XHand repose L55).
    pub fn full_pose(&self, pose: &[f32; POSE_DIM]) -> [f32; POSE_DIM] {
        std::array::from_fn(|i| pose[i] + self.pose_mean[i])
    }

    /// Poses the skeleton: `G_0 = [R_0 | J_0]`, `G_j = G_p · [R_j | J_j − J_p]`,
    /// `A_j = G_j − [0 | G_j.R · J_j]`.
    pub fn transforms(&self, pose: &[f32; POSE_DIM]) -> JointTransforms {
        let full = self.full_pose(pose);
        let rotations: [Matrix3<f64>; NUM_JOINTS] =
            std::array::from_fn(|j| rodrigues([full[3 * j], full[3 * j + 1], full[3 * j + 2]]));
        let mut world = [Matrix4::<f64>::identity(); NUM_JOINTS];
        for &j in &self.order {
            let local_t = match self.parents[j] {
                Some(p) => self.joints[j] - self.joints[p],
                None => self.joints[j],
            };
            let mut local = Matrix4::identity();
            local.fixed_view_mut::<3, 3>(0, 0).copy_from(&rotations[j]);
            local.fixed_view_mut::<3, 1>(0, 3).copy_from(&local_t);
            world[j] = match self.parents[j] {
                Some(p) => world[p] * local,
                None => local,
            };
        }
        let posed_joints = world.map(|g| g.fixed_view::<3, 1>(0, 3).into_owned());
        let skinning: [Matrix4<f64>; NUM_JOINTS] = std::array::from_fn(|j| {
            let g = world[j];
            let r = g.fixed_view::<3, 3>(0, 0).into_owned();
            let mut a = g;
            let t = g.fixed_view::<3, 1>(0, 3) - r * self.joints[j];
            a.fixed_view_mut::<3, 1>(0, 3).copy_from(&t);
            a
        });
        JointTransforms {
            rotations,
            posed_joints,
            skinning,
        }
    }
}

/// MANO's kinematic tree (smplx `kintree_table[0]`): wrist; index, middle, pinky, ring,
/// thumb chains of three joints each.
pub const MANO_PARENTS: [i64; NUM_JOINTS] = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14];

/// Names of the 16 MANO joints in order.
pub const MANO_JOINT_NAMES: [&str; NUM_JOINTS] = [
    "wrist", "index1", "index2", "index3", "middle1", "middle2", "middle3", "pinky1", "pinky2",
    "pinky3", "ring1", "ring2", "ring3", "thumb1", "thumb2", "thumb3",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rodrigues_zero_is_identity_and_matches_textbook() {
        assert_eq!(rodrigues([0.0; 3]), Matrix3::identity());
        let aa = [0.3f32, -1.2, 2.5];
        let r = rodrigues(aa);
        let v = Vector3::new(0.3, -1.2, 2.5f32 as f64);
        let expect =
            nalgebra::Rotation3::from_scaled_axis(Vector3::new(aa[0] as f64, aa[1] as f64, v.z));
        assert!((r - expect.matrix()).abs().max() < 1e-7);
        let back = axis_angle(&r);
        assert!((back[1] - aa[1] as f64).abs() < 1e-6);
    }

    #[test]
    fn axis_angle_round_trips_near_zero_and_pi() {
        use std::f64::consts::PI;
        let axes = [
            Vector3::new(1.0, 0.0, 0.0),
            Vector3::new(0.0, -1.0, 0.0),
            Vector3::new(0.3, -0.5, 0.8).normalize(),
            Vector3::new(-0.9, 0.1, 0.4).normalize(),
        ];
        for axis in axes {
            for angle in [
                0.0,
                1e-9,
                1e-6,
                1e-3,
                0.7,
                2.0,
                PI - 1e-3,
                PI - 1e-6,
                PI - 1e-9,
            ] {
                let aa = axis * angle;
                let r = Rotation3::from_scaled_axis(aa).into_inner();
                let back = axis_angle(&r);
                let err = (Vector3::from(back) - aa).abs().max();
                assert!(err < 1e-9, "axis {axis:?} angle {angle}: error {err:e}");
            }
            // Exactly π: either sign of the axis is the same rotation.
            let r = Rotation3::from_scaled_axis(axis * PI).into_inner();
            let back = Vector3::from(axis_angle(&r));
            assert!((back.norm() - PI).abs() < 1e-12, "{back:?}");
            assert!(back.normalize().dot(&axis).abs() > 1.0 - 1e-12, "{back:?}");
        }
    }

    #[test]
    fn nearest_rotation_repairs_and_refuses() {
        let r = Rotation3::from_scaled_axis(Vector3::new(0.4, -1.1, 0.3)).into_inner();
        let (fixed, d) = nearest_rotation(&r);
        assert!(d.orthogonality < 1e-12 && (d.det - 1.0).abs() < 1e-12);
        assert!((fixed.unwrap() - r).abs().max() < 1e-12);
        let noisy = r + Matrix3::new(0.01, -0.02, 0.0, 0.0, 0.01, 0.005, -0.01, 0.0, 0.02);
        let (fixed, d) = nearest_rotation(&noisy);
        let fixed = fixed.unwrap();
        assert!(d.orthogonality > 1e-3 && d.orthogonality < 0.1);
        assert!(
            (fixed.transpose() * fixed - Matrix3::identity())
                .abs()
                .max()
                < 1e-12
        );
        assert!((fixed.determinant() - 1.0).abs() < 1e-12);
        assert!((fixed - r).abs().max() < 0.03);
        let mirror = Matrix3::from_diagonal(&Vector3::new(-1.0, 1.0, 1.0)) * r;
        assert!(nearest_rotation(&mirror).0.is_none());
        assert!(nearest_rotation(&Matrix3::zeros()).0.is_none());
    }

    #[test]
    fn rejects_cycles_and_bad_roots() {
        let j = [[0.0f32; 3]; NUM_JOINTS];
        let mut p = MANO_PARENTS;
        p[0] = 3;
        assert!(matches!(
            Skeleton::new(j, p, [0.0; POSE_DIM]),
            Err(SkeletonError::RootHasParent(3))
        ));
        let mut p = MANO_PARENTS;
        p[1] = 2; // 1 -> 2 -> 1
        assert!(matches!(
            Skeleton::new(j, p, [0.0; POSE_DIM]),
            Err(SkeletonError::Cycle(_))
        ));
        let mut p = MANO_PARENTS;
        p[5] = 16;
        assert!(matches!(
            Skeleton::new(j, p, [0.0; POSE_DIM]),
            Err(SkeletonError::BadParent { joint: 5, .. })
        ));
    }

    #[test]
    fn rest_pose_gives_identity_skinning() {
        let joints: [[f32; 3]; NUM_JOINTS] =
            std::array::from_fn(|i| [i as f32 * 0.01, 0.02, -0.01]);
        let s = Skeleton::new(joints, MANO_PARENTS, [0.0; POSE_DIM]).unwrap();
        let t = s.transforms(&[0.0; POSE_DIM]);
        for a in &t.skinning {
            assert!((a - Matrix4::identity()).abs().max() < 1e-12);
        }
    }
}
