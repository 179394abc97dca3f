//! XHand's neural renderer `MLP_res(271, 3, num_h=256, depth=8, res_layer=[4])`
//! (models/mlp.py L25-58): ReLU MLP with one skip that concatenates the input after the
//! third hidden layer, and a sigmoid output.

use candle_core::{Device, Result, Tensor};

use super::Linear;
use super::fused::{FusedCache, FusedRenderer, Precision};
use super::posenc::PE_DIM;
use crate::POSE_DIM;

/// The layer (1-based, `linear4`) whose input is `cat([hidden, renderer_input])`.
pub const RENDERER_SKIP_LAYER: usize = 4;

/// Width of the per-pixel renderer input for the given total code width
/// (`code_delta + code_albedo + render_code`, 40 in XHand):
/// PE(position) 87 + SH colour 3 + normal 3 + albedo 3 + codes + PE(ray) 87 + pose 48.
pub const fn renderer_input_width(codes: usize) -> usize {
    PE_DIM + 3 + 3 + 3 + codes + PE_DIM + POSE_DIM
}

/// `(out, in)` of `linear1..linear8` for a renderer with the given input and hidden width
/// (`linear4` also takes the input, the last layer gives RGB).
pub fn renderer_layer_shapes(input: usize, hidden: usize) -> Vec<(usize, usize)> {
    let mut prev = input;
    (1..=8)
        .map(|k| {
            let i = if k == RENDERER_SKIP_LAYER {
                prev + input
            } else {
                prev
            };
            let o = if k == 8 { 3 } else { hidden };
            prev = o;
            (o, i)
        })
        .collect()
}

/// The neural renderer: `linear1..linearL`, weights as XHand's state_dict stores them.
#[derive(Clone, Debug)]
pub struct NeuralRenderer {
    layers: Vec<Linear>,
    /// `linear4`'s transposed weight split by what it multiplies: the rows for the hidden
    /// state `[hidden, out]` and for the renderer input `[input, out]` (None for a renderer
    /// too shallow to have `linear4`). Two matmuls replace the concatenation, which candle
    /// copies row by row (a fifth of the MLP's time on the default avatar).
    skip_split: Option<(Tensor, Tensor)>,
    /// The fused CPU path's copy of the weights, made on first use, and its precision.
    fused: FusedCache<FusedRenderer>,
}

impl NeuralRenderer {
    /// Builds from layers `linear1..linearL` (index 0 = `linear1`). Shapes must be valid
    /// (the avatar loader checks them).
    pub fn new(layers: Vec<Linear>) -> Result<Self> {
        let skip_split = match layers.get(RENDERER_SKIP_LAYER - 1) {
            Some(skip) => {
                let hidden = layers[RENDERER_SKIP_LAYER - 2].out_dim();
                let input = layers[0].in_dim();
                let w = skip.weight_t();
                Some((
                    w.narrow(0, 0, hidden)?.contiguous()?,
                    w.narrow(0, hidden, input)?.contiguous()?,
                ))
            }
            None => None,
        };
        Ok(Self {
            layers,
            skip_split,
            fused: FusedCache::default(),
        })
    }

    /// The layers, `linear1` first.
    pub fn layers(&self) -> &[Linear] {
        &self.layers
    }

    /// Renderer input width (271 for XHand).
    pub fn input_dim(&self) -> usize {
        self.layers[0].in_dim()
    }

    /// The widest layer output (256 for XHand, whose hidden layers are all alike); what a
    /// per-pixel buffer of hidden values must hold when the widths are uneven.
    pub fn hidden_dim(&self) -> usize {
        self.layers.iter().map(Linear::out_dim).max().unwrap_or(0)
    }

    /// Multiply-adds per pixel.
    pub fn macs_per_pixel(&self) -> usize {
        self.layers.iter().map(Linear::macs).sum()
    }

    /// The renderer on the fused CPU path ([`FusedRenderer`]), set up on first use.
    pub fn fused(&self) -> Result<&FusedRenderer> {
        self.fused.get_or_make(|p| FusedRenderer::new(self, p))
    }

    /// Chooses the fused CPU path's arithmetic ([`Precision`]); refused where this CPU
    /// cannot run it. The copy for the old precision is dropped.
    pub fn set_precision(&mut self, precision: Precision) -> std::result::Result<(), String> {
        self.fused.set_precision(precision)
    }

    /// The fused CPU path's arithmetic.
    pub fn precision(&self) -> Precision {
        self.fused.precision()
    }

    /// Colours `[rows, 3]` for the row-major inputs `x` `[rows, input]`: on the fused,
    /// cache-blocked path ([`FusedRenderer`]) when `device` is the CPU, else with candle.
    pub fn forward_rows(&self, x: Vec<f32>, rows: usize, device: &Device) -> Result<Vec<f32>> {
        self.forward_rows_shared_tail(x, rows, device, 0)
    }

    /// [`Self::forward_rows`] for rows whose last `shared` inputs are equal (the pose): the
    /// fused CPU path computes their part once ([`FusedRenderer::forward_shared_tail`]).
    pub fn forward_rows_shared_tail(
        &self,
        x: Vec<f32>,
        rows: usize,
        device: &Device,
        shared: usize,
    ) -> Result<Vec<f32>> {
        if device.is_cpu() {
            return Ok(self.fused()?.forward_shared_tail(&x, rows, shared));
        }
        let xt = Tensor::from_vec(x, (rows, self.input_dim()), device)?;
        self.forward(&xt)?.flatten_all()?.to_vec1::<f32>()
    }

    /// `x: [N, input]` → colours `[N, 3]` in (0, 1).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = match &self.skip_split {
                // linear4(cat([h, x])) = h·W_hᵀ + x·W_xᵀ + b
                Some((w_hidden, w_input)) if i + 1 == RENDERER_SKIP_LAYER => {
                    (h.matmul(w_hidden)? + x.matmul(w_input)?)?.broadcast_add(layer.bias())?
                }
                _ => layer.forward(&h)?,
            };
            if i < last {
                h = h.relu()?;
            }
        }
        candle_nn::ops::sigmoid(&h)
    }
}
