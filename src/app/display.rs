//! How the view is drawn and which panels are open: resources of their own, apart from the
//! scene's state (`super::session`).

use bevy::prelude::Resource;

use crate::gpu::NeuralPath;
use crate::render_settings::RenderSettings;

/// How the hands are drawn: shading mode and background, overlays, the GPU's neural path.
#[derive(Resource, Clone, Debug)]
pub struct ViewSettings {
    pub settings: RenderSettings,
    pub wireframe: bool,
    /// Show a background grid behind the hand.
    pub grid: bool,
    /// How the GPU runs the neural renderer.
    pub neural_path: NeuralPath,
}

impl Default for ViewSettings {
    fn default() -> Self {
        Self {
            settings: RenderSettings {
                background: [0.16, 0.17, 0.2],
                ..RenderSettings::default()
            },
            wireframe: false,
            grid: true,
            neural_path: NeuralPath::default(),
        }
    }
}

/// Which panels and windows are open.
#[derive(Resource, Clone, Debug)]
pub struct Panels {
    /// The side, menu and timeline panels (Tab).
    pub show_ui: bool,
    pub show_stats: bool,
    pub show_help: bool,
    /// The messages log (M).
    pub show_log: bool,
}

impl Default for Panels {
    fn default() -> Self {
        Self {
            show_ui: true,
            show_stats: false,
            show_help: false,
            show_log: false,
        }
    }
}
