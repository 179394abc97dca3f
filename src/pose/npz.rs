//! MANO parameters as numpy's `.npz`, the layout smplx-based tools (aitviewer, smplx's
//! `MANO` layer) read: per frame `global_orient` (3), `hand_pose` (45, axis-angle relative
//! to MANO's mean hand, i.e. smplx's default `flat_hand_mean=False` — what a
//! [`PoseFrame`] holds), `betas` (10, zeros: an avatar has its own shape) and `transl` (3),
//! plus xhand's own `is_right`, `scale` and `fps`, which other tools ignore.
//!
//! Written with stored (uncompressed) zip entries, as `numpy.savez` does; read with the same
//! bounded `.npz` reader as smplx model files. docs/poses.md describes the layout.

use std::io::Write;
use std::path::Path;

use super::{DEFAULT_FPS, MAX_ABS_VALUE, PoseError, PoseFrame, PoseSequence};
use crate::POSE_DIM;
use crate::hand::Handedness;
use crate::torch::mano::ArraySource;
use crate::torch::npz::Npz;

/// Shape coefficients written (zeros).
const BETAS: usize = 10;

/// The `.npy` bytes of a little-endian f32 array of `shape`.
fn npy_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        0 => "()".to_string(),
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 4 * data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The `.npz` bytes of a sequence.
pub fn to_npz(seq: &PoseSequence) -> Vec<u8> {
    let t = seq.frames.len();
    let col = |f: &dyn Fn(&PoseFrame) -> Vec<f32>| -> Vec<f32> {
        seq.frames.iter().flat_map(f).collect()
    };
    let arrays: [(&str, Vec<usize>, Vec<f32>); 7] = [
        ("global_orient", vec![t, 3], col(&|f| f.pose[..3].to_vec())),
        (
            "hand_pose",
            vec![t, POSE_DIM - 3],
            col(&|f| f.pose[3..].to_vec()),
        ),
        ("betas", vec![t, BETAS], vec![0.0; t * BETAS]),
        ("transl", vec![t, 3], col(&|f| f.trans.to_vec())),
        ("scale", vec![t], col(&|f| vec![f.scale])),
        (
            "is_right",
            vec![t],
            col(&|f| vec![(f.hand != Some(Handedness::Left)) as u8 as f32]),
        ),
        ("fps", vec![], vec![seq.fps]),
    ];
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, shape, data) in arrays {
        // Writing into memory cannot fail.
        let _ = zip.start_file(format!("{name}.npy"), options);
        let _ = zip.write_all(&npy_f32(&shape, &data));
    }
    zip.finish().map(|c| c.into_inner()).unwrap_or_default()
}

/// Reads a sequence from `.npz` bytes (`path` names the file in errors).
pub fn from_npz(path: &Path, bytes: &[u8]) -> Result<PoseSequence, PoseError> {
    let err = |problem: String| PoseError::file(path, problem);
    let npz = Npz::parse(bytes).map_err(&err)?;
    let get = |key: &str| npz.array(key).map_err(&err);
    let keys = || npz.keys().join(", ");
    let orient = get("global_orient")?;
    let hand_pose = get("hand_pose")?;
    let (Some(orient), Some(hand_pose)) = (orient, hand_pose) else {
        return Err(err(format!(
            "MANO parameters need `global_orient` and `hand_pose`; the file has {}",
            keys()
        )));
    };
    // Frames: a leading dimension, or none for a single frame.
    let frames = orient.data.len() / 3;
    if orient.data.len() != 3 * frames || frames == 0 {
        return Err(err(format!(
            "`global_orient` has shape {:?}; expected (frames, 3)",
            orient.shape
        )));
    }
    if hand_pose.data.len() != (POSE_DIM - 3) * frames {
        return Err(err(format!(
            "`hand_pose` has shape {:?}; expected ({frames}, 45) to match `global_orient`",
            hand_pose.shape
        )));
    }
    let per_frame = |key: &str, width: usize| -> Result<Option<Vec<f64>>, PoseError> {
        match get(key)? {
            None => Ok(None),
            Some(a) if a.data.len() == width * frames => Ok(Some(a.data)),
            Some(a) => Err(err(format!(
                "`{key}` has shape {:?}; expected ({frames}, {width})",
                a.shape
            ))),
        }
    };
    let transl = per_frame("transl", 3)?;
    let scale = per_frame("scale", 1)?;
    let is_right = per_frame("is_right", 1)?;
    let fps = match get("fps")? {
        Some(a) if a.data.len() == 1 => a.data[0] as f32,
        Some(a) => return Err(err(format!("`fps` has shape {:?}; expected ()", a.shape))),
        None => DEFAULT_FPS,
    };
    if !(fps.is_finite() && fps > 0.0 && fps <= 10_000.0) {
        return Err(err(format!("`fps` {fps} is not in 0..10000")));
    }
    let value = |key: &str, i: usize, v: f64| -> Result<f32, PoseError> {
        if v.is_finite() && v.abs() <= MAX_ABS_VALUE {
            Ok(v as f32)
        } else {
            Err(err(format!(
                "`{key}` holds {v} (frame {}); values must be finite and at most {MAX_ABS_VALUE}",
                i
            )))
        }
    };
    let mut out = Vec::with_capacity(frames);
    for i in 0..frames {
        let mut f = PoseFrame::default();
        for k in 0..3 {
            f.pose[k] = value("global_orient", i, orient.data[3 * i + k])?;
        }
        for k in 0..POSE_DIM - 3 {
            f.pose[3 + k] = value("hand_pose", i, hand_pose.data[45 * i + k])?;
        }
        if let Some(t) = &transl {
            for k in 0..3 {
                f.trans[k] = value("transl", i, t[3 * i + k])?;
            }
        }
        if let Some(s) = &scale {
            f.scale = value("scale", i, s[i])?;
            if f.scale <= 0.0 {
                return Err(err(format!(
                    "`scale` of frame {i} is {}, not positive",
                    f.scale
                )));
            }
        }
        if let Some(r) = &is_right {
            f.hand = Some(if r[i] > 0.5 {
                Handedness::Right
            } else {
                Handedness::Left
            });
        }
        out.push(f);
    }
    Ok(PoseSequence {
        fps,
        frames: out,
        labels: None,
        source: Some(path.to_path_buf()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_headers_are_64_byte_aligned_and_readable() {
        let b = npy_f32(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let header_len = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert!(
            std::str::from_utf8(&b[10..10 + header_len])
                .unwrap()
                .contains("(2, 3)")
        );
        assert_eq!(b.len(), 10 + header_len + 24);
    }

    #[test]
    fn sequences_round_trip_through_npz() {
        let frame = |k: f32, hand| PoseFrame {
            pose: std::array::from_fn(|i| (i as f32 * 0.31 + k).sin()),
            trans: [k, -0.5, 30.0],
            scale: 1.0 + 0.1 * k,
            hand,
            sh: None,
        };
        let seq = PoseSequence {
            fps: 24.0,
            frames: vec![
                frame(0.0, Some(Handedness::Right)),
                frame(1.0, Some(Handedness::Left)),
            ],
            labels: None,
            source: None,
        };
        let back = from_npz(Path::new("p.npz"), &to_npz(&seq)).unwrap();
        assert_eq!(back.fps, 24.0);
        assert_eq!(back.frames, seq.frames);
    }

    #[test]
    fn broken_npz_files_name_the_problem() {
        let p = Path::new("bad.npz");
        let good = to_npz(&PoseSequence::single(PoseFrame::default()));
        let e = from_npz(p, &good[..good.len() / 2])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("bad.npz") && e.contains("corrupt"), "{e}");
        let mut nan = PoseSequence::single(PoseFrame::default());
        nan.frames[0].pose[7] = f32::NAN;
        let e = from_npz(p, &to_npz(&nan)).unwrap_err().to_string();
        assert!(e.contains("hand_pose") && e.contains("NaN"), "{e}");
    }
}
