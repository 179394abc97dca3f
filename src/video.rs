//! MP4 (H.264) video without ffmpeg: rendered frames out, source footage in.
//!
//! OpenH264 (Cisco's BSD-licensed codec, compiled from the source the `openh264` crate
//! bundles) encodes and decodes; the `mp4` crate writes and reads the container. The encoder
//! speaks Annex B (start codes before each NAL unit) while MP4 samples hold length-prefixed
//! NAL units with the parameter sets in the track header (`avcC`); the two small converters
//! between them are here because neither crate has them.
//!
//! A video being written goes to a hidden `.NAME.part` file beside the output and is renamed
//! when finished, so the output path holds a complete, playable file or nothing.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use openh264::OpenH264API;
use openh264::decoder::Decoder;
use openh264::encoder::{
    BitRate, ColorPrimaries, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, RateControlMode,
    TransferCharacteristics, VuiConfig,
};
use openh264::formats::{RgbSliceU8, YUVBuffer};

use anyhow::Context;

use crate::image_io::Rgba8;

/// Track timescale: 90 kHz, the usual video clock, exact for 24, 25, 30 and 60 fps and
/// within 0.01 % for NTSC rates.
const TRACK_TIMESCALE: u32 = 90_000;
/// Largest frame side read (H.264 level 6.2 allows 8192 × 4320).
pub const MAX_SIDE: u32 = 8192;
/// Largest frame OpenH264 encodes (level 5.2): 3840 × 2160, either way round.
pub const MAX_ENCODED: (u32, u32) = (3840, 2160);
/// Default bit budget per pixel and frame: renders of a hand on a flat background stay well
/// above 40 dB PSNR with it.
const DEFAULT_BITS_PER_PIXEL: f64 = 0.25;

/// A problem with a video file, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct VideoError {
    pub path: PathBuf,
    pub problem: String,
}

fn err(path: &Path, problem: impl std::fmt::Display) -> VideoError {
    VideoError {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    }
}

/// Whether `path` names a video this module writes or reads (by extension).
pub fn is_video_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("mp4"))
}

/// The default bit rate for a `width` × `height` video at `fps`, bits per second.
pub fn default_bitrate(width: u32, height: u32, fps: f32) -> u32 {
    let bps = DEFAULT_BITS_PER_PIXEL * width as f64 * height as f64 * fps.max(1.0) as f64;
    bps.clamp(200_000.0, 100_000_000.0) as u32
}

/// Checks a frame size the encoder can take: even sides (4:2:0 chroma) up to
/// [`MAX_ENCODED`].
pub fn check_size(width: u32, height: u32) -> Result<(), String> {
    let (long, short) = (width.max(height), width.min(height));
    if short == 0 || long > MAX_ENCODED.0 || short > MAX_ENCODED.1 {
        return Err(format!(
            "a video frame of {width}x{height} is out of range: H.264 here goes up to {}x{}",
            MAX_ENCODED.0, MAX_ENCODED.1
        ));
    }
    if !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(format!(
            "H.264 video needs even width and height, not {width}x{height}: use {}x{}",
            width + width % 2,
            height + height % 2
        ));
    }
    Ok(())
}

/// Writes RGBA frames as an H.264 MP4.
pub struct VideoWriter {
    path: PathBuf,
    part: PathBuf,
    encoder: Encoder,
    mp4: Option<mp4::Mp4Writer<BufWriter<File>>>,
    width: u32,
    height: u32,
    /// Track ticks per frame at [`TRACK_TIMESCALE`].
    frame_ticks: u32,
    frames: u32,
    rgb: Vec<u8>,
}

impl VideoWriter {
    /// Starts a `width` × `height` video at `fps` frames a second; `bitrate` in bits per
    /// second (None: [`default_bitrate`]).
    pub fn create(
        path: &Path,
        width: u32,
        height: u32,
        fps: f32,
        bitrate: Option<u32>,
    ) -> Result<Self, VideoError> {
        check_size(width, height).map_err(|e| err(path, e))?;
        if !(fps.is_finite() && (0.1..=1000.0).contains(&fps)) {
            return Err(err(
                path,
                format!("frame rate {fps} is out of range (0.1..1000)"),
            ));
        }
        let bitrate = bitrate.unwrap_or_else(|| default_bitrate(width, height, fps));
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(fps))
            .rate_control_mode(RateControlMode::Bitrate)
            // Every frame is kept: a skipped frame would shorten the video.
            .skip_frames(false)
            // The colours as converted (BT.601 matrix, limited range) of sRGB images, said
            // in the stream so players do not guess BT.709 for HD sizes.
            .vui(
                VuiConfig::bt601()
                    .color_primaries(ColorPrimaries::Bt709)
                    .transfer_characteristics(TransferCharacteristics::Srgb),
            )
            // A key frame every two seconds, so players can seek.
            .intra_frame_period(IntraFramePeriod::from_num_frames(
                (fps * 2.0).round().max(1.0) as u32,
            ));
        let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| err(path, format!("cannot start the H.264 encoder: {e}")))?;
        // Frame skipping is off on purpose (every frame is kept), and OpenH264 warns about
        // that on stderr while starting, before the crate quiets its log: quiet it first.
        let mut quiet = openh264_sys2::WELS_LOG_QUIET;
        // SAFETY: the trace level is the one option OpenH264 accepts before initialisation;
        // it reads one u32 through the pointer, which lives across the call.
        unsafe {
            encoder.raw_api().set_option(
                openh264_sys2::ENCODER_OPTION_TRACE_LEVEL,
                (&raw mut quiet).cast(),
            );
        }
        let part = part_path(path)?;
        let file = File::create(&part)
            .map_err(|e| err(path, format!("cannot create {}: {e}", part.display())))?;
        let config = mp4::Mp4Config {
            major_brand: brand("isom"),
            minor_version: 512,
            compatible_brands: ["isom", "iso2", "avc1", "mp41"].map(brand).to_vec(),
            timescale: 1000,
        };
        let mp4 = mp4::Mp4Writer::write_start(BufWriter::new(file), &config)
            .map_err(|e| err(path, format!("cannot write: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            part,
            encoder,
            mp4: Some(mp4),
            width,
            height,
            frame_ticks: (TRACK_TIMESCALE as f64 / fps as f64).round().max(1.0) as u32,
            frames: 0,
            rgb: Vec::new(),
        })
    }

    /// Frames written so far.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Encodes one frame; it must have the video's size.
    pub fn push(&mut self, frame: &Rgba8) -> Result<(), VideoError> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(err(
                &self.path,
                format!(
                    "frame {} is {}x{}, the video is {}x{}",
                    self.frames, frame.width, frame.height, self.width, self.height
                ),
            ));
        }
        self.rgb.clear();
        self.rgb
            .extend(frame.pixels.iter().flat_map(|p| [p[0], p[1], p[2]]));
        let yuv = YUVBuffer::from_rgb8_source(RgbSliceU8::new(
            &self.rgb,
            (self.width as usize, self.height as usize),
        ));
        let annex_b = self
            .encoder
            .encode(&yuv)
            .map_err(|e| err(&self.path, format!("H.264 encoding failed: {e}")))?
            .to_vec();
        let sample = AvcSample::from_annex_b(&annex_b);
        let mp4 = self
            .mp4
            .as_mut()
            .ok_or_else(|| err(&self.path, "finished"))?;
        if self.frames == 0 {
            let (Some(sps), Some(pps)) = (&sample.sps, &sample.pps) else {
                return Err(err(&self.path, "the encoder's first frame has no SPS/PPS"));
            };
            let avc = mp4::AvcConfig {
                width: self.width as u16,
                height: self.height as u16,
                seq_param_set: sps.clone(),
                pic_param_set: pps.clone(),
            };
            mp4.add_track(&mp4::TrackConfig {
                track_type: mp4::TrackType::Video,
                timescale: TRACK_TIMESCALE,
                language: "und".into(),
                media_conf: mp4::MediaConfig::AvcConfig(avc),
            })
            .map_err(|e| err(&self.path, format!("cannot write: {e}")))?;
        }
        let sample = mp4::Mp4Sample {
            start_time: self.frames as u64 * self.frame_ticks as u64,
            duration: self.frame_ticks,
            rendering_offset: 0,
            is_sync: sample.is_idr,
            bytes: sample.data.into(),
        };
        mp4.write_sample(1, &sample)
            .map_err(|e| err(&self.path, format!("cannot write: {e}")))?;
        self.frames += 1;
        Ok(())
    }

    /// Writes the index and moves the finished file into place; returns the frame count.
    /// A video without frames is an error and leaves no file.
    pub fn finish(mut self) -> Result<u32, VideoError> {
        if self.frames == 0 {
            return Err(err(
                &self.path,
                "no frames were rendered, so no video was written",
            ));
        }
        let Some(mut mp4) = self.mp4.take() else {
            return Err(err(&self.path, "finished twice"));
        };
        mp4.write_end()
            .map_err(|e| err(&self.path, format!("cannot write: {e}")))?;
        mp4.into_writer()
            .into_inner()
            .map_err(|e| err(&self.path, format!("cannot write: {}", e.error())))?
            .sync_all()
            .map_err(|e| err(&self.path, format!("cannot write: {e}")))?;
        std::fs::rename(&self.part, &self.path)
            .map_err(|e| err(&self.path, format!("cannot write: {e}")))?;
        Ok(self.frames)
    }
}

impl Drop for VideoWriter {
    /// An unfinished video (an error, a cancel) leaves no file behind.
    fn drop(&mut self) {
        if self.mp4.take().is_some() {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

/// Where the frames of a render go: numbered PNGs in a folder, or a video (by `out`'s
/// extension).
pub enum FrameSink {
    Folder {
        dir: PathBuf,
        digits: usize,
    },
    /// The writer starts with the first frame, whose size it takes.
    Video {
        path: PathBuf,
        fps: f32,
        bitrate: Option<u32>,
        writer: Option<Box<VideoWriter>>,
    },
}

impl FrameSink {
    /// `count` frames (for the width of the PNG numbers) at `fps`; `kbps`: the video's bit
    /// rate.
    pub fn new(out: &Path, count: usize, fps: f32, kbps: Option<u32>) -> anyhow::Result<Self> {
        if is_video_path(out) {
            return Ok(Self::Video {
                path: out.to_path_buf(),
                fps,
                bitrate: kbps.map(|k| k * 1000),
                writer: None,
            });
        }
        std::fs::create_dir_all(out)
            .with_context(|| format!("cannot create folder {}", out.display()))?;
        Ok(Self::Folder {
            dir: out.to_path_buf(),
            digits: count.to_string().len().max(4),
        })
    }

    /// Writes frame `k`.
    pub fn push(&mut self, k: usize, image: &Rgba8) -> anyhow::Result<()> {
        match self {
            Self::Folder { dir, digits } => {
                let digits = *digits;
                image.save_png(&dir.join(format!("{k:0digits$}.png")))
            }
            Self::Video {
                path,
                fps,
                bitrate,
                writer,
            } => {
                // H.264 needs even sides: odd-sized footage loses its last column or row.
                let even;
                let image = if image.width % 2 == 1 || image.height % 2 == 1 {
                    even = crop_to_even(image);
                    &even
                } else {
                    image
                };
                let w = match writer {
                    Some(w) => w,
                    None => writer.insert(Box::new(VideoWriter::create(
                        path,
                        image.width,
                        image.height,
                        *fps,
                        *bitrate,
                    )?)),
                };
                Ok(w.push(image)?)
            }
        }
    }

    /// Closes a video (a playable file with the frames pushed so far).
    pub fn finish(self) -> anyhow::Result<()> {
        if let Self::Video {
            writer: Some(w), ..
        } = self
        {
            w.finish()?;
        }
        Ok(())
    }
}

/// `image` without its last column and/or row where those make a side odd.
pub fn crop_to_even(image: &Rgba8) -> Rgba8 {
    let (w, h) = (image.width & !1, image.height & !1);
    let pixels = (0..h as usize)
        .flat_map(|y| {
            let row = y * image.width as usize;
            image.pixels[row..row + w as usize].iter().copied()
        })
        .collect();
    Rgba8 {
        width: w,
        height: h,
        pixels,
    }
}

/// The hidden file a video is written to before it is complete: `.NAME.part` beside it.
pub fn part_path(path: &Path) -> Result<PathBuf, VideoError> {
    crate::image_io::hidden_sibling(path, ".part").map_err(|_| err(path, "not a file path"))
}

fn brand(s: &str) -> mp4::FourCC {
    let b = s.as_bytes();
    mp4::FourCC::from([b[0], b[1], b[2], b[3]])
}

/// One encoded frame as an MP4 sample: length-prefixed NAL units, with the parameter sets
/// taken out (they go in the track header).
struct AvcSample {
    data: Vec<u8>,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    is_idr: bool,
}

/// H.264 NAL unit types used here.
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;

impl AvcSample {
    fn from_annex_b(stream: &[u8]) -> Self {
        let mut out = Self {
            data: Vec::with_capacity(stream.len()),
            sps: None,
            pps: None,
            is_idr: false,
        };
        for nal in split_annex_b(stream) {
            match nal[0] & 0x1f {
                NAL_SPS => out.sps = Some(nal.to_vec()),
                NAL_PPS => out.pps = Some(nal.to_vec()),
                kind => {
                    out.is_idr |= kind == NAL_IDR;
                    out.data
                        .extend_from_slice(&(nal.len() as u32).to_be_bytes());
                    out.data.extend_from_slice(nal);
                }
            }
        }
        out
    }
}

/// The NAL units of an Annex B stream, start codes removed (empty units skipped).
fn split_annex_b(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(stream.len(), |&n| n - 3);
        // A four-byte start code leaves its leading zero on the previous unit.
        while end > s && stream[end - 1] == 0 && k + 1 < starts.len() {
            end -= 1;
        }
        if end > s {
            units.push(&stream[s..end]);
        }
    }
    units
}

/// Reads the frames of an H.264 MP4 in order.
pub struct VideoReader {
    path: PathBuf,
    mp4: mp4::Mp4Reader<BufReader<File>>,
    track: u32,
    samples: u32,
    next_sample: u32,
    /// Frames returned so far.
    decoded: u32,
    decoder: Decoder,
    /// SPS and PPS in Annex B, sent before the first sample.
    parameter_sets: Option<Vec<u8>>,
    file_len: u64,
    pub width: u32,
    pub height: u32,
    /// Frames a second, from the first sample's duration.
    pub fps: f32,
}

impl VideoReader {
    /// Opens `path` and finds its H.264 video track.
    pub fn open(path: &Path) -> Result<Self, VideoError> {
        let file = File::open(path).map_err(|e| err(path, format!("cannot read it: {e}")))?;
        let file_len = file
            .metadata()
            .map_err(|e| err(path, format!("cannot read it: {e}")))?
            .len();
        let mp4 = mp4::Mp4Reader::read_header(BufReader::new(file), file_len)
            .map_err(|e| err(path, format!("not a readable MP4 file ({e})")))?;
        let track = mp4
            .tracks()
            .values()
            .find(|t| matches!(t.media_type(), Ok(mp4::MediaType::H264)))
            .ok_or_else(|| err(path, "has no H.264 video track (only H.264 MP4s are read)"))?;
        let (width, height) = (track.width() as u32, track.height() as u32);
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(err(
                path,
                format!("video size {width}x{height} is out of range"),
            ));
        }
        let sps = track
            .sequence_parameter_set()
            .map_err(|e| err(path, format!("the video track has no SPS ({e})")))?;
        let pps = track
            .picture_parameter_set()
            .map_err(|e| err(path, format!("the video track has no PPS ({e})")))?;
        let mut parameter_sets = Vec::with_capacity(sps.len() + pps.len() + 8);
        for set in [sps, pps] {
            parameter_sets.extend_from_slice(&[0, 0, 0, 1]);
            parameter_sets.extend_from_slice(set);
        }
        let first_duration = track
            .trak
            .mdia
            .minf
            .stbl
            .stts
            .entries
            .first()
            .map_or(0, |e| e.sample_delta);
        let fps = if first_duration > 0 {
            track.timescale() as f32 / first_duration as f32
        } else {
            0.0
        };
        let (track_id, samples) = (track.track_id(), track.sample_count());
        let decoder = Decoder::new()
            .map_err(|e| err(path, format!("cannot start the H.264 decoder: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            mp4,
            track: track_id,
            samples,
            next_sample: 0,
            decoded: 0,
            decoder,
            parameter_sets: Some(parameter_sets),
            file_len,
            width,
            height,
            fps,
        })
    }

    /// Frames in the video.
    pub fn frame_count(&self) -> u32 {
        self.samples
    }

    /// Index of the frame [`VideoReader::next_frame`] returns next.
    pub fn position(&self) -> u32 {
        self.decoded
    }

    /// The next frame, or None after the last.
    pub fn next_frame(&mut self) -> Result<Option<Rgba8>, VideoError> {
        while self.next_sample < self.samples {
            let id = self.next_sample + 1;
            self.next_sample += 1;
            let sample = self
                .mp4
                .read_sample(self.track, id)
                .map_err(|e| err(&self.path, format!("frame {}: cannot read ({e})", id - 1)))?;
            let Some(sample) = sample else { continue };
            if sample.bytes.len() as u64 > self.file_len {
                return Err(err(
                    &self.path,
                    format!("frame {} is larger than the file", id - 1),
                ));
            }
            let mut packet = self.parameter_sets.take().unwrap_or_default();
            length_prefixed_to_annex_b(&sample.bytes, &mut packet)
                .map_err(|e| err(&self.path, format!("frame {}: {e}", id - 1)))?;
            let decoded = self
                .decoder
                .decode(&packet)
                .map_err(|e| err(&self.path, format!("frame {}: not decodable ({e})", id - 1)))?;
            if let Some(yuv) = decoded {
                let frame = to_rgba(&yuv).map_err(|e| err(&self.path, e))?;
                self.decoded += 1;
                return Ok(Some(frame));
            }
        }
        Ok(None)
    }

    /// Frame `index`, decoding forward from the current position (frames are read in order;
    /// an earlier frame reopens the file).
    pub fn frame(&mut self, index: u32) -> Result<Rgba8, VideoError> {
        if index >= self.samples {
            return Err(err(
                &self.path,
                format!("has {} frames, frame {index} was asked for", self.samples),
            ));
        }
        if index < self.decoded {
            *self = Self::open(&self.path)?;
        }
        loop {
            match self.next_frame()? {
                Some(f) if self.decoded > index => return Ok(f),
                Some(_) => {}
                None => {
                    return Err(err(
                        &self.path,
                        format!("frame {index} could not be decoded"),
                    ));
                }
            }
        }
    }
}

/// Appends an MP4 sample's length-prefixed NAL units to `out` with start codes.
fn length_prefixed_to_annex_b(mut data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    while !data.is_empty() {
        let Some((len, rest)) = data.split_first_chunk::<4>() else {
            return Err("a NAL unit length is cut off".into());
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > rest.len() {
            return Err(format!(
                "a NAL unit says {len} bytes, {} are left in the frame",
                rest.len()
            ));
        }
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(&rest[..len]);
        data = &rest[len..];
    }
    Ok(())
}

fn to_rgba(yuv: &openh264::decoder::DecodedYUV<'_>) -> Result<Rgba8, String> {
    use openh264::formats::YUVSource;
    let (w, h) = yuv.dimensions();
    if w == 0 || h == 0 || w > MAX_SIDE as usize || h > MAX_SIDE as usize {
        return Err(format!("a decoded frame of {w}x{h} is out of range"));
    }
    let mut bytes = vec![0u8; w * h * 4];
    yuv.write_rgba8(&mut bytes);
    Ok(Rgba8 {
        width: w as u32,
        height: h as u32,
        pixels: bytes
            .chunks_exact(4)
            .map(|p| [p[0], p[1], p[2], 255])
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test pattern: gradients plus a moving square, so frames differ.
    fn pattern(w: u32, h: u32, t: u32) -> Rgba8 {
        let mut pixels = Vec::with_capacity((w * h) as usize);
        for y in 0..h {
            for x in 0..w {
                let inside = (x + 100 - (t * 4) % 100) % 100 < 20 && y % 64 < 20;
                pixels.push(if inside {
                    [240, 30, 40, 255]
                } else {
                    [(x * 255 / w) as u8, (y * 255 / h) as u8, 128, 255]
                });
            }
        }
        Rgba8 {
            width: w,
            height: h,
            pixels,
        }
    }

    #[test]
    fn annex_b_splits_on_three_and_four_byte_start_codes() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 0,
        ];
        let units = split_annex_b(&stream);
        assert_eq!(units, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4, 0]]);
        let s = AvcSample::from_annex_b(&stream);
        assert_eq!(s.sps.as_deref(), Some(&[0x67, 1, 2][..]));
        assert_eq!(s.pps.as_deref(), Some(&[0x68, 3][..]));
        assert!(s.is_idr);
        assert_eq!(s.data, vec![0, 0, 0, 3, 0x65, 4, 0]);
        let mut back = Vec::new();
        length_prefixed_to_annex_b(&s.data, &mut back).unwrap();
        assert_eq!(back, vec![0, 0, 0, 1, 0x65, 4, 0]);
    }

    #[test]
    fn odd_footage_is_cropped_to_even_sides() {
        let img = pattern(5, 3, 0);
        let even = crop_to_even(&img);
        assert_eq!((even.width, even.height), (4, 2));
        assert_eq!(even.pixels[4], img.pixels[5], "row 1 starts where it did");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd.mp4");
        let mut sink = FrameSink::new(&path, 2, 10.0, None).unwrap();
        sink.push(0, &pattern(33, 17, 0)).unwrap();
        sink.push(1, &pattern(33, 17, 1)).unwrap();
        sink.finish().unwrap();
        let r = VideoReader::open(&path).unwrap();
        assert_eq!((r.width, r.height, r.frame_count()), (32, 16, 2));
    }

    #[test]
    fn truncated_nal_lengths_are_errors() {
        let mut out = Vec::new();
        assert!(length_prefixed_to_annex_b(&[0, 0, 0, 9, 1, 2], &mut out).is_err());
        assert!(length_prefixed_to_annex_b(&[0, 0], &mut out).is_err());
    }

    #[test]
    fn odd_sizes_are_refused_with_the_fix() {
        let e = check_size(301, 200).unwrap_err();
        assert!(e.contains("even") && e.contains("302x200"), "{e}");
        assert!(check_size(0, 2).is_err());
        assert!(check_size(3842, 2).is_err() && check_size(2160, 3840).is_ok());
        assert!(check_size(640, 480).is_ok());
    }

    #[test]
    fn a_written_video_reads_back_frame_for_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        let (w, h, n) = (96, 64, 12u32);
        let mut writer = VideoWriter::create(&path, w, h, 25.0, None).unwrap();
        assert!(!path.exists(), "the video appears only when finished");
        for t in 0..n {
            writer.push(&pattern(w, h, t)).unwrap();
        }
        assert_eq!(writer.finish().unwrap(), n);
        assert!(!part_path(&path).unwrap().exists());

        let mut reader = VideoReader::open(&path).unwrap();
        assert_eq!(
            (reader.width, reader.height, reader.frame_count()),
            (w, h, n)
        );
        assert!((reader.fps - 25.0).abs() < 1e-3, "{}", reader.fps);
        for t in 0..n {
            let frame = reader.next_frame().unwrap().expect("a frame");
            let db = crate::image_io::psnr(&frame, &pattern(w, h, t), None);
            assert!(db > 30.0, "frame {t}: {db:.1} dB");
        }
        assert!(reader.next_frame().unwrap().is_none());
        // Seeking back reopens; forward decodes on.
        let f3 = reader.frame(3).unwrap();
        assert!(crate::image_io::psnr(&f3, &pattern(w, h, 3), None) > 30.0);
        assert!(reader.frame(n).is_err());
    }

    #[test]
    fn a_dropped_writer_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.mp4");
        let mut writer = VideoWriter::create(&path, 32, 32, 30.0, None).unwrap();
        writer.push(&pattern(32, 32, 0)).unwrap();
        assert!(writer.push(&pattern(34, 32, 1)).is_err(), "wrong size");
        drop(writer);
        assert!(!path.exists() && !part_path(&path).unwrap().exists());
        let empty = VideoWriter::create(&path, 32, 32, 30.0, None).unwrap();
        assert!(
            empty
                .finish()
                .unwrap_err()
                .to_string()
                .contains("no frames")
        );
        assert!(!path.exists());
    }

    #[test]
    fn corrupt_files_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.mp4");
        std::fs::write(&junk, b"definitely not a movie, just some bytes").unwrap();
        let e = VideoReader::open(&junk).err().unwrap().to_string();
        assert!(e.contains("junk.mp4"), "{e}");

        // A real video cut in half: the index (written last) is gone.
        let good = dir.path().join("good.mp4");
        let mut writer = VideoWriter::create(&good, 64, 64, 30.0, None).unwrap();
        for t in 0..4 {
            writer.push(&pattern(64, 64, t)).unwrap();
        }
        writer.finish().unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let cut = dir.path().join("cut.mp4");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert!(VideoReader::open(&cut).is_err());
        // Flipped bytes in the frames: errors or frames, never a panic.
        let mut noisy = bytes.clone();
        for b in noisy.iter_mut().skip(64).step_by(7).take(200) {
            *b ^= 0x5a;
        }
        let noisy_path = dir.path().join("noisy.mp4");
        std::fs::write(&noisy_path, &noisy).unwrap();
        if let Ok(mut r) = VideoReader::open(&noisy_path) {
            for _ in 0..8 {
                match r.next_frame() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
