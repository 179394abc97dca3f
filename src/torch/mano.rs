//! The MANO model file: what an XHand avatar needs from it.
//!
//! `MANO_RIGHT.pkl` / `MANO_LEFT.pkl` are Python 2 pickles (protocol 2) of a dict holding numpy
//! arrays, a `scipy.sparse.csc_matrix` joint regressor and chumpy objects; community converters
//! write a chumpy-free protocol-4 variant (numpy 2's `numpy._core`, `scipy.sparse._csc`). Both
//! are read with the inert [`Pickle`] reader: chumpy never has to be evaluated, since only
//! `J_regressor`, `hands_mean`, `kintree_table` (and, for a state_dict-only checkpoint,
//! `v_template` and `f`) are used. smplx's `.npz` model files (`numpy.savez`: a zip of `.npy`
//! arrays, dense regressor) hold the same arrays.

use std::path::{Path, PathBuf};

use super::ImportError;
use super::pickle::{Id, NdArray, Pickle, Value};
use crate::NUM_JOINTS;

/// The largest MANO file we read (the real ones are about 4 MB).
pub const MAX_MANO_BYTES: u64 = 256 << 20;

/// Number of MANO template vertices.
pub const MANO_VERTICES: usize = 778;

/// The parts of a MANO model file XHand uses.
#[derive(Clone, Debug)]
pub struct ManoModel {
    pub path: PathBuf,
    /// Dense joint regressor `[16, V]`, row-major.
    pub j_regressor: Vec<f64>,
    /// Number of template vertices the regressor expects (778).
    pub num_vertices: usize,
    /// Mean finger pose (45 axis-angle values, joints 1-15).
    pub hands_mean: Vec<f64>,
    /// Parent of each joint, −1 for the root.
    pub parents: [i64; NUM_JOINTS],
    /// MANO's unshaped template `[778, 3]`, when present.
    pub v_template: Option<Vec<[f64; 3]>>,
    /// MANO's faces, when present.
    pub faces: Option<Vec<[u32; 3]>>,
}

/// A named n-dimensional array of f64 values, read from any of the supported containers.
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl ManoModel {
    /// Reads a MANO `.pkl` (Python 2 or 3) or smplx `.npz` model file.
    pub fn open(path: &Path) -> Result<Self, ImportError> {
        let bytes = super::read_capped(path, MAX_MANO_BYTES, "MANO model files")?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses an in-memory MANO file; `path` names it in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, ImportError> {
        let fail = |p: String| ImportError::new(path, p);
        let source: Box<dyn ArraySource> = if bytes.starts_with(b"PK\x03\x04") {
            Box::new(super::npz::Npz::parse(bytes).map_err(fail)?)
        } else if bytes.first() == Some(&0x80) {
            let pk = Pickle::parse(bytes)
                .map_err(|e| fail(format!("it is not a readable pickle: {e}")))?;
            if pk.dict(pk.root).is_none() {
                return Err(fail(
                    "it is a pickle, but not of a dict: not a MANO model file".into(),
                ));
            }
            Box::new(PickleSource(pk))
        } else if bytes.is_empty() {
            return Err(fail("the file is empty".into()));
        } else {
            return Err(fail(
                "it is not a MANO model file (expected a pickle such as MANO_RIGHT.pkl or an smplx .npz)"
                    .into(),
            ));
        };
        let need = |key: &str| -> Result<Array, ImportError> {
            source.array(key).map_err(fail)?.ok_or_else(|| {
                fail(format!(
                    "it has no `{key}`: not a MANO model file (keys found: {})",
                    source.keys().join(", ")
                ))
            })
        };
        let jr = need("J_regressor")?;
        if jr.shape.len() != 2 || jr.shape[0] != NUM_JOINTS {
            return Err(fail(format!(
                "`J_regressor` has shape {:?}; expected [{NUM_JOINTS}, {MANO_VERTICES}]",
                jr.shape
            )));
        }
        let num_vertices = jr.shape[1];
        let hm = need("hands_mean")?;
        if hm.data.len() != 45 {
            return Err(fail(format!(
                "`hands_mean` has {} values; expected 45 (15 finger joints × 3)",
                hm.data.len()
            )));
        }
        let kt = need("kintree_table")?;
        if kt.shape != [2, NUM_JOINTS] {
            return Err(fail(format!(
                "`kintree_table` has shape {:?}; expected [2, {NUM_JOINTS}]",
                kt.shape
            )));
        }
        let ids = &kt.data[NUM_JOINTS..];
        let mut parents = [0i64; NUM_JOINTS];
        for (i, p) in parents.iter_mut().enumerate() {
            let parent_id = kt.data[i];
            *p = if i == 0 {
                -1
            } else {
                match ids.iter().position(|&id| id == parent_id) {
                    Some(j) => j as i64,
                    None => {
                        return Err(fail(format!(
                            "`kintree_table` gives joint {i} the parent id {parent_id}, which is no joint's id"
                        )));
                    }
                }
            };
        }
        let v_template = match source.array("v_template").map_err(fail)? {
            Some(a) if a.shape == [num_vertices, 3] => {
                Some(a.data.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
            }
            _ => None,
        };
        let faces = match source.array("f").map_err(fail)? {
            Some(a) if a.shape.len() == 2 && a.shape[1] == 3 => {
                let ok = a
                    .data
                    .iter()
                    .all(|&x| x >= 0.0 && x < num_vertices as f64 && x.fract() == 0.0);
                ok.then(|| {
                    a.data
                        .chunks_exact(3)
                        .map(|c| [c[0] as u32, c[1] as u32, c[2] as u32])
                        .collect()
                })
            }
            _ => None,
        };
        if let Some(i) = jr.data.iter().chain(&hm.data).position(|x| !x.is_finite()) {
            return Err(fail(format!(
                "`J_regressor`/`hands_mean` hold a non-finite value (index {i})"
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            j_regressor: jr.data,
            num_vertices,
            hands_mean: hm.data,
            parents,
            v_template,
            faces,
        })
    }

    /// `J_regressor · verts` in f64 (`verts` `[num_vertices, 3]`).
    pub fn regress_joints(&self, verts: &[[f64; 3]]) -> [[f64; 3]; NUM_JOINTS] {
        let n = self.num_vertices;
        std::array::from_fn(|j| {
            let mut acc = [0.0f64; 3];
            for (k, v) in verts.iter().enumerate().take(n) {
                let w = self.j_regressor[j * n + k];
                if w != 0.0 {
                    for c in 0..3 {
                        acc[c] += w * v[c];
                    }
                }
            }
            acc
        })
    }
}

/// Something named arrays can be read from (a pickled dict, an `.npz`).
pub(crate) trait ArraySource {
    /// The array stored under `key`, `None` when absent; an error when present but unusable.
    fn array(&self, key: &str) -> Result<Option<Array>, String>;
    /// The keys present, for error messages.
    fn keys(&self) -> Vec<String>;
}

struct PickleSource(Pickle);

impl ArraySource for PickleSource {
    fn array(&self, key: &str) -> Result<Option<Array>, String> {
        let pk = &self.0;
        let Some(id) = pk.dict_get(pk.root, key) else {
            return Ok(None);
        };
        pickled_array(pk, id, 0)
            .map(Some)
            .map_err(|e| format!("`{key}` {e}"))
    }

    fn keys(&self) -> Vec<String> {
        let pk = &self.0;
        pk.dict(pk.root)
            .unwrap_or(&[])
            .iter()
            .filter_map(|(k, _)| pk.text(*k).map(str::to_string))
            .collect()
    }
}

fn ndarray(a: &NdArray) -> Result<Array, String> {
    Ok(Array {
        shape: a.shape.clone(),
        data: a.to_f64()?,
    })
}

/// A numpy array, a scipy sparse matrix (made dense) or a chumpy object wrapping an array.
fn pickled_array(pk: &Pickle, id: Id, depth: usize) -> Result<Array, String> {
    if depth > 4 {
        return Err("is nested too deeply to be an array".into());
    }
    match pk.get(id) {
        Value::Array(a) => ndarray(a),
        Value::Object { class, state, .. } => {
            let class = pk.class_name(*class).unwrap_or_default();
            let state = state.ok_or(format!("is a `{class}` without state"))?;
            if class.starts_with("scipy.sparse") {
                sparse_to_dense(pk, &class, state)
            } else if class.starts_with("chumpy") {
                // A chumpy `Ch` keeps its value in `x`; other chumpy nodes are expressions.
                match pk.dict_get(state, "x") {
                    Some(x) => pickled_array(pk, x, depth + 1),
                    None => Err(format!(
                        "is a chumpy expression (`{class}`), not a stored array"
                    )),
                }
            } else {
                Err(format!("is a `{class}`, not an array"))
            }
        }
        _ => Err("is not an array".into()),
    }
}

fn sparse_to_dense(pk: &Pickle, class: &str, state: Id) -> Result<Array, String> {
    let csc = class.ends_with("csc_matrix");
    if !csc && !class.ends_with("csr_matrix") {
        return Err(format!(
            "is a `{class}`; only CSC and CSR sparse matrices are supported"
        ));
    }
    let part = |k: &str| -> Result<Array, String> {
        let id = pk
            .dict_get(state, k)
            .ok_or(format!("(sparse) has no `{k}`"))?;
        match pk.get(id) {
            Value::Array(a) => ndarray(a).map_err(|e| format!("(sparse) `{k}` {e}")),
            _ => Err(format!("(sparse) `{k}` is not an array")),
        }
    };
    let shape_id = pk
        .dict_get(state, "_shape")
        .or_else(|| pk.dict_get(state, "shape"))
        .ok_or("(sparse) has no shape")?;
    let shape: Vec<usize> = pk
        .items(shape_id)
        .unwrap_or(&[])
        .iter()
        .filter_map(|&i| pk.int(i).and_then(|v| usize::try_from(v).ok()))
        .collect();
    let [rows, cols] = shape[..] else {
        return Err("(sparse) has a shape that is not 2-D".into());
    };
    let data = part("data")?.data;
    let indices = part("indices")?.data;
    let indptr = part("indptr")?.data;
    let (outer, inner) = if csc { (cols, rows) } else { (rows, cols) };
    let cells = rows
        .checked_mul(cols)
        .filter(|&c| c <= 1 << 26)
        .ok_or("(sparse) is too large to make dense")?;
    if indptr.len() != outer + 1 || data.len() != indices.len() {
        return Err("(sparse) has inconsistent index arrays".into());
    }
    let mut dense = vec![0.0f64; cells];
    for o in 0..outer {
        let (a, b) = (indptr[o], indptr[o + 1]);
        if !(a >= 0.0 && a <= b && b as usize <= data.len()) {
            return Err("(sparse) has a corrupt `indptr`".into());
        }
        for k in a as usize..b as usize {
            let i = indices[k];
            if !(i >= 0.0 && (i as usize) < inner) {
                return Err(format!("(sparse) has index {i} outside 0..{inner}"));
            }
            let (r, c) = if csc {
                (i as usize, o)
            } else {
                (o, i as usize)
            };
            dense[r * cols + c] += data[k];
        }
    }
    Ok(Array {
        shape: vec![rows, cols],
        data: dense,
    })
}
