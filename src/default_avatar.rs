//! The avatar embedded in the binary, shown when no avatar is given.

/// The embedded default avatar file, if this build has one.
pub fn bytes() -> Option<&'static [u8]> {
    None
}

/// Label used in messages about the embedded avatar.
pub const LABEL: &str = "<embedded default avatar>";
