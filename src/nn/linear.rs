//! A dense layer with its weight stored transposed for `x · Wᵀ`.

use candle_core::{Result, Tensor};

/// `y = x Wᵀ + b` for row-major batches `x: [N, in]`.
#[derive(Clone, Debug)]
pub struct Linear {
    /// Wᵀ, `[in, out]`, contiguous.
    weight_t: Tensor,
    /// `[out]`.
    bias: Tensor,
}

impl Linear {
    /// Builds from a torch-layout weight `[out, in]` and bias `[out]`.
    pub fn new(weight: Tensor, bias: Tensor) -> Result<Self> {
        Ok(Self {
            weight_t: weight.t()?.contiguous()?,
            bias,
        })
    }

    /// Input width.
    pub fn in_dim(&self) -> usize {
        self.weight_t.dims()[0]
    }

    /// Output width.
    pub fn out_dim(&self) -> usize {
        self.weight_t.dims()[1]
    }

    /// `x · Wᵀ + b`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight_t)?.broadcast_add(&self.bias)
    }

    /// The weight in torch layout `[out, in]`.
    pub fn weight(&self) -> Result<Tensor> {
        self.weight_t.t()?.contiguous()
    }

    /// The transposed weight `[in, out]`.
    pub fn weight_t(&self) -> &Tensor {
        &self.weight_t
    }

    /// The bias `[out]`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// Number of multiply-adds per input row.
    pub fn macs(&self) -> usize {
        self.in_dim() * self.out_dim()
    }
}
