//! `#[repr(C)]` mirrors of the WGSL uniform structs, with size checks.

use bytemuck::{Pod, Zeroable};

/// `SkinParams` of `shaders/skin.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SkinParams {
    pub num_vertices: u32,
    pub x_sign: f32,
    pub scale: f32,
    pub _pad: f32,
    pub trans: [f32; 4],
    /// Column-major 4x4 skinning transforms `A_j`.
    pub joints: [[f32; 16]; 16],
}

/// `PackParams` of `shaders/embeddings.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct PackParams {
    pub num_vertices: u32,
    pub code_delta: u32,
    pub code_albedo: u32,
    pub render_code: u32,
}

/// `NormalParams` of `shaders/normals.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct CountParams {
    pub count: u32,
    pub _pad: [u32; 3],
}

/// `CompositeParams` of `shaders/composite.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct CompositeParams {
    /// sRGB target (0/1), backdrop mapping (0 screen, 1 environment), unused, unused.
    pub flags: [u32; 4],
    /// Camera-to-world rotation, row by row (w unused).
    pub camera_to_world: [[f32; 4]; 3],
    /// fx, fy, cx, cy of the camera the target is seen through.
    pub intrinsics: [f32; 4],
    /// The environment's up axis (w: its turn, radians), forward and right axes.
    pub env_up: [f32; 4],
    pub env_forward: [f32; 4],
    pub env_right: [f32; 4],
}

/// `RasterParams` of `shaders/raster.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct RasterParams {
    pub clip_from_world: [f32; 16],
    /// The faces of the hands drawn before this one (the ids' offset), then unused.
    pub face_offset: [u32; 4],
}

/// `ViewParams` of `shaders/shade.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ViewParams {
    pub clip_from_world: [f32; 16],
    pub ray_rotation: [f32; 16],
    pub intrinsics: [f32; 4],
    pub background: [f32; 4],
    /// width, height, mode, joint.
    pub size_mode: [u32; 4],
    /// wireframe, BGR colours, unused, unused.
    pub flags: [u32; 4],
    /// normal sign, displacement range, unused, unused.
    pub misc: [f32; 4],
    pub sh: [[f32; 4]; 7],
    pub pose: [[f32; 4]; 12],
    /// This hand's first id − 1, its face count, 1 for the first hand, unused.
    pub hand: [u32; 4],
}

const _: () = assert!(std::mem::size_of::<SkinParams>() == 16 + 16 + 16 * 64);
const _: () = assert!(std::mem::size_of::<CountParams>() == 16);
const _: () = assert!(std::mem::size_of::<RasterParams>() == 64 + 16);
const _: () = assert!(std::mem::size_of::<CompositeParams>() == 8 * 16);
const _: () =
    assert!(std::mem::size_of::<ViewParams>() == 64 + 64 + 5 * 16 + 7 * 16 + 12 * 16 + 16);
