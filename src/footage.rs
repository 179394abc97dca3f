//! Source footage to draw the avatar over: one image, a folder of images matched to the pose
//! file's frames, or an MP4 video frame by frame (`xhand render --background-image`, the
//! viewer's "Source images…").

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::image_io::Rgba8;
use crate::video::VideoReader;

/// One image for every frame, a folder, or a video.
pub enum SourceFootage {
    One(Rgba8),
    /// The folder's images, sorted by name.
    Folder(Vec<PathBuf>),
    /// Frame `i` of the video under frame `i` of the sequence.
    Video(Box<VideoReader>),
}

impl SourceFootage {
    /// Opens an image, a folder of PNG/JPEG images or an `.mp4`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if crate::video::is_video_path(path) {
            return Ok(Self::Video(Box::new(VideoReader::open(path)?)));
        }
        if !path.is_dir() {
            return Ok(Self::One(Rgba8::load(path)?));
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot read folder {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str())
                })
            })
            .collect();
        files.sort();
        if files.is_empty() {
            anyhow::bail!("{}: no PNG or JPEG images in the folder", path.display());
        }
        Ok(Self::Folder(files))
    }

    /// How many frames it holds ("1 image", "120 images", "a 300-frame video").
    pub fn describe(&self) -> String {
        match self {
            Self::One(img) => format!("one {}x{} image", img.width, img.height),
            Self::Folder(files) if files.len() == 1 => "1 image".into(),
            Self::Folder(files) => format!("{} images", files.len()),
            Self::Video(v) => format!(
                "a {}x{} video of {} frames",
                v.width,
                v.height,
                v.frame_count()
            ),
        }
    }

    /// The image of frame `i`: the one named like the frame's label (HaMeR's image name),
    /// else the `i`-th by name; a video's `i`-th frame.
    pub fn frame(&mut self, i: usize, label: Option<&str>) -> anyhow::Result<Cow<'_, Rgba8>> {
        let files = match self {
            Self::One(img) => return Ok(Cow::Borrowed(img)),
            Self::Folder(files) => files,
            Self::Video(reader) => {
                let index = u32::try_from(i).unwrap_or(u32::MAX);
                return Ok(Cow::Owned(reader.frame(index)?));
            }
        };
        let named = label.and_then(|l| {
            let name = Path::new(l).file_name()?;
            files.iter().find(|f| f.file_name() == Some(name))
        });
        let file = named.or_else(|| files.get(i)).with_context(|| {
            format!(
                "no source image for frame {i}{}: the folder has {} images",
                label.map(|l| format!(" ({l})")).unwrap_or_default(),
                files.len()
            )
        })?;
        Ok(Cow::Owned(Rgba8::load(file)?))
    }
}

/// The hand drawn over `background` where `mask` says it covers.
pub fn over(hand: &Rgba8, mask: &[bool], background: &Rgba8) -> Rgba8 {
    let mut out = background.clone();
    for ((o, h), &m) in out.pixels.iter_mut().zip(&hand.pixels).zip(mask) {
        if m {
            *o = *h;
        }
    }
    out
}

/// `image` (alpha: how much the hand covers) blended over `background` of the same size.
pub fn over_by_alpha(image: &Rgba8, background: &Rgba8) -> Rgba8 {
    let mut out = background.clone();
    for (o, p) in out.pixels.iter_mut().zip(&image.pixels) {
        let a = p[3] as u32;
        for k in 0..3 {
            o[k] = ((p[k] as u32 * a + o[k] as u32 * (255 - a) + 127) / 255) as u8;
        }
        o[3] = 255;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, c: [u8; 4]) -> Rgba8 {
        Rgba8 {
            width: w,
            height: h,
            pixels: vec![c; (w * h) as usize],
        }
    }

    #[test]
    fn folders_match_frames_by_label_then_order() {
        let dir = tempfile::tempdir().unwrap();
        for (name, v) in [("b.png", 20u8), ("a.jpg", 10), ("frame_7.png", 70)] {
            let img = image::RgbImage::from_pixel(4, 2, image::Rgb([v, v, v]));
            img.save(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
        let mut f = SourceFootage::open(dir.path()).unwrap();
        assert_eq!(f.describe(), "3 images");
        assert_eq!(f.frame(0, None).unwrap().pixels[0][0], 10);
        assert_eq!(
            f.frame(0, Some("imgs/frame_7.png")).unwrap().pixels[0][0],
            70
        );
        let e = f.frame(5, Some("x.png")).unwrap_err().to_string();
        assert!(e.contains("frame 5") && e.contains("3 images"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        assert!(SourceFootage::open(empty.path()).is_err());
    }

    #[test]
    fn blending_by_alpha_keeps_the_background_where_nothing_covers() {
        let bg = solid(2, 1, [200, 100, 0, 255]);
        let mut hand = solid(2, 1, [0, 0, 250, 0]);
        hand.pixels[1] = [0, 0, 250, 255];
        let out = over_by_alpha(&hand, &bg);
        assert_eq!(out.pixels, vec![[200, 100, 0, 255], [0, 0, 250, 255]]);
    }
}
