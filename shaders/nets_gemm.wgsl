// One dense layer of an embedding network for a block of vertices:
//   y[r][c] = act(Σ_k x[r][k] · W[c][k] + b[c])
// W in torch layout [out][in]. This part is shared by the GEMM kernels (nets_gemm_tiled.wgsl,
// nets_gemm_coop.wgsl): the layer's parameters, the bindings and the epilogue. Constants
// (TILE_*, COOP_*, SOFTPLUS_*, ACT_*) come from the generated header (src/gpu/nets.rs).

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

// Writes output (r, c) from its sum: the bias, then the layer's activation. Outside the
// layer (a partial tile), nothing.
fn finish(r: u32, c: u32, sum: f32) {
    if r >= g.rows || c >= g.n {
        return;
    }
    var v = sum + params[g.b_offset + c];
    if g.act == ACT_SOFTPLUS {
        v = softplus(v);
    }
    y[g.y_offset + r * g.y_stride + c] = v;
}
