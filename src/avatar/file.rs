//! Reading a safetensors file into checked, typed arrays.
//!
//! The safetensors crate validates the header (offsets, sizes, overflow) against the buffer
//! before we touch any data; we add a size cap so that no file can make us allocate more
//! than the file itself, and typed errors that name the file and tensor.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

use super::AvatarError;

/// The largest avatar file we read. A paper-size XHand avatar (49,281 vertices, 8x512 nets,
/// neural renderer) is about 20 MB in float32; anything far beyond that is not an avatar.
pub const MAX_AVATAR_BYTES: u64 = 1 << 30;

/// A parsed safetensors file: the raw bytes plus the validated header.
pub struct TensorFile {
    path: PathBuf,
    bytes: Vec<u8>,
    data_start: usize,
    tensors: HashMap<String, TensorEntry>,
    metadata: HashMap<String, String>,
    /// Names of the tensors read so far (for the loader's list of unused tensors).
    used: RefCell<BTreeSet<String>>,
}

#[derive(Clone, Debug)]
struct TensorEntry {
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// Numeric element types we accept for float tensors, reported by `xhand info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FloatKind {
    F16,
    BF16,
    F32,
    F64,
}

impl std::fmt::Display for FloatKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            FloatKind::F16 => "F16",
            FloatKind::BF16 => "BF16",
            FloatKind::F32 => "F32",
            FloatKind::F64 => "F64",
        };
        f.write_str(s)
    }
}

impl TensorFile {
    /// Reads and parses `path`. Fails (without reading it) if the file is larger than
    /// [`MAX_AVATAR_BYTES`].
    pub fn open(path: &Path) -> Result<Self, AvatarError> {
        let what = "avatar files (a paper-size XHand avatar is about 20 MB)";
        let bytes =
            crate::user_files::read_capped(path, MAX_AVATAR_BYTES, what).map_err(|problem| {
                AvatarError::File {
                    path: path.to_path_buf(),
                    problem,
                }
            })?;
        Self::from_bytes(path, bytes)
    }

    /// Parses an in-memory safetensors buffer; `path` is used in error messages only.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, AvatarError> {
        let (header_len, meta) =
            SafeTensors::read_metadata(&bytes).map_err(|e| AvatarError::File {
                path: path.to_path_buf(),
                problem: describe_safetensors_error(&e, &bytes),
            })?;
        let data_start = 8 + header_len;
        let tensors = meta
            .tensors()
            .into_iter()
            .map(|(name, info)| {
                let entry = TensorEntry {
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    start: data_start + info.data_offsets.0,
                    end: data_start + info.data_offsets.1,
                };
                (name, entry)
            })
            .collect();
        let metadata = meta.metadata().clone().unwrap_or_default();
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            data_start,
            tensors,
            metadata,
            used: RefCell::new(BTreeSet::new()),
        })
    }

    /// Tensors never read through [`Self::floats`] or [`Self::ints`], sorted.
    pub fn unused(&self) -> Vec<String> {
        let used = self.used.borrow();
        let mut names: Vec<String> = self
            .tensors
            .keys()
            .filter(|n| !used.contains(*n))
            .cloned()
            .collect();
        names.sort_unstable();
        names
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file in bytes.
    pub fn len_bytes(&self) -> usize {
        self.bytes.len().max(self.data_start)
    }

    /// The `__metadata__` string map (empty if absent).
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// Whether a tensor of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// All tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The shape of a tensor, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    fn entry(&self, name: &str) -> Result<&TensorEntry, AvatarError> {
        if self.tensors.contains_key(name) {
            self.used.borrow_mut().insert(name.to_string());
        }
        self.tensors.get(name).ok_or_else(|| AvatarError::Missing {
            path: self.path.clone(),
            tensor: name.to_string(),
        })
    }

    fn tensor_error(&self, name: &str, problem: String) -> AvatarError {
        AvatarError::Tensor {
            path: self.path.clone(),
            tensor: name.to_string(),
            problem,
        }
    }

    /// The float kind of a float tensor (errors for integer tensors).
    pub fn float_kind(&self, name: &str) -> Result<FloatKind, AvatarError> {
        let entry = self.entry(name)?;
        match entry.dtype {
            Dtype::F16 => Ok(FloatKind::F16),
            Dtype::BF16 => Ok(FloatKind::BF16),
            Dtype::F32 => Ok(FloatKind::F32),
            Dtype::F64 => Ok(FloatKind::F64),
            other => Err(self.tensor_error(
                name,
                format!("has dtype {other:?}; expected a float tensor (F32, F16 or BF16)"),
            )),
        }
    }

    /// Reads a float tensor as f32, checking its shape against `expected` (`None` entries
    /// match any size) and that every value is finite.
    pub fn floats(&self, name: &str, expected: &[Option<usize>]) -> Result<Floats, AvatarError> {
        let entry = self.entry(name)?;
        self.check_shape(name, &entry.shape, expected)?;
        let raw = &self.bytes[entry.start..entry.end];
        let kind = self.float_kind(name)?;
        let data: Vec<f32> = match kind {
            FloatKind::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            FloatKind::F64 => raw
                .chunks_exact(8)
                .map(|b| {
                    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                })
                .collect(),
            FloatKind::F16 => raw
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            FloatKind::BF16 => raw
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        };
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(self.tensor_error(
                name,
                format!(
                    "holds a non-finite value ({}) at flat index {i}{}",
                    data[i],
                    if kind == FloatKind::F64 {
                        " (or a value beyond the f32 range)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(Floats {
            shape: entry.shape.clone(),
            data,
        })
    }

    /// Reads an integer tensor (I32, I64, U32 and smaller) as i64, checking its shape.
    pub fn ints(&self, name: &str, expected: &[Option<usize>]) -> Result<Ints, AvatarError> {
        let entry = self.entry(name)?;
        self.check_shape(name, &entry.shape, expected)?;
        let raw = &self.bytes[entry.start..entry.end];
        let data: Vec<i64> = match entry.dtype {
            Dtype::I64 => raw
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect(),
            Dtype::U64 => raw
                .chunks_exact(8)
                .map(|b| {
                    let v = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                    i64::try_from(v).unwrap_or(i64::MAX)
                })
                .collect(),
            Dtype::I32 => raw
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                .collect(),
            Dtype::U32 => raw
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                .collect(),
            Dtype::I16 => raw
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]) as i64)
                .collect(),
            Dtype::U16 => raw
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as i64)
                .collect(),
            Dtype::I8 => raw.iter().map(|&b| b as i8 as i64).collect(),
            Dtype::U8 => raw.iter().map(|&b| b as i64).collect(),
            other => {
                return Err(self.tensor_error(
                    name,
                    format!("has dtype {other:?}; expected an integer tensor (I32, I64 or U32)"),
                ));
            }
        };
        Ok(Ints {
            shape: entry.shape.clone(),
            data,
        })
    }

    fn check_shape(
        &self,
        name: &str,
        shape: &[usize],
        expected: &[Option<usize>],
    ) -> Result<(), AvatarError> {
        let matches = shape.len() == expected.len()
            && shape
                .iter()
                .zip(expected)
                .all(|(&s, e)| e.is_none_or(|e| e == s));
        if !matches {
            return Err(self.tensor_error(
                name,
                format!("has shape {shape:?}; expected {}", shape_pattern(expected)),
            ));
        }
        // A free size of 0 (a zero-width layer or latent code) is no network anyone trained.
        if shape.contains(&0) {
            return Err(self.tensor_error(
                name,
                format!("has shape {shape:?}: an empty dimension (every size must be at least 1)"),
            ));
        }
        Ok(())
    }
}

/// A float tensor read from a file, converted to f32 (row-major).
#[derive(Clone, Debug)]
pub struct Floats {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// An integer tensor read from a file, widened to i64 (row-major).
#[derive(Clone, Debug)]
pub struct Ints {
    pub shape: Vec<usize>,
    pub data: Vec<i64>,
}

/// Formats an expected shape such as `[V, 3]` with `?` for free sizes.
pub fn shape_pattern(expected: &[Option<usize>]) -> String {
    let dims: Vec<String> = expected
        .iter()
        .map(|e| e.map_or("?".to_string(), |v| v.to_string()))
        .collect();
    format!("[{}]", dims.join(", "))
}

fn describe_safetensors_error(e: &safetensors::SafeTensorError, bytes: &[u8]) -> String {
    use safetensors::SafeTensorError as E;
    let looks_like_json = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    match e {
        E::HeaderTooSmall => "it is not a safetensors file (shorter than the 8-byte header length)".into(),
        E::HeaderTooLarge | E::InvalidHeaderLength if looks_like_json => {
            "it is not a safetensors file (it looks like JSON text — is this a pose file?)".into()
        }
        E::HeaderTooLarge | E::InvalidHeaderLength => {
            "it is not a safetensors file, or it is truncated (the header length points past the end of the file)".into()
        }
        E::InvalidHeader(_) | E::InvalidHeaderDeserialization(_) => {
            format!("its safetensors header is corrupt ({e})")
        }
        E::MetadataIncompleteBuffer => {
            "it is truncated or has trailing bytes (the tensor data does not match the header)".into()
        }
        E::TensorInvalidInfo | E::ValidationOverflow | E::MisalignedSlice => {
            format!("its header describes a tensor whose size does not match its data ({e})")
        }
        E::InvalidOffset(name) => format!("tensor `{name}` has invalid data offsets in the header"),
        other => format!("it is not a valid safetensors file ({other})"),
    }
}
