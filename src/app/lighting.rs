//! The lighting of the scene, a resource of its own: the SH vector in use, where it came from,
//! and the controls that edit it (direction pad, strength, environment map).

use std::path::PathBuf;
use std::sync::Arc;

use bevy::prelude::Resource;

use crate::SH_DIM;
use crate::avatar::{Avatar, ColorOrder};

/// Lighting: the SH vector in use and how the user edits it.
#[derive(Resource, Clone, Debug)]
pub struct Lighting {
    pub sh: [f32; SH_DIM],
    /// Edit the three colour channels together.
    pub linked: bool,
    /// The frame's own SH (from the pose file) overrides when present.
    pub use_frame_sh: bool,
    /// Azimuth / elevation of the light-direction control, radians.
    pub light_azimuth: f32,
    pub light_elevation: f32,
    pub light_strength: f32,
    /// Where the SH vector came from, highlighted in the panel.
    pub source: LightSource,
    /// An environment map lighting the hand (downsampled for projection), and its turn
    /// about the up axis, degrees.
    pub env: Option<(PathBuf, Arc<crate::envmap::EnvironmentMap>)>,
    pub env_rotation: f32,
    /// The environment as a display image (and its backdrop key), and whether it is shown
    /// behind the hand.
    pub env_display: Option<(u64, Arc<crate::image_io::Rgba8>)>,
    pub env_background: bool,
}

/// The origin of the SH lighting in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LightSource {
    /// The avatar's SH of one training view.
    Row(usize),
    Neutral,
    StudioKey,
    /// Edited with the direction pad, the strength or the coefficients.
    Custom,
    /// Projected from the environment map.
    Environment,
}

impl Lighting {
    /// The lighting of `avatar`'s first training view, edited as one colour.
    pub fn new(avatar: &Avatar) -> Self {
        Self {
            sh: avatar.sh_row(0),
            linked: true,
            use_frame_sh: true,
            light_azimuth: 0.0,
            light_elevation: 0.5,
            light_strength: 0.4,
            source: LightSource::Row(0),
            env: None,
            env_rotation: 0.0,
            env_display: None,
            env_background: false,
        }
    }

    /// The SH in effect: the frame's own (`frame_sh`) when "use the pose file's lighting" is
    /// on, else the one chosen here.
    pub fn current_sh(&self, frame_sh: Option<[f32; SH_DIM]>) -> [f32; SH_DIM] {
        match (self.use_frame_sh, frame_sh) {
            (true, Some(sh)) => sh,
            _ => self.sh,
        }
    }

    /// Lights with the environment map (if one is loaded) turned by `env_rotation`, in the
    /// colour order of the avatar shown.
    pub fn light_from_environment(&mut self, order: ColorOrder) {
        if let Some((_, env)) = &self.env {
            self.sh = env.to_sh((self.env_rotation as f64).to_radians(), order);
            self.source = LightSource::Environment;
            self.use_frame_sh = false;
        }
    }

    /// A new main avatar: its first training view's lighting, or the environment's again
    /// (in the new avatar's colour order) when that was in use.
    pub fn avatar_changed(&mut self, avatar: &Avatar) {
        if self.source == LightSource::Environment && self.env.is_some() {
            self.light_from_environment(avatar.color_order);
        } else {
            self.sh = avatar.sh_row(0);
            self.source = LightSource::Row(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frames_lighting_wins_only_when_asked_and_a_new_avatar_resets_it() {
        let device = candle_core::Device::Cpu;
        let avatar = crate::synthetic::SyntheticSpec::test_avatar()
            .avatar(&device)
            .unwrap();
        let mut l = Lighting::new(&avatar);
        assert_eq!(l.sh, avatar.sh_row(0));
        let frame = [0.25; SH_DIM];
        assert_eq!(l.current_sh(Some(frame)), frame);
        assert_eq!(l.current_sh(None), l.sh);
        l.use_frame_sh = false;
        assert_eq!(l.current_sh(Some(frame)), l.sh);
        l.sh = [0.5; SH_DIM];
        l.source = LightSource::Custom;
        l.avatar_changed(&avatar);
        assert_eq!((l.sh, l.source), (avatar.sh_row(0), LightSource::Row(0)));
        // Environment lighting without a map loaded falls back to the avatar's.
        l.source = LightSource::Environment;
        l.avatar_changed(&avatar);
        assert_eq!(l.source, LightSource::Row(0));
    }
}
