//! The WGSL sources (embedded in the binary) and the avatar-specific part of the shading
//! shader: constants and the layer calls of its neural renderer, generated from the
//! renderer's tensor shapes.

use std::fmt::Write as _;

use crate::avatar::Avatar;
use crate::nn::{NeuralRenderer, RENDERER_SKIP_LAYER};

pub const SKIN_WGSL: &str = include_str!("../../shaders/skin.wgsl");
pub const NORMALS_WGSL: &str = include_str!("../../shaders/normals.wgsl");
pub const RASTER_WGSL: &str = include_str!("../../shaders/raster.wgsl");
pub const SHADE_WGSL: &str = include_str!("../../shaders/shade.wgsl");
pub const COMPOSITE_WGSL: &str = include_str!("../../shaders/composite.wgsl");

/// The matmul tile width of `shade.wgsl`; per-pixel arrays are padded to a multiple.
const TILE_IN: usize = 64;

/// The generated shading shader and the renderer weights it expects.
pub struct ShadeProgram {
    pub source: String,
    /// All renderer layers packed: weight `[out][in]` row-major, then bias; empty when the
    /// avatar has no renderer.
    pub mlp_weights: Vec<f32>,
    /// Floats per vertex in the attribute buffer: albedo 3 + codes + displacement 1.
    pub attr_stride: usize,
    pub codes: usize,
}

/// Builds the shading program for an avatar (`codes` = code_delta + code_albedo +
/// render_code widths).
pub fn shade_program(avatar: &Avatar) -> candle_core::Result<ShadeProgram> {
    shade_program_for(avatar.code_width(), avatar.renderer.as_ref())
}

/// Builds the shading program for a code width and an optional renderer.
pub fn shade_program_for(
    codes: usize,
    renderer: Option<&NeuralRenderer>,
) -> candle_core::Result<ShadeProgram> {
    let input = crate::nn::renderer_input_width(codes);
    let hidden = renderer.map_or(0, NeuralRenderer::hidden_dim);
    let width = input.max(hidden).div_ceil(TILE_IN) * TILE_IN;
    let mut weights = Vec::new();
    let mut tiled = String::new();
    let mut direct = String::new();
    let mut result = "h0";
    if let Some(r) = renderer {
        let last = r.layers().len() - 1;
        let mut cur = "x";
        for (i, layer) in r.layers().iter().enumerate() {
            let k = i + 1;
            let w_off = weights.len();
            weights.extend(layer.weight()?.flatten_all()?.to_vec1::<f32>()?);
            weights.extend(layer.bias().flatten_all()?.to_vec1::<f32>()?);
            let dst = if cur == "h0" { "h1" } else { "h0" };
            let (na, nb, src_b) = if k == RENDERER_SKIP_LAYER {
                (layer.in_dim() - input, input, "x")
            } else {
                (layer.in_dim(), 0, cur)
            };
            let relu = i < last;
            let nout = layer.out_dim();
            // Loops with literal bounds around the barriers (see shade.wgsl).
            let row_len = na + nb;
            let b_off = w_off + nout * row_len;
            let _ = writeln!(
                tiled,
                "    for (var o0 = 0u; o0 < {nout}u; o0 += TILE_OUT) {{\n        var acc: array<f32, 16>;\n        start_tile(&acc, {b_off}u, o0, {nout}u);\n        for (var i0 = 0u; i0 < {row_len}u; i0 += TILE_IN) {{\n            load_tile(lid, {w_off}u, {row_len}u, o0, i0, {nout}u);\n            workgroupBarrier();\n            mac_tile(&acc, i0, {na}u, {row_len}u, {cur}, {src_b});\n            workgroupBarrier();\n        }}\n        finish_tile(&acc, {dst}, o0, {nout}u, {relu});\n    }}"
            );
            let _ = writeln!(
                direct,
                "    dense_direct({w_off}u, {na}u, {nb}u, {nout}u, {cur}, {src_b}, {dst}, {relu});"
            );
            cur = dst;
        }
        result = cur;
    }
    let mut source = String::new();
    let _ = writeln!(
        source,
        "// Generated for this avatar by gpu::shaders::shade_program."
    );
    let _ = writeln!(source, "const CODES: u32 = {codes}u;");
    let _ = writeln!(source, "const ATTR_STRIDE: u32 = {}u;", codes + 4);
    let _ = writeln!(source, "const MLP_WIDTH: u32 = {width}u;");
    source.push_str(&crate::wireframe::wgsl_constants());
    let _ = writeln!(
        source,
        "fn run_mlp_tiled(lid: u32, x: ptr<private, array<f32, MLP_WIDTH>>, h0: ptr<private, array<f32, MLP_WIDTH>>, h1: ptr<private, array<f32, MLP_WIDTH>>) {{\n{tiled}}}"
    );
    let _ = writeln!(
        source,
        "fn run_mlp_direct(x: ptr<private, array<f32, MLP_WIDTH>>, h0: ptr<private, array<f32, MLP_WIDTH>>, h1: ptr<private, array<f32, MLP_WIDTH>>) {{\n{direct}}}"
    );
    source.push_str(&SHADE_WGSL.replace("MLP_RESULT", result));
    Ok(ShadeProgram {
        source,
        mlp_weights: weights,
        attr_stride: codes + 4,
        codes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::SyntheticSpec;

    fn validate(name: &str, source: &str) {
        let module = naga::front::wgsl::parse_str(source)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    }

    #[test]
    fn per_pixel_arrays_hold_the_widest_renderer_layer() {
        let device = candle_core::Device::Cpu;
        let codes = 40;
        let input = crate::nn::renderer_input_width(codes);
        // The first layer narrow, a later one wider than the input.
        let outs = [32, input + 70, 48, 80, 40, 24, 16, 3];
        let mut prev = input;
        let layers = (1..=8)
            .map(|k| {
                let i = if k == RENDERER_SKIP_LAYER {
                    prev + input
                } else {
                    prev
                };
                let o = outs[k - 1];
                prev = o;
                let w = candle_core::Tensor::zeros((o, i), candle_core::DType::F32, &device)?;
                let b = candle_core::Tensor::zeros(o, candle_core::DType::F32, &device)?;
                crate::nn::Linear::new(w, b)
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .unwrap();
        let renderer = NeuralRenderer::new(layers).unwrap();
        let program = shade_program_for(codes, Some(&renderer)).unwrap();
        let width: usize = program
            .source
            .lines()
            .find_map(|l| l.strip_prefix("const MLP_WIDTH: u32 = "))
            .and_then(|v| v.trim_end_matches("u;").parse().ok())
            .unwrap();
        assert!(
            width >= input + 70,
            "MLP_WIDTH {width} < widest layer {}",
            input + 70
        );
        validate("shade.wgsl (uneven renderer)", &program.source);
    }

    #[test]
    fn every_shader_validates() {
        validate("skin.wgsl", SKIN_WGSL);
        validate("normals.wgsl", NORMALS_WGSL);
        validate("raster.wgsl", RASTER_WGSL);
        validate("composite.wgsl", COMPOSITE_WGSL);
        for (name, source) in super::super::nets::shader_sources() {
            validate(name, &source);
        }
        let device = candle_core::Device::Cpu;
        let avatar = SyntheticSpec::test_avatar().avatar(&device).unwrap();
        let program = shade_program(&avatar).unwrap();
        validate("shade.wgsl (test avatar)", &program.source);
        // XHand's sizes: 40 code values, a 256-wide renderer.
        let paper = SyntheticSpec {
            renderer_hidden: Some(256),
            ..SyntheticSpec::test_avatar()
        }
        .avatar(&device)
        .unwrap();
        let program = shade_program(&paper).unwrap();
        assert_eq!(program.codes, 40);
        validate("shade.wgsl (256-wide renderer)", &program.source);
        let no_renderer = SyntheticSpec {
            renderer_hidden: None,
            ..SyntheticSpec::test_avatar()
        }
        .avatar(&device)
        .unwrap();
        validate(
            "shade.wgsl (no renderer)",
            &shade_program(&no_renderer).unwrap().source,
        );
    }
}
