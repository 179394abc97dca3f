//! Reading what XHand's PyTorch code writes, without Python and without executing anything:
//! `torch.save` checkpoints ([`checkpoint`]), the MANO model pickle ([`mano`]), both through
//! an inert pickle reader ([`pickle`]); and turning them into an xhand avatar ([`import`]).
//! docs/formats.md lists what is read, the allow-list and the limits.

pub mod checkpoint;
pub mod import;
pub mod mano;
pub(crate) mod npz;
pub mod pickle;
pub mod xhand;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use import::{ImportReport, Imported, import};

/// A problem with a checkpoint or MANO file: which file and what.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct ImportError {
    pub path: PathBuf,
    pub problem: String,
}

impl ImportError {
    pub(crate) fn new(path: &Path, problem: String) -> Self {
        Self {
            path: path.to_path_buf(),
            problem,
        }
    }
}

/// Whether `path` looks like a PyTorch checkpoint rather than a safetensors avatar: by its
/// extension, or by the zip signature `torch.save` files start with.
pub fn is_checkpoint(path: &Path) -> bool {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if matches!(ext.as_deref(), Some("pth" | "pt" | "ckpt" | "tar")) {
        return true;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"PK\x03\x04"
}

/// The hand an XHand checkpoint was trained for (its `hand_type`; right when absent), read
/// without importing it — to pick the MANO file before importing.
pub fn checkpoint_hand(path: &Path) -> Result<crate::hand::Handedness, ImportError> {
    let ck = checkpoint::Checkpoint::open(path)?;
    let xh = xhand::XHandCheckpoint::from_checkpoint(&ck)?;
    match xh.hand_type.as_deref() {
        None => Ok(crate::hand::Handedness::Right),
        Some(s) => crate::hand::Handedness::parse(s).ok_or_else(|| {
            ImportError::new(
                path,
                format!("its `hand_type` is `{s}`; expected `right` or `left`"),
            )
        }),
    }
}

/// Reads a whole file, refusing (before reading) one larger than `cap` bytes.
pub(crate) fn read_capped(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>, ImportError> {
    crate::user_files::read_capped(path, cap, what).map_err(|p| ImportError::new(path, p))
}
