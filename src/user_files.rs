//! Reading a user's file whole with a size cap, checked before reading and again while
//! reading (for a file that grows meanwhile): the one way avatar, checkpoint, MANO and pose
//! files are read, so none allocates more than its cap.

use std::io::Read;
use std::path::Path;

/// `path`'s bytes, or the problem in words ("it is 2.0 GB; `what` are at most 512 MB");
/// callers put the file's name in front.
pub fn read_capped(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if meta.is_dir() {
        return Err("it is a folder, not a file".into());
    }
    if meta.len() > cap {
        return Err(format!(
            "it is {}; {what} are at most {} MB",
            size_text(meta.len()),
            cap >> 20
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(cap + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > cap {
        return Err("it grew past the size limit while being read".into());
    }
    Ok(bytes)
}

/// "2.0 GB", "512.3 MB".
fn size_text(bytes: u64) -> String {
    if bytes >= 1_000_000_000 {
        format!("{:.1} GB", bytes as f64 / 1e9)
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_checked_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.bin");
        std::fs::write(&f, vec![7u8; 3 << 20]).unwrap();
        assert_eq!(read_capped(&f, 4 << 20, "files").unwrap().len(), 3 << 20);
        let e = read_capped(&f, 2 << 20, "pose files").unwrap_err();
        assert_eq!(e, "it is 3.1 MB; pose files are at most 2 MB");
        assert!(
            read_capped(dir.path(), 1 << 20, "files")
                .unwrap_err()
                .contains("folder")
        );
        assert!(
            read_capped(&dir.path().join("none"), 1, "x")
                .unwrap_err()
                .starts_with("cannot read it")
        );
    }
}
