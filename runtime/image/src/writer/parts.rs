//! Appending frames whose bytes live outside the writer: frames compressed by other processes
//! (handed over through shared memory) and raw frames gathered from scattered memory.

use super::ImageWriter;
use crate::error::{ImageError, Result};
use crate::format::MAX_FRAME_RAW;
use crate::frame::{Codec, EncodedFrame, FrameEntry};
use std::io::Write;

/// Bytes copied at a time by [`ImageWriter::append_raw_pieces`].
const BOUNCE: usize = 256 << 10;

/// What the index records about a frame besides its place in the file: plain data, so a
/// compressor in another process can pass it over shared memory beside the stored bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameInfo {
    /// `true` for zstd, `false` for raw.
    pub zstd: bool,
    pub raw_len: u32,
    pub stored_len: u32,
    pub raw_xxh3: u64,
    pub stored_xxh3: u64,
}

impl FrameInfo {
    /// The description of a frame encoded by [`crate::FrameEncoder::encode_into`].
    pub fn of(f: &EncodedFrame) -> Result<FrameInfo> {
        let zstd = match f.codec {
            Some(Codec::Zstd) => true,
            Some(Codec::Raw) => false,
            _ => return Err(ImageError::Misuse("describing an unencoded frame".into())),
        };
        Ok(FrameInfo {
            zstd,
            raw_len: f.raw_len,
            stored_len: f.data.len() as u32,
            raw_xxh3: f.raw_xxh3,
            stored_xxh3: f.stored_xxh3,
        })
    }
}

impl<W: Write> ImageWriter<W> {
    /// Appends a frame encoded elsewhere: `stored` holds its `info.stored_len` stored bytes.
    /// The checksums are the encoder's; readers verify them when decoding.
    pub fn append_stored(&mut self, info: &FrameInfo, stored: &[u8]) -> Result<()> {
        if stored.len() != info.stored_len as usize
            || info.raw_len == 0
            || info.raw_len as usize > MAX_FRAME_RAW
            || (!info.zstd && info.stored_len != info.raw_len)
            || (info.zstd && info.stored_len >= info.raw_len)
        {
            return Err(ImageError::Misuse(format!(
                "inconsistent frame: {} stored bytes for {info:?}",
                stored.len()
            )));
        }
        self.flush_pending()?;
        let codec = if info.zstd { Codec::Zstd } else { Codec::Raw };
        let entry = self.next_entry(codec, info.raw_len, info.stored_len)?;
        self.out.put(stored)?;
        self.push_entry(FrameEntry {
            stored_xxh3: info.stored_xxh3,
            raw_xxh3: info.raw_xxh3,
            ..entry
        });
        Ok(())
    }

    /// Appends one raw frame made of `pieces` (1 byte to 4 MiB in all). Each piece passes
    /// through a small buffer that is hashed and written: the pieces may include memory that
    /// changes while the image is written (the writer's own stack and heap), and the checksum
    /// must describe exactly the bytes written. A cache-sized buffer keeps that copy cheap.
    pub fn append_raw_pieces(&mut self, pieces: &[&[u8]]) -> Result<()> {
        let raw_len: usize = pieces.iter().map(|p| p.len()).sum();
        if raw_len == 0 || raw_len > MAX_FRAME_RAW {
            return Err(ImageError::Misuse(format!(
                "a frame holds 1 to {MAX_FRAME_RAW} raw bytes, not {raw_len}"
            )));
        }
        self.flush_pending()?;
        let entry = self.next_entry(Codec::Raw, raw_len as u32, raw_len as u32)?;
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut bounce = std::mem::take(&mut self.pending);
        let mut res = Ok(());
        'all: for p in pieces {
            for chunk in p.chunks(BOUNCE) {
                bounce.clear();
                bounce.extend_from_slice(chunk);
                hasher.update(&bounce);
                res = self.out.put(&bounce);
                if res.is_err() {
                    break 'all;
                }
            }
        }
        bounce.clear();
        self.pending = bounce;
        res?;
        let sum = hasher.digest();
        self.push_entry(FrameEntry {
            stored_xxh3: sum,
            raw_xxh3: sum,
            ..entry
        });
        Ok(())
    }

    /// The index entry of a frame appended now (checksums left zero), after checking that its
    /// raw bytes stay within the declared runs.
    fn next_entry(&mut self, codec: Codec, raw_len: u32, stored_len: u32) -> Result<FrameEntry> {
        let raw = u64::from(raw_len);
        if self.framed + raw > self.declared {
            return Err(ImageError::Misuse(format!(
                "frame of {raw} bytes goes past the declared runs ({} of {} bytes covered)",
                self.framed, self.declared
            )));
        }
        while self.runs[self.locate_cursor].stream_offset + self.runs[self.locate_cursor].len
            <= self.framed
        {
            self.locate_cursor += 1;
        }
        let run = self.runs[self.locate_cursor];
        Ok(FrameEntry {
            offset: self.out.pos,
            stored_len,
            raw_len,
            codec,
            stored_xxh3: 0,
            raw_xxh3: 0,
            region: run.region,
            region_offset: run.offset + (self.framed - run.stream_offset),
        })
    }

    fn push_entry(&mut self, entry: FrameEntry) {
        self.framed += u64::from(entry.raw_len);
        self.stored_bytes += u64::from(entry.stored_len);
        self.frames.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use crate::{EncodedFrame, Prot, RegionFlags, writer::FrameInfo};
    use crate::{FrameEncoder, Header, Image, ImageWriter, RegionMeta, WriterOptions};

    fn meta(start: u64, len: u64) -> RegionMeta {
        RegionMeta {
            start,
            len,
            prot: Prot(3),
            flags: RegionFlags(RegionFlags::ANONYMOUS),
            path: String::new(),
            offset: 0,
            dev: 0,
            inode: 0,
        }
    }

    /// Frames appended from outside (compressed elsewhere, raw from pieces) read back as the
    /// same bytes as frames written through `write_data`.
    #[test]
    fn stored_and_raw_piece_frames_read_back() {
        let a: Vec<u8> = (0..3 * 8192u32).map(|i| (i % 251) as u8).collect();
        let b: Vec<u8> = (0..8192u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let opts = WriterOptions {
            level: Some(1),
            frame_size: 8192,
        };
        let mut w = ImageWriter::new(Vec::new(), &Header::new(), opts).unwrap();
        let r0 = w.add_region(meta(0x10000, 0x8000)).unwrap();
        let r1 = w.add_region(meta(0x20000, 0x4000)).unwrap();
        w.add_run(r0, 0x1000, a.len() as u64).unwrap();
        w.add_run(r1, 0x2000, b.len() as u64).unwrap();
        let stream: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        let mut enc = FrameEncoder::new(Some(1)).unwrap();
        let mut f = EncodedFrame::with_capacity(8192);
        // Frame 0 compressed "elsewhere", frame 1 raw from two pieces, frames 2 and 3 mixed.
        enc.encode_into(&stream[..8192], &mut f).unwrap();
        let info = FrameInfo::of(&f).unwrap();
        assert!(info.zstd);
        w.append_stored(&info, f.stored()).unwrap();
        w.append_raw_pieces(&[&stream[8192..10000], &stream[10000..16384]])
            .unwrap();
        enc.encode_into(&stream[16384..24576], &mut f).unwrap();
        w.append_stored(&FrameInfo::of(&f).unwrap(), f.stored())
            .unwrap();
        w.append_raw_pieces(&[&stream[24576..]]).unwrap();
        let bad = FrameInfo {
            stored_len: 3,
            ..info
        };
        assert!(w.append_stored(&bad, &[1, 2]).is_err());
        let (bytes, stats) = w.finish().unwrap();
        assert_eq!(stats.frames, 4);
        assert_eq!(stats.raw_bytes, stream.len() as u64);
        let img = Image::open(bytes).unwrap();
        img.verify_all().unwrap();
        let mut r0buf = vec![0u8; 0x8000];
        img.read_region_into(crate::RegionId(0), &mut r0buf)
            .unwrap();
        assert_eq!(&r0buf[0x1000..0x1000 + a.len()], &a[..]);
        assert!(r0buf[..0x1000].iter().all(|&x| x == 0));
        let mut r1buf = vec![0u8; 0x4000];
        img.read_region_into(crate::RegionId(1), &mut r1buf)
            .unwrap();
        assert_eq!(&r1buf[0x2000..], &b[..]);
    }

    #[test]
    fn frames_past_the_declared_runs_are_refused() {
        let mut w = ImageWriter::new(Vec::new(), &Header::new(), WriterOptions::default()).unwrap();
        let r = w.add_region(meta(0x10000, 0x2000)).unwrap();
        w.add_run(r, 0, 4096).unwrap();
        assert!(w.append_raw_pieces(&[&[0u8; 8192]]).is_err());
        assert!(w.append_raw_pieces(&[]).is_err());
        w.append_raw_pieces(&[&[5u8; 4096]]).unwrap();
        w.finish().unwrap();
    }
}
