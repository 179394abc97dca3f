//! The embedding networks on the CPU, fused and cache-blocked: tiles of vertices go through
//! every layer while their activations stay in cache (two `TILE_ROWS × width` buffers per
//! thread), one GEMM per layer and tile (the `gemm` crate candle itself uses, single-threaded
//! per tile; rayon spreads the tiles over the cores), bias and Softplus in one vectorised pass
//! over each tile (`xhand_simd`), then the head (basis mix by GEMM onto `x_mean`,
//! sigmoid or joint softmax). Nothing of size `V × width` is ever materialised.
//!
//! Same math and values as [`super::ConditionNet::forward`] (the candle path, kept for GPU
//! devices, training and per-layer checks); the tests compare the two.

use rayon::prelude::*;

use super::{EmbeddingNets, Embeddings, HostLayer, HostNet, NeuralRenderer, RENDERER_SKIP_LAYER};
use crate::POSE_DIM;
use xhand_simd::packed::{self, Arith, PackedWeights};
use xhand_simd::{add_bias_rows, bias_relu_rows, bias_softplus_rows, exp_in_place};

/// Vertices (or pixels) per tile: 128 rows of a 512-wide layer are 256 KiB, so a tile's two
/// activation buffers stay in a 1 MiB L2 while the layer's weights stream through (64, 128
/// and 256 measured the same on the dev machine; docs/performance.md).
pub const TILE_ROWS: usize = 128;

/// XHand's output activation of a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// Displacement: the mix as it is.
    Raw,
    /// Albedo: sigmoid.
    Sigmoid,
    /// Skinning weights: softmax over the joints.
    Softmax,
}

/// The arithmetic of the fused CPU path's layer products.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// f32 throughout (the default: XHand's values to within float rounding).
    #[default]
    F32,
    /// Weights and layer inputs rounded to bfloat16, sums in f32 (AVX-512 BF16 CPUs only;
    /// opt-in: about 2⁻⁸ relative error a product, docs/performance.md). Biases, activations,
    /// the basis mix and the heads stay f32.
    Bf16,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        })
    }
}

impl Precision {
    /// Checks that this CPU can run `self`.
    pub fn check_supported(self) -> Result<(), String> {
        match self {
            Self::Bf16 if !Arith::Bf16.supported() => Err(
                "--precision bf16 needs a CPU with AVX-512 BF16 (this one has none): use f32"
                    .to_string(),
            ),
            _ => Ok(()),
        }
    }
}

/// The fused CPU path's copy of a network (made on first use, shared by clones) and the
/// precision it is made in.
pub struct FusedCache<T> {
    cell: std::sync::Arc<std::sync::OnceLock<T>>,
    precision: Precision,
}

impl<T> Default for FusedCache<T> {
    fn default() -> Self {
        Self {
            cell: Default::default(),
            precision: Precision::F32,
        }
    }
}

impl<T> Clone for FusedCache<T> {
    fn clone(&self) -> Self {
        Self {
            cell: self.cell.clone(),
            precision: self.precision,
        }
    }
}

impl<T> std::fmt::Debug for FusedCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let made = if self.cell.get().is_some() {
            "made"
        } else {
            "not made"
        };
        write!(f, "FusedCache({}, {made})", self.precision)
    }
}

impl<T> FusedCache<T> {
    /// The copy, made by `make` in this precision on first use.
    pub fn get_or_make(
        &self,
        make: impl FnOnce(Precision) -> candle_core::Result<T>,
    ) -> candle_core::Result<&T> {
        if let Some(f) = self.cell.get() {
            return Ok(f);
        }
        let f = make(self.precision)?;
        Ok(self.cell.get_or_init(|| f))
    }

    /// Chooses the arithmetic ([`Precision`]); refused where this CPU cannot run it. The
    /// copy made in the old precision is dropped.
    pub fn set_precision(&mut self, precision: Precision) -> Result<(), String> {
        precision.check_supported()?;
        if precision != self.precision {
            *self = Self {
                cell: Default::default(),
                precision,
            };
        }
        Ok(())
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }
}

/// A transposed weight matrix `[k][n]` row-major (the layout `gemm` reads fastest: ~10 %
/// over torch's `[out][in]` here), and its packing for `xhand_simd::packed`'s kernel: in bf16
/// when that precision is chosen, else in f32 where the CPU has AVX-512 (about twice `gemm`'s
/// rate on a layer tile here, which re-packs the weights every call; docs/performance.md);
/// `gemm` runs the rest. The f32 copy also serves the renderer's bias folding.
struct WeightsT {
    k: usize,
    n: usize,
    f32: Vec<f32>,
    packed: Option<PackedWeights>,
}

impl WeightsT {
    fn new(f32: Vec<f32>, k: usize, n: usize, precision: Precision) -> Self {
        let arith = match precision {
            Precision::F32 => Arith::F32,
            Precision::Bf16 => Arith::Bf16,
        };
        let packed = arith
            .supported()
            .then(|| PackedWeights::pack(&f32, k, n, arith));
        Self { k, n, f32, packed }
    }

    /// Rows `from..to` as a matrix of their own.
    fn rows(&self, from: usize, to: usize, precision: Precision) -> Self {
        Self::new(
            self.f32[from * self.n..to * self.n].to_vec(),
            to - from,
            self.n,
            precision,
        )
    }

    /// `dst[rows × n] = lhs[rows × k] · self[..k]` (with `acc`, `dst += …`), `lhs` rows `lda`
    /// apart; `k <= self.k` uses the first `k` rows. `scratch` is the bf16 kernel's.
    #[allow(clippy::too_many_arguments)]
    fn mul(
        &self,
        rows: usize,
        lhs: &[f32],
        lda: usize,
        k: usize,
        dst: &mut [f32],
        acc: bool,
        scratch: &mut Vec<u32>,
    ) {
        assert!(k <= self.k);
        match &self.packed {
            Some(w) => packed::matmul(rows, lhs, lda, k, w, dst, acc, scratch),
            None => matmul_strided(rows, self.n, k, lhs, lda, &self.f32, dst, acc),
        }
    }
}

/// A dense layer with its weight transposed.
struct DenseT {
    in_dim: usize,
    out_dim: usize,
    weight_t: WeightsT,
    bias: Vec<f32>,
}

impl DenseT {
    fn new(l: &HostLayer, precision: Precision) -> Self {
        let (n, k) = (l.out_dim, l.in_dim);
        let mut weight_t = vec![0.0; n * k];
        for o in 0..n {
            for i in 0..k {
                weight_t[i * n + o] = l.weight[o * k + i];
            }
        }
        Self {
            in_dim: k,
            out_dim: n,
            weight_t: WeightsT::new(weight_t, k, n, precision),
            bias: l.bias.clone(),
        }
    }

    /// `dst = lhs · Wᵀ` for a tile of contiguous rows.
    fn mul(&self, rows: usize, lhs: &[f32], dst: &mut [f32], pairs: &mut Vec<u32>) {
        let k = self.in_dim;
        self.weight_t.mul(rows, lhs, k, k, dst, false, pairs);
    }
}

/// `dst[rows × n] = lhs[rows × k] · w_t[k × n]` (with `acc`, `dst += …`), all row-major.
fn matmul(rows: usize, n: usize, k: usize, lhs: &[f32], w_t: &[f32], dst: &mut [f32], acc: bool) {
    matmul_strided(rows, n, k, lhs, k, w_t, dst, acc);
}

/// [`matmul`] with `lhs` rows `lda` values apart (its first `k` columns used).
#[allow(clippy::too_many_arguments)]
fn matmul_strided(
    rows: usize,
    n: usize,
    k: usize,
    lhs: &[f32],
    lda: usize,
    w_t: &[f32],
    dst: &mut [f32],
    acc: bool,
) {
    assert!(k <= lda && w_t.len() >= k * n && dst.len() >= rows * n);
    assert!(rows == 0 || lhs.len() >= (rows - 1) * lda + k);
    if rows == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum (avatar files never have empty widths: the loader refuses them).
        if !acc {
            dst[..rows * n].fill(0.0);
        }
        return;
    }
    // SAFETY: the slices hold the matrices the strides describe (checked above); `dst` does
    // not alias the inputs (it is a `&mut`).
    unsafe {
        gemm::gemm(
            rows,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            acc,
            lhs.as_ptr(),
            1,
            lda as isize,
            w_t.as_ptr(),
            1,
            n as isize,
            if acc { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `x = 1 / (1 + e^-x)`.
fn sigmoid_in_place(xs: &mut [f32]) {
    for x in xs.iter_mut() {
        *x = -*x;
    }
    exp_in_place(xs);
    for x in xs.iter_mut() {
        *x = 1.0 / (1.0 + *x);
    }
}

/// One network ready for the fused CPU path.
pub struct FusedNet {
    /// Per-vertex data, the mix and lin0's pose part (`first_bias_for`).
    host: HostNet,
    /// lin0 (latent columns) then lin1..lin{L-1}.
    layers: Vec<DenseT>,
    head: Head,
}

impl FusedNet {
    pub fn new(mut host: HostNet, head: Head, precision: Precision) -> Self {
        let layers = host
            .layers
            .iter()
            .map(|l| DenseT::new(l, precision))
            .collect();
        // The transposed copies are what runs; only lin0 stays in `host`, for its bias.
        host.layers.truncate(1);
        Self { host, layers, head }
    }

    /// Width of the last layer.
    pub fn code_dim(&self) -> usize {
        self.layers.last().map_or(0, |l| l.out_dim)
    }

    /// Multiply-adds per evaluation (layers and mix, lin0's latent part only).
    pub fn macs(&self) -> usize {
        let per_v: usize = self
            .layers
            .iter()
            .map(|l| l.in_dim * l.out_dim)
            .sum::<usize>()
            + self.code_dim() * self.host.out_dim;
        per_v * self.host.num_vertices
    }

    /// Runs the network for one pose: `(out [V, out] after the head, code [V, code])`.
    pub fn forward(&self, pose: &[f32; POSE_DIM]) -> (Vec<f32>, Vec<f32>) {
        let condition: Vec<f32> = pose.iter().map(|p| p / std::f32::consts::PI).collect();
        let bias0 = self.host.first_bias_for(&condition);
        let v = self.host.num_vertices;
        let (code_dim, out_dim) = (self.code_dim(), self.host.out_dim);
        let mut out = vec![0.0; v * out_dim];
        let mut code = vec![0.0; v * code_dim];
        let widest = self.layers.iter().map(|l| l.out_dim).max().unwrap_or(1);
        code.par_chunks_mut(TILE_ROWS * code_dim.max(1))
            .zip(out.par_chunks_mut(TILE_ROWS * out_dim.max(1)))
            .enumerate()
            .for_each_init(
                || {
                    (
                        vec![0f32; TILE_ROWS * widest],
                        vec![0f32; TILE_ROWS * widest],
                        Vec::new(),
                    )
                },
                |(a, b, pairs), (tile, (code, out))| {
                    self.forward_tile(&bias0, tile * TILE_ROWS, code, out, (a, b), pairs);
                },
            );
        (out, code)
    }

    /// One tile of rows starting at vertex `start`; `code` and `out` are its output rows.
    fn forward_tile(
        &self,
        bias0: &[f32],
        start: usize,
        code: &mut [f32],
        out: &mut [f32],
        (buf_a, buf_b): (&mut [f32], &mut [f32]),
        pairs: &mut Vec<u32>,
    ) {
        let h = &self.host;
        let rows = out.len() / h.out_dim;
        let latent = &h.latent_code[start * h.latent_dim..(start + rows) * h.latent_dim];
        let last = self.layers.len() - 1;
        // The input of layer i: the latent codes, then alternately buf_a and buf_b.
        let (mut src, mut dst) = (buf_a, buf_b);
        for (i, layer) in self.layers.iter().enumerate() {
            let bias = if i == 0 { bias0 } else { &layer.bias };
            let input: &[f32] = if i == 0 { latent } else { &src[..] };
            let n = layer.out_dim;
            if i == last {
                layer.mul(rows, input, code, pairs);
                add_bias_rows(code, bias);
            } else {
                let y = &mut dst[..rows * n];
                layer.mul(rows, input, y, pairs);
                bias_softplus_rows(y, bias);
                std::mem::swap(&mut src, &mut dst);
            }
        }
        // Head: out = x_mean + code · mix, then the activation.
        out.copy_from_slice(&h.x_mean[start * h.out_dim..(start + rows) * h.out_dim]);
        matmul(rows, h.out_dim, self.code_dim(), code, &h.mix, out, true);
        match self.head {
            Head::Raw => {}
            Head::Sigmoid => sigmoid_in_place(out),
            Head::Softmax => {
                for row in out.chunks_exact_mut(h.out_dim) {
                    let top = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    for x in row.iter_mut() {
                        *x -= top;
                    }
                    exp_in_place(row);
                    let sum: f32 = row.iter().sum();
                    for x in row.iter_mut() {
                        *x /= sum;
                    }
                }
            }
        }
    }
}

/// The three networks on the fused CPU path.
pub struct FusedNets {
    pub delta: FusedNet,
    pub color: FusedNet,
    pub lbs: FusedNet,
}

impl std::fmt::Debug for FusedNets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FusedNets({} vertices)", self.delta.host.num_vertices)
    }
}

impl FusedNets {
    /// Copies the networks' parameters to host memory in the layout the fused path uses.
    pub fn new(nets: &EmbeddingNets, precision: Precision) -> candle_core::Result<Self> {
        Ok(Self {
            delta: FusedNet::new(nets.delta.to_host()?, Head::Raw, precision),
            color: FusedNet::new(nets.color.to_host()?, Head::Sigmoid, precision),
            lbs: FusedNet::new(nets.lbs.to_host()?, Head::Softmax, precision),
        })
    }

    /// The three networks in order: delta, colour, skinning.
    pub fn each(&self) -> [&FusedNet; 3] {
        [&self.delta, &self.color, &self.lbs]
    }

    /// Runs the three networks for one pose.
    pub fn eval(&self, pose: &[f32; POSE_DIM]) -> Embeddings {
        let (delta, code_delta) = self.delta.forward(pose);
        let (albedo, code_albedo) = self.color.forward(pose);
        let (lbs_weights, _) = self.lbs.forward(pose);
        Embeddings {
            num_vertices: self.delta.host.num_vertices,
            delta,
            code_delta,
            albedo,
            code_albedo,
            lbs_weights,
            code_delta_dim: self.delta.code_dim(),
            code_albedo_dim: self.color.code_dim(),
        }
    }
}

/// XHand's neural renderer on the fused CPU path: tiles of pixels through all eight layers
/// (bias + ReLU in one pass, the skip layer as two products into one output), then the
/// sigmoid.
pub struct FusedRenderer {
    /// `linear1..linearL`.
    layers: Vec<DenseT>,
    /// The skip layer's weight split by what it multiplies: the hidden state's rows, then
    /// the renderer input's (None for a renderer too shallow to have it).
    skip_split: Option<(WeightsT, WeightsT)>,
    input: usize,
}

impl std::fmt::Debug for FusedRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FusedRenderer({} layers)", self.layers.len())
    }
}

impl FusedRenderer {
    pub fn new(renderer: &NeuralRenderer, precision: Precision) -> candle_core::Result<Self> {
        let flat = |t: &candle_core::Tensor| t.flatten_all()?.to_vec1::<f32>();
        let layers = renderer
            .layers()
            .iter()
            .map(|l| {
                let host = HostLayer {
                    out_dim: l.out_dim(),
                    in_dim: l.in_dim(),
                    weight: flat(&l.weight()?)?,
                    bias: flat(l.bias())?,
                };
                Ok(DenseT::new(&host, precision))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let input = renderer.input_dim();
        let skip_split = layers.get(RENDERER_SKIP_LAYER - 1).map(|l| {
            let hidden = l.in_dim - input;
            (
                l.weight_t.rows(0, hidden, precision),
                l.weight_t.rows(hidden, l.in_dim, precision),
            )
        });
        Ok(Self {
            layers,
            skip_split,
            input,
        })
    }

    /// `x: [rows, input]` row-major → colours `[rows, 3]` in (0, 1).
    pub fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        self.forward_shared_tail(x, rows, 0)
    }

    /// [`Self::forward`] for inputs whose last `shared` columns are the same in every row
    /// (XHand's pose, 48 of the 271): their part of the two layers that read the input is
    /// computed once, from row 0, and added to those layers' biases.
    pub fn forward_shared_tail(&self, x: &[f32], rows: usize, shared: usize) -> Vec<f32> {
        let inp = self.input;
        let kept = inp - shared.min(inp);
        let tail = if rows == 0 { &[][..] } else { &x[kept..inp] };
        self.forward_filled(rows, tail, |row, out| {
            out.copy_from_slice(&x[row * inp..row * inp + kept])
        })
    }

    /// Colours `[rows, 3]` for rows whose inputs end with `tail` (the same in every row,
    /// folded into the biases as in [`Self::forward_shared_tail`]) and start with what
    /// `fill(row, out)` writes into `out` (the other `input - tail.len()` values). Each tile
    /// fills its rows just before they go through the layers, so no `rows × input` matrix is
    /// ever built.
    pub fn forward_filled(
        &self,
        rows: usize,
        tail: &[f32],
        fill: impl Fn(usize, &mut [f32]) + Sync,
    ) -> Vec<f32> {
        let out_dim = self.layers.last().map_or(0, |l| l.out_dim);
        let mut out = vec![0.0; rows * out_dim];
        if rows == 0 || out_dim == 0 {
            return out;
        }
        let widest = self.layers.iter().map(|l| l.out_dim).max().unwrap_or(1);
        let inp = self.input;
        let tail = &tail[..tail.len().min(inp)];
        let kept = inp - tail.len();
        // Bias plus the shared columns' contribution, for the layers reading the input:
        // `tail · Wᵀ[rows from, from + shared]`.
        let folded = |l: &DenseT, from: usize| -> Vec<f32> {
            let n = l.out_dim;
            let mut b = l.bias.clone();
            for (j, &t) in tail.iter().enumerate() {
                let w = &l.weight_t.f32[(from + j) * n..(from + j + 1) * n];
                b.iter_mut().zip(w).for_each(|(b, w)| *b += t * w);
            }
            b
        };
        let biases: Vec<Vec<f32>> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| match i {
                0 => folded(l, kept),
                _ if i + 1 == RENDERER_SKIP_LAYER => folded(l, l.in_dim - inp + kept),
                _ => l.bias.clone(),
            })
            .collect();
        out.par_chunks_mut(TILE_ROWS * out_dim)
            .enumerate()
            .for_each_init(
                || {
                    (
                        vec![0f32; TILE_ROWS * kept],
                        vec![0f32; TILE_ROWS * widest],
                        vec![0f32; TILE_ROWS * widest],
                        Vec::new(),
                    )
                },
                |(xin, a, b, pairs), (tile, out)| {
                    let r = out.len() / out_dim;
                    let start = tile * TILE_ROWS;
                    let xin = &mut xin[..r * kept];
                    for (j, row) in xin.chunks_exact_mut(kept.max(1)).enumerate() {
                        fill(start + j, row);
                    }
                    let xin = &xin[..];
                    let last = self.layers.len() - 1;
                    let (mut src, mut dst) = (&mut a[..], &mut b[..]);
                    for (i, l) in self.layers.iter().enumerate() {
                        let input: &[f32] = if i == 0 { xin } else { &src[..] };
                        let n = l.out_dim;
                        let y: &mut [f32] = if i == last {
                            &mut *out
                        } else {
                            &mut dst[..r * n]
                        };
                        match &self.skip_split {
                            Some((w_h, w_x)) if i + 1 == RENDERER_SKIP_LAYER => {
                                // linear4(cat([h, x])) = h·W_hᵀ + x·W_xᵀ (+ b below; the
                                // shared columns are folded into it).
                                w_h.mul(r, input, w_h.k, w_h.k, y, false, pairs);
                                w_x.mul(r, xin, kept, kept, y, true, pairs);
                            }
                            _ if i == 0 => l.weight_t.mul(r, xin, kept, kept, y, false, pairs),
                            _ => l.mul(r, input, y, pairs),
                        }
                        if i == last {
                            add_bias_rows(y, &biases[i]);
                            sigmoid_in_place(y);
                        } else {
                            bias_relu_rows(y, &biases[i]);
                            std::mem::swap(&mut src, &mut dst);
                        }
                    }
                },
            );
        out
    }
}
