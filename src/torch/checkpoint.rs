//! PyTorch checkpoints: the zip archive `torch.save` writes (torch ≥ 1.6, also 2.x), its
//! `data.pkl` and the storage records its tensors point into.
//!
//! Layout: `PREFIX/data.pkl` (the pickle), `PREFIX/data/KEY` (raw little-endian storage bytes,
//! one record per storage), `PREFIX/version`, and in torch 2 `PREFIX/byteorder`. `PREFIX` is
//! `archive` or the file's stem at save time — any single top-level folder is accepted. Each
//! tensor in the pickle is `_rebuild_tensor_v2(persistent_id, offset, size, stride, …)` with
//! the persistent id `('storage', torch.FloatStorage, KEY, LOCATION, NUMEL)`. The location
//! (`cpu`, `cuda:0`, …) is where the tensor lived when saved; here every tensor is read into
//! host memory, so it does not matter.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use super::ImportError;
use super::pickle::{Id, Pickle, Value};

/// The largest checkpoint we read. A paper-size XHand checkpoint is about 25 MB.
pub const MAX_CHECKPOINT_BYTES: u64 = 1 << 30;

/// Element type of a torch storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl Elem {
    /// From a storage class (`torch.FloatStorage`, …).
    fn from_storage_class(name: &str) -> Option<Self> {
        Some(match name {
            "torch.DoubleStorage" => Self::F64,
            "torch.FloatStorage" => Self::F32,
            "torch.HalfStorage" => Self::F16,
            "torch.BFloat16Storage" => Self::BF16,
            "torch.LongStorage" => Self::I64,
            "torch.IntStorage" => Self::I32,
            "torch.ShortStorage" => Self::I16,
            "torch.CharStorage" => Self::I8,
            "torch.ByteStorage" => Self::U8,
            "torch.BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }

    /// The safetensors dtype of the same bits.
    pub fn safetensors(self) -> safetensors::Dtype {
        use safetensors::Dtype as D;
        match self {
            Self::F64 => D::F64,
            Self::F32 => D::F32,
            Self::F16 => D::F16,
            Self::BF16 => D::BF16,
            Self::I64 => D::I64,
            Self::I32 => D::I32,
            Self::I16 => D::I16,
            Self::I8 => D::I8,
            Self::U8 => D::U8,
            Self::Bool => D::BOOL,
        }
    }
}

/// A tensor copied out of its storage: contiguous, row-major, little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub elem: Elem,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl HostTensor {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values as f64 (floats and integers).
    pub fn to_f64(&self) -> Vec<f64> {
        let s = self.elem.size();
        self.data
            .chunks_exact(s)
            .map(|b| match self.elem {
                Elem::F64 => f64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
                Elem::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
                Elem::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f64(),
                Elem::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f64(),
                Elem::I64 => i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f64,
                Elem::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
                Elem::I16 => i16::from_le_bytes([b[0], b[1]]) as f64,
                Elem::I8 => b[0] as i8 as f64,
                Elem::U8 | Elem::Bool => b[0] as f64,
            })
            .collect()
    }

    /// Values as f32 when the tensor is f32 (bit for bit), else converted.
    pub fn to_f32(&self) -> Vec<f32> {
        if self.elem == Elem::F32 {
            return self
                .data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
        }
        self.to_f64().into_iter().map(|x| x as f32).collect()
    }
}

/// A parsed checkpoint: its pickle and its storage records.
pub struct Checkpoint {
    pub path: PathBuf,
    /// The archive's top-level folder (`archive`, or the stem the file was saved under).
    pub prefix: String,
    pub pickle: Pickle,
    storages: HashMap<String, Vec<u8>>,
}

impl Checkpoint {
    /// Reads a `torch.save` zip archive.
    pub fn open(path: &Path) -> Result<Self, ImportError> {
        let bytes = super::read_capped(path, MAX_CHECKPOINT_BYTES, "PyTorch checkpoints")?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses an in-memory archive; `path` names it in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, ImportError> {
        let fail = |problem: String| ImportError::new(path, problem);
        if !bytes.starts_with(b"PK\x03\x04") {
            let problem = if bytes.is_empty() {
                "the file is empty".to_string()
            } else if bytes[0] == 0x80 {
                "it is a plain pickle, not a zip archive: torch < 1.6's legacy format (or \
                 `_use_new_zipfile_serialization=False`) is not supported — load it in Python and \
                 `torch.save` it again with a current torch"
                    .to_string()
            } else {
                "it is not a PyTorch checkpoint (torch.save writes a zip archive; this file does \
                 not start like one)"
                    .to_string()
            };
            return Err(fail(problem));
        }
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| fail(format!("its zip archive is corrupt or truncated ({e})")))?;
        let names: Vec<String> = zip
            .file_names()
            .map(|n| n.map(|n| n.into_owned()))
            .collect::<Result<_, _>>()
            .map_err(|e| {
                fail(format!(
                    "its zip archive has an unreadable record name ({e})"
                ))
            })?;
        let pkls: Vec<&String> = names
            .iter()
            .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
            .collect();
        let prefix = match pkls.as_slice() {
            [one] => one.trim_end_matches("/data.pkl").to_string(),
            [] => {
                return Err(fail(
                    "the zip archive has no `data.pkl` record: it is not a torch.save checkpoint"
                        .into(),
                ));
            }
            _ => {
                return Err(fail(
                    "the zip archive holds more than one `data.pkl`".into(),
                ));
            }
        };
        let limit = bytes.len() as u64;
        let mut read_record = |name: &str| -> Result<Vec<u8>, ImportError> {
            let mut f = zip
                .by_name(name)
                .map_err(|e| fail(format!("record `{name}` cannot be read ({e})")))?;
            if f.size() > limit {
                return Err(fail(format!(
                    "record `{name}` claims {} bytes, more than the whole file",
                    f.size()
                )));
            }
            let mut out = Vec::with_capacity(f.size() as usize);
            (&mut f)
                .take(limit + 1)
                .read_to_end(&mut out)
                .map_err(|e| fail(format!("record `{name}` is corrupt ({e})")))?;
            if out.len() as u64 != f.size() {
                return Err(fail(format!(
                    "record `{name}` is shorter than its header says"
                )));
            }
            Ok(out)
        };
        if names.iter().any(|n| *n == format!("{prefix}/byteorder")) {
            let order = read_record(&format!("{prefix}/byteorder"))?;
            if order.trim_ascii() != b"little" {
                return Err(fail(format!(
                    "its storages are {}-endian; only little-endian checkpoints are supported",
                    String::from_utf8_lossy(&order).trim()
                )));
            }
        }
        let pkl = read_record(&format!("{prefix}/data.pkl"))?;
        let pickle = Pickle::parse(&pkl)
            .map_err(|e| fail(format!("`{prefix}/data.pkl` cannot be read: {e}")))?;
        let data_dir = format!("{prefix}/data/");
        let mut storages = HashMap::new();
        for name in &names {
            if let Some(key) = name.strip_prefix(&data_dir) {
                storages.insert(key.to_string(), read_record(name)?);
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            prefix,
            pickle,
            storages,
        })
    }

    /// The same storages under another pickle (to test the walker on altered pickles).
    pub fn with_pickle(&self, pickle: Pickle) -> Self {
        Self {
            path: self.path.clone(),
            prefix: self.prefix.clone(),
            pickle,
            storages: self.storages.clone(),
        }
    }

    fn err(&self, problem: impl Into<String>) -> ImportError {
        ImportError::new(&self.path, problem.into())
    }

    /// Copies the tensor `id` (a `Value::Tensor`) out of its storage, honouring offset and
    /// strides. `what` names it in errors.
    pub fn tensor(&self, id: Id, what: &str) -> Result<HostTensor, ImportError> {
        let pk = &self.pickle;
        let Value::Tensor(view) = pk.get(id) else {
            return Err(self.err(format!("`{what}` is not a tensor")));
        };
        let Value::PersistentId(pid) = pk.get(view.storage) else {
            return Err(self.err(format!("`{what}` has no storage")));
        };
        let fields = pk.items(*pid).unwrap_or(&[]);
        let bad_pid = || self.err(format!("`{what}`: its storage reference is malformed"));
        if fields.len() < 5 || pk.text(fields[0]) != Some("storage") {
            return Err(bad_pid());
        }
        let class = pk.class_name(fields[1]).ok_or_else(bad_pid)?;
        let elem = Elem::from_storage_class(&class).ok_or_else(|| {
            self.err(format!(
                "`{what}` is stored as `{class}`, which is not a storage type this reader knows"
            ))
        })?;
        let key = pk.text(fields[2]).ok_or_else(bad_pid)?;
        let numel = pk
            .int(fields[4])
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| self.err(format!("`{what}`: its storage size is not a count")))?;
        let record = self.storages.get(key).ok_or_else(|| {
            self.err(format!(
                "`{what}`: storage record `{}/data/{key}` is missing",
                self.prefix
            ))
        })?;
        let size = elem.size();
        if numel.checked_mul(size).is_none_or(|b| b > record.len()) {
            return Err(self.err(format!(
                "`{what}`: storage `{key}` should hold {numel} elements of {size} bytes but its record has {} bytes",
                record.len()
            )));
        }
        let count = view
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&c| c <= numel || view.shape.contains(&0))
            .ok_or_else(|| {
                self.err(format!(
                    "`{what}` has shape {:?}, more elements than its storage's {numel}",
                    view.shape
                ))
            })?;
        let mut data = Vec::with_capacity(count * size);
        if count > 0 {
            let last = view
                .shape
                .iter()
                .zip(&view.stride)
                .try_fold(view.offset, |a, (&d, &s)| {
                    a.checked_add((d - 1).checked_mul(s)?)
                });
            if last.is_none_or(|l| l >= numel) {
                return Err(self.err(format!(
                    "`{what}` (offset {}, shape {:?}, stride {:?}) reaches past the end of its storage of {numel} elements",
                    view.offset, view.shape, view.stride
                )));
            }
            let mut idx = vec![0usize; view.shape.len()];
            for _ in 0..count {
                let e = view.offset
                    + idx
                        .iter()
                        .zip(&view.stride)
                        .map(|(i, s)| i * s)
                        .sum::<usize>();
                data.extend_from_slice(&record[e * size..(e + 1) * size]);
                for k in (0..idx.len()).rev() {
                    idx[k] += 1;
                    if idx[k] < view.shape[k] {
                        break;
                    }
                    idx[k] = 0;
                }
            }
        }
        Ok(HostTensor {
            elem,
            shape: view.shape.clone(),
            data,
        })
    }
}
