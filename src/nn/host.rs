//! A network's parameters copied to host memory, in plain row-major arrays: what engines
//! other than candle (the wgpu compute nets) upload.

/// One dense layer: `weight` in torch layout `[out][in]`, row-major, and `bias` `[out]`.
#[derive(Clone, Debug)]
pub struct HostLayer {
    pub out_dim: usize,
    pub in_dim: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// A `ConditionNet` in host memory. Layer 0 acts on the latent code only: its pose columns
/// are in `first_pose_t` (`[48][width0]`), applied once per frame and folded into its bias.
#[derive(Clone, Debug)]
pub struct HostNet {
    pub num_vertices: usize,
    pub latent_dim: usize,
    /// Width after the basis mix (3 or 16).
    pub out_dim: usize,
    /// `latent_code` `[V][latent]`.
    pub latent_code: Vec<f32>,
    /// `x_mean` `[V][out]`.
    pub x_mean: Vec<f32>,
    /// `softmax(static_code, 0)` `[code][out]`.
    pub mix: Vec<f32>,
    /// lin0's pose rows, transposed: `[48][width0]`.
    pub first_pose_t: Vec<f32>,
    /// lin0 (latent columns only) then lin1..lin{L-1}.
    pub layers: Vec<HostLayer>,
}

impl HostNet {
    /// lin0's bias plus its pose columns applied to `condition` (`pose / π`), in f64: the
    /// per-frame part that is the same for every vertex.
    pub fn first_bias_for(&self, condition: &[f32]) -> Vec<f32> {
        let l0 = &self.layers[0];
        (0..l0.out_dim)
            .map(|o| {
                let mut acc = l0.bias[o] as f64;
                for (k, c) in condition.iter().enumerate() {
                    acc += *c as f64 * self.first_pose_t[k * l0.out_dim + o] as f64;
                }
                acc as f32
            })
            .collect()
    }

    /// Width of the last layer (the code).
    pub fn code_dim(&self) -> usize {
        self.layers.last().map_or(0, |l| l.out_dim)
    }
}
