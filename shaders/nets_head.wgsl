// The head of an embedding network, one invocation per vertex: the basis mix
//   out[v] = x_mean[v] + code[v] · softmax(static_code, 0)
// then XHand's output activation: none (displacement), sigmoid (albedo) or a softmax over the
// 16 joints (skinning weights). Constants (HEAD_*, MAX_OUT) come from the generated header.

struct Head {
    rows: u32,
    code: u32,
    out: u32,
    mode: u32,
    row_base: u32,
    mix_offset: u32,
    x_mean_offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> h: Head;
@group(0) @binding(1) var<storage, read> codes: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> outs: array<f32>;
@group(0) @binding(4) var<storage, read> vdata: array<f32>;

@compute @workgroup_size(64)
fn head(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= h.rows {
        return;
    }
    let v = h.row_base + gid.x;
    var o: array<f32, MAX_OUT>;
    var top = -3.4e38;
    for (var j = 0u; j < h.out; j++) {
        var acc = vdata[h.x_mean_offset + v * h.out + j];
        for (var c = 0u; c < h.code; c++) {
            acc += codes[v * h.code + c] * params[h.mix_offset + c * h.out + j];
        }
        o[j] = acc;
        top = max(top, acc);
    }
    if h.mode == HEAD_SIGMOID {
        for (var j = 0u; j < h.out; j++) {
            o[j] = 1.0 / (1.0 + exp(-o[j]));
        }
    } else if h.mode == HEAD_SOFTMAX {
        var sum = 0.0;
        for (var j = 0u; j < h.out; j++) {
            o[j] = exp(o[j] - top);
            sum += o[j];
        }
        for (var j = 0u; j < h.out; j++) {
            o[j] = o[j] / sum;
        }
    }
    for (var j = 0u; j < h.out; j++) {
        outs[v * h.out + j] = o[j];
    }
}
