// Draws the shaded image (display values, coverage in alpha) over the view target with a
// fullscreen triangle — over the backdrop image (the source footage, stretched over the
// target) when it has one (alpha 1). When the target is sRGB the hardware encodes on write,
// so display values are decoded to linear first.

struct CompositeParams {
    // 1 when the target format is sRGB; the backdrop's mapping: 0 stretched over the
    // target (source footage), 1 an equirectangular environment seen through the camera.
    srgb_target: u32,
    mapping: u32,
    _pad0: u32,
    _pad1: u32,
    // Camera-to-world rotation rows, and fx, fy, cx, cy.
    camera_to_world: array<vec4<f32>, 3>,
    intrinsics: vec4<f32>,
    // The environment's axes (envmap.rs); env_up.w is its turn (radians).
    env_up: vec4<f32>,
    env_forward: vec4<f32>,
    env_right: vec4<f32>,
};

@group(0) @binding(0) var<uniform> params: CompositeParams;
@group(0) @binding(1) var shaded: texture_2d<f32>;
// Display values; a 1x1 transparent texel when there is no backdrop.
@group(0) @binding(2) var backdrop: texture_2d<f32>;
@group(0) @binding(3) var backdrop_sampler: sampler;

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

const PI: f32 = 3.14159265358979;

// Where the backdrop is sampled for pixel `pos` (centre at +0.5): the target's own uv, or the
// environment's (u, v) of the camera ray through the pixel (envmap.rs `lookup_uv`).
fn backdrop_uv(pos: vec2<f32>, size: vec2<f32>) -> vec2<f32> {
    if params.mapping == 0u {
        return pos / size;
    }
    let k = params.intrinsics;
    let c = vec3<f32>((pos.x - k.z) / k.x, (pos.y - k.w) / k.y, 1.0);
    let r = params.camera_to_world;
    let d = normalize(vec3<f32>(dot(r[0].xyz, c), dot(r[1].xyz, c), dot(r[2].xyz, c)));
    let theta = acos(clamp(dot(d, params.env_up.xyz), -1.0, 1.0));
    let phi = atan2(dot(d, params.env_right.xyz), dot(d, params.env_forward.xyz));
    let u = fract((phi - params.env_up.w) / (2.0 * PI) + 0.5);
    return vec2<f32>(u, theta / PI);
}

@fragment
fn fs(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let texel = textureLoad(shaded, vec2<i32>(pos.xy), 0);
    let uv = backdrop_uv(pos.xy, vec2<f32>(textureDimensions(shaded)));
    let behind = textureSampleLevel(backdrop, backdrop_sampler, uv, 0.0);
    var rgb = texel.rgb;
    var alpha = texel.a;
    if behind.a > 0.5 {
        rgb = mix(behind.rgb, texel.rgb, texel.a);
        alpha = 1.0;
    }
    if params.srgb_target == 1u {
        rgb = srgb_to_linear(rgb);
    }
    return vec4<f32>(rgb, alpha);
}
