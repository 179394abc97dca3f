// The portable GEMM kernel: each workgroup computes a TILE_M x TILE_N output tile, 16 x 16
// invocations with 4 x 4 outputs each; K is walked in TILE_K slices staged in workgroup memory.
// The accumulators are vec4s (registers) and the loops few: llvmpipe (lavapipe) stops an
// invocation's loops after 65,535 iterations in all (see shade.wgsl's compute path).
// `operand` is f32, or f16 in the opt-in half-precision variant: the staged slices in f16
// (half the workgroup memory traffic), products and sums in f32.

var<workgroup> xs: array<array<operand, TILE_M>, TILE_K>;
var<workgroup> ws: array<array<operand, TILE_N>, TILE_K>;

fn store_row(r: u32, col: u32, acc: vec4<f32>) {
    for (var j = 0u; j < 4u; j++) {
        finish(r, col + j, acc[j]);
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
            xs[kk][m] = operand(xv);
            var wv = 0.0;
            if col0 + m < g.n && c < g.k {
                wv = params[g.w_offset + (col0 + m) * g.k + c];
            }
            ws[kk][m] = operand(wv);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let a = vec4<f32>(vec4<operand>(xs[kk][lid.y * 4u], xs[kk][lid.y * 4u + 1u], xs[kk][lid.y * 4u + 2u], xs[kk][lid.y * 4u + 3u]));
            let b = vec4<f32>(vec4<operand>(ws[kk][lid.x * 4u], ws[kk][lid.x * 4u + 1u], ws[kk][lid.x * 4u + 2u], ws[kk][lid.x * 4u + 3u]));
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
