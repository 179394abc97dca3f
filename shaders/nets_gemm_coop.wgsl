// The GEMM kernel on 8x8 f32 cooperative matrices (Apple's simdgroup matrices; Vulkan's
// VK_KHR_cooperative_matrix where the driver has 8x8x8 f32): the sums of nets_gemm_tiled.wgsl
// in f32, on the matrix units. A workgroup is one subgroup of COOP_LANES invocations and
// computes a 16 x 16 output tile as four 8 x 8 accumulators. K is walked in COOP_K slices
// staged in workgroup memory and zero-padded there, so a partial tile needs no bounds checks
// in the matrix loads and adds nothing to a sum. Control flow stays uniform (the matrix
// operations need the whole subgroup; naga checks it).
//
// Layouts: LOAD_ROWS reads a row-major matrix (element (i, j) at p[i * stride + j]),
// LOAD_COLUMNS a column-major one (at p[j * stride + i]) and STORE_ROWS writes row-major;
// src/gpu/nets.rs puts in the builtins that do so on the backend (coopLoadT, coopLoad,
// coopStoreT in SPIR-V's terms). The x slice is stored [row][k], so A is read row-major; the
// W slice is stored [column][k], which is Wᵀ (k x column) column-major. GpuNets checks this
// kernel against the tiled one on the GPU before using it.

var<workgroup> xs: array<f32, COOP_STAGE>;
var<workgroup> ws: array<f32, COOP_STAGE>;
var<workgroup> sums: array<f32, COOP_OUTPUTS>;

@compute @workgroup_size(COOP_LANES)
fn gemm(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * COOP_TILE;
    let col0 = wid.x * COOP_TILE;
    var acc00 = coop_mat8x8<f32, C>();
    var acc01 = coop_mat8x8<f32, C>();
    var acc10 = coop_mat8x8<f32, C>();
    var acc11 = coop_mat8x8<f32, C>();
    let stride = COOP_K;
    let lower = 8u * COOP_K;
    let slices = (g.k + COOP_K - 1u) / COOP_K;
    for (var s = 0u; s < slices; s++) {
        let k0 = s * COOP_K;
        for (var e = t; e < COOP_STAGE; e += COOP_LANES) {
            let m = e / COOP_K;
            let c = k0 + e % COOP_K;
            var xv = 0.0;
            if row0 + m < g.rows && c < g.k {
                xv = x[g.x_offset + (row0 + m) * g.x_stride + c];
            }
            xs[e] = xv;
            var wv = 0.0;
            if col0 + m < g.n && c < g.k {
                wv = params[g.w_offset + (col0 + m) * g.k + c];
            }
            ws[e] = wv;
        }
        workgroupBarrier();
        for (var kb = 0u; kb < COOP_K; kb += 8u) {
            let upper_at = kb;
            let lower_at = lower + kb;
            let a0 = LOAD_ROWS<coop_mat8x8<f32, A>>(&xs[upper_at], stride);
            let a1 = LOAD_ROWS<coop_mat8x8<f32, A>>(&xs[lower_at], stride);
            let b0 = LOAD_COLUMNS<coop_mat8x8<f32, B>>(&ws[upper_at], stride);
            let b1 = LOAD_COLUMNS<coop_mat8x8<f32, B>>(&ws[lower_at], stride);
            acc00 = coopMultiplyAdd(a0, b0, acc00);
            acc01 = coopMultiplyAdd(a0, b1, acc01);
            acc10 = coopMultiplyAdd(a1, b0, acc10);
            acc11 = coopMultiplyAdd(a1, b1, acc11);
        }
        workgroupBarrier();
    }
    // The four 8 x 8 blocks into one row-major 16 x 16 tile, then the epilogue per element.
    let tile = COOP_TILE;
    let at00 = 0u;
    let at01 = 8u;
    let at10 = 8u * COOP_TILE;
    let at11 = 8u * COOP_TILE + 8u;
    STORE_ROWS(acc00, &sums[at00], tile);
    STORE_ROWS(acc01, &sums[at01], tile);
    STORE_ROWS(acc10, &sums[at10], tile);
    STORE_ROWS(acc11, &sums[at11], tile);
    workgroupBarrier();
    for (var e = t; e < COOP_OUTPUTS; e += COOP_LANES) {
        finish(row0 + e / COOP_TILE, col0 + e % COOP_TILE, sums[e]);
    }
}
