//! Poses written as a HaMeR-style dump, for tools that read HaMeR's outputs: per-frame
//! records `{frame_index, timestamp_sec, hands: [{is_right, pred_mano_params: {global_orient,
//! hand_pose, betas}, pred_cam_t_full}]}` with rotation matrices relative to the **flat**
//! hand, and left hands as HaMeR gives them (the right hand of the mirrored image). The exact
//! inverse of reading such a dump (docs/poses.md §2.2-2.5): the reader gets the same frames
//! back.

use serde_json::{Value, json};

use super::{PoseSequence, flat_relative, pose_to_matrices};
use crate::POSE_DIM;
use crate::hand::{Handedness, mirror_pose};

/// The dump of `seq`, whose frames are relative to `pose_mean` (of a `mean_hand` MANO model).
pub fn to_hamer_json(
    seq: &PoseSequence,
    pose_mean: &[f32; POSE_DIM],
    mean_hand: Handedness,
) -> String {
    let frames: Vec<Value> = seq
        .frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let hand = f.hand.unwrap_or(mean_hand);
            // The flat-relative rotations of this hand's MANO model …
            let flat = flat_relative(&f.pose, hand, pose_mean, mean_hand);
            // … and as HaMeR predicts a left hand: the right hand of the flipped image.
            let omega = match hand {
                Handedness::Right => flat,
                Handedness::Left => mirror_pose(&flat),
            };
            let (go, hp) = pose_to_matrices(&omega);
            let mat =
                |m: &[f64; 9]| json!([[m[0], m[1], m[2]], [m[3], m[4], m[5]], [m[6], m[7], m[8]]]);
            json!({
                "frame_index": i,
                "timestamp_sec": i as f64 / seq.fps as f64,
                "hands": [{
                    "is_right": if hand == Handedness::Right { 1.0 } else { 0.0 },
                    "pred_mano_params": {
                        "global_orient": [mat(&go[0])],
                        "hand_pose": hp.iter().map(mat).collect::<Vec<_>>(),
                        "betas": vec![0.0; 10],
                    },
                    "pred_cam_t_full": f.trans,
                }],
            })
        })
        .collect();
    serde_json::to_string(&frames).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pose::{PoseFrame, PoseLoadOptions, load_poses};

    #[test]
    fn a_written_dump_reads_back_as_the_same_frames_for_either_hand() {
        let mean: [f32; POSE_DIM] = std::array::from_fn(|i| 0.05 * ((i * 7 % 11) as f32 - 5.0));
        let dir = tempfile::tempdir().unwrap();
        for (side, avatar_hand) in [
            (Handedness::Right, Handedness::Right),
            (Handedness::Left, Handedness::Right),
            (Handedness::Left, Handedness::Left),
        ] {
            let frames = (0..4)
                .map(|k| PoseFrame {
                    pose: std::array::from_fn(|i| 0.4 * ((i + 3 * k) as f32 * 0.37).sin()),
                    trans: [0.01 * k as f32, -0.02, 30.0],
                    hand: Some(side),
                    ..PoseFrame::default()
                })
                .collect();
            let seq = PoseSequence {
                fps: 25.0,
                frames,
                labels: None,
                source: None,
            };
            let path = dir.path().join("out.hamer.json");
            std::fs::write(&path, to_hamer_json(&seq, &mean, avatar_hand)).unwrap();
            let opts = PoseLoadOptions {
                pose_mean: Some(mean),
                pose_mean_hand: avatar_hand,
                ..PoseLoadOptions::default()
            };
            let back = load_poses(&path, &opts).unwrap();
            assert_eq!(back.format, crate::pose::PoseFormat::Hamer);
            assert!((back.sequence.fps - 25.0).abs() < 1e-3);
            for (a, b) in seq.frames.iter().zip(&back.sequence.frames) {
                let worst = a
                    .pose
                    .iter()
                    .zip(&b.pose)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f32::max);
                assert!(
                    worst < 1e-5,
                    "{side:?} on a {avatar_hand:?} avatar: {worst}"
                );
                assert_eq!(a.trans, b.trans);
                assert_eq!(b.hand, Some(side));
            }
        }
    }
}
