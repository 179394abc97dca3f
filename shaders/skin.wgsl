// Linear blend skinning of the template (verts + displacement) with all 16 joint
// transforms, then XHand's placement: x-mirror for a hand of the other side, scale,
// translation. Mirrors `mesh::skin` + `mesh::place` in the Rust core.

struct SkinParams {
    num_vertices: u32,
    // -1 when the pose's hand differs from the avatar's (the GPU side of `HandDrive`).
    x_sign: f32,
    scale: f32,
    _pad: f32,
    trans: vec4<f32>,
    joints: array<mat4x4<f32>, NUM_JOINTS>,
};

@group(0) @binding(0) var<uniform> params: SkinParams;
// Rest vertices plus displacement D, [V * 3].
@group(0) @binding(1) var<storage, read> rest: array<f32>;
// Skinning weights, [V * NUM_JOINTS] (the constant comes from the generated header).
@group(0) @binding(2) var<storage, read> weights: array<f32>;
// Output world positions, [V * 3].
@group(0) @binding(3) var<storage, read_write> posed: array<f32>;

@compute @workgroup_size(64)
fn skin(@builtin(global_invocation_id) gid: vec3<u32>) {
    let v = gid.x;
    if v >= params.num_vertices {
        return;
    }
    var t = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var j = 0u; j < NUM_JOINTS; j++) {
        t += params.joints[j] * weights[v * NUM_JOINTS + j];
    }
    let p = vec4<f32>(rest[3u * v], rest[3u * v + 1u], rest[3u * v + 2u], 1.0);
    var q = (t * p).xyz;
    q.x *= params.x_sign;
    q = q * params.scale + params.trans.xyz;
    posed[3u * v] = q.x;
    posed[3u * v + 1u] = q.y;
    posed[3u * v + 2u] = q.z;
}
