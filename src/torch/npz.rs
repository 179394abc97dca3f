//! numpy's `.npz` (what `numpy.savez` writes: a zip of `.npy` files), read for smplx's MANO
//! model files. Only stored (uncompressed) entries and plain numeric dtypes are read.

use std::io::{Cursor, Read};

use super::mano::{Array, ArraySource};
use super::pickle::{NdArray, NpDtype};

/// A parsed `.npz`: its arrays by name (without the `.npy` suffix).
pub struct Npz {
    arrays: Vec<(String, Result<NdArray, String>)>,
}

impl Npz {
    /// Parses an in-memory `.npz`.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| format!("its zip archive is corrupt or truncated ({e})"))?;
        let mut arrays = Vec::new();
        for i in 0..zip.len() {
            let mut f = zip
                .by_index(i)
                .map_err(|e| format!("entry {i} cannot be read ({e}; compressed .npz entries are not supported — use numpy.savez, not savez_compressed)"))?;
            let name = f
                .name()
                .map_err(|e| format!("entry {i} has an unreadable name ({e})"))?
                .into_owned();
            let Some(name) = name.strip_suffix(".npy").map(str::to_string) else {
                continue;
            };
            if f.size() > bytes.len() as u64 {
                return Err(format!(
                    "entry `{name}` claims more bytes than the whole file"
                ));
            }
            let mut data = Vec::with_capacity(f.size() as usize);
            (&mut f)
                .take(bytes.len() as u64 + 1)
                .read_to_end(&mut data)
                .map_err(|e| format!("entry `{name}` is corrupt ({e})"))?;
            arrays.push((name, parse_npy(&data)));
        }
        if arrays.is_empty() {
            return Err("the zip archive holds no .npy arrays: not an .npz file".into());
        }
        Ok(Self { arrays })
    }
}

impl ArraySource for Npz {
    fn array(&self, key: &str) -> Result<Option<Array>, String> {
        match self.arrays.iter().find(|(n, _)| n == key) {
            None => Ok(None),
            Some((_, Err(e))) => Err(format!("`{key}` {e}")),
            Some((_, Ok(a))) => Ok(Some(Array {
                shape: a.shape.clone(),
                data: a.to_f64().map_err(|e| format!("`{key}` {e}"))?,
            })),
        }
    }

    fn keys(&self) -> Vec<String> {
        self.arrays.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// One `.npy` file: magic, version, header (a Python dict literal), raw data.
fn parse_npy(b: &[u8]) -> Result<NdArray, String> {
    if !b.starts_with(b"\x93NUMPY") || b.len() < 10 {
        return Err("is not a .npy array".into());
    }
    let (header_len, start): (usize, usize) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return Err(format!("has .npy version {v}, which is not supported")),
    };
    let header = b
        .get(start..start.saturating_add(header_len))
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("has a truncated .npy header")?;
    let field = |key: &str| -> Option<&str> {
        let i = header.find(&format!("'{key}'"))? + key.len() + 2;
        Some(header[i..].trim_start().strip_prefix(':')?.trim_start())
    };
    let descr = field("descr")
        .and_then(|s| s.strip_prefix('\''))
        .and_then(|s| s.split('\'').next())
        .ok_or("has no dtype in its .npy header")?;
    let dtype =
        NpDtype::parse(descr).ok_or(format!("has dtype `{descr}`, which is not supported"))?;
    let fortran = field("fortran_order").is_some_and(|s| s.starts_with("True"));
    let shape_text = field("shape")
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.split(')').next())
        .ok_or("has no shape in its .npy header")?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("has a bad shape `({shape_text})`"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let data = &b[start + header_len..];
    let want = shape
        .iter()
        .try_fold(dtype.size, |a, &d| a.checked_mul(d))
        .ok_or("has a shape too large for any file")?;
    if data.len() != want {
        return Err(format!(
            "of shape {shape:?} needs {want} bytes but the file holds {}",
            data.len()
        ));
    }
    Ok(NdArray {
        dtype: Some(dtype),
        shape,
        fortran,
        data: data.to_vec(),
        built: true,
    })
}
