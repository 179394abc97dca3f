// Draws the shaded image (display values, premultiplied by coverage in alpha) over the
// view target with a fullscreen triangle. When the target is sRGB the hardware encodes on
// write, so display values are decoded to linear first.

struct CompositeParams {
    // 1 when the target format is sRGB.
    srgb_target: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var<uniform> params: CompositeParams;
@group(0) @binding(1) var shaded: texture_2d<f32>;

@vertex
fn vs(@builtin(vertex_index) vi: u32) -> @builtin(position) vec4<f32> {
    let x = f32((vi << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(vi & 2u) * 2.0 - 1.0;
    return vec4<f32>(x, y, 0.0, 1.0);
}

fn srgb_to_linear(c: vec3<f32>) -> vec3<f32> {
    let lo = c / 12.92;
    let hi = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
    return select(hi, lo, c <= vec3<f32>(0.04045));
}

@fragment
fn fs(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let texel = textureLoad(shaded, vec2<i32>(pos.xy), 0);
    var rgb = texel.rgb;
    if params.srgb_target == 1u {
        rgb = srgb_to_linear(rgb);
    }
    return vec4<f32>(rgb, texel.a);
}
