// One dense layer of an embedding network for a block of vertices:
//   y[r][c] = act(Σ_k x[r][k] · W[c][k] + b[c])
// W in torch layout [out][in]. Each workgroup computes a TILE_M x TILE_N output tile, 16 x 16
// invocations with 4 x 4 outputs each; K is walked in TILE_K slices staged in workgroup memory.
// The accumulators are vec4s (registers) and the loops few: llvmpipe (lavapipe) stops an
// invocation's loops after 65,535 iterations in all (see shade.wgsl's compute path).
// Constants (TILE_*, SOFTPLUS_*, ACT_*) come from the generated header (src/gpu/nets.rs).

struct Gemm {
    rows: u32,
    n: u32,
    k: u32,
    act: u32,
    x_offset: u32,
    x_stride: u32,
    w_offset: u32,
    b_offset: u32,
    y_offset: u32,
    y_stride: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> g: Gemm;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> xs: array<array<f32, TILE_M>, TILE_K>;
var<workgroup> ws: array<array<f32, TILE_N>, TILE_K>;

// torch's Softplus(beta, threshold): the identity above the threshold, else
// log1p(exp(βx)) / β; log1p by Kahan's trick (WGSL has no log1p).
fn softplus(v: f32) -> f32 {
    let bx = SOFTPLUS_BETA * v;
    if bx > SOFTPLUS_THRESHOLD {
        return v;
    }
    let e = exp(bx);
    if bx < LOG1P_IS_IDENTITY_BELOW {
        return e / SOFTPLUS_BETA;
    }
    let u = 1.0 + e;
    if u == 1.0 {
        return e / SOFTPLUS_BETA;
    }
    return log(u) * (e / (u - 1.0)) / SOFTPLUS_BETA;
}

fn store_row(r: u32, col: u32, acc: vec4<f32>) {
    if r >= g.rows {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let c = col + j;
        if c < g.n {
            var v = acc[j] + params[g.b_offset + c];
            if g.act == ACT_SOFTPLUS {
                v = softplus(v);
            }
            y[g.y_offset + r * g.y_stride + c] = v;
        }
    }
}

@compute @workgroup_size(16, 16)
fn gemm(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * TILE_M;
    let col0 = wid.x * TILE_N;
    let t = lid.y * 16u + lid.x;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let slices = (g.k + TILE_K - 1u) / TILE_K;
    for (var s = 0u; s < slices; s++) {
        let k0 = s * TILE_K;
        for (var i = 0u; i < LOADS_PER_INVOCATION; i++) {
            let e = t + i * 256u;
            let m = e / TILE_K;
            let kk = e % TILE_K;
            let c = k0 + kk;
            var xv = 0.0;
            if row0 + m < g.rows && c < g.k {
                xv = x[g.x_offset + (row0 + m) * g.x_stride + c];
            }
            xs[kk][m] = xv;
            var wv = 0.0;
            if col0 + m < g.n && c < g.k {
                wv = params[g.w_offset + (col0 + m) * g.k + c];
            }
            ws[kk][m] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let a = vec4<f32>(xs[kk][lid.y * 4u], xs[kk][lid.y * 4u + 1u], xs[kk][lid.y * 4u + 2u], xs[kk][lid.y * 4u + 3u]);
            let b = vec4<f32>(ws[kk][lid.x * 4u], ws[kk][lid.x * 4u + 1u], ws[kk][lid.x * 4u + 2u], ws[kk][lid.x * 4u + 3u]);
            acc0 += a.x * b;
            acc1 += a.y * b;
            acc2 += a.z * b;
            acc3 += a.w * b;
        }
        workgroupBarrier();
    }
    let r = row0 + lid.y * 4u;
    let col = col0 + lid.x * 4u;
    store_row(r, col, acc0);
    store_row(r + 1u, col, acc1);
    store_row(r + 2u, col, acc2);
    store_row(r + 3u, col, acc3);
}
