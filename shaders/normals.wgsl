// XHand's area-weighted vertex normals, gathered per vertex over a CSR list of its faces
// (no float atomics): n = normalize(Σ (v1 − v0) × (v2 − v0)), eps 1e-6. Mirrors
// `mesh::vertex_normals`; faces are visited in the same order.

struct NormalParams {
    num_vertices: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> params: NormalParams;
@group(0) @binding(1) var<storage, read> posed: array<f32>;
@group(0) @binding(2) var<storage, read> faces: array<u32>;
@group(0) @binding(3) var<storage, read> adj_offsets: array<u32>;
@group(0) @binding(4) var<storage, read> adj_faces: array<u32>;
@group(0) @binding(5) var<storage, read_write> normals: array<f32>;

fn position(i: u32) -> vec3<f32> {
    return vec3<f32>(posed[3u * i], posed[3u * i + 1u], posed[3u * i + 2u]);
}

@compute @workgroup_size(64)
fn vertex_normals(@builtin(global_invocation_id) gid: vec3<u32>) {
    let v = gid.x;
    if v >= params.num_vertices {
        return;
    }
    var n = vec3<f32>(0.0);
    for (var k = adj_offsets[v]; k < adj_offsets[v + 1u]; k++) {
        let f = adj_faces[k];
        let v0 = position(faces[3u * f]);
        let v1 = position(faces[3u * f + 1u]);
        let v2 = position(faces[3u * f + 2u]);
        n += cross(v1 - v0, v2 - v0);
    }
    n = n / max(length(n), 1e-6);
    normals[3u * v] = n.x;
    normals[3u * v + 1u] = n.y;
    normals[3u * v + 2u] = n.z;
}
