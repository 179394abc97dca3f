//! Evaluating an avatar for one pose: networks, kinematics, skinning, placement, normals.
//!
//! The viewer splits this in two — [`Avatar::embed`] (slow, on a worker) and
//! [`Avatar::pose_geometry`] (fast, every frame, with the latest finished embeddings) —
//! which is why they are separate functions.

use crate::avatar::Avatar;
use crate::hand::HandDrive;
use crate::mesh;
use crate::nn::Embeddings;
use crate::pose::PoseFrame;
use crate::skeleton::JointTransforms;
use crate::{POSE_DIM, SH_DIM};

/// The posed geometry of one frame.
#[derive(Clone, Debug)]
pub struct PosedGeometry {
    /// How the pose's hand relates to the avatar's (mirroring).
    pub drive: HandDrive,
    /// The pose in the avatar's own hand convention (what the networks and skeleton see).
    pub avatar_pose: [f32; POSE_DIM],
    pub transforms: JointTransforms,
    /// Uniform scale and translation applied after skinning.
    pub scale: f32,
    pub trans: [f32; 3],
    /// World positions after skinning, mirroring, scale and translation (`vertices_new`).
    pub vertices: Vec<[f32; 3]>,
    /// XHand's `get_normals` of `vertices`: outward for an unmirrored hand, inward when
    /// mirrored (faces are not re-wound); multiply by `drive.normal_sign()` for outward.
    pub normals: Vec<[f32; 3]>,
}

/// Everything a renderer needs for one frame.
#[derive(Clone, Debug)]
pub struct PosedFrame {
    pub embeddings: Embeddings,
    pub geometry: PosedGeometry,
    /// SH lighting in effect (the frame's, else the avatar's chosen view).
    pub sh: [f32; SH_DIM],
}

impl Avatar {
    /// How `frame` drives this avatar.
    pub fn drive(&self, frame: &PoseFrame) -> HandDrive {
        HandDrive::new(self.hand, frame.hand)
    }

    /// Runs the three embedding networks for `frame` (in the avatar's hand convention).
    pub fn embed(&self, frame: &PoseFrame) -> candle_core::Result<Embeddings> {
        let pose = self.drive(frame).avatar_pose(&frame.pose);
        self.nets.eval(&pose)
    }

    /// Skins the template with `embeddings` (possibly from an earlier pose) at `frame`'s
    /// joint rotations, then mirrors, scales, translates and computes normals.
    pub fn pose_geometry(&self, embeddings: &Embeddings, frame: &PoseFrame) -> PosedGeometry {
        let drive = self.drive(frame);
        let avatar_pose = drive.avatar_pose(&frame.pose);
        let transforms = self.template.skeleton.transforms(&avatar_pose);
        let mut vertices = mesh::skin(
            &self.template.verts,
            &embeddings.delta,
            &embeddings.lbs_weights,
            &transforms,
        );
        mesh::place(&mut vertices, drive.x_sign(), frame.scale, frame.trans);
        let normals = mesh::vertex_normals(&vertices, &self.template.faces);
        PosedGeometry {
            drive,
            avatar_pose,
            transforms,
            scale: frame.scale,
            trans: frame.trans,
            vertices,
            normals,
        }
    }

    /// The SH row for a frame: its own `sh`, else the avatar's row `sh_view`.
    pub fn frame_sh(&self, frame: &PoseFrame, sh_view: usize) -> [f32; SH_DIM] {
        frame.sh.unwrap_or_else(|| self.sh_row(sh_view))
    }

    /// Full evaluation of one frame.
    pub fn evaluate(&self, frame: &PoseFrame, sh_view: usize) -> candle_core::Result<PosedFrame> {
        let embeddings = self.embed(frame)?;
        let geometry = self.pose_geometry(&embeddings, frame);
        Ok(PosedFrame {
            embeddings,
            geometry,
            sh: self.frame_sh(frame, sh_view),
        })
    }
}

impl PosedFrame {
    /// Per-vertex SH colour of the albedo under `self.sh` with outward normals (unclipped,
    /// in the avatar's colour order) — `xhand eval`'s `sh_color`.
    pub fn vertex_sh_colors(&self) -> Vec<[f32; 3]> {
        let sign = self.geometry.drive.normal_sign();
        self.geometry
            .normals
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let a = &self.embeddings.albedo[3 * i..3 * i + 3];
                crate::shading::sh_color(
                    [a[0], a[1], a[2]],
                    [n[0] * sign, n[1] * sign, n[2] * sign],
                    &self.sh,
                )
            })
            .collect()
    }
}
