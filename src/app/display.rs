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
    /// Whether the embedding networks run on the render GPU inside the frame.
    pub nets_in_frame: NetsInFrame,
}

/// Where the viewer runs the embedding networks for the pose shown: on the render GPU inside
/// the frame (the pose's outputs drawn in the same frame, never copied through the host), or
/// in the background worker (newest pose wins; the hand catches up when it is done).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetsInFrame {
    /// In the frame on a hardware adapter whose networks take at most
    /// [`IN_FRAME_BUDGET_MS`]; else the worker.
    #[default]
    Auto,
    /// Always in the frame (slow frames on a software adapter).
    On,
    /// Always the worker.
    Off,
}

/// The networks' GPU time, measured when a hand's renderer is made, under which `Auto` runs
/// them in the frame: half a 60 Hz frame.
pub const IN_FRAME_BUDGET_MS: f64 = 8.0;

impl NetsInFrame {
    pub const ALL: [Self; 3] = [Self::Auto, Self::On, Self::Off];

    /// Whether to run them in the frame, on a software adapter (`cpu_adapter`) or not, with
    /// their measured time (`None`: not measured).
    pub fn runs_in_frame(self, cpu_adapter: bool, measured_ms: Option<f64>) -> bool {
        match self {
            Self::On => true,
            Self::Off => false,
            Self::Auto => !cpu_adapter && measured_ms.is_some_and(|ms| ms <= IN_FRAME_BUDGET_MS),
        }
    }

    /// Whether the render world should measure the networks to decide.
    pub fn needs_measuring(self, cpu_adapter: bool) -> bool {
        self == Self::Auto && !cpu_adapter
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::On => "on",
            Self::Off => "off",
        }
    }

    /// The choice named `name` (script step, as [`Self::name`] writes it).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
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
            nets_in_frame: NetsInFrame::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_networks_run_in_the_frame_when_they_fit_in_it() {
        let auto = NetsInFrame::Auto;
        assert!(auto.runs_in_frame(false, Some(2.0)));
        assert!(auto.runs_in_frame(false, Some(IN_FRAME_BUDGET_MS)));
        assert!(!auto.runs_in_frame(false, Some(IN_FRAME_BUDGET_MS + 0.1)));
        // Not measured yet, or a software adapter (measured or not): the worker.
        assert!(!auto.runs_in_frame(false, None));
        assert!(!auto.runs_in_frame(true, Some(1.0)));
        assert!(auto.needs_measuring(false) && !auto.needs_measuring(true));
        // The user's word wins.
        assert!(NetsInFrame::On.runs_in_frame(true, None));
        assert!(!NetsInFrame::Off.runs_in_frame(false, Some(0.1)));
        assert!(!NetsInFrame::On.needs_measuring(false));
        for c in NetsInFrame::ALL {
            assert_eq!(NetsInFrame::parse(c.name()), Some(c));
        }
        assert_eq!(NetsInFrame::parse("sometimes"), None);
    }
}
