//! Left and right hands: the one place where mirroring rules live on the CPU
//! (`shaders/skin.wgsl` holds the GPU side).

use serde::{Deserialize, Serialize};

/// Which hand a model or a pose belongs to.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Handedness {
    #[default]
    Right,
    Left,
}

impl Handedness {
    /// Parses `right` / `left` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "right" | "r" => Some(Self::Right),
            "left" | "l" => Some(Self::Left),
            _ => None,
        }
    }

    /// `+1` for right, `-1` for left: XHand's `2·is_right − 1`.
    pub fn sign(self) -> f32 {
        match self {
            Self::Right => 1.0,
            Self::Left => -1.0,
        }
    }

    /// The other hand.
    pub fn other(self) -> Self {
        match self {
            Self::Right => Self::Left,
            Self::Left => Self::Right,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Right => "right",
            Self::Left => "left",
        }
    }
}

impl std::fmt::Display for Handedness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Mirrors a MANO pose between hands: every joint's axis-angle `(x, y, z) → (x, −y, −z)`,
/// the conjugation `M R M` with `M = diag(−1, 1, 1)` (HaMeR `fliplr_params`; MANO's left
/// model is the x-mirror of the right one). Mean-relative poses mirror the same way because
/// the mean is mirrored too.
pub fn mirror_pose(pose: &[f32; crate::POSE_DIM]) -> [f32; crate::POSE_DIM] {
    let mut out = *pose;
    for j in 0..crate::NUM_JOINTS {
        out[3 * j + 1] = -out[3 * j + 1];
        out[3 * j + 2] = -out[3 * j + 2];
    }
    out
}

/// How a pose of hand `pose_hand` drives an avatar of hand `avatar_hand`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandDrive {
    /// Mirror the posed geometry in x (and flip its normals): a right avatar showing a
    /// left hand, or the reverse.
    pub mirrored: bool,
}

impl HandDrive {
    /// Mirrored exactly when the pose's hand differs from the avatar's.
    pub fn new(avatar_hand: Handedness, pose_hand: Option<Handedness>) -> Self {
        Self {
            mirrored: pose_hand.is_some_and(|h| h != avatar_hand),
        }
    }

    /// The pose the avatar's own skeleton and networks see.
    pub fn avatar_pose(&self, pose: &[f32; crate::POSE_DIM]) -> [f32; crate::POSE_DIM] {
        if self.mirrored {
            mirror_pose(pose)
        } else {
            *pose
        }
    }

    /// The x factor applied to skinned vertices before scale and translation.
    pub fn x_sign(&self) -> f32 {
        if self.mirrored { -1.0 } else { 1.0 }
    }

    /// Factor that turns normals computed on the placed mesh (with unchanged face winding)
    /// into outward normals: XHand's `normals · (2·is_right − 1)` (XHand.py L196-198).
    pub fn normal_sign(&self) -> f32 {
        self.x_sign()
    }
}

/// What shows a hand of `side`: the left hands' own (`--left-avatar`) for a left hand when
/// there is one, else the main one (mirrored for a hand of its other side).
pub fn for_side<T>(side: Handedness, main: T, left: Option<T>) -> T {
    match (side, left) {
        (Handedness::Left, Some(l)) => l,
        _ => main,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_is_an_involution_and_flips_y_z() {
        let mut p = [0.0f32; 48];
        for (i, v) in p.iter_mut().enumerate() {
            *v = i as f32 * 0.1 - 2.0;
        }
        let m = mirror_pose(&p);
        assert_eq!(m[3], p[3]);
        assert_eq!(m[4], -p[4]);
        assert_eq!(m[5], -p[5]);
        assert_eq!(mirror_pose(&m), p);
    }

    #[test]
    fn drive_mirrors_only_on_mismatch() {
        assert!(!HandDrive::new(Handedness::Right, None).mirrored);
        assert!(!HandDrive::new(Handedness::Right, Some(Handedness::Right)).mirrored);
        assert!(HandDrive::new(Handedness::Right, Some(Handedness::Left)).mirrored);
        assert!(HandDrive::new(Handedness::Left, Some(Handedness::Right)).mirrored);
    }
}
