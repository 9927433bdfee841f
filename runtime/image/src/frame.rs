//! Frames: independently compressed chunks of the raw data stream, and their codecs.

use crate::error::{ImageError, Result};
use crate::format::{MAX_FRAME_RAW, checksum};
use serde::{Deserialize, Serialize};

/// How a frame's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Codec {
    /// Stored as is.
    Raw,
    /// One zstd frame.
    Zstd,
    /// Nothing stored here (format version 2): the raw bytes are frame `frame` of parent image
    /// `parent` (an index into the header's `image.parents` section, see `chain`).
    Ref { parent: u32, frame: u32 },
}

/// One entry of the frame index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameEntry {
    /// File offset of the stored bytes.
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
    pub codec: Codec,
    /// XXH3-64 of the stored bytes.
    pub stored_xxh3: u64,
    /// XXH3-64 of the raw (decoded) bytes.
    pub raw_xxh3: u64,
    /// The region and offset within it of the frame's first raw byte.
    pub region: u32,
    pub region_offset: u64,
}

/// A frame ready to append: produced by [`FrameEncoder::encode_into`] (on any thread) and handed
/// to [`crate::ImageWriter::append_frame`] in stream order.
#[derive(Debug, Clone, Default)]
pub struct EncodedFrame {
    pub(crate) codec: Option<Codec>,
    pub(crate) raw_len: u32,
    pub(crate) raw_xxh3: u64,
    pub(crate) stored_xxh3: u64,
    pub(crate) data: Vec<u8>,
}

impl EncodedFrame {
    /// An empty frame holder; `encode_into` fills it and reuses its buffer.
    pub fn new() -> Self {
        Self::default()
    }
    /// A holder whose buffer already fits any frame of up to `raw_len` bytes, so encoding
    /// into it does not allocate.
    pub fn with_capacity(raw_len: usize) -> Self {
        let mut f = Self::default();
        f.data.reserve_exact(FrameEncoder::out_capacity(raw_len));
        f
    }
    pub fn codec(&self) -> Option<Codec> {
        self.codec
    }
    pub fn raw_len(&self) -> usize {
        self.raw_len as usize
    }
    pub fn stored(&self) -> &[u8] {
        &self.data
    }
}

/// A reusable compressor: one zstd context and one output buffer, allocated up front so that
/// encoding does not allocate (important inside the checkpoint's frozen window).
pub struct FrameEncoder {
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl FrameEncoder {
    /// `level: None` stores every frame raw (`--no-gzip`); `Some(l)` uses zstd level `l`.
    ///
    /// zstd allocates its working memory with the C `malloc` on the first compression, which
    /// must not happen while the program's threads are frozen (one may hold malloc's lock). So
    /// the context is warmed up here with a full-size frame: later frames of up to 4 MiB reuse
    /// that memory. Create encoders before freezing.
    pub fn new(level: Option<i32>) -> Result<Self> {
        let compressor = match level {
            None => None,
            Some(l) => {
                let mut c = zstd::bulk::Compressor::new(l)
                    .map_err(ImageError::io("creating the zstd compressor"))?;
                let zeros = vec![0u8; MAX_FRAME_RAW];
                let mut out = Vec::with_capacity(Self::out_capacity(MAX_FRAME_RAW));
                c.compress_to_buffer(&zeros[..], &mut out)
                    .map_err(ImageError::io("warming up the zstd compressor"))?;
                Some(c)
            }
        };
        Ok(FrameEncoder { compressor })
    }

    /// Capacity `out` needs so that encoding a frame of `raw_len` bytes never reallocates.
    pub fn out_capacity(raw_len: usize) -> usize {
        zstd::zstd_safe::compress_bound(raw_len).max(raw_len)
    }

    /// Whether zstd is worth running on `raw`: compression is on and the frame does not look
    /// like random bytes (see [`looks_incompressible`]).
    pub fn worth_compressing(&self, raw: &[u8]) -> bool {
        self.compressor.is_some() && !looks_incompressible(raw)
    }

    /// Encodes `raw` (at most 4 MiB) into `out`, choosing raw storage when compression does not
    /// shrink it. Reuses `out`'s buffer.
    pub fn encode_into(&mut self, raw: &[u8], out: &mut EncodedFrame) -> Result<()> {
        let try_zstd = self.worth_compressing(raw);
        self.encode_with(raw, out, try_zstd)
    }

    /// [`encode_into`](Self::encode_into) for a frame [`worth_compressing`](Self::worth_compressing)
    /// already said yes to (the frame is not sampled again).
    pub fn compress_into(&mut self, raw: &[u8], out: &mut EncodedFrame) -> Result<()> {
        self.encode_with(raw, out, true)
    }

    fn encode_with(&mut self, raw: &[u8], out: &mut EncodedFrame, try_zstd: bool) -> Result<()> {
        if raw.is_empty() || raw.len() > MAX_FRAME_RAW {
            return Err(ImageError::Misuse(format!(
                "a frame holds 1 to {MAX_FRAME_RAW} raw bytes, not {}",
                raw.len()
            )));
        }
        out.raw_len = raw.len() as u32;
        out.raw_xxh3 = checksum(raw);
        out.data.clear();
        let mut codec = Codec::Raw;
        if let Some(c) = self.compressor.as_mut().filter(|_| try_zstd) {
            let need = Self::out_capacity(raw.len());
            if out.data.capacity() < need {
                out.data.reserve_exact(need);
            }
            let n = c
                .compress_to_buffer(raw, &mut out.data)
                .map_err(ImageError::io("compressing a frame"))?;
            if n < raw.len() {
                codec = Codec::Zstd;
            } else {
                out.data.clear();
            }
        }
        if codec == Codec::Raw {
            out.data.extend_from_slice(raw);
            out.stored_xxh3 = out.raw_xxh3;
        } else {
            out.stored_xxh3 = checksum(&out.data);
        }
        out.codec = Some(codec);
        Ok(())
    }
}

/// Frames at least this long are sampled before zstd runs on them.
const SAMPLED_FRAME: usize = 256 << 10;
const SAMPLES: usize = 4;
const SAMPLE: usize = 4096;
/// Bits per byte above which a sample counts as random. Uniform random bytes measure ~7.95 on
/// a 4 KiB sample (the estimate is biased low); text and heap data measure 3-6.
const RANDOM_BITS: f64 = 7.9;

/// Whether `raw` is (almost surely) random bytes, which zstd would spend ~1 ms per MiB on
/// only to store them raw: true when every one of a few samples spread over the frame has
/// the byte entropy of random data. Costs a histogram of 16 KiB per frame. A frame of
/// repeated random blocks (which zstd could shrink) is stored raw: larger, still correct.
fn looks_incompressible(raw: &[u8]) -> bool {
    if raw.len() < SAMPLED_FRAME {
        return false;
    }
    let step = (raw.len() - SAMPLE) / (SAMPLES - 1);
    (0..SAMPLES).all(|i| {
        let mut counts = [0u32; 256];
        for &b in &raw[i * step..i * step + SAMPLE] {
            counts[b as usize] += 1;
        }
        let n = SAMPLE as f64;
        let bits: f64 = counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = f64::from(c) / n;
                -p * p.log2()
            })
            .sum();
        bits > RANDOM_BITS
    })
}

/// Compresses one frame with a fresh context (convenience; reuse a [`FrameEncoder`] in loops).
pub fn compress_frame(raw: &[u8], level: Option<i32>) -> Result<EncodedFrame> {
    let mut out = EncodedFrame::new();
    FrameEncoder::new(level)?.encode_into(raw, &mut out)?;
    Ok(out)
}

/// A reusable decompression context plus a buffer for stored bytes.
pub struct FrameDecoder {
    pub(crate) decompressor: zstd::bulk::Decompressor<'static>,
    pub(crate) stored: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> Result<Self> {
        Ok(FrameDecoder {
            decompressor: zstd::bulk::Decompressor::new()
                .map_err(ImageError::io("creating the zstd decompressor"))?,
            stored: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incompressible_frames_are_stored_raw() {
        let mut x = 0x9e3779b97f4a7c15u64;
        let raw: Vec<u8> = (0..8192)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let f = compress_frame(&raw, Some(1)).unwrap();
        assert_eq!(f.codec(), Some(Codec::Raw));
        assert_eq!(f.stored(), &raw[..]);
        let z = compress_frame(&vec![7u8; 8192], Some(1)).unwrap();
        assert_eq!(z.codec(), Some(Codec::Zstd));
        assert!(z.stored().len() < 100);
        let n = compress_frame(&vec![7u8; 8192], None).unwrap();
        assert_eq!(n.codec(), Some(Codec::Raw));
    }

    fn random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn sampling_skips_random_frames_only() {
        let noise = random(1 << 20, 0x9e3779b97f4a7c15);
        assert!(looks_incompressible(&noise));
        assert!(
            !looks_incompressible(&noise[..SAMPLED_FRAME - 1]),
            "small: zstd decides"
        );
        // Text-like and heap-like content, and random data with one compressible stretch
        // that a sample hits: compressed.
        let text: Vec<u8> = b"checkpoint restart coordinator barrier "
            .iter()
            .copied()
            .cycle()
            .take(1 << 20)
            .collect();
        assert!(!looks_incompressible(&text));
        let mut mixed = noise.clone();
        mixed[..64 << 10].fill(0);
        assert!(!looks_incompressible(&mixed));
        let f = compress_frame(&mixed, Some(-1)).unwrap();
        assert_eq!(f.codec(), Some(Codec::Zstd));
        let r = compress_frame(&noise, Some(-1)).unwrap();
        assert_eq!(r.codec(), Some(Codec::Raw));
        assert_eq!(r.stored(), &noise[..]);
    }

    #[test]
    fn empty_and_oversized_frames_are_refused() {
        assert!(compress_frame(&[], Some(1)).is_err());
        assert!(compress_frame(&vec![0; MAX_FRAME_RAW + 1], Some(1)).is_err());
    }
}
