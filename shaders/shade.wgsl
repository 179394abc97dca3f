// Per-pixel shading from the visibility buffer: interpolate the triangle's position,
// normal, albedo and codes, light with XHand's SH, and for the neural mode run the
// avatar's `MLP_res` renderer on its input row (271 wide for XHand). Mirrors `cpu_render.rs`.
//
// The Rust side prepends the constants below (IN_DIM, HIDDEN, CODES, ...) and the
// generated layer calls of the avatar's renderer (`run_mlp_*`), so loops have
// compile-time bounds and every width comes from the avatar's tensor shapes.

struct ViewParams {
    clip_from_world: mat4x4<f32>,
    // Camera-to-world: rotation Rᵀ in the upper 3x3 (XHand's ray feature), the camera
    // centre in column 3 (the grid's ray origin).
    ray_rotation: mat4x4<f32>,
    // fx, fy, cx, cy in pixels.
    intrinsics: vec4<f32>,
    background: vec4<f32>,
    // width, height, shading mode, joint for the weights mode.
    size_mode: vec4<u32>,
    // wireframe (0/1), colours stored BGR (0/1), grid (0/1), unused.
    flags: vec4<u32>,
    // normal sign (−1 for a mirrored hand), displacement range (m), grid plane y (m),
    // grid spacing (m).
    misc: vec4<f32>,
    sh: array<vec4<f32>, 7>,
    pose: array<vec4<f32>, 12>,
    // This hand in the shared visibility buffer: its first id − 1 (the faces of the hands
    // before it), its face count, 1 for the first hand (which paints the background), unused.
    hand: vec4<u32>,
};

@group(0) @binding(0) var<uniform> view: ViewParams;
@group(0) @binding(1) var vis_triangle: texture_2d<u32>;
@group(0) @binding(2) var vis_bary: texture_2d<f32>;
@group(0) @binding(3) var shaded_out: texture_storage_2d<rgba8unorm, write>;
@group(0) @binding(4) var<storage, read> posed: array<f32>;
@group(0) @binding(5) var<storage, read> normals: array<f32>;
@group(0) @binding(6) var<storage, read> faces: array<u32>;
// Per vertex: albedo (3), codes (CODES), displacement magnitude (1).
@group(0) @binding(7) var<storage, read> attrs: array<f32>;
@group(0) @binding(8) var<storage, read> lbs_weights: array<f32>;
// Renderer layers: each weight [out][in] row-major, then its bias.
@group(0) @binding(9) var<storage, read> mlp: array<f32>;

// MODE_*, PI, SH_*, PE_*, NUM_JOINTS, POSE_DIM and HEAT_STOPS come from the generated
// header (gpu::shaders::shared_constants), from the Rust constants they mirror.

struct Pixel {
    // Shows this hand.
    covered: bool,
    // Shows another hand (its own pass shades it).
    other: bool,
    position: vec3<f32>,
    // XHand's pred_normals: normalised, not sign-corrected.
    normal: vec3<f32>,
    albedo: vec3<f32>,
    face: vec3<u32>,
    bary: vec3<f32>,
};

fn load3(buf_index: u32, which: u32) -> vec3<f32> {
    if which == 0u {
        return vec3<f32>(posed[3u * buf_index], posed[3u * buf_index + 1u], posed[3u * buf_index + 2u]);
    }
    return vec3<f32>(normals[3u * buf_index], normals[3u * buf_index + 1u], normals[3u * buf_index + 2u]);
}

fn attr(v: u32, k: u32) -> f32 {
    return attrs[v * ATTR_STRIDE + k];
}

fn interp_attr(p: Pixel, k: u32) -> f32 {
    return p.bary.x * attr(p.face.x, k) + p.bary.y * attr(p.face.y, k) + p.bary.z * attr(p.face.z, k);
}

fn load_pixel(px: vec2<u32>) -> Pixel {
    var p: Pixel;
    let tri = textureLoad(vis_triangle, vec2<i32>(px), 0).x;
    if tri == 0u {
        return p;
    }
    let id = tri - 1u;
    if id < view.hand.x || id - view.hand.x >= view.hand.y {
        p.other = true;
        return p;
    }
    p.covered = true;
    let f = id - view.hand.x;
    p.face = vec3<u32>(faces[3u * f], faces[3u * f + 1u], faces[3u * f + 2u]);
    let b = textureLoad(vis_bary, vec2<i32>(px), 0).xy;
    p.bary = vec3<f32>(b.x, b.y, 1.0 - b.x - b.y);
    p.position = p.bary.x * load3(p.face.x, 0u) + p.bary.y * load3(p.face.y, 0u) + p.bary.z * load3(p.face.z, 0u);
    let n = p.bary.x * load3(p.face.x, 1u) + p.bary.y * load3(p.face.y, 1u) + p.bary.z * load3(p.face.z, 1u);
    p.normal = n / max(length(n), 1e-12);
    p.albedo = vec3<f32>(interp_attr(p, 0u), interp_attr(p, 1u), interp_attr(p, 2u));
    return p;
}

fn sh_coeff(k: u32) -> f32 {
    return view.sh[k / 4u][k % 4u];
}

// XHand's compute_color: channel-major coefficients, +0.8 on coefficient 0.
fn sh_shade(albedo: vec3<f32>, n: vec3<f32>) -> vec3<f32> {
    var basis: array<f32, 9>;
    basis[0] = SH_C0;
    basis[1] = -SH_C1 * n.y;
    basis[2] = SH_C1 * n.z;
    basis[3] = -SH_C1 * n.x;
    basis[4] = SH_C2 * n.x * n.y;
    basis[5] = -SH_C2 * n.y * n.z;
    basis[6] = SH_C2_Z * (3.0 * n.z * n.z - 1.0);
    basis[7] = -SH_C2 * n.x * n.z;
    basis[8] = SH_C2_XY * (n.x * n.x - n.y * n.y);
    var out = vec3<f32>(0.0);
    for (var ch = 0u; ch < 3u; ch++) {
        var s = 0.0;
        for (var k = 0u; k < 9u; k++) {
            var g = sh_coeff(ch * 9u + k);
            if k == 0u {
                g += SH_AMBIENT;
            }
            s += basis[k] * g;
        }
        out[ch] = s * albedo[ch];
    }
    return out;
}

fn heat(t_in: f32) -> vec3<f32> {
    let stops = HEAT_STOPS;
    let t = clamp(t_in, 0.0, 1.0);
    let x = t * 4.0;
    let i = min(u32(x), 3u);
    let f = x - f32(i);
    return stops[i] * (1.0 - f) + stops[i + 1u] * f;
}

fn to_display(c: vec3<f32>) -> vec3<f32> {
    if view.flags.y == 1u {
        return c.bgr;
    }
    return c;
}

fn screen_of(v: u32) -> vec2<f32> {
    let c = view.clip_from_world * vec4<f32>(load3(v, 0u), 1.0);
    let ndc = c.xy / c.w;
    return vec2<f32>((ndc.x + 1.0) * 0.5 * f32(view.size_mode.x), (1.0 - ndc.y) * 0.5 * f32(view.size_mode.y));
}

fn segment_distance(p: vec2<f32>, a: vec2<f32>, b: vec2<f32>) -> f32 {
    let ab = b - a;
    let t = clamp(dot(p - a, ab) / max(dot(ab, ab), 1e-12), 0.0, 1.0);
    return length(p - (a + t * ab));
}

// The wireframe overlay (crate::wireframe, whose constants the generated header holds):
// darkens pixels near the visible triangle's edges, fading the lines where triangles are
// small on screen so a dense mesh is not painted black.
fn with_wireframe(c: vec3<f32>, p: Pixel, px: vec2<u32>) -> vec3<f32> {
    if view.flags.x == 0u {
        return c;
    }
    let q = vec2<f32>(px) + 0.5;
    let a = screen_of(p.face.x);
    let b = screen_of(p.face.y);
    let d = screen_of(p.face.z);
    let dist = min(segment_distance(q, a, b), min(segment_distance(q, b, d), segment_distance(q, d, a)));
    let e1 = b - a;
    let e2 = d - a;
    let size = sqrt(abs(e1.x * e2.y - e1.y * e2.x));
    let line = 1.0 - smoothstep(WIRE_INNER_PX, WIRE_OUTER_PX, dist);
    let density = mix(WIRE_DENSE_OPACITY, 1.0, smoothstep(WIRE_FADE_FROM_PX, WIRE_FADE_TO_PX, size));
    let weight = WIRE_OPACITY * line * density;
    return mix(c, WIRE_COLOR, weight);
}

// Colour of a covered pixel in every mode except neural (display order).
fn simple_color(p: Pixel) -> vec3<f32> {
    let sign = view.misc.x;
    let mode = view.size_mode.z;
    if mode == MODE_MASK {
        return vec3<f32>(1.0);
    }
    if mode == MODE_NORMALS {
        return (p.normal * sign + 1.0) * 0.5;
    }
    if mode == MODE_ALBEDO {
        return to_display(p.albedo);
    }
    if mode == MODE_WEIGHTS {
        let j = view.size_mode.w;
        let w = p.bary.x * lbs_weights[p.face.x * NUM_JOINTS + j] + p.bary.y * lbs_weights[p.face.y * NUM_JOINTS + j]
            + p.bary.z * lbs_weights[p.face.z * NUM_JOINTS + j];
        return heat(w);
    }
    if mode == MODE_DISPLACEMENT {
        return heat(interp_attr(p, ATTR_STRIDE - 1u) / max(view.misc.y, 1e-9));
    }
    return to_display(clamp(sh_shade(p.albedo, p.normal * sign), vec3<f32>(0.0), vec3<f32>(1.0)));
}

// Background of pixel `px`: the background colour, with a grid on the plane y = misc.z
// (behind the framed hands, `cpu_render::GridPlane`) when enabled. Alpha 0 keeps the
// view's own clear colour; grid lines are drawn opaque.
fn background(px: vec2<u32>) -> vec4<f32> {
    if view.flags.z == 0u {
        return vec4<f32>(view.background.rgb, 0.0);
    }
    let a = (f32(px.x) + 0.5 - view.intrinsics.z) / view.intrinsics.x;
    let b = (f32(px.y) + 0.5 - view.intrinsics.w) / view.intrinsics.y;
    // The geometric viewing ray (OpenCV: x right, y down, z forward).
    let d = (view.ray_rotation * vec4<f32>(a, b, 1.0, 0.0)).xyz;
    let o = view.ray_rotation[3].xyz;
    if abs(d.y) < 1e-6 {
        return vec4<f32>(view.background.rgb, 0.0);
    }
    let t = (view.misc.z - o.y) / d.y;
    if t <= 0.0 {
        return vec4<f32>(view.background.rgb, 0.0);
    }
    let p = o + t * d;
    let spacing = view.misc.w;
    // Line half-width of about one pixel at this distance.
    let footprint = t * length(d) / view.intrinsics.x;
    let gx = abs(fract(p.x / spacing + 0.5) - 0.5) * spacing;
    let gz = abs(fract(p.z / spacing + 0.5) - 0.5) * spacing;
    let line = 1.0 - smoothstep(0.5 * footprint, 1.5 * footprint, min(gx, gz));
    let fade = exp(-t * GRID_FADE_PER_CELL / spacing);
    let c = mix(view.background.rgb, view.background.rgb + vec3<f32>(GRID_LINE_LIFT), line * fade);
    return vec4<f32>(c, 1.0);
}

fn pixel_in_image(px: vec2<u32>) -> bool {
    return px.x < view.size_mode.x && px.y < view.size_mode.y;
}

// Whether this hand's pass writes pixel `p` when it does not show this hand: the first
// hand paints the background of empty pixels; other hands' pixels are theirs.
fn paints_background(p: Pixel) -> bool {
    return !p.other && view.hand.z != 0u;
}

@compute @workgroup_size(8, 8)
fn shade_simple(@builtin(global_invocation_id) gid: vec3<u32>) {
    let px = gid.xy;
    if !pixel_in_image(px) {
        return;
    }
    let p = load_pixel(px);
    if !p.covered {
        if paints_background(p) {
            textureStore(shaded_out, vec2<i32>(px), background(px));
        }
        return;
    }
    textureStore(shaded_out, vec2<i32>(px), vec4<f32>(with_wireframe(simple_color(p), p, px), 1.0));
}

// ---- neural renderer ----------------------------------------------------------------

// XHand's positional encoding of `p` written at `x[at..at + PE_DIM]`.
fn encode(x: ptr<private, array<f32, MLP_WIDTH>>, at: u32, p: vec3<f32>) {
    let s = p * PE_SCALE;
    (*x)[at] = s.x;
    (*x)[at + 1u] = s.y;
    (*x)[at + 2u] = s.z;
    for (var j = 0u; j < PE_NUM_DIRS; j++) {
        let proj = dot(s, PE_DIRS[j]);
        for (var f = 0u; f < PE_NUM_FREQS; f++) {
            let xb = proj * PE_FREQS[f];
            let k = PE_NUM_FREQS * j + f;
            (*x)[at + 3u + k] = sin(xb);
            (*x)[at + PE_COS_AT + k] = sin(xb + 0.5 * PI);
        }
    }
}

// The renderer input row (`cpu_render::renderer_features`).
fn build_input(x: ptr<private, array<f32, MLP_WIDTH>>, p: Pixel, px: vec2<u32>) {
    encode(x, 0u, p.position);
    let sh = clamp(sh_shade(p.albedo, p.normal * view.misc.x), vec3<f32>(0.0), vec3<f32>(1.0));
    var o = PE_DIM;
    for (var k = 0u; k < 3u; k++) {
        (*x)[o + k] = sh[k];
        (*x)[o + 3u + k] = p.normal[k];
        (*x)[o + 6u + k] = p.albedo[k];
    }
    o += 9u;
    for (var k = 0u; k < CODES; k++) {
        (*x)[o + k] = interp_attr(p, 3u + k);
    }
    o += CODES;
    let a = (f32(px.x) + 0.5 - view.intrinsics.z) / view.intrinsics.x;
    let b = (f32(px.y) + 0.5 - view.intrinsics.w) / view.intrinsics.y;
    let ray = normalize((view.ray_rotation * vec4<f32>(a, -b, -1.0, 0.0)).xyz);
    encode(x, o, ray);
    o += PE_DIM;
    for (var k = 0u; k < POSE_DIM; k++) {
        (*x)[o + k] = view.pose[k / 4u][k % 4u];
    }
}

var<private> x: array<f32, MLP_WIDTH>;
var<private> h0: array<f32, MLP_WIDTH>;
var<private> h1: array<f32, MLP_WIDTH>;

// Σ_i W[o][col0 + i] · src[i] for the 4 neurons `o0 .. o0 + 4` (rows past `nout` read as
// zero): every activation loaded once per 4 weights.
fn accumulate4(w_off: u32, row_len: u32, col0: u32, ncols: u32, o0: u32, nout: u32, src: ptr<private, array<f32, MLP_WIDTH>>) -> vec4<f32> {
    var rows = vec4<u32>(0u);
    var live = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        if o0 + j < nout {
            rows[j] = w_off + (o0 + j) * row_len + col0;
            live[j] = 1.0;
        }
    }
    // Four inputs an iteration (llvmpipe's loop cap, see the compute path), then the rest.
    var acc = vec4<f32>(0.0);
    var i = 0u;
    for (; i + 4u <= ncols; i += 4u) {
        acc += column(rows, i) * (*src)[i] + column(rows, i + 1u) * (*src)[i + 1u]
            + column(rows, i + 2u) * (*src)[i + 2u] + column(rows, i + 3u) * (*src)[i + 3u];
    }
    for (; i < ncols; i++) {
        acc += column(rows, i) * (*src)[i];
    }
    return acc * live;
}

// Weight `i` of the 4 rows starting at `rows`.
fn column(rows: vec4<u32>, i: u32) -> vec4<f32> {
    return vec4<f32>(mlp[rows.x + i], mlp[rows.y + i], mlp[rows.z + i], mlp[rows.w + i]);
}

// One dense layer `dst = act(W · [src_a, src_b] + b)`; `nb = 0` for no second source.
fn dense_direct(w_off: u32, na: u32, nb: u32, nout: u32, src_a: ptr<private, array<f32, MLP_WIDTH>>, src_b: ptr<private, array<f32, MLP_WIDTH>>, dst: ptr<private, array<f32, MLP_WIDTH>>, relu: bool) {
    let row_len = na + nb;
    let b_off = w_off + nout * row_len;
    for (var o0 = 0u; o0 < nout; o0 += 4u) {
        var v = accumulate4(w_off, row_len, 0u, na, o0, nout, src_a);
        if nb > 0u {
            v += accumulate4(w_off, row_len, na, nb, o0, nout, src_b);
        }
        for (var j = 0u; j < 4u; j++) {
            if o0 + j < nout {
                var y = v[j] + mlp[b_off + o0 + j];
                if relu {
                    y = max(y, 0.0);
                }
                (*dst)[o0 + j] = y;
            }
        }
    }
}

fn sigmoid3(x: ptr<private, array<f32, MLP_WIDTH>>) -> vec3<f32> {
    return 1.0 / (1.0 + exp(-vec3<f32>((*x)[0], (*x)[1], (*x)[2])));
}

// ---- neural renderer, compute path ------------------------------------------------
// `gather_covered` (one invocation per pixel) paints the background and lists the pixels
// this hand covers; `plan_rounds` (one invocation) splits their tiles of 64 into rounds of
// at most `groups` workgroups, written as indirect dispatch arguments; each round's
// `shade_neural` workgroups then take a tile each. Per tile the renderer runs as a tiled
// matrix product: per layer and 32-neuron block, K-slices of the activations and weights
// are staged in workgroup memory and each invocation accumulates 8 pixels × 4 neurons.
// Activations live in the storage buffer `act`, a region per workgroup of a round (the
// input, h0, h1; feature-major, 64 pixels a row), so the scratch is bounded at any view
// size. A workgroup shades one tile and ends: llvmpipe (lavapipe) stops every loop of an
// invocation after 65,535 iterations in all (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS), so
// one invocation's loops must stay well under that (about 12,000 for XHand's renderer;
// hence also the hand-unrolled bodies below).

struct NeuralState {
    // Covered pixels listed (cleared before `gather_covered`).
    covered: atomic<u32>,
    // The next tile a workgroup takes (reset by `plan_rounds`).
    next_tile: atomic<u32>,
    // Workgroups of one round (each with a scratch region); written by the host.
    groups: u32,
    _pad: u32,
};

@group(0) @binding(10) var<storage, read_write> covered: array<u32>;
@group(0) @binding(11) var<storage, read_write> state: NeuralState;
@group(0) @binding(12) var<storage, read_write> act: array<f32>;
// Indirect dispatch arguments (x, y, z) of each round.
@group(0) @binding(13) var<storage, read_write> rounds: array<u32>;

const PX_TILE: u32 = 64u;
const N_TILE: u32 = 32u;
const K_TILE: u32 = 16u;
// Floats of one activation region (one of input, h0, h1) of one workgroup.
const REGION: u32 = PX_TILE * MLP_WIDTH;
const REGION_INPUT: u32 = 0u;
const REGION_H0: u32 = 1u;
const REGION_H1: u32 = 2u;

// K-slices staged for the whole workgroup: activations [k][pixel] and weights [k][neuron],
// in vec4s of 4 pixels / 4 neurons.
var<workgroup> a_tile: array<vec4<f32>, 256>;
var<workgroup> w_tile: array<vec4<f32>, 128>;
var<workgroup> tile: u32;

// One invocation's share of a 64-pixel × 32-neuron block: 8 pixels (`lo` the first four,
// `hi` the next) × 4 neurons, a column per pixel (registers, where an array might not be).
struct Acc {
    lo: mat4x4<f32>,
    hi: mat4x4<f32>,
};

@compute @workgroup_size(8, 8)
fn gather_covered(@builtin(global_invocation_id) gid: vec3<u32>) {
    let px = gid.xy;
    if !pixel_in_image(px) {
        return;
    }
    let p = load_pixel(px);
    if !p.covered {
        if paints_background(p) {
            textureStore(shaded_out, vec2<i32>(px), background(px));
        }
        return;
    }
    let i = atomicAdd(&state.covered, 1u);
    covered[i] = px.y * view.size_mode.x + px.x;
}

@compute @workgroup_size(1)
fn plan_rounds() {
    let tiles = (atomicLoad(&state.covered) + PX_TILE - 1u) / PX_TILE;
    atomicStore(&state.next_tile, 0u);
    let groups = max(state.groups, 1u);
    for (var r = 0u; r < arrayLength(&rounds) / 3u; r++) {
        let first = r * groups;
        rounds[3u * r] = select(0u, min(tiles - first, groups), first < tiles);
        rounds[3u * r + 1u] = 1u;
        rounds[3u * r + 2u] = 1u;
    }
}

fn pixel_of(index: u32) -> vec2<u32> {
    let w = view.size_mode.x;
    return vec2<u32>(index % w, index / w);
}

// Stages K-slice `k0` of this tile's layer input `[src_a[..na], src_b]` (64 pixels) and of
// the weights of neurons `n0 .. n0 + 32` (rows of length `row_len`) in workgroup memory.
fn stage_tiles(lid: u32, base: u32, w_off: u32, row_len: u32, na: u32, src_a: u32, src_b: u32, n0: u32, k0: u32, nout: u32) {
    // Activations: 16 features × 64 pixels, consecutive invocations reading consecutive
    // pixels; four per iteration.
    for (var r = 0u; r < 16u; r += 4u) {
        stage_activation(lid + 64u * r, base, row_len, na, src_a, src_b, k0);
        stage_activation(lid + 64u * (r + 1u), base, row_len, na, src_a, src_b, k0);
        stage_activation(lid + 64u * (r + 2u), base, row_len, na, src_a, src_b, k0);
        stage_activation(lid + 64u * (r + 3u), base, row_len, na, src_a, src_b, k0);
    }
    // Weights: 32 neurons × 16 inputs, 16 consecutive inputs of a neuron per 16
    // invocations, stored [k][neuron].
    for (var r = 0u; r < 8u; r += 4u) {
        stage_weight(lid + 64u * r, w_off, row_len, n0, k0, nout);
        stage_weight(lid + 64u * (r + 1u), w_off, row_len, n0, k0, nout);
        stage_weight(lid + 64u * (r + 2u), w_off, row_len, n0, k0, nout);
        stage_weight(lid + 64u * (r + 3u), w_off, row_len, n0, k0, nout);
    }
}

fn stage_activation(idx: u32, base: u32, row_len: u32, na: u32, src_a: u32, src_b: u32, k0: u32) {
    let c = k0 + idx / PX_TILE;
    let px = idx % PX_TILE;
    var a = 0.0;
    if c < na {
        a = act[base + src_a * REGION + c * PX_TILE + px];
    } else if c < row_len {
        a = act[base + src_b * REGION + (c - na) * PX_TILE + px];
    }
    a_tile[idx / 4u][idx % 4u] = a;
}

fn stage_weight(idx: u32, w_off: u32, row_len: u32, n0: u32, k0: u32, nout: u32) {
    let n = idx / K_TILE;
    let k = idx % K_TILE;
    var w = 0.0;
    if n0 + n < nout && k0 + k < row_len {
        w = mlp[w_off + (n0 + n) * row_len + k0 + k];
    }
    let at = k * N_TILE + n;
    w_tile[at / 4u][at % 4u] = w;
}

// acc += a[k][8 pixels] ⊗ w[k][4 neurons] over the staged slice, four k per iteration.
fn mac_tiles(acc: ptr<function, Acc>, tx: u32, ty: u32) {
    for (var k = 0u; k < K_TILE; k += 4u) {
        mac_one(acc, k, tx, ty);
        mac_one(acc, k + 1u, tx, ty);
        mac_one(acc, k + 2u, tx, ty);
        mac_one(acc, k + 3u, tx, ty);
    }
}

fn mac_one(acc: ptr<function, Acc>, k: u32, tx: u32, ty: u32) {
    let a0 = a_tile[k * (PX_TILE / 4u) + 2u * ty];
    let a1 = a_tile[k * (PX_TILE / 4u) + 2u * ty + 1u];
    let w = w_tile[k * (N_TILE / 4u) + tx];
    (*acc).lo[0] += w * a0.x;
    (*acc).lo[1] += w * a0.y;
    (*acc).lo[2] += w * a0.z;
    (*acc).lo[3] += w * a0.w;
    (*acc).hi[0] += w * a1.x;
    (*acc).hi[1] += w * a1.y;
    (*acc).hi[2] += w * a1.z;
    (*acc).hi[3] += w * a1.w;
}

// The biases of this invocation's 4 neurons in every pixel's column.
fn init_acc(b_off: u32, n0: u32, nout: u32, tx: u32) -> Acc {
    var b = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        let n = n0 + 4u * tx + j;
        if n < nout {
            b[j] = mlp[b_off + n];
        }
    }
    let m = mat4x4<f32>(b, b, b, b);
    return Acc(m, m);
}

fn store_column(base: u32, dst: u32, n0: u32, nout: u32, tx: u32, px: u32, v_in: vec4<f32>, relu: bool) {
    var v = v_in;
    if relu {
        v = max(v, vec4<f32>(0.0));
    }
    for (var j = 0u; j < 4u; j++) {
        let n = n0 + 4u * tx + j;
        if n < nout {
            act[base + dst * REGION + n * PX_TILE + px] = v[j];
        }
    }
}

fn store_acc(acc: Acc, base: u32, dst: u32, n0: u32, nout: u32, tx: u32, ty: u32, relu: bool) {
    let p = 8u * ty;
    for (var i = 0u; i < 4u; i++) {
        store_column(base, dst, n0, nout, tx, p + i, acc.lo[i], relu);
        store_column(base, dst, n0, nout, tx, p + 4u + i, acc.hi[i], relu);
    }
}

// Neural mode, compute path (see above): one tile of covered pixels per workgroup.
@compute @workgroup_size(64)
fn shade_neural(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    if lid == 0u {
        tile = atomicAdd(&state.next_tile, 1u);
    }
    let t = workgroupUniformLoad(&tile);
    let base = wg.x * 3u * REGION;
    let tx = lid % 8u;
    let ty = lid / 8u;
    // This invocation's pixel: its input column.
    let slot = t * PX_TILE + lid;
    let valid = slot < atomicLoad(&state.covered);
    var px = vec2<u32>(0u);
    if valid {
        px = pixel_of(covered[slot]);
        build_input(&x, load_pixel(px), px);
    }
    for (var k = 0u; k < MLP_INPUT; k++) {
        var v = 0.0;
        if valid {
            v = x[k];
        }
        act[base + REGION_INPUT * REGION + k * PX_TILE + lid] = v;
    }
    storageBarrier();
    run_mlp_tiles(lid, base, tx, ty);
    if valid {
        var o: vec3<f32>;
        for (var c = 0u; c < 3u; c++) {
            o[c] = act[base + RESULT_REGION * REGION + c * PX_TILE + lid];
        }
        let rgb = to_display(1.0 / (1.0 + exp(-o)));
        textureStore(shaded_out, vec2<i32>(px), vec4<f32>(with_wireframe(rgb, load_pixel(px), px), 1.0));
    }
}

@vertex
fn vs_fullscreen(@builtin(vertex_index) vi: u32) -> @builtin(position) vec4<f32> {
    let x = f32((vi << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(vi & 2u) * 2.0 - 1.0;
    return vec4<f32>(x, y, 0.0, 1.0);
}

// Neural mode, fragment path: one pixel per invocation, weights read from the buffer.
@fragment
fn fs_neural(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let px = vec2<u32>(pos.xy);
    let p = load_pixel(px);
    if !p.covered {
        if !paints_background(p) {
            discard;
        }
        return background(px);
    }
    build_input(&x, p, px);
    run_mlp_direct(&x, &h0, &h1);
    let rgb = to_display(sigmoid3(&MLP_RESULT));
    return vec4<f32>(with_wireframe(rgb, p, px), 1.0);
}
