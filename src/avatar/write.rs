//! Writing safetensors files: avatars (generated, baked or converted) and `xhand eval`
//! outputs.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use half::f16;
use safetensors::{Dtype, tensor::TensorView};

use crate::skeleton::MANO_PARENTS;
use crate::{NUM_JOINTS, POSE_DIM};

/// Element storage for floats when writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatStorage {
    F32,
    F16,
}

/// Collects named tensors and metadata, then writes one safetensors file.
#[derive(Default)]
pub struct TensorWriter {
    tensors: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>,
    metadata: HashMap<String, String>,
}

impl TensorWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a float tensor stored as `storage`.
    pub fn floats(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
        storage: FloatStorage,
    ) -> &mut Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len(), "{name}");
        let (dtype, bytes) = match storage {
            FloatStorage::F32 => (
                Dtype::F32,
                data.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            FloatStorage::F16 => (
                Dtype::F16,
                data.iter()
                    .flat_map(|x| f16::from_f32(*x).to_le_bytes())
                    .collect(),
            ),
        };
        self.tensors
            .insert(name.to_string(), (dtype, shape.to_vec(), bytes));
        self
    }

    /// Adds an f32 tensor.
    pub fn f32(&mut self, name: &str, shape: &[usize], data: &[f32]) -> &mut Self {
        self.floats(name, shape, data, FloatStorage::F32)
    }

    /// Adds an i32 tensor.
    pub fn i32(&mut self, name: &str, shape: &[usize], data: &[i32]) -> &mut Self {
        let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensors
            .insert(name.to_string(), (Dtype::I32, shape.to_vec(), bytes));
        self
    }

    /// Adds an i64 tensor.
    pub fn i64(&mut self, name: &str, shape: &[usize], data: &[i64]) -> &mut Self {
        let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensors
            .insert(name.to_string(), (Dtype::I64, shape.to_vec(), bytes));
        self
    }

    /// Adds a tensor from raw little-endian bytes of `dtype` (copied bit for bit).
    pub fn raw(&mut self, name: &str, dtype: Dtype, shape: &[usize], bytes: &[u8]) -> &mut Self {
        self.tensors
            .insert(name.to_string(), (dtype, shape.to_vec(), bytes.to_vec()));
        self
    }

    /// Removes a tensor (no-op when absent).
    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.tensors.remove(name);
        self
    }

    /// Names of the tensors added so far.
    pub fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    /// Adds the template an avatar is built on: `verts`, `faces` (I32), MANO's `parents`,
    /// `joints` and `pose_mean`.
    pub fn template(
        &mut self,
        verts: &[[f32; 3]],
        faces: &[[u32; 3]],
        joints: &[[f32; 3]; NUM_JOINTS],
        pose_mean: &[f32; POSE_DIM],
    ) -> &mut Self {
        let flat: Vec<f32> = verts.iter().flatten().copied().collect();
        self.f32("verts", &[verts.len(), 3], &flat);
        let flat: Vec<i32> = faces.iter().flatten().map(|&i| i as i32).collect();
        self.i32("faces", &[faces.len(), 3], &flat);
        self.i64("parents", &[NUM_JOINTS], &MANO_PARENTS);
        let flat: Vec<f32> = joints.iter().flatten().copied().collect();
        self.f32("joints", &[NUM_JOINTS, 3], &flat);
        self.f32("pose_mean", &[POSE_DIM], pose_mean)
    }

    /// Sets a `__metadata__` entry.
    pub fn meta(&mut self, key: &str, value: &str) -> &mut Self {
        self.metadata.insert(key.to_string(), value.to_string());
        self
    }

    /// Serialises to bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, safetensors::SafeTensorError> {
        let views: Vec<(String, TensorView<'_>)> = self
            .tensors
            .iter()
            .map(|(name, (dtype, shape, bytes))| {
                TensorView::new(*dtype, shape.clone(), bytes).map(|v| (name.clone(), v))
            })
            .collect::<Result<_, _>>()?;
        let meta = (!self.metadata.is_empty()).then(|| self.metadata.clone());
        let mut bytes = safetensors::serialize(views, meta)?;
        sort_metadata_keys(&mut bytes);
        Ok(bytes)
    }

    /// Writes the file (through a temporary file in the same folder, then renamed, so a
    /// failed write never leaves half a file behind).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = self.to_bytes()?;
        crate::image_io::write_atomically(path, &bytes)
    }
}

/// Rewrites the header's `__metadata__` with its keys sorted (safetensors writes them in
/// hash-map order), so that the same contents always give the same bytes. The header's
/// length does not change: the same keys and values, re-serialised compactly.
fn sort_metadata_keys(bytes: &mut [u8]) {
    let Some(len) = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(|b: [u8; 8]| u64::from_le_bytes(b) as usize)
    else {
        return;
    };
    let Some(header) = bytes.get(8..8 + len) else {
        return;
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(header) else {
        return;
    };
    let Some(serde_json::Value::Object(meta)) = value.get_mut("__metadata__") else {
        return;
    };
    let sorted: BTreeMap<String, serde_json::Value> = std::mem::take(meta).into_iter().collect();
    meta.extend(sorted);
    let Ok(text) = serde_json::to_string(&value) else {
        return;
    };
    if text.len() <= len {
        let out = &mut bytes[8..8 + len];
        out[..text.len()].copy_from_slice(text.as_bytes());
        out[text.len()..].fill(b' ');
    }
}
