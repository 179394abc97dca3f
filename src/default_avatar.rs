//! The avatar embedded in the binary, shown when no avatar is given: a synthetic demo hand
//! baked by `xhand bake-default` from the MIT-licensed WebXR hand (docs/default-avatar.md).

use candle_core::Device;

use crate::avatar::{Avatar, AvatarError};

/// The embedded default avatar file (`assets/avatars/default.safetensors`).
pub fn bytes() -> &'static [u8] {
    include_bytes!("../assets/avatars/default.safetensors")
}

/// Label used in messages about the embedded avatar.
pub const LABEL: &str = "<embedded default avatar>";

/// Loads the embedded avatar on `device`.
pub fn load(device: &Device) -> Result<Avatar, AvatarError> {
    Avatar::from_bytes(LABEL, bytes().to_vec(), device)
}
