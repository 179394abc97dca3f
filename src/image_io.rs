//! Writing images and files safely.

use std::path::Path;

use anyhow::Context;

/// The hidden file beside `path` a write goes to before it is renamed into place:
/// `.NAME{suffix}` in the same folder (so the rename never crosses file systems).
pub fn hidden_sibling(path: &Path, suffix: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))?;
    Ok(dir.join(format!(".{}{suffix}", name.to_string_lossy())))
}

/// Writes `bytes` to `path` via a temporary sibling file and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = hidden_sibling(path, ".tmp")?;
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// An 8-bit RGB(A) image in memory, row-major, row 0 at the top.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgba8 {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<[u8; 4]>,
}

impl Rgba8 {
    /// Converts linear-[0,1] RGB floats to 8 bits (rounded, clamped), alpha 255.
    pub fn from_rgb_f32(width: u32, height: u32, rgb: &[[f32; 3]]) -> Self {
        let q = |x: f32| (x.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
        Self {
            width,
            height,
            pixels: rgb
                .iter()
                .map(|c| [q(c[0]), q(c[1]), q(c[2]), 255])
                .collect(),
        }
    }

    /// Saves as PNG (RGB, alpha dropped).
    pub fn save_png(&self, path: &Path) -> anyhow::Result<()> {
        let rgb: Vec<u8> = self
            .pixels
            .iter()
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        let img = image::RgbImage::from_raw(self.width, self.height, rgb)
            .context("image buffer size does not match its dimensions")?;
        let mut bytes = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .context("PNG encoding failed")?;
        write_atomically(path, &bytes)
    }

    /// Loads a PNG (or any format `image` reads) as RGBA8.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let img = image::open(path)
            .with_context(|| format!("cannot read image {}", path.display()))?
            .to_rgba8();
        let (width, height) = img.dimensions();
        Ok(Self {
            width,
            height,
            pixels: img.pixels().map(|p| p.0).collect(),
        })
    }
}

/// Peak signal-to-noise ratio of two equally sized images over the RGB channels of the
/// pixels where `mask` is true (all pixels when `None`), in dB (∞ when identical).
pub fn psnr(a: &Rgba8, b: &Rgba8, mask: Option<&[bool]>) -> f64 {
    let mut se = 0.0f64;
    let mut n = 0usize;
    for (i, (pa, pb)) in a.pixels.iter().zip(&b.pixels).enumerate() {
        if mask.is_some_and(|m| !m[i]) {
            continue;
        }
        for k in 0..3 {
            let d = pa[k] as f64 - pb[k] as f64;
            se += d * d;
        }
        n += 3;
    }
    if n == 0 || se == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64 * 255.0 / (se / n as f64)).log10()
}
