//! xhand — a viewer and toolkit for XHand neural hand avatars.
//!
//! This library holds all of the logic and runs headless: the avatar file format and its
//! validation ([`avatar`]), the candle embedding networks and neural renderer ([`nn`]), MANO
//! kinematics ([`skeleton`]), meshes, normals and the CPU reference rasteriser ([`mesh`]),
//! SH shading and positional encoding ([`shading`]), cameras ([`camera`]), pose files
//! ([`pose`]) and the per-frame evaluation that ties them together ([`frame`]). The wgpu
//! pipeline ([`gpu`], feature `gpu`) and the Bevy viewer ([`app`], feature `viewer`) sit on top.

#[cfg(feature = "viewer")]
pub mod app;
pub mod avatar;
pub mod bake;
pub mod bench;
pub mod camera;
pub mod cli;
pub mod cpu_render;
pub mod default_avatar;
pub mod device;
pub mod engine;
pub mod envmap;
pub mod footage;
pub mod frame;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod hand;
pub mod image_io;
pub mod mesh;
pub mod nn;
pub mod pose;
pub mod render_settings;
pub mod shading;
pub mod skeleton;
pub mod synthetic;
pub mod torch;
pub mod user_config;
pub mod user_files;
pub mod video;
pub mod wireframe;

/// Number of MANO joints (wrist + 15 finger joints).
pub const NUM_JOINTS: usize = 16;
/// Length of a MANO pose vector: one axis-angle triple per joint.
pub const POSE_DIM: usize = NUM_JOINTS * 3;
/// Number of SH coefficients per view: 9 (third-order SH) per colour channel, channel-major.
pub const SH_DIM: usize = 27;
