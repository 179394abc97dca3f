//! Small per-user files under `$XDG_CONFIG_HOME/xhand/` (or `~/.config/xhand/`): the viewer's
//! recent-files list and the MANO model files it was last given, one per hand.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hand::Handedness;

/// The folder the settings live in (`None` without `XDG_CONFIG_HOME` or `HOME`).
pub fn config_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("xhand"))
}

/// The MANO model files last used for each hand, so that opening the next XHand checkpoint
/// needs no question (`mano.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ManoFiles {
    pub right: Option<PathBuf>,
    pub left: Option<PathBuf>,
}

impl ManoFiles {
    fn file() -> Option<PathBuf> {
        config_dir().map(|d| d.join("mano.json"))
    }

    /// The saved list (empty when missing or unreadable).
    pub fn load() -> Self {
        Self::file()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// The remembered file for `hand`, if it still exists.
    pub fn get(&self, hand: Handedness) -> Option<PathBuf> {
        let p = match hand {
            Handedness::Right => &self.right,
            Handedness::Left => &self.left,
        };
        p.clone().filter(|p| p.is_file())
    }

    /// Remembers `path` for `hand` and saves the list.
    pub fn remember(&mut self, hand: Handedness, path: &Path) -> std::io::Result<()> {
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        match hand {
            Handedness::Right => self.right = Some(path),
            Handedness::Left => self.left = Some(path),
        }
        let Some(file) = Self::file() else {
            return Ok(());
        };
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        crate::image_io::write_atomically(&file, text.as_bytes()).map_err(std::io::Error::other)
    }
}
