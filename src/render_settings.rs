//! What to render: shading modes and their parameters, shared by the CPU reference
//! renderer, the GPU pipeline and the viewer.

use serde::{Deserialize, Serialize};

/// How covered pixels are coloured.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum ShadingMode {
    /// SH shading refined by the avatar's neural renderer (XHand's output).
    #[default]
    Neural,
    /// SH lighting times albedo.
    Sh,
    /// Albedo only.
    Albedo,
    /// World-space normals mapped to colours, `(n + 1) / 2`.
    Normals,
    /// White where the hand is.
    Mask,
    /// Heat map of one joint's skinning weight.
    Weights,
    /// Heat map of the displacement magnitude ‖D‖.
    Displacement,
}

impl ShadingMode {
    /// All modes, in UI order; the viewer's keys 1-7 choose them in this order.
    pub const ALL: [ShadingMode; 7] = [
        Self::Neural,
        Self::Sh,
        Self::Albedo,
        Self::Normals,
        Self::Weights,
        Self::Displacement,
        Self::Mask,
    ];

    /// The viewer's key for this mode ("1" … "7").
    pub fn key(self) -> usize {
        Self::ALL.iter().position(|&m| m == self).unwrap_or(0) + 1
    }

    /// Short label for menus.
    pub fn label(self) -> &'static str {
        match self {
            Self::Neural => "Neural",
            Self::Sh => "SH only",
            Self::Albedo => "Albedo",
            Self::Normals => "Normals",
            Self::Mask => "Mask",
            Self::Weights => "Skinning weight",
            Self::Displacement => "Displacement",
        }
    }

    /// Numeric id shared with the WGSL shading shader.
    pub fn id(self) -> u32 {
        match self {
            Self::Neural => 0,
            Self::Sh => 1,
            Self::Albedo => 2,
            Self::Normals => 3,
            Self::Mask => 4,
            Self::Weights => 5,
            Self::Displacement => 6,
        }
    }
}

/// Rendering parameters besides the camera.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RenderSettings {
    pub mode: ShadingMode,
    /// Background colour (RGB, 0..1).
    pub background: [f32; 3],
    /// Joint shown by [`ShadingMode::Weights`].
    pub weight_joint: usize,
    /// Displacement that maps to the top of the heat map, metres.
    pub displacement_range: f32,
}

impl Default for RenderSettings {
    fn default() -> Self {
        Self {
            mode: ShadingMode::Neural,
            background: [0.0; 3],
            weight_joint: 1,
            displacement_range: 0.003,
        }
    }
}

/// The colour stops of the heat map, evenly spaced from 0 to 1 (the shading shader gets the
/// same, generated).
pub const HEAT_STOPS: [[f32; 3]; 5] = [
    [0.05, 0.05, 0.6],
    [0.0, 0.7, 0.9],
    [0.1, 0.8, 0.2],
    [0.95, 0.85, 0.1],
    [0.85, 0.1, 0.05],
];

/// A blue → cyan → green → yellow → red heat map for `t` in `[0, 1]`.
pub fn heat_color(t: f32) -> [f32; 3] {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * 4.0;
    let i = (x as usize).min(3);
    let f = x - i as f32;
    std::array::from_fn(|k| HEAT_STOPS[i][k] * (1.0 - f) + HEAT_STOPS[i + 1][k] * f)
}
