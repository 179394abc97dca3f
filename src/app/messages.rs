//! Messages for the user, a resource of their own: notes that fade, errors that stay until
//! dismissed (shown as toasts), and the log of every message of the run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bevy::prelude::Resource;

/// A message for the user.
#[derive(Clone, Debug)]
pub struct Message {
    pub text: String,
    pub is_error: bool,
    /// A folder the message is about (a saved file's), offered as "open folder".
    pub folder: Option<PathBuf>,
    /// When it was first drawn (`None` until the window shows it), so that notes given
    /// before the first frame still get their seconds on screen.
    pub shown_at: Option<Instant>,
}

/// How long a note stays on screen after it is first drawn (errors stay until dismissed).
pub const NOTE_SECONDS: Duration = Duration::from_secs(6);
/// Messages kept in the log.
const LOG_LEN: usize = 500;

/// The messages of this run.
#[derive(Resource, Default)]
pub struct Messages {
    /// Messages on screen (toasts).
    pub toasts: Vec<Message>,
    /// Every message of this run, oldest first (the Messages log).
    pub log: Vec<Message>,
}

impl Messages {
    /// Shows an error (kept until dismissed).
    pub fn error(&mut self, text: impl Into<String>) {
        let text = text.into();
        bevy::log::error!("{text}");
        self.push_message(text, true, None);
    }

    /// Shows a note that fades a few seconds after it is first drawn.
    pub fn info(&mut self, text: impl Into<String>) {
        let text = text.into();
        bevy::log::info!("{text}");
        self.push_message(text, false, None);
    }

    /// A note about a file written to `path`, with an action that opens its folder.
    pub fn info_with_folder(&mut self, text: impl Into<String>, path: &std::path::Path) {
        let text = text.into();
        bevy::log::info!("{text}");
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let folder = if abs.is_dir() {
            Some(abs)
        } else {
            abs.parent().map(std::path::Path::to_path_buf)
        };
        self.push_message(text, false, folder);
    }

    fn push_message(&mut self, text: String, is_error: bool, folder: Option<PathBuf>) {
        let m = Message {
            text,
            is_error,
            folder,
            shown_at: None,
        };
        if self.log.len() >= LOG_LEN {
            self.log.remove(0);
        }
        self.log.push(m.clone());
        self.toasts.push(m);
    }

    /// Drops notes shown for [`NOTE_SECONDS`] by `now` (errors stay until dismissed).
    pub fn expire(&mut self, now: Instant) {
        self.toasts.retain(|m| {
            m.is_error
                || m.shown_at
                    .is_none_or(|t| now.duration_since(t) < NOTE_SECONDS)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_last_from_when_they_are_first_shown_and_the_log_keeps_all() {
        let mut m = Messages::default();
        m.info("shown mirrored");
        m.error("broken file");
        let start = Instant::now();
        m.expire(start + Duration::from_secs(60));
        assert_eq!(m.toasts.len(), 2, "not shown yet: kept");
        m.toasts.iter_mut().for_each(|t| t.shown_at = Some(start));
        m.expire(start + NOTE_SECONDS - Duration::from_millis(1));
        assert_eq!(m.toasts.len(), 2);
        m.expire(start + NOTE_SECONDS);
        assert_eq!(m.toasts.len(), 1);
        assert!(m.toasts[0].is_error, "errors stay until dismissed");
        assert_eq!(m.log.len(), 2, "the log keeps every message");
    }
}
