//! A few named hand poses for the viewer's joint panel, written as MANO rotations relative
//! to the flat hand (right hand: fingers flex about +z, the thumb's outer joints mostly about
//! −y; docs/default-avatar.md) and converted to the avatar's mean-relative pose.

use crate::POSE_DIM;

/// Named poses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PresetPose {
    /// The avatar's relaxed mean hand (pose all zeros).
    Relaxed,
    /// A flat, open hand.
    Open,
    Fist,
    Point,
    Ok,
    Pinch,
}

impl PresetPose {
    pub const ALL: [PresetPose; 6] = [
        Self::Relaxed,
        Self::Open,
        Self::Fist,
        Self::Point,
        Self::Ok,
        Self::Pinch,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Relaxed => "Relaxed",
            Self::Open => "Open",
            Self::Fist => "Fist",
            Self::Point => "Point",
            Self::Ok => "OK",
            Self::Pinch => "Pinch",
        }
    }

    /// Flat-hand-relative axis-angle per joint (right-hand convention).
    fn flat_relative(self) -> [f32; POSE_DIM] {
        // Finger chains (MCP, PIP, DIP joint indices) and thumb joints.
        const INDEX: [usize; 3] = [1, 2, 3];
        const MIDDLE: [usize; 3] = [4, 5, 6];
        const PINKY: [usize; 3] = [7, 8, 9];
        const RING: [usize; 3] = [10, 11, 12];
        let mut p = [0.0f32; POSE_DIM];
        let mut flex = |chain: [usize; 3], a: [f32; 3]| {
            for (j, v) in chain.iter().zip(a) {
                p[3 * j + 2] = v;
            }
        };
        let curl = [1.35, 1.5, 1.0];
        let thumb_across = |p: &mut [f32; POSE_DIM], amount: f32| {
            p[3 * 13] = 0.9 * amount;
            p[3 * 13 + 1] = -0.2 * amount;
            p[3 * 13 + 2] = 0.5 * amount;
            p[3 * 14 + 1] = -0.6 * amount;
            p[3 * 15 + 1] = -0.7 * amount;
        };
        match self {
            Self::Relaxed | Self::Open => {}
            Self::Fist => {
                for c in [INDEX, MIDDLE, RING, PINKY] {
                    flex(c, curl);
                }
                thumb_across(&mut p, 1.0);
            }
            Self::Point => {
                for c in [MIDDLE, RING, PINKY] {
                    flex(c, curl);
                }
                thumb_across(&mut p, 1.0);
            }
            // OK and pinch: the thumb and index tips meet on the default avatar's skeleton
            // (values solved for that by a small numerical search, docs/default-avatar.md).
            Self::Ok => {
                flex(INDEX, [0.8, 1.05, 0.94]);
                flex(MIDDLE, [0.15, 0.1, 0.05]);
                flex(RING, [0.2, 0.15, 0.1]);
                flex(PINKY, [0.3, 0.2, 0.1]);
                p[39..48]
                    .copy_from_slice(&[0.36, -0.58, -0.1, 0.19, 0.03, 0.34, -0.57, -0.28, 0.41]);
            }
            Self::Pinch => {
                flex(INDEX, [1.14, 0.67, 0.76]);
                flex(MIDDLE, [0.7, 0.9, 0.5]);
                flex(RING, [0.75, 0.9, 0.5]);
                flex(PINKY, [0.8, 0.9, 0.5]);
                p[39..48]
                    .copy_from_slice(&[0.53, -0.1, 0.33, -0.36, -0.61, 0.26, 0.09, -0.25, -0.41]);
            }
        }
        p
    }

    /// The pose relative to an avatar's `pose_mean` (what a `PoseFrame` holds).
    pub fn pose(self, pose_mean: &[f32; POSE_DIM]) -> [f32; POSE_DIM] {
        if self == Self::Relaxed {
            return [0.0; POSE_DIM];
        }
        let flat = self.flat_relative();
        std::array::from_fn(|i| flat[i] - pose_mean[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_mean_relative() {
        let mean: [f32; POSE_DIM] = std::array::from_fn(|i| i as f32 * 0.01);
        assert_eq!(PresetPose::Relaxed.pose(&mean), [0.0; POSE_DIM]);
        let open = PresetPose::Open.pose(&mean);
        assert!(open.iter().zip(&mean).all(|(o, m)| (o + m).abs() < 1e-6));
        let fist = PresetPose::Fist.pose(&[0.0; POSE_DIM]);
        assert!(fist[3 * 5 + 2] > 1.0, "middle PIP flexes in a fist");
    }
}
