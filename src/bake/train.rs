//! Trainable copies of XHand's networks (candle `Var`s) and their optimisation with AdamW.
//! The forward passes are the inference modules themselves ([`ConditionNet`],
//! [`NeuralRenderer`]) built from the variables, so training and viewing share one
//! implementation.

use candle_core::{D, DType, Device, Result, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{Rng, rngs::StdRng};
use rand_distr::StandardNormal;

use crate::POSE_DIM;
use crate::avatar::write::{FloatStorage, TensorWriter};
use crate::nn::{ConditionNet, Linear, NeuralRenderer, renderer_layer_shapes};

/// Per-vertex latent width and code width (XHand's `d_latent` and `d_k`).
pub const LATENT_DIM: usize = 10;
pub const CODE_DIM: usize = 10;

fn randn(rng: &mut StdRng, n: usize, std: f32) -> Vec<f32> {
    (0..n)
        .map(|_| std * rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// One ConditionNetwork's learnable parameters; `x_mean` is fixed, as in XHand.
///
/// Training runs in units where the outputs are of order one (millimetres for the
/// displacement): the net's output is linear in its last layer, so the file gets the last
/// layer and `x_mean` multiplied by `out_scale` and computes exactly the trained function
/// in the file's units (metres). Adam's step size is not scale-aware, hence the rescale.
pub struct NetVars {
    layers: Vec<(Var, Var)>,
    latent: Var,
    static_code: Var,
    x_mean: Tensor,
    out_scale: f64,
}

impl NetVars {
    /// Kaiming-initialised layers `[48 + 10] → width × depth → 10`, the given initial
    /// latent codes `[V, 10]`, the last layer scaled by `last_scale` so training starts near `x_mean` (given in
    /// training units; the file's units are training units × `out_scale`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rng: &mut StdRng,
        (width, depth): (usize, usize),
        x_mean: Vec<f32>,
        out_dim: usize,
        last_scale: f32,
        out_scale: f64,
        latent: &[f32],
        device: &Device,
    ) -> Result<Self> {
        let v = x_mean.len() / out_dim;
        let mut dims = vec![POSE_DIM + LATENT_DIM];
        dims.extend(std::iter::repeat_n(width, depth));
        dims.push(CODE_DIM);
        let mut layers = Vec::new();
        for (l, pair) in dims.windows(2).enumerate() {
            let (i, o) = (pair[0], pair[1]);
            let s = if l + 2 == dims.len() { last_scale } else { 1.0 };
            let w = Tensor::from_vec(
                randn(rng, o * i, s * (2.0 / i as f32).sqrt()),
                (o, i),
                device,
            )?;
            let b = Tensor::zeros(o, DType::F32, device)?;
            layers.push((Var::from_tensor(&w)?, Var::from_tensor(&b)?));
        }
        let latent = Tensor::from_vec(latent.to_vec(), (v, LATENT_DIM), device)?;
        let static_code = Tensor::from_vec(
            randn(rng, CODE_DIM * out_dim, 1.0),
            (CODE_DIM, out_dim),
            device,
        )?;
        Ok(Self {
            layers,
            latent: Var::from_tensor(&latent)?,
            static_code: Var::from_tensor(&static_code)?,
            x_mean: Tensor::from_vec(x_mean, (v, out_dim), device)?,
            out_scale,
        })
    }

    /// The variables AdamW updates: the layers, and the per-vertex latent codes with the
    /// static code. Each latent row is only in a small share of the batches, so it gets a
    /// larger learning rate (`latent_lr_factor` times `lr`).
    pub fn param_groups(&self, lr: f64, latent_lr_factor: f64) -> Vec<(Vec<Var>, f64)> {
        let layers: Vec<Var> = self
            .layers
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect();
        vec![
            (layers, lr),
            (
                vec![self.latent.clone(), self.static_code.clone()],
                lr * latent_lr_factor,
            ),
        ]
    }

    /// The network restricted to the vertices `idx` (U32 `[N]`), or all of them.
    pub fn net(&self, idx: Option<&Tensor>) -> Result<ConditionNet> {
        let layers = self
            .layers
            .iter()
            .map(|(w, b)| (w.as_tensor().clone(), b.as_tensor().clone()))
            .collect();
        let (latent, x_mean) = match idx {
            Some(i) => (
                self.latent.index_select(i, 0)?,
                self.x_mean.index_select(i, 0)?,
            ),
            None => (self.latent.as_tensor().clone(), self.x_mean.clone()),
        };
        ConditionNet::from_parts(layers, &latent, &x_mean, self.static_code.as_tensor())
    }

    /// Writes XHand's state_dict entries under `prefix`.
    pub fn write(&self, w: &mut TensorWriter, prefix: &str, storage: FloatStorage) -> Result<()> {
        let put = |w: &mut TensorWriter, name: String, t: &Tensor, st| -> Result<()> {
            let data = t.flatten_all()?.to_vec1::<f32>()?;
            w.floats(&name, t.dims(), &data, st);
            Ok(())
        };
        let last = self.layers.len().saturating_sub(1);
        for (l, (wt, b)) in self.layers.iter().enumerate() {
            // A rescaled last layer holds tiny values (1e-6 for the displacement) that F16
            // would store as subnormals: it stays F32 (a few hundred numbers).
            let (s, st) = if l == last && self.out_scale != 1.0 {
                (self.out_scale, FloatStorage::F32)
            } else {
                (1.0, storage)
            };
            let weight = wt.as_tensor().affine(s, 0.0)?;
            put(w, format!("{prefix}.lin{l}.weight"), &weight, st)?;
            put(
                w,
                format!("{prefix}.lin{l}.bias"),
                &b.as_tensor().affine(s, 0.0)?,
                st,
            )?;
        }
        let latent = self.latent.as_tensor();
        put(w, format!("{prefix}.latent_code"), latent, storage)?;
        let static_code = self.static_code.as_tensor();
        put(w, format!("{prefix}.static_code"), static_code, storage)?;
        let x_mean = self.x_mean.affine(self.out_scale, 0.0)?;
        put(w, format!("{prefix}.x_mean"), &x_mean, storage)?;
        Ok(())
    }
}

/// The neural renderer's learnable parameters (`linear1..linear8`).
pub struct RendererVars {
    layers: Vec<(Var, Var)>,
}

impl RendererVars {
    /// torch.nn.Linear's default initialisation, `U(−1/√in, 1/√in)`.
    pub fn new(rng: &mut StdRng, input: usize, hidden: usize, device: &Device) -> Result<Self> {
        let mut layers = Vec::new();
        for (o, i) in renderer_layer_shapes(input, hidden) {
            let bound = 1.0 / (i as f32).sqrt();
            let w: Vec<f32> = (0..o * i)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            let b: Vec<f32> = (0..o).map(|_| rng.random_range(-bound..bound)).collect();
            layers.push((
                Var::from_tensor(&Tensor::from_vec(w, (o, i), device)?)?,
                Var::from_tensor(&Tensor::from_vec(b, o, device)?)?,
            ));
        }
        Ok(Self { layers })
    }

    pub fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect()
    }

    pub fn renderer(&self) -> Result<NeuralRenderer> {
        let layers = self
            .layers
            .iter()
            .map(|(w, b)| Linear::new(w.as_tensor().clone(), b.as_tensor().clone()))
            .collect::<Result<Vec<_>>>()?;
        NeuralRenderer::new(layers)
    }

    pub fn write(&self, w: &mut TensorWriter, storage: FloatStorage) -> Result<()> {
        for (k, (wt, b)) in self.layers.iter().enumerate() {
            for (name, t) in [("weight", wt), ("bias", b)] {
                let data = t.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                w.floats(
                    &format!("renderer.model.linear{}.{name}", k + 1),
                    t.as_tensor().dims(),
                    &data,
                    storage,
                );
            }
        }
        Ok(())
    }
}

/// AdamW on groups of variables with their own learning rates, each decayed by a cosine
/// from `lr` to `lr / 20` over `steps`.
pub struct Schedule {
    groups: Vec<(AdamW, f64)>,
    steps: usize,
}

impl Schedule {
    pub fn new(groups: Vec<(Vec<Var>, f64)>, steps: usize) -> Result<Self> {
        let groups = groups
            .into_iter()
            .map(|(vars, lr)| {
                let params = ParamsAdamW {
                    lr,
                    weight_decay: 0.0,
                    ..Default::default()
                };
                Ok((AdamW::new(vars, params)?, lr))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { groups, steps })
    }

    /// One optimisation step at `step` (0-based).
    pub fn step(&mut self, loss: &Tensor, step: usize) -> Result<()> {
        let t = step as f64 / self.steps.max(1) as f64;
        let factor = 0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
        let grads = loss.backward()?;
        for (opt, lr) in &mut self.groups {
            opt.set_learning_rate(*lr * factor);
            opt.step(&grads)?;
        }
        Ok(())
    }
}

/// Initial per-vertex latent codes `[V, 10]` that describe each vertex: its scores on the
/// first seven principal components of how the displacement responds to the poses
/// (`response`, `[V, poses]`, mm), scaled to unit RMS over the vertices, and its rest
/// normal. Random codes would have to discover this from a few visits per vertex; these let
/// the networks start from it.
pub fn descriptor_latents(response: &[f32], poses: usize, normals: &[[f32; 3]]) -> Vec<f32> {
    use nalgebra::DMatrix;
    const COMPONENTS: usize = LATENT_DIM - 3;
    let v = normals.len();
    let centred: Vec<f32> = response
        .chunks_exact(poses)
        .flat_map(|r| {
            let m = r.iter().sum::<f32>() / poses as f32;
            r.iter().map(move |x| x - m)
        })
        .collect();
    let mut cov = DMatrix::<f64>::zeros(poses, poses);
    for r in centred.chunks_exact(poses) {
        for a in 0..poses {
            for b in 0..poses {
                cov[(a, b)] += r[a] as f64 * r[b] as f64;
            }
        }
    }
    let eig = nalgebra::SymmetricEigen::new(cov);
    let mut order: Vec<usize> = (0..poses).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let mut out = vec![0.0f32; v * LATENT_DIM];
    let largest = order.first().map_or(0.0, |&c| eig.eigenvalues[c]);
    for (k, &c) in order.iter().take(COMPONENTS).enumerate() {
        // Components at the noise level (the response has fewer dimensions) stay zero.
        if !(eig.eigenvalues[c] > 1e-9 * largest && largest > 0.0) {
            continue;
        }
        let std = (eig.eigenvalues[c] / v.max(1) as f64).sqrt();
        for (i, r) in centred.chunks_exact(poses).enumerate() {
            let proj: f64 = (0..poses)
                .map(|p| r[p] as f64 * eig.eigenvectors[(p, c)])
                .sum();
            out[i * LATENT_DIM + k] = (proj / std) as f32;
        }
    }
    for (i, n) in normals.iter().enumerate() {
        out[i * LATENT_DIM + COMPONENTS..(i + 1) * LATENT_DIM].copy_from_slice(n);
    }
    out
}

/// Mean squared error.
pub fn mse(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.sub(b)?.sqr()?.mean_all()
}

/// Softmax over the last dimension (skinning weights from logits).
pub fn softmax_last(t: &Tensor) -> Result<Tensor> {
    candle_nn::ops::softmax(t, D::Minus1)
}
