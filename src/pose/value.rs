//! Reading JSON pose documents into `serde_json::Value` without their heavy parts, and
//! turning nested number lists into shaped tensors with errors that name the place.

use std::fmt;
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{MAX_ABS_VALUE, PoseError};

/// Keys whose values no pose reader uses and which dominate the size of HaMeR dumps
/// (778 vertices or 21 keypoints per hand). They are skipped while parsing and kept as
/// `null`, so a dump costs memory in proportion to its poses, not its meshes.
const SKIPPED_KEYS: [&str; 12] = [
    "pred_vertices",
    "pred_keypoints_3d",
    "pred_keypoints_2d",
    "pred_keypoints_2d_full",
    "vertices",
    "verts",
    "keypoints_3d",
    "keypoints_2d",
    "joints",
    "faces",
    "img",
    "mask",
];

/// Parses `text` into a `Value` with the values of [`SKIPPED_KEYS`] replaced by `null`.
/// Syntax errors carry line and column and no path.
pub(crate) fn parse_pruned(path: &Path, text: &str) -> Result<Value, PoseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Pruned
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| syntax_error(path, &e))?;
    Ok(value)
}

/// A `PoseError` for a serde_json syntax error, with line and column.
pub(crate) fn syntax_error(path: &Path, e: &serde_json::Error) -> PoseError {
    PoseError {
        path: path.to_path_buf(),
        line_col: Some((e.line(), e.column())),
        at: None,
        problem: format!("malformed JSON: {e}")
            .replace(&format!(" at line {} column {}", e.line(), e.column()), ""),
    }
}

struct Pruned;

impl<'de> DeserializeSeed<'de> for Pruned {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(PrunedVisitor)
    }
}

struct PrunedVisitor;

impl<'de> Visitor<'de> for PrunedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Pruned)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let v = if SKIPPED_KEYS.contains(&key.as_str()) {
                map.next_value::<IgnoredAny>()?;
                Value::Null
            } else {
                map.next_value_seed(Pruned)?
            };
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// What kind of JSON value `v` is, for messages ("found a string").
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `parent.key`, or `key` at the top.
pub(crate) fn join(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

/// Error constructor bound to one file.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub path: &'a Path,
}

impl Ctx<'_> {
    pub fn err(&self, at: &str, problem: impl Into<String>) -> PoseError {
        PoseError {
            path: self.path.to_path_buf(),
            line_col: None,
            at: (!at.is_empty()).then(|| at.to_string()),
            problem: problem.into(),
        }
    }

    /// A finite number of magnitude at most [`MAX_ABS_VALUE`].
    pub fn number(&self, v: &Value, at: &str) -> Result<f64, PoseError> {
        self.number_max(v, at, MAX_ABS_VALUE)
    }

    /// A finite number of magnitude at most `max`.
    pub fn number_max(&self, v: &Value, at: &str, max: f64) -> Result<f64, PoseError> {
        let x = v
            .as_f64()
            .ok_or_else(|| self.err(at, format!("expected a number, found {}", kind(v))))?;
        check_range_max(x, max).map_err(|p| self.err(at, p))
    }

    /// A nested list of numbers (each within [`MAX_ABS_VALUE`]) as a row-major tensor; a
    /// bare number has shape `[]`.
    pub fn tensor(&self, v: &Value, at: &str) -> Result<Tensor, PoseError> {
        self.tensor_max(v, at, MAX_ABS_VALUE)
    }

    /// [`Ctx::tensor`] with magnitudes up to `max` (pixels, far translations).
    pub fn tensor_max(&self, v: &Value, at: &str, max: f64) -> Result<Tensor, PoseError> {
        let mut shape = Vec::new();
        let mut probe = v;
        while let Value::Array(a) = probe {
            shape.push(a.len());
            match a.first() {
                Some(first) => probe = first,
                None => break,
            }
        }
        let mut data = Vec::with_capacity(shape.iter().product::<usize>().max(1));
        self.fill(v, at, &shape, max, &mut data)?;
        Ok(Tensor {
            shape,
            data,
            at: at.to_string(),
        })
    }

    fn fill(
        &self,
        v: &Value,
        at: &str,
        shape: &[usize],
        max: f64,
        out: &mut Vec<f64>,
    ) -> Result<(), PoseError> {
        match (shape.split_first(), v) {
            (None, _) => {
                out.push(self.number_max(v, at, max)?);
                Ok(())
            }
            (Some((&n, rest)), Value::Array(a)) => {
                if a.len() != n {
                    return Err(self.err(
                        at,
                        format!(
                            "ragged list: {} entries where its siblings have {n}",
                            a.len()
                        ),
                    ));
                }
                for (i, x) in a.iter().enumerate() {
                    self.fill(x, &format!("{at}[{i}]"), rest, max, out)?;
                }
                Ok(())
            }
            (Some((&n, _)), other) => Err(self.err(
                at,
                format!("expected a list of {n} entries, found {}", kind(other)),
            )),
        }
    }
}

/// Checks one value against [`MAX_ABS_VALUE`].
pub(crate) fn check_range(x: f64) -> Result<f64, String> {
    check_range_max(x, MAX_ABS_VALUE)
}

/// Checks one value against `max`.
pub(crate) fn check_range_max(x: f64, max: f64) -> Result<f64, String> {
    if !x.is_finite() || x.abs() > max {
        return Err(format!(
            "{x} is out of range (|value| must be at most {max})"
        ));
    }
    Ok(x)
}

/// Numbers with a shape, and where they came from.
#[derive(Clone, Debug)]
pub(crate) struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
    pub at: String,
}

impl Tensor {
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The path of the element group `k` when the tensor is split into groups of `inner`
    /// trailing dimensions: `hand_pose[0][3]` for joint 3 of `[1,15,3,3]` with `inner = 2`.
    pub fn group_at(&self, k: usize, inner: usize) -> String {
        let outer = &self.shape[..self.shape.len().saturating_sub(inner)];
        let mut idx = vec![0usize; outer.len()];
        let mut rem = k;
        for (d, &n) in outer.iter().enumerate().rev() {
            idx[d] = rem % n.max(1);
            rem /= n.max(1);
        }
        let mut s = self.at.clone();
        for i in idx {
            s.push_str(&format!("[{i}]"));
        }
        s
    }

    /// `[2, 15, 3, 3]` as text.
    pub fn shape_text(&self) -> String {
        format!("{:?}", self.shape)
    }
}

/// Orders strings with digit runs compared as numbers: `frame2 < frame10`.
pub(crate) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let la = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let lb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (&a[..la], &b[..lb]);
                let ta = trim_zeros(da);
                let tb = trim_zeros(db);
                let ord = ta.len().cmp(&tb.len()).then(ta.cmp(tb)).then(la.cmp(&lb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[la..];
                b = &b[lb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|&&c| c == b'0').count();
    &d[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruned_parse_drops_meshes_and_keeps_the_rest() {
        let v = parse_pruned(
            Path::new("x.json"),
            r#"{"pred_vertices": [[1,2,3]], "a": {"verts": 1, "b": [1.5]}}"#,
        )
        .unwrap();
        assert_eq!(v["pred_vertices"], Value::Null);
        assert_eq!(v["a"]["verts"], Value::Null);
        assert_eq!(v["a"]["b"][0], 1.5);
        let e = parse_pruned(Path::new("x.json"), "{\"a\": [1,}").unwrap_err();
        assert!(
            e.line_col.is_some() && e.problem.contains("malformed"),
            "{e}"
        );
    }

    #[test]
    fn tensors_have_shapes_and_paths() {
        let cx = Ctx {
            path: Path::new("t.json"),
        };
        let v: Value = serde_json::from_str("[[[1,2],[3,4]],[[5,6],[7,8]]]").unwrap();
        let t = cx.tensor(&v, "x").unwrap();
        assert_eq!(t.shape, [2, 2, 2]);
        assert_eq!(t.data[5], 6.0);
        assert_eq!(t.group_at(3, 1), "x[1][1]");
        let v: Value = serde_json::from_str("[[1,2],[3]]").unwrap();
        let e = cx.tensor(&v, "x").unwrap_err();
        assert_eq!(e.at.as_deref(), Some("x[1]"));
        let v: Value = serde_json::from_str("[[1,2],[3,\"a\"]]").unwrap();
        let e = cx.tensor(&v, "x").unwrap_err();
        assert_eq!(e.at.as_deref(), Some("x[1][1]"));
        assert!(e.problem.contains("a string"));
        assert_eq!(
            cx.tensor(&Value::from(2.0), "s").unwrap().shape,
            Vec::<usize>::new()
        );
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["f10", "f2", "f1", "f002", "g", "10", "9"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["9", "10", "f1", "f2", "f002", "f10", "g"]);
        assert_eq!(join("", "hands"), "hands");
        assert_eq!(join("a", "img 1.jpg"), "a[\"img 1.jpg\"]");
    }
}
