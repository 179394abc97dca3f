// Visibility buffer: per pixel the nearest triangle (id + 1, 0 = empty) and the
// perspective-correct barycentrics of its vertices 0 and 1 — nvdiffrast's `rasterize`
// output, and `mesh::raster` on the CPU. Depth is reversed (near / z, compare Greater).
// Several hands share one buffer: each hand's ids start after the previous hands' faces
// (`face_offset`), so the id says which hand a pixel shows.

struct RasterParams {
    clip_from_world: mat4x4<f32>,
    // The faces of the hands drawn before this one; then three unused.
    face_offset: vec4<u32>,
};

@group(0) @binding(0) var<uniform> params: RasterParams;
@group(0) @binding(1) var<storage, read> posed: array<f32>;
@group(0) @binding(2) var<storage, read> faces: array<u32>;

struct VertexOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) @interpolate(flat) triangle: u32,
    @location(1) bary: vec2<f32>,
};

@vertex
fn vs(@builtin(vertex_index) vi: u32) -> VertexOut {
    let idx = faces[vi];
    let p = vec3<f32>(posed[3u * idx], posed[3u * idx + 1u], posed[3u * idx + 2u]);
    var out: VertexOut;
    out.clip = params.clip_from_world * vec4<f32>(p, 1.0);
    out.triangle = vi / 3u + 1u + params.face_offset.x;
    let corner = vi % 3u;
    out.bary = vec2<f32>(select(0.0, 1.0, corner == 0u), select(0.0, 1.0, corner == 1u));
    return out;
}

struct FragmentOut {
    @location(0) triangle: u32,
    @location(1) bary: vec2<f32>,
};

@fragment
fn fs(in: VertexOut) -> FragmentOut {
    var out: FragmentOut;
    out.triangle = in.triangle;
    out.bary = in.bary;
    return out;
}
