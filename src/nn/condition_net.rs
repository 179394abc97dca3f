//! XHand's `ConditionNetwork` (models/mlp.py L252-373): a per-vertex MLP on
//! `[pose / π, latent_code[v]]` whose last layer gives a code that mixes learned basis rows.

use candle_core::{D, Device, Result, Tensor};

use super::fused::{FusedCache, FusedNets, Precision};
use super::{Linear, softplus100};
use crate::POSE_DIM;

/// Layer sizes of one network, for reports (`xhand info`, bench).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetShape {
    /// `[input, hidden..., code]` widths.
    pub dims: Vec<usize>,
    /// Output width after the basis mix (3 for displacement and albedo, 16 for skinning).
    pub out_dim: usize,
    /// Width of the per-vertex latent code appended to the pose.
    pub latent_dim: usize,
}

impl NetShape {
    /// Number of learnable parameters (layers, static code, latent codes, mean excluded).
    pub fn layer_params(&self) -> usize {
        self.dims.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }

    /// Multiply-adds per vertex for one evaluation (layers and basis mix).
    pub fn macs_per_vertex(&self) -> usize {
        let layers: usize = self.dims.windows(2).map(|w| w[0] * w[1]).sum();
        layers + self.dims.last().copied().unwrap_or(0) * self.out_dim
    }
}

/// One embedding network with its per-vertex parameters.
#[derive(Clone, Debug)]
pub struct ConditionNet {
    /// lin0's weight rows acting on the pose, transposed: `[48, width0]`.
    first_pose_t: Tensor,
    /// lin0's weight rows acting on the latent code, transposed: `[latent, width0]`.
    first_latent_t: Tensor,
    first_bias: Tensor,
    /// lin1..lin{L-1}.
    rest: Vec<Linear>,
    /// `[V, latent]`.
    latent_code: Tensor,
    /// `[V, out]`.
    x_mean: Tensor,
    /// softmax(static_code, dim 0): `[code, out]`.
    mix: Tensor,
    shape: NetShape,
}

impl ConditionNet {
    /// Assembles a network from its parts (weights in torch layout `[out, in]`).
    ///
    /// Shapes must already be consistent; the avatar loader checks them and reports
    /// problems with file and tensor names.
    pub fn from_parts(
        layers: Vec<(Tensor, Tensor)>,
        latent_code: &Tensor,
        x_mean: &Tensor,
        static_code: &Tensor,
    ) -> Result<Self> {
        let mut iter = layers.into_iter();
        let Some((w0, b0)) = iter.next() else {
            candle_core::bail!("a condition network needs at least one layer")
        };
        let latent_dim = latent_code.dim(1)?;
        let w0_t = w0.t()?;
        let first_pose_t = w0_t.narrow(0, 0, POSE_DIM)?.contiguous()?;
        let first_latent_t = w0_t.narrow(0, POSE_DIM, latent_dim)?.contiguous()?;
        let rest = iter
            .map(|(w, b)| Linear::new(w, b))
            .collect::<Result<Vec<_>>>()?;
        let mut dims = vec![w0.dim(1)?, w0.dim(0)?];
        dims.extend(rest.iter().map(Linear::out_dim));
        let mix = candle_nn::ops::softmax(static_code, 0)?;
        Ok(Self {
            first_pose_t,
            first_latent_t,
            first_bias: b0,
            rest,
            latent_code: latent_code.clone(),
            x_mean: x_mean.clone(),
            shape: NetShape {
                dims,
                out_dim: x_mean.dim(1)?,
                latent_dim,
            },
            mix,
        })
    }

    /// Layer sizes.
    pub fn shape(&self) -> &NetShape {
        &self.shape
    }

    /// The parameters copied to host memory (for the wgpu nets).
    pub fn to_host(&self) -> Result<super::HostNet> {
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        let mut layers = vec![super::HostLayer {
            out_dim: self.first_latent_t.dim(1)?,
            in_dim: self.first_latent_t.dim(0)?,
            weight: flat(&self.first_latent_t.t()?.contiguous()?)?,
            bias: flat(&self.first_bias)?,
        }];
        for l in &self.rest {
            layers.push(super::HostLayer {
                out_dim: l.out_dim(),
                in_dim: l.in_dim(),
                weight: flat(&l.weight()?)?,
                bias: flat(l.bias())?,
            });
        }
        Ok(super::HostNet {
            num_vertices: self.num_vertices(),
            latent_dim: self.shape.latent_dim,
            out_dim: self.shape.out_dim,
            latent_code: flat(&self.latent_code)?,
            x_mean: flat(&self.x_mean)?,
            mix: flat(&self.mix)?,
            first_pose_t: flat(&self.first_pose_t)?,
            layers,
        })
    }

    /// Number of vertices.
    pub fn num_vertices(&self) -> usize {
        self.latent_code.dims()[0]
    }

    /// The softmax-normalised basis `softmax(static_code, 0)`, `[code, out]`.
    pub fn mix(&self) -> &Tensor {
        &self.mix
    }

    /// Every layer's output before its activation (`lin0_out`, `lin1_out`, ...), for
    /// comparing with XHand's per-layer values.
    pub fn layer_outputs(&self, condition: &Tensor) -> Result<Vec<Tensor>> {
        let pose_part = condition
            .matmul(&self.first_pose_t)?
            .broadcast_add(&self.first_bias)?;
        let mut outs = vec![
            self.latent_code
                .matmul(&self.first_latent_t)?
                .broadcast_add(&pose_part)?,
        ];
        for layer in &self.rest {
            let h = layer.forward(&softplus100(&outs[outs.len() - 1])?)?;
            outs.push(h);
        }
        Ok(outs)
    }

    /// Runs the network for one pose. `condition` is `pose / π`, shape `[1, 48]`.
    /// Returns `(out, code)`: `out = x_mean + code · mix` `[V, out]` and the last layer's
    /// output `code` `[V, code]` — XHand's `forward` return values (mlp.py L371-373).
    pub fn forward(&self, condition: &Tensor) -> Result<(Tensor, Tensor)> {
        self.forward_with(condition, &|t| Ok(t.clone()))
    }

    /// [`Self::forward`] with both operands of every product passed through `operand` first:
    /// how reduced-precision matmuls (TF32 tensor cores round their inputs to a 10-bit
    /// mantissa) are emulated on the CPU to measure their error.
    pub fn forward_with(
        &self,
        condition: &Tensor,
        operand: &dyn Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let mm = |a: &Tensor, b: &Tensor| operand(a)?.matmul(&operand(b)?);
        // lin0 on [condition, latent]: the pose part is the same for every vertex, so it is
        // computed once and broadcast (equal to XHand's concatenation, far cheaper).
        let pose_part = mm(condition, &self.first_pose_t)?.broadcast_add(&self.first_bias)?;
        let mut h = mm(&self.latent_code, &self.first_latent_t)?.broadcast_add(&pose_part)?;
        for layer in &self.rest {
            h = mm(&softplus100(&h)?, layer.weight_t())?.broadcast_add(layer.bias())?;
        }
        let out = self.x_mean.add(&mm(&h, &self.mix)?)?;
        Ok((out, h))
    }
}

/// Per-vertex results of the three embedding networks for one pose (host memory, row-major).
#[derive(Clone, Debug, Default)]
pub struct Embeddings {
    /// Number of vertices.
    pub num_vertices: usize,
    /// Displacement D `[V, 3]` in template space (metres).
    pub delta: Vec<f32>,
    /// `delta_net`'s code `[V, code_delta_dim]`.
    pub code_delta: Vec<f32>,
    /// Albedo (sigmoid) `[V, 3]`, in the avatar's colour order.
    pub albedo: Vec<f32>,
    /// `color_net`'s code `[V, code_albedo_dim]`.
    pub code_albedo: Vec<f32>,
    /// Skinning weights (softmax over joints) `[V, 16]`.
    pub lbs_weights: Vec<f32>,
    pub code_delta_dim: usize,
    pub code_albedo_dim: usize,
}

impl Embeddings {
    /// Bytes of host memory the outputs take (what caching one frame costs).
    pub fn heap_bytes(&self) -> usize {
        4 * (self.delta.len()
            + self.code_delta.len()
            + self.albedo.len()
            + self.code_albedo.len()
            + self.lbs_weights.len())
    }
}

/// The three networks of an avatar: displacement, albedo and skinning weights.
#[derive(Clone, Debug)]
pub struct EmbeddingNets {
    pub delta: ConditionNet,
    pub color: ConditionNet,
    pub lbs: ConditionNet,
    device: Device,
    /// The fused CPU path's copy of the parameters, made on first use, and its precision.
    fused: FusedCache<FusedNets>,
}

/// The candle tensors of one evaluation, before they are copied to host memory.
pub struct EmbeddingTensors {
    pub delta: Tensor,
    pub code_delta: Tensor,
    pub albedo: Tensor,
    pub code_albedo: Tensor,
    pub lbs_weights: Tensor,
}

impl EmbeddingNets {
    /// Bundles three networks living on `device`.
    pub fn new(
        delta: ConditionNet,
        color: ConditionNet,
        lbs: ConditionNet,
        device: Device,
    ) -> Self {
        Self {
            delta,
            color,
            lbs,
            device,
            fused: FusedCache::default(),
        }
    }

    /// The networks on the fused, cache-blocked CPU path ([`FusedNets`]), set up on first use.
    pub fn fused(&self) -> Result<&FusedNets> {
        self.fused.get_or_make(|p| FusedNets::new(self, p))
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

    /// The candle device the networks run on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `pose / π` as a `[1, 48]` tensor (XHand L141-142: raw pose, no `pose_mean`).
    pub fn condition(&self, pose: &[f32; POSE_DIM]) -> Result<Tensor> {
        let cond: Vec<f32> = pose.iter().map(|p| p / std::f32::consts::PI).collect();
        Tensor::from_vec(cond, (1, POSE_DIM), &self.device)
    }

    /// Runs the three networks and applies XHand's heads (raw displacement, sigmoid albedo,
    /// softmax skinning weights), keeping the results on the device.
    pub fn eval_tensors(&self, pose: &[f32; POSE_DIM]) -> Result<EmbeddingTensors> {
        let cond = self.condition(pose)?;
        let (delta, code_delta) = self.delta.forward(&cond)?;
        let (color, code_albedo) = self.color.forward(&cond)?;
        let (lbs, _) = self.lbs.forward(&cond)?;
        Ok(EmbeddingTensors {
            delta,
            code_delta,
            albedo: candle_nn::ops::sigmoid(&color)?,
            code_albedo,
            lbs_weights: candle_nn::ops::softmax(&lbs, D::Minus1)?,
        })
    }

    /// Runs the three networks for one pose, on the fused CPU path when the networks live on
    /// the CPU, else with candle on their device, and copies the results to host memory.
    pub fn eval(&self, pose: &[f32; POSE_DIM]) -> Result<Embeddings> {
        if self.device.is_cpu() {
            return Ok(self.fused()?.eval(pose));
        }
        self.eval_candle(pose)
    }

    /// [`Self::eval`] through candle's ops on the networks' device (the reference the fused
    /// CPU path is checked against). The five outputs are packed into one tensor on the
    /// device and copied to the host once (one transfer instead of five on a GPU).
    pub fn eval_candle(&self, pose: &[f32; POSE_DIM]) -> Result<Embeddings> {
        let t = self.eval_tensors(pose)?;
        let parts = [
            &t.delta,
            &t.code_delta,
            &t.albedo,
            &t.code_albedo,
            &t.lbs_weights,
        ];
        let flat = parts
            .iter()
            .map(|p| p.flatten_all())
            .collect::<Result<Vec<_>>>()?;
        let mut host = Tensor::cat(&flat, 0)?.to_vec1::<f32>()?;
        // Split back, last part first, so each `split_off` leaves the ones before it.
        let mut split = flat
            .iter()
            .rev()
            .map(|p| host.split_off(host.len() - p.elem_count()))
            .collect::<Vec<_>>();
        let mut next = || split.pop().unwrap_or_default();
        Ok(Embeddings {
            num_vertices: self.delta.num_vertices(),
            delta: next(),
            code_delta: next(),
            albedo: next(),
            code_albedo: next(),
            lbs_weights: next(),
            code_delta_dim: t.code_delta.dim(1)?,
            code_albedo_dim: t.code_albedo.dim(1)?,
        })
    }
}
