//! Building a validated [`Avatar`] from a [`TensorFile`].

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use candle_core::{Device, Tensor};

use super::file::{Floats, TensorFile};
use super::{Avatar, AvatarError, ColorOrder, FloatKind, Template};
use crate::hand::Handedness;
use crate::nn::{
    ConditionNet, EmbeddingNets, Linear, NetShape, NeuralRenderer, RENDERER_SKIP_LAYER,
    renderer_input_width,
};
use crate::skeleton::Skeleton;
use crate::{NUM_JOINTS, POSE_DIM, SH_DIM};

/// The three embedding networks: state_dict prefix and output width after the basis mix.
pub const EMBEDDING_NETS: [(&str, usize); 3] =
    [("delta_net", 3), ("color_net", 3), ("lbs_net", NUM_JOINTS)];

/// What `xhand info` reports about an avatar.
#[derive(Clone, Debug)]
pub struct AvatarSummary {
    pub name: String,
    pub description: Option<String>,
    pub hand: Handedness,
    pub color_order: ColorOrder,
    pub vertices: usize,
    pub faces: usize,
    /// `(prefix, shape, weight-normed in the file)` for the three networks.
    pub nets: Vec<(String, NetShape, bool)>,
    /// Renderer layer shapes `(out, in)`, empty when absent.
    pub renderer_layers: Vec<(usize, usize)>,
    pub render_code_width: usize,
    pub sh_views: usize,
    /// Learnable values: networks, codes, renderer, SH.
    pub parameters: usize,
    pub dtypes: BTreeSet<FloatKind>,
    pub file_bytes: usize,
    /// Tensors in the file the loader did not use (like torch's `strict=True` report): a
    /// misspelt layer name shows up here instead of silently dropping the layer.
    pub unused: Vec<String>,
}

/// Tensors an avatar may carry that inference does not read: where `joints` came from.
pub const PROVENANCE_TENSORS: [&str; 2] = ["template_v", "J_regressor"];

impl AvatarSummary {
    /// A one-line warning about unused tensors, if any.
    pub fn unused_warning(&self) -> Option<String> {
        if self.unused.is_empty() {
            return None;
        }
        let shown: Vec<&str> = self.unused.iter().take(6).map(String::as_str).collect();
        let more = self.unused.len().saturating_sub(shown.len());
        let renderer_hint = if self.renderer_layers.is_empty()
            && self.unused.iter().any(|n| n.starts_with("renderer."))
        {
            " — the file has renderer tensors under names the loader does not know, so it shades with SH only"
        } else {
            ""
        };
        Some(format!(
            "{} tensor(s) in the file were not used: {}{}{renderer_hint}",
            self.unused.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ))
    }
}

impl fmt::Display for AvatarSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "name:        {}", self.name)?;
        if let Some(d) = &self.description {
            writeln!(f, "about:       {d}")?;
        }
        writeln!(f, "hand:        {}", self.hand)?;
        writeln!(f, "colours:     {}", self.color_order.as_str())?;
        writeln!(
            f,
            "mesh:        {} vertices, {} faces",
            self.vertices, self.faces
        )?;
        for (name, shape, normed) in &self.nets {
            let dims: Vec<String> = shape.dims.iter().map(usize::to_string).collect();
            writeln!(
                f,
                "{name:<12} {} -> mix -> {} ({} layers{})",
                dims.join("x"),
                shape.out_dim,
                shape.dims.len() - 1,
                if *normed {
                    ", weight norm folded at load"
                } else {
                    ""
                }
            )?;
        }
        if self.renderer_layers.is_empty() {
            writeln!(f, "renderer:    none (SH shading only)")?;
        } else {
            let dims: Vec<String> = self
                .renderer_layers
                .iter()
                .map(|(o, i)| format!("{i}->{o}"))
                .collect();
            writeln!(
                f,
                "renderer:    MLP_res {} (skip at linear{RENDERER_SKIP_LAYER})",
                dims.join(", ")
            )?;
        }
        writeln!(f, "render_code: {}", self.render_code_width)?;
        writeln!(f, "SH views:    {}", self.sh_views)?;
        writeln!(f, "parameters:  {}", self.parameters)?;
        let dt: Vec<String> = self.dtypes.iter().map(|d| d.to_string()).collect();
        writeln!(f, "dtype:       {}", dt.join(", "))?;
        write!(f, "file size:   {:.2} MB", self.file_bytes as f64 / 1e6)?;
        if let Some(w) = self.unused_warning() {
            write!(f, "\nunused:      {w}")?;
        }
        Ok(())
    }
}

struct Ctx<'a> {
    file: &'a TensorFile,
    device: &'a Device,
    dtypes: BTreeSet<FloatKind>,
    parameters: usize,
}

impl Ctx<'_> {
    fn floats(&mut self, name: &str, shape: &[Option<usize>]) -> Result<Floats, AvatarError> {
        let t = self.file.floats(name, shape)?;
        self.dtypes.insert(self.file.float_kind(name)?);
        Ok(t)
    }

    fn learnable(&mut self, name: &str, shape: &[Option<usize>]) -> Result<Floats, AvatarError> {
        let t = self.floats(name, shape)?;
        self.parameters += t.data.len();
        Ok(t)
    }

    fn tensor(&self, t: Floats) -> Result<Tensor, AvatarError> {
        Tensor::from_vec(t.data, t.shape, self.device).map_err(|source| AvatarError::Candle {
            path: self.file.path().to_path_buf(),
            source,
        })
    }

    fn err(&self, tensor: &str, problem: impl Into<String>) -> AvatarError {
        AvatarError::Tensor {
            path: self.file.path().to_path_buf(),
            tensor: tensor.to_string(),
            problem: problem.into(),
        }
    }

    fn meta_err(&self, key: &str, problem: impl Into<String>) -> AvatarError {
        AvatarError::Metadata {
            path: self.file.path().to_path_buf(),
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    /// A layer's weight `[out, in]`: `weight`, or folded from `weight_g`/`weight_v`
    /// (`W = v · g / ‖v‖` per output row, no epsilon). Returns the weight and whether it
    /// was folded.
    fn weight(
        &mut self,
        prefix: &str,
        out: Option<usize>,
        inp: Option<usize>,
    ) -> Result<(Floats, bool), AvatarError> {
        let name = format!("{prefix}.weight");
        if self.file.contains(&name) {
            return Ok((self.learnable(&name, &[out, inp])?, false));
        }
        let g_name = format!("{prefix}.weight_g");
        let v_name = format!("{prefix}.weight_v");
        if !self.file.contains(&g_name) && !self.file.contains(&v_name) {
            return Err(AvatarError::Missing {
                path: self.file.path().to_path_buf(),
                tensor: format!("{name}` (or `{g_name}` + `{v_name}`"),
            });
        }
        let v = self.learnable(&v_name, &[out, inp])?;
        let rows = v.shape[0];
        let g = self.learnable(&g_name, &[Some(rows), Some(1)])?;
        let cols = v.shape[1];
        let mut w = v.data.clone();
        for r in 0..rows {
            let row = &mut w[r * cols..(r + 1) * cols];
            let norm = row.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            if norm == 0.0 || !norm.is_finite() {
                return Err(self.err(
                    &v_name,
                    format!("row {r} has zero norm; weight norm cannot be folded"),
                ));
            }
            let factor = g.data[r] as f64 / norm;
            for x in row.iter_mut() {
                *x = (*x as f64 * factor) as f32;
            }
        }
        Ok((
            Floats {
                shape: v.shape,
                data: w,
            },
            true,
        ))
    }

    /// Counts `{prefix}{i}` layers from `first` on (by their bias or weight tensors).
    fn count_layers(&self, prefix: &str, first: usize) -> usize {
        let mut n = 0;
        while ["bias", "weight", "weight_v", "weight_g"]
            .iter()
            .any(|s| self.file.contains(&format!("{prefix}{}.{s}", first + n)))
        {
            n += 1;
        }
        n
    }
}

/// Builds and validates an avatar from a parsed file.
pub(super) fn from_tensor_file(
    file: &TensorFile,
    device: &Device,
    path: Option<PathBuf>,
) -> Result<Avatar, AvatarError> {
    let mut cx = Ctx {
        file,
        device,
        dtypes: BTreeSet::new(),
        parameters: 0,
    };
    let meta = file.metadata();
    let hand = match meta.get("hand_type") {
        None => Handedness::Right,
        Some(s) => Handedness::parse(s).ok_or_else(|| {
            cx.meta_err("hand_type", format!("is `{s}`; expected `right` or `left`"))
        })?,
    };
    let color_order = match meta.get("color_order").map(|s| s.to_ascii_lowercase()) {
        None => ColorOrder::Rgb,
        Some(s) if s == "rgb" => ColorOrder::Rgb,
        Some(s) if s == "bgr" => ColorOrder::Bgr,
        Some(s) => {
            return Err(cx.meta_err("color_order", format!("is `{s}`; expected `rgb` or `bgr`")));
        }
    };
    let name = meta
        .get("name")
        .cloned()
        .or_else(|| {
            file.path()
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "avatar".into());
    let description = meta.get("description").cloned();

    // Template.
    let verts = cx.floats("verts", &[None, Some(3)])?;
    let num_v = verts.shape[0];
    if num_v < 3 {
        return Err(cx.err(
            "verts",
            format!("has {num_v} vertices; an avatar needs at least 3"),
        ));
    }
    // An empty `faces` is refused by the shape check (no empty dimensions).
    let faces_raw = file.ints("faces", &[None, Some(3)])?;
    let mut faces = Vec::with_capacity(faces_raw.shape[0]);
    for (i, f) in faces_raw.data.chunks_exact(3).enumerate() {
        for &idx in f {
            if idx < 0 || idx >= num_v as i64 {
                return Err(cx.err(
                    "faces",
                    format!("row {i} holds vertex index {idx}; indices must be in 0..{num_v}"),
                ));
            }
        }
        faces.push([f[0] as u32, f[1] as u32, f[2] as u32]);
    }
    let parents_raw = file.ints("parents", &[Some(NUM_JOINTS)])?;
    let parents: [i64; NUM_JOINTS] = std::array::from_fn(|i| parents_raw.data[i]);
    let pose_mean_t = cx.floats("pose_mean", &[Some(POSE_DIM)])?;
    let pose_mean: [f32; POSE_DIM] = std::array::from_fn(|i| pose_mean_t.data[i]);
    let joints = if file.contains("joints") {
        let j = cx.floats("joints", &[Some(NUM_JOINTS), Some(3)])?;
        std::array::from_fn(|i| [j.data[3 * i], j.data[3 * i + 1], j.data[3 * i + 2]])
    } else if file.contains("template_v") || file.contains("J_regressor") {
        let tv = cx.floats("template_v", &[None, Some(3)])?;
        let t = tv.shape[0];
        let jr = cx.floats("J_regressor", &[Some(NUM_JOINTS), Some(t)])?;
        std::array::from_fn(|j| {
            let mut acc = [0.0f64; 3];
            for k in 0..t {
                let w = jr.data[j * t + k] as f64;
                for (a, &x) in acc.iter_mut().zip(&tv.data[3 * k..3 * k + 3]) {
                    *a += w * x as f64;
                }
            }
            [acc[0] as f32, acc[1] as f32, acc[2] as f32]
        })
    } else {
        return Err(AvatarError::Missing {
            path: file.path().to_path_buf(),
            tensor: "joints` (or `template_v` + `J_regressor`".into(),
        });
    };
    let skeleton =
        Skeleton::new(joints, parents, pose_mean).map_err(|e| cx.err("parents", e.to_string()))?;

    // Embedding networks.
    let mut nets = Vec::new();
    let mut net_summaries = Vec::new();
    for (prefix, out_dim) in EMBEDDING_NETS {
        let (net, normed) = load_condition_net(&mut cx, prefix, out_dim, num_v)?;
        net_summaries.push((prefix.to_string(), net.shape().clone(), normed));
        nets.push(net);
    }
    let lbs = nets.pop().expect("three nets");
    let color = nets.pop().expect("three nets");
    let delta = nets.pop().expect("three nets");
    let codes_from_nets = delta.shape().dims.last().copied().unwrap_or(0)
        + color.shape().dims.last().copied().unwrap_or(0);

    // Renderer and its per-vertex code.
    let render_code = if file.contains("render_code") {
        Some(cx.learnable("render_code", &[Some(num_v), None])?)
    } else {
        None
    };
    let n_render_layers = cx.count_layers("renderer.model.linear", 1);
    let mut renderer_layers = Vec::new();
    let renderer = if n_render_layers == 0 {
        None
    } else {
        let Some(rc) = &render_code else {
            return Err(AvatarError::Missing {
                path: file.path().to_path_buf(),
                tensor: "render_code` (the file has a neural renderer, which needs it".into(),
            });
        };
        let input = renderer_input_width(codes_from_nets + rc.shape[1]);
        let mut layers = Vec::new();
        let mut prev_out = input;
        for k in 1..=n_render_layers {
            let prefix = format!("renderer.model.linear{k}");
            let expect_in = if k == RENDERER_SKIP_LAYER {
                prev_out + input
            } else {
                prev_out
            };
            let expect_out = if k == n_render_layers { Some(3) } else { None };
            let (w, _) = cx.weight(&prefix, expect_out, Some(expect_in)).map_err(|e| match e {
                AvatarError::Tensor { path, tensor, problem } if k == 1 => AvatarError::Tensor {
                    path,
                    tensor,
                    problem: format!(
                        "{problem} (the renderer input is PE(x) 87 + SH 3 + normal 3 + albedo 3 + codes {} + PE(ray) 87 + pose 48 = {input})",
                        codes_from_nets + rc.shape[1]
                    ),
                },
                other => other,
            })?;
            let out = w.shape[0];
            let b = cx.learnable(&format!("{prefix}.bias"), &[Some(out)])?;
            renderer_layers.push((out, w.shape[1]));
            let lin = Linear::new(cx.tensor(w)?, cx.tensor(b)?).map_err(|source| {
                AvatarError::Candle {
                    path: file.path().to_path_buf(),
                    source,
                }
            })?;
            layers.push(lin);
            prev_out = out;
        }
        Some(
            NeuralRenderer::new(layers).map_err(|source| AvatarError::Candle {
                path: file.path().to_path_buf(),
                source,
            })?,
        )
    };
    let render_code_host = render_code
        .as_ref()
        .map(|t| t.data.clone())
        .unwrap_or_default();
    let render_code_width = render_code.as_ref().map_or(0, |t| t.shape[1]);
    let render_code = render_code.map(|t| cx.tensor(t)).transpose()?;

    let sh = cx.learnable("sh_coeffs", &[None, Some(SH_DIM)])?;
    let sh_coeffs: Vec<[f32; SH_DIM]> = sh
        .data
        .chunks_exact(SH_DIM)
        .map(|c| std::array::from_fn(|i| c[i]))
        .collect();

    let summary = AvatarSummary {
        name: name.clone(),
        description: description.clone(),
        hand,
        color_order,
        vertices: num_v,
        faces: faces.len(),
        nets: net_summaries,
        renderer_layers,
        render_code_width,
        sh_views: sh_coeffs.len(),
        parameters: cx.parameters,
        dtypes: cx.dtypes.clone(),
        file_bytes: file.len_bytes(),
        unused: file
            .unused()
            .into_iter()
            .filter(|n| !PROVENANCE_TENSORS.contains(&n.as_str()))
            .collect(),
    };
    Ok(Avatar {
        path,
        name,
        description,
        hand,
        color_order,
        template: Template {
            verts: verts
                .data
                .chunks_exact(3)
                .map(|c| [c[0], c[1], c[2]])
                .collect(),
            faces,
            skeleton,
        },
        nets: EmbeddingNets::new(delta, color, lbs, device.clone()),
        render_code,
        render_code_host,
        renderer,
        sh_coeffs,
        summary,
        import_warnings: Vec::new(),
    })
}

fn load_condition_net(
    cx: &mut Ctx<'_>,
    prefix: &str,
    out_dim: usize,
    num_v: usize,
) -> Result<(ConditionNet, bool), AvatarError> {
    let latent = cx.learnable(&format!("{prefix}.latent_code"), &[Some(num_v), None])?;
    let latent_dim = latent.shape[1];
    let n_layers = cx.count_layers(&format!("{prefix}.lin"), 0);
    if n_layers == 0 {
        return Err(AvatarError::Missing {
            path: cx.file.path().to_path_buf(),
            tensor: format!("{prefix}.lin0.weight"),
        });
    }
    let mut layers = Vec::new();
    let mut prev = POSE_DIM + latent_dim;
    let mut normed = false;
    for i in 0..n_layers {
        let lp = format!("{prefix}.lin{i}");
        let (w, folded) = cx.weight(&lp, None, Some(prev)).map_err(|e| match e {
            AvatarError::Tensor {
                path,
                tensor,
                problem,
            } if i == 0 => AvatarError::Tensor {
                path,
                tensor,
                problem: format!("{problem} (input = pose 48 + latent_code width {latent_dim})"),
            },
            other => other,
        })?;
        normed |= folded;
        let out = w.shape[0];
        let b = cx.learnable(&format!("{lp}.bias"), &[Some(out)])?;
        layers.push((cx.tensor(w)?, cx.tensor(b)?));
        prev = out;
    }
    let code_dim = prev;
    let x_mean = cx.floats(&format!("{prefix}.x_mean"), &[Some(num_v), Some(out_dim)])?;
    cx.parameters += x_mean.data.len();
    let static_code = cx
        .learnable(&format!("{prefix}.static_code"), &[Some(code_dim), Some(out_dim)])
        .map_err(|e| match e {
            AvatarError::Tensor { path, tensor, problem } => AvatarError::Tensor {
                path,
                tensor,
                problem: format!("{problem} (rows = the last layer's width {code_dim}, columns = {out_dim} outputs)"),
            },
            other => other,
        })?;
    let latent_t = cx.tensor(latent)?;
    let x_mean_t = cx.tensor(x_mean)?;
    let static_t = cx.tensor(static_code)?;
    let net =
        ConditionNet::from_parts(layers, &latent_t, &x_mean_t, &static_t).map_err(|source| {
            AvatarError::Candle {
                path: cx.file.path().to_path_buf(),
                source,
            }
        })?;
    Ok((net, normed))
}
