//! The avatar file (safetensors, XHand's state_dict names plus the template), its
//! validation and the in-memory [`Avatar`].
//!
//! Everything is checked before use — tensor presence, dtypes, shapes against each other,
//! finiteness, face indices, the joint tree — and every problem is an [`AvatarError`] that
//! names the file and the tensor.

mod file;
mod load;
pub mod write;

use std::path::{Path, PathBuf};

pub use file::{FloatKind, MAX_AVATAR_BYTES, TensorFile, shape_pattern};
pub use load::{AvatarSummary, PROVENANCE_TENSORS};

use candle_core::{Device, Tensor};

use crate::hand::Handedness;
use crate::nn::{EmbeddingNets, NeuralRenderer, Precision};
use crate::skeleton::Skeleton;
use crate::{POSE_DIM, SH_DIM};

/// Value of the `format` metadata key our writer sets.
pub const FORMAT_TAG: &str = "xhand-avatar";

/// A problem with an avatar file.
#[derive(Debug, thiserror::Error)]
pub enum AvatarError {
    #[error("{}: {problem}", path.display())]
    File { path: PathBuf, problem: String },
    #[error("{}: required tensor `{tensor}` is missing", path.display())]
    Missing { path: PathBuf, tensor: String },
    #[error("{}: tensor `{tensor}` {problem}", path.display())]
    Tensor {
        path: PathBuf,
        tensor: String,
        problem: String,
    },
    #[error("{}: metadata `{key}` {problem}", path.display())]
    Metadata {
        path: PathBuf,
        key: String,
        problem: String,
    },
    #[error(
        "{}: this is a PyTorch checkpoint; it needs the MANO model file the avatar was trained with (pass --mano MANO_RIGHT.pkl, or MANO_LEFT.pkl for a left hand)",
        path.display()
    )]
    NeedsMano { path: PathBuf },
    #[error("{}: could not set up the networks on the compute device: {source}", path.display())]
    Candle {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
}

/// Channel order of an avatar's colours (XHand trained on OpenCV BGR images).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorOrder {
    #[default]
    Rgb,
    Bgr,
}

impl ColorOrder {
    /// Converts a colour in this order to RGB (and back: the swap is its own inverse).
    pub fn to_rgb(self, c: [f32; 3]) -> [f32; 3] {
        match self {
            Self::Rgb => c,
            Self::Bgr => [c[2], c[1], c[0]],
        }
    }

    /// An SH lighting vector written in this order (channel-major, one block of bands per
    /// channel), in `to`'s order: the first and last channel blocks swap when the orders
    /// differ (a light that is red for one avatar is red for the other).
    pub fn sh_to(self, to: ColorOrder, sh: [f32; SH_DIM]) -> [f32; SH_DIM] {
        if self == to {
            return sh;
        }
        let bands = SH_DIM / 3;
        let mut out = sh;
        out[..bands].copy_from_slice(&sh[2 * bands..]);
        out[2 * bands..].copy_from_slice(&sh[..bands]);
        out
    }

    /// Lower-case name as stored in metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rgb => "rgb",
            Self::Bgr => "bgr",
        }
    }
}

/// The mesh and skeleton an avatar is built on.
#[derive(Clone, Debug)]
pub struct Template {
    /// Subdivided rest vertices `[V, 3]`.
    pub verts: Vec<[f32; 3]>,
    /// Triangles `[F, 3]`, indices `< V`.
    pub faces: Vec<[u32; 3]>,
    /// Rest skeleton (joints, parents, `pose_mean`).
    pub skeleton: Skeleton,
}

/// A loaded, validated avatar ready to evaluate.
#[derive(Clone, Debug)]
pub struct Avatar {
    /// Where it came from (`None` for built-in or generated avatars).
    pub path: Option<PathBuf>,
    /// Free-text name from metadata (file stem when absent).
    pub name: String,
    /// Free-text description from metadata (`description`).
    pub description: Option<String>,
    /// The hand the avatar was built for.
    pub hand: Handedness,
    /// Colour order of albedo, SH and renderer output.
    pub color_order: ColorOrder,
    pub template: Template,
    pub nets: EmbeddingNets,
    /// Per-vertex renderer code `[V, width]` (XHand's `render_code`), if present.
    pub render_code: Option<Tensor>,
    /// Host copy of `render_code`, row-major.
    pub render_code_host: Vec<f32>,
    /// The neural renderer (`renderer.model.linear*`), if present.
    pub renderer: Option<NeuralRenderer>,
    /// One SH row per training view `[C, 27]`.
    pub sh_coeffs: Vec<[f32; SH_DIM]>,
    /// Summary for `xhand info` and the viewer.
    pub summary: AvatarSummary,
    /// Notes from importing a checkpoint (empty for avatar files).
    pub import_warnings: Vec<String>,
}

impl Avatar {
    /// Loads and validates an avatar file, building its networks on `device`. A PyTorch
    /// checkpoint is refused with a message asking for its MANO file (see [`Self::open`]).
    pub fn load(path: &Path, device: &Device) -> Result<Self, AvatarError> {
        Self::open(path, None, device)
    }

    /// Loads an avatar file, or imports an XHand checkpoint (`model.pth`) in memory with the
    /// MANO model file `mano` (what `xhand import` would write, without writing it).
    pub fn open(path: &Path, mano: Option<&Path>, device: &Device) -> Result<Self, AvatarError> {
        if !crate::torch::is_checkpoint(path) {
            let file = TensorFile::open(path)?;
            return load::from_tensor_file(&file, device, Some(path.to_path_buf()));
        }
        let Some(mano) = mano else {
            return Err(AvatarError::NeedsMano {
                path: path.to_path_buf(),
            });
        };
        let imported = crate::torch::import(path, mano).map_err(|e| AvatarError::File {
            path: e.path,
            problem: e.problem,
        })?;
        let bytes = imported.writer.to_bytes().map_err(|e| AvatarError::File {
            path: path.to_path_buf(),
            problem: format!("could not assemble the imported avatar: {e}"),
        })?;
        let file = TensorFile::from_bytes(path, bytes)?;
        let mut avatar = load::from_tensor_file(&file, device, Some(path.to_path_buf()))?;
        avatar.import_warnings = imported.report.warnings;
        Ok(avatar)
    }

    /// Loads an avatar from an in-memory safetensors buffer (the embedded default avatar);
    /// `label` names it in errors.
    pub fn from_bytes(label: &str, bytes: Vec<u8>, device: &Device) -> Result<Self, AvatarError> {
        let file = TensorFile::from_bytes(Path::new(label), bytes)?;
        load::from_tensor_file(&file, device, None)
    }

    /// Chooses the arithmetic of the fused CPU networks and renderer ([`Precision`]);
    /// refused (nothing changed) where this CPU cannot run it.
    pub fn set_precision(&mut self, precision: Precision) -> Result<(), String> {
        precision.check_supported()?;
        self.nets.set_precision(precision)?;
        if let Some(r) = &mut self.renderer {
            r.set_precision(precision)?;
        }
        Ok(())
    }

    /// Number of template vertices.
    pub fn num_vertices(&self) -> usize {
        self.template.verts.len()
    }

    /// Number of template faces.
    pub fn num_faces(&self) -> usize {
        self.template.faces.len()
    }

    /// Total width of the interpolated codes fed to the renderer
    /// (`code_delta + code_albedo + render_code`).
    pub fn code_width(&self) -> usize {
        self.nets.delta.shape().dims.last().copied().unwrap_or(0)
            + self.nets.color.shape().dims.last().copied().unwrap_or(0)
            + self.render_code_width()
    }

    /// Width of `render_code` (0 when absent).
    pub fn render_code_width(&self) -> usize {
        self.render_code.as_ref().map_or(0, |t| t.dims()[1])
    }

    /// SH row `view`, clamped to the available rows.
    pub fn sh_row(&self, view: usize) -> [f32; SH_DIM] {
        self.sh_coeffs[view.min(self.sh_coeffs.len() - 1)]
    }

    /// The zero pose (the avatar's `pose_mean` hand).
    pub fn rest_pose(&self) -> [f32; POSE_DIM] {
        [0.0; POSE_DIM]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_in_the_other_colour_order_swaps_the_first_and_last_channels() {
        let sh: [f32; SH_DIM] = std::array::from_fn(|i| i as f32);
        assert_eq!(ColorOrder::Rgb.sh_to(ColorOrder::Rgb, sh), sh);
        let bgr = ColorOrder::Rgb.sh_to(ColorOrder::Bgr, sh);
        let bands = SH_DIM / 3;
        assert_eq!(bgr[..bands], sh[2 * bands..]);
        assert_eq!(bgr[bands..2 * bands], sh[bands..2 * bands]);
        assert_eq!(bgr[2 * bands..], sh[..bands]);
        assert_eq!(ColorOrder::Bgr.sh_to(ColorOrder::Rgb, bgr), sh);
    }
}
