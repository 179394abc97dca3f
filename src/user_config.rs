//! Small per-user files under `$XDG_CONFIG_HOME/xhand/` (or `~/.config/xhand/`): the viewer's
//! recent-files list, the MANO model files it was last given (one per hand) and the folder
//! it writes outputs to.

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

/// The folder the viewer writes screenshots, renders and exports to: the one chosen last
/// (`output.json`), else `~/Pictures/xhand` (`~/xhand` without a Pictures folder), else
/// `xhand-output` in the working directory; always absolute.
pub fn output_dir() -> PathBuf {
    let saved = config_dir()
        .and_then(|d| std::fs::read_to_string(d.join("output.json")).ok())
        .and_then(|t| serde_json::from_str::<PathBuf>(&t).ok())
        .filter(|p| p.is_absolute());
    if let Some(p) = saved {
        return p;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match home {
        Some(h) if h.join("Pictures").is_dir() => h.join("Pictures").join("xhand"),
        Some(h) if h.is_dir() => h.join("xhand"),
        _ => std::env::current_dir()
            .unwrap_or_default()
            .join("xhand-output"),
    }
}

/// Remembers `dir` as the output folder for the next run.
pub fn remember_output_dir(dir: &Path) -> std::io::Result<()> {
    let Some(cfg) = config_dir() else {
        return Ok(());
    };
    std::fs::create_dir_all(&cfg)?;
    let text = serde_json::to_string(dir).map_err(std::io::Error::other)?;
    crate::image_io::write_atomically(&cfg.join("output.json"), text.as_bytes())
        .map_err(std::io::Error::other)
}
