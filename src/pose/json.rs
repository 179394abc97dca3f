//! The project's own pose JSON: one frame `{"pose":[48], "trans":[3], "scale":1.0,
//! "hand":"right", "sh":[27]}` (only `pose` required) or `{"fps":30, "frames":[...]}`.

use std::path::Path;

use serde_json::Value;

use super::{DEFAULT_FPS, MAX_ABS_VALUE, PoseError, PoseFrame, PoseSequence};
use crate::hand::Handedness;
use crate::{POSE_DIM, SH_DIM};

/// The keys of one frame.
pub(crate) const FRAME_KEYS: [&str; 5] = ["pose", "trans", "scale", "hand", "sh"];

/// Largest pose file read whole into memory.
pub const MAX_POSE_FILE_BYTES: u64 = 512 << 20;

struct Ctx<'a> {
    path: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, at: &str, problem: impl Into<String>) -> PoseError {
        PoseError {
            path: self.path.to_path_buf(),
            line_col: None,
            at: (!at.is_empty()).then(|| at.to_string()),
            problem: problem.into(),
        }
    }

    fn number(&self, v: &Value, at: &str) -> Result<f32, PoseError> {
        let x = v
            .as_f64()
            .ok_or_else(|| self.err(at, format!("expected a number, found {}", kind(v))))?;
        if !x.is_finite() || x.abs() > MAX_ABS_VALUE {
            return Err(self.err(
                at,
                format!("{x} is out of range (|value| must be at most {MAX_ABS_VALUE})"),
            ));
        }
        Ok(x as f32)
    }

    fn numbers<const N: usize>(&self, v: &Value, at: &str) -> Result<[f32; N], PoseError> {
        let arr = v.as_array().ok_or_else(|| {
            self.err(
                at,
                format!("expected a list of {N} numbers, found {}", kind(v)),
            )
        })?;
        if arr.len() != N {
            return Err(self.err(at, format!("expected {N} numbers, found {}", arr.len())));
        }
        let mut out = [0.0f32; N];
        for (i, x) in arr.iter().enumerate() {
            out[i] = self.number(x, &format!("{at}[{i}]"))?;
        }
        Ok(out)
    }

    fn frame(&self, v: &Value, at: &str) -> Result<PoseFrame, PoseError> {
        let obj = v.as_object().ok_or_else(|| {
            self.err(
                at,
                format!("expected a frame object with `pose`, found {}", kind(v)),
            )
        })?;
        let field = |k: &str| {
            if at.is_empty() {
                k.to_string()
            } else {
                format!("{at}.{k}")
            }
        };
        let pose_v = obj
            .get("pose")
            .ok_or_else(|| self.err(at, "the frame has no `pose` (48 axis-angle numbers)"))?;
        let mut frame = PoseFrame {
            pose: self.numbers::<POSE_DIM>(pose_v, &field("pose"))?,
            ..PoseFrame::default()
        };
        if let Some(t) = obj.get("trans").filter(|t| !t.is_null()) {
            frame.trans = self.numbers::<3>(t, &field("trans"))?;
        }
        if let Some(s) = obj.get("scale").filter(|s| !s.is_null()) {
            let s = match s.as_array() {
                Some(a) if a.len() == 1 => self.number(&a[0], &field("scale[0]"))?,
                _ => self.number(s, &field("scale"))?,
            };
            if s <= 0.0 {
                return Err(self.err(&field("scale"), format!("{s} is not a positive scale")));
            }
            frame.scale = s;
        }
        if let Some(h) = obj.get("hand").filter(|h| !h.is_null()) {
            let s = h.as_str().ok_or_else(|| {
                self.err(
                    &field("hand"),
                    format!("expected \"right\" or \"left\", found {}", kind(h)),
                )
            })?;
            frame.hand = Some(Handedness::parse(s).ok_or_else(|| {
                self.err(
                    &field("hand"),
                    format!("`{s}` is not \"right\" or \"left\""),
                )
            })?);
        }
        if let Some(sh) = obj.get("sh").filter(|s| !s.is_null()) {
            frame.sh = Some(self.numbers::<SH_DIM>(sh, &field("sh"))?);
        }
        Ok(frame)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Parses the project's pose JSON from `text`; `path` names the file in errors. Syntax
/// errors carry line and column; content errors the path inside the document.
pub fn parse_pose_json(path: &Path, text: &str) -> Result<PoseSequence, PoseError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| super::value::syntax_error(path, &e))?;
    from_value(path, &value)
}

/// Interprets an already parsed JSON document in the project's format.
pub fn from_value(path: &Path, value: &Value) -> Result<PoseSequence, PoseError> {
    let cx = Ctx { path };
    let Some(obj) = value.as_object() else {
        return Err(cx.err(
            "",
            format!(
                "expected an object with `pose` (one frame) or `frames` (a sequence), found {}",
                kind(value)
            ),
        ));
    };
    if let Some(frames) = obj.get("frames") {
        let list = frames.as_array().ok_or_else(|| {
            cx.err(
                "frames",
                format!("expected a list of frames, found {}", kind(frames)),
            )
        })?;
        if list.is_empty() {
            return Err(cx.err(
                "frames",
                "the sequence is empty; it needs at least one frame",
            ));
        }
        let fps = match obj.get("fps").filter(|f| !f.is_null()) {
            None => DEFAULT_FPS,
            Some(f) => {
                let fps = cx.number(f, "fps")?;
                if fps <= 0.0 {
                    return Err(cx.err("fps", format!("{fps} is not a positive frame rate")));
                }
                fps
            }
        };
        let frames = list
            .iter()
            .enumerate()
            .map(|(i, f)| cx.frame(f, &format!("frames[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PoseSequence {
            fps,
            frames,
            labels: None,
            source: Some(path.to_path_buf()),
        })
    } else if obj.contains_key("pose") {
        let mut seq = PoseSequence::single(cx.frame(value, "")?);
        seq.source = Some(path.to_path_buf());
        Ok(seq)
    } else {
        Err(cx.err("", "expected an object with `pose` (one frame) or `frames` (a sequence); found neither key"))
    }
}

/// Writes a sequence in the project's format (`{"fps", "frames": [...]}`), which
/// [`parse_pose_json`] reads back exactly: f32 values print in their shortest round-trip
/// form. Per-frame cameras and labels are not part of the format.
pub fn to_json(seq: &PoseSequence) -> String {
    let frames: Vec<Value> = seq
        .frames
        .iter()
        .map(|f| {
            let mut o = serde_json::Map::new();
            o.insert("pose".into(), numbers(&f.pose));
            o.insert("trans".into(), numbers(&f.trans));
            o.insert("scale".into(), number(f.scale));
            if let Some(h) = f.hand {
                o.insert("hand".into(), Value::from(h.as_str()));
            }
            if let Some(sh) = &f.sh {
                o.insert("sh".into(), numbers(sh));
            }
            Value::Object(o)
        })
        .collect();
    let doc = serde_json::json!({ "fps": number(seq.fps), "frames": frames });
    serde_json::to_string(&doc).unwrap_or_default()
}

/// An f32 as the JSON number with its shortest decimal form (not widened to f64 digits).
fn number(x: f32) -> Value {
    x.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn numbers(v: &[f32]) -> Value {
    Value::Array(v.iter().map(|&x| number(x)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_sequences_read_back_exactly() {
        let frame = |k: f32| PoseFrame {
            pose: std::array::from_fn(|i| (i as f32 * 0.137 + k).sin()),
            trans: [0.1 * k, -0.25, 3.0e-7],
            scale: 1.0 + k,
            hand: (k > 0.5).then_some(Handedness::Left),
            sh: (k > 1.5).then(|| std::array::from_fn(|i| i as f32 / 7.0)),
        };
        let seq = PoseSequence {
            fps: 24.0,
            frames: vec![frame(0.0), frame(1.0), frame(2.0)],
            labels: None,
            source: None,
        };
        let back = parse(&to_json(&seq)).unwrap();
        assert_eq!(back.fps, seq.fps);
        assert_eq!(back.frames, seq.frames, "bit-exact f32 values");
    }

    fn parse(s: &str) -> Result<PoseSequence, PoseError> {
        parse_pose_json(Path::new("p.json"), s)
    }

    #[test]
    fn single_frame_with_defaults() {
        let zeros = vec!["0"; 48].join(",");
        let seq = parse(&format!("{{\"pose\":[{zeros}]}}")).unwrap();
        assert_eq!(seq.len(), 1);
        assert_eq!(seq.frames[0].scale, 1.0);
        assert_eq!(seq.frames[0].hand, None);
    }

    #[test]
    fn errors_name_location() {
        let e = parse("{\"pose\": [1, 2,, 3]}").unwrap_err();
        assert_eq!(e.line_col, Some((1, 16)));
        assert!(
            e.to_string().starts_with("p.json:1:16: malformed JSON"),
            "{e}"
        );
        let e = parse("{\"frames\": []}").unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let zeros = vec!["0"; 47].join(",");
        let e = parse(&format!("{{\"frames\": [{{\"pose\":[{zeros}]}}]}}")).unwrap_err();
        assert_eq!(e.at.as_deref(), Some("frames[0].pose"));
        assert!(e.problem.contains("found 47"));
        let big = format!("{{\"pose\":[{}1e6]}}", "0,".repeat(47));
        let e = parse(&big).unwrap_err();
        assert_eq!(e.at.as_deref(), Some("pose[47]"));
    }
}
