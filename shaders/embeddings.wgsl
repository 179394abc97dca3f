// The renderer's per-vertex inputs written from the embedding networks' GPU outputs, so a
// frame needs no copy through the host: rest = template + D, and the shading attributes
// (albedo, delta code, albedo code, render code, ‖D‖) per vertex. The skinning weights are
// copied as they are. Mirrors `HandRenderer::upload_embeddings`.

struct PackParams {
    num_vertices: u32,
    code_delta: u32,
    code_albedo: u32,
    render_code: u32,
};

@group(0) @binding(0) var<uniform> params: PackParams;
// The template's vertices [V * 3] and the avatar's render codes [V * render_code].
@group(0) @binding(1) var<storage, read> template_verts: array<f32>;
@group(0) @binding(2) var<storage, read> render_codes: array<f32>;
// The networks' outputs: D [V * 3], its code, the albedo [V * 3], its code.
@group(0) @binding(3) var<storage, read> delta: array<f32>;
@group(0) @binding(4) var<storage, read> code_delta: array<f32>;
@group(0) @binding(5) var<storage, read> albedo: array<f32>;
@group(0) @binding(6) var<storage, read> code_albedo: array<f32>;
// What skinning and shading read.
@group(0) @binding(7) var<storage, read_write> rest: array<f32>;
@group(0) @binding(8) var<storage, read_write> attrs: array<f32>;

@compute @workgroup_size(64)
fn pack(@builtin(global_invocation_id) gid: vec3<u32>) {
    let v = gid.x;
    if v >= params.num_vertices {
        return;
    }
    let cd = params.code_delta;
    let ca = params.code_albedo;
    let rc = params.render_code;
    let stride = 3u + cd + ca + rc + 1u;
    var o = v * stride;
    var norm2 = 0.0;
    for (var k = 0u; k < 3u; k++) {
        let d = delta[3u * v + k];
        rest[3u * v + k] = template_verts[3u * v + k] + d;
        norm2 += d * d;
        attrs[o + k] = albedo[3u * v + k];
    }
    o += 3u;
    for (var k = 0u; k < cd; k++) {
        attrs[o + k] = code_delta[v * cd + k];
    }
    o += cd;
    for (var k = 0u; k < ca; k++) {
        attrs[o + k] = code_albedo[v * ca + k];
    }
    o += ca;
    for (var k = 0u; k < rc; k++) {
        attrs[o + k] = render_codes[v * rc + k];
    }
    attrs[o + rc] = sqrt(norm2);
}
