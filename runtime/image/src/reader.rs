//! Validating image reader: checks every length, offset and checksum of the metadata before
//! trusting it, then decodes frames on demand (from any number of threads).

use crate::chain::{self, Parents};
use crate::error::{FrameCheck, ImageError, Part, Result};
use crate::format::{
    MAGIC, MAX_FRAME_RAW, MAX_HEADER_LEN, MAX_INDEX_LEN, MAX_TABLE_LEN, PRELUDE_LEN, Prelude,
    TRAILER_LEN, Trailer, checksum,
};
use crate::frame::{Codec, FrameDecoder, FrameEntry};
use crate::header::Header;
use crate::region::{Region, RegionId, Storage};
use crate::source::Source;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Where a slice of a frame's raw bytes belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub region: RegionId,
    /// Offset within the region.
    pub region_offset: u64,
    /// Offset within the frame's raw bytes.
    pub frame_offset: u64,
    pub len: u64,
}

/// Per-thread state of [`Image::for_frames_parallel`].
pub struct FrameScratch {
    pub dec: FrameDecoder,
    buf: Vec<u8>,
    max: usize,
}

impl FrameScratch {
    /// A buffer that holds any frame of the batch (allocated on first use).
    pub fn buffer(&mut self) -> &mut [u8] {
        if self.buf.len() < self.max {
            self.buf.resize(self.max, 0);
        }
        &mut self.buf
    }

    /// The buffer and the decoder at once (to decode into the buffer).
    pub fn split(&mut self) -> (&mut [u8], &mut FrameDecoder) {
        if self.buf.len() < self.max {
            self.buf.resize(self.max, 0);
        }
        (&mut self.buf, &mut self.dec)
    }
}

/// Totals computed by [`Image::verify_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VerifyStats {
    pub frames: usize,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
}

/// A run's place in the raw stream, sorted by `stream_offset`.
#[derive(Debug, Clone, Copy)]
struct StreamRun {
    stream_offset: u64,
    len: u64,
    region: u32,
    region_offset: u64,
}

/// An opened, validated image.
pub struct Image<S: Source> {
    source: S,
    header: Header,
    regions: Vec<Region>,
    frames: Vec<FrameEntry>,
    /// Raw-stream offset of each frame, plus the total at the end.
    frame_stream: Vec<u64>,
    stream_runs: Vec<StreamRun>,
    trailer: Trailer,
    /// Parent images of an incremental image (see `chain`).
    chain: Parents,
}

impl Image<std::fs::File> {
    /// Opens and validates the image file at `path`.
    pub fn open_path(path: &Path) -> Result<Self> {
        let f = std::fs::File::open(path).map_err(ImageError::io("opening the image"))?;
        let mut image = Image::open(f)?;
        if !image.parents().is_empty() {
            image.attach_parents(path.parent().unwrap_or(Path::new(".")))?;
        }
        Ok(image)
    }
}

/// Reads and checks only the prelude and the header (cheap; for compatibility checks before a
/// restart). Does not look at the rest of the file.
pub fn read_header<S: Source>(source: &S) -> Result<Header> {
    let size = source
        .size()
        .map_err(ImageError::io("reading the image size"))?;
    let prelude = read_prelude(source, size)?;
    let header_len = u64::from(prelude.header_len);
    if header_len > MAX_HEADER_LEN {
        return Err(ImageError::TooLarge {
            part: Part::Header,
            len: header_len,
            limit: MAX_HEADER_LEN,
        });
    }
    if PRELUDE_LEN as u64 + header_len > size {
        return Err(ImageError::Incomplete { found: size });
    }
    let header: Header = read_checked(
        source,
        PRELUDE_LEN as u64,
        header_len,
        prelude.header_xxh3,
        Part::Header,
    )?;
    if !header.page_size.is_power_of_two() || header.page_size < 4096 {
        return Err(ImageError::malformed(
            Part::Header,
            format!(
                "page size {} is not a power of two >= 4096",
                header.page_size
            ),
        ));
    }
    Ok(header)
}

fn read_prelude<S: Source>(source: &S, size: u64) -> Result<Prelude> {
    let mut b = [0u8; PRELUDE_LEN];
    let have = size.min(PRELUDE_LEN as u64) as usize;
    source
        .read_exact_at(&mut b[..have], 0)
        .map_err(ImageError::io("reading the image"))?;
    if have < PRELUDE_LEN {
        let m = have.min(MAGIC.len());
        return Err(if b[..m] == MAGIC[..m] {
            ImageError::Incomplete { found: size }
        } else {
            ImageError::NotAnImage
        });
    }
    Prelude::decode(&b)
}

fn read_part<S: Source>(source: &S, offset: u64, len: u64, part: Part) -> Result<Vec<u8>> {
    // Callers have checked `offset + len` against the file size, so this is bounded by it.
    let mut buf = vec![0u8; len as usize];
    source
        .read_exact_at(&mut buf, offset)
        .map_err(|e| ImageError::Io {
            context: match part {
                Part::Header => "reading the image header",
                Part::RegionTable => "reading the region table",
                Part::FrameIndex => "reading the frame index",
                _ => "reading the image",
            },
            source: e,
        })?;
    Ok(buf)
}

/// Reads `part` at `offset`, checks its checksum, then decodes it.
fn read_checked<S: Source, T: DeserializeOwned>(
    source: &S,
    offset: u64,
    len: u64,
    xxh3: u64,
    part: Part,
) -> Result<T> {
    let bytes = read_part(source, offset, len, part)?;
    if checksum(&bytes) != xxh3 {
        return Err(ImageError::Checksum { part });
    }
    decode(&bytes, part)
}

fn decode<T: DeserializeOwned>(bytes: &[u8], part: Part) -> Result<T> {
    let (v, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| ImageError::malformed(part, format!("undecodable: {e}")))?;
    if !rest.is_empty() {
        return Err(ImageError::malformed(
            part,
            format!("{} trailing bytes", rest.len()),
        ));
    }
    Ok(v)
}

impl<S: Source> Image<S> {
    /// Opens an image: validates magic, version, trailer, header, region table and frame index
    /// (every length and offset against the file size before allocating). Frame data is checked
    /// when read ([`read_frame_into`](Self::read_frame_into), [`verify_all`](Self::verify_all)).
    pub fn open(source: S) -> Result<Self> {
        let size = source
            .size()
            .map_err(ImageError::io("reading the image size"))?;
        let prelude = read_prelude(&source, size)?;
        let header_end = PRELUDE_LEN as u64 + u64::from(prelude.header_len);
        if header_end + TRAILER_LEN as u64 > size {
            return Err(ImageError::Incomplete { found: size });
        }
        let mut tb = [0u8; TRAILER_LEN];
        source
            .read_exact_at(&mut tb, size - TRAILER_LEN as u64)
            .map_err(ImageError::io("reading the image trailer"))?;
        let trailer = Trailer::decode(&tb, size)?;
        check_layout(&trailer, prelude, header_end, size)?;

        let header = read_header(&source)?;
        let regions: Vec<Region> = read_checked(
            &source,
            trailer.table_offset,
            trailer.table_len,
            trailer.table_xxh3,
            Part::RegionTable,
        )?;
        let frames: Vec<FrameEntry> = read_checked(
            &source,
            trailer.index_offset,
            trailer.index_len,
            trailer.index_xxh3,
            Part::FrameIndex,
        )?;

        let frame_stream = check_frames(&frames, &trailer)?;
        let parents = chain::parents_of(&header)?;
        chain::check_refs(&frames, trailer.version, parents.len())?;
        check_regions(&regions, u64::from(header.page_size))?;
        let total_raw = *frame_stream.last().unwrap_or(&0);
        let stream_runs = check_stream(&regions, total_raw)?;
        let image = Image {
            source,
            header,
            regions,
            frames,
            frame_stream,
            stream_runs,
            trailer,
            chain: Parents {
                declared: parents,
                ..Parents::default()
            },
        };
        image.check_frame_locations()?;
        tracing::debug!(
            regions = image.regions.len(),
            frames = image.frames.len(),
            bytes = size,
            "image opened"
        );
        Ok(image)
    }

    pub fn header(&self) -> &Header {
        &self.header
    }
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }
    pub fn region(&self, id: RegionId) -> Result<&Region> {
        self.regions
            .get(id.0 as usize)
            .ok_or(ImageError::NoSuchRegion(id.0 as usize))
    }
    pub fn frames(&self) -> &[FrameEntry] {
        &self.frames
    }
    pub fn trailer(&self) -> &Trailer {
        &self.trailer
    }
    pub fn file_len(&self) -> u64 {
        self.trailer.file_len
    }
    pub fn source(&self) -> &S {
        &self.source
    }
    pub(crate) fn chain(&self) -> &Parents {
        &self.chain
    }
    pub(crate) fn chain_mut(&mut self) -> &mut Parents {
        &mut self.chain
    }
    /// Total saved (raw) bytes.
    pub fn raw_bytes(&self) -> u64 {
        *self.frame_stream.last().unwrap_or(&0)
    }

    /// The region containing `addr`.
    pub fn region_at(&self, addr: u64) -> Option<RegionId> {
        let i = self.regions.partition_point(|r| r.meta.end() <= addr);
        let r = self.regions.get(i)?;
        (r.meta.start <= addr).then_some(RegionId(i as u32))
    }

    /// Which parts of which regions frame `frame`'s raw bytes fill, in order.
    pub fn frame_pieces(&self, frame: usize) -> Result<Vec<Piece>> {
        let f = self
            .frames
            .get(frame)
            .ok_or(ImageError::NoSuchFrame(frame))?;
        let start = self.frame_stream[frame];
        let end = start + u64::from(f.raw_len);
        let mut out = Vec::new();
        let mut i = self
            .stream_runs
            .partition_point(|r| r.stream_offset + r.len <= start);
        while let Some(r) = self.stream_runs.get(i) {
            if r.stream_offset >= end {
                break;
            }
            let s = start.max(r.stream_offset);
            let e = end.min(r.stream_offset + r.len);
            out.push(Piece {
                region: RegionId(r.region),
                region_offset: r.region_offset + (s - r.stream_offset),
                frame_offset: s - start,
                len: e - s,
            });
            i += 1;
        }
        Ok(out)
    }

    /// Frame `frame`'s index entry and raw length, once `out_len` bytes are known to hold it.
    fn frame_for(&self, frame: usize, out_len: usize) -> Result<(FrameEntry, usize)> {
        let f = *self
            .frames
            .get(frame)
            .ok_or(ImageError::NoSuchFrame(frame))?;
        let raw = f.raw_len as usize;
        if out_len < raw {
            return Err(ImageError::BufferTooSmall {
                need: raw as u64,
                got: out_len as u64,
            });
        }
        Ok((f, raw))
    }

    /// Decodes frame `frame` into `out` (at least its raw length), verifying both checksums.
    /// Returns the raw length.
    pub fn read_frame_into(&self, frame: usize, out: &mut [u8]) -> Result<usize> {
        let mut dec = FrameDecoder::new()?;
        self.read_frame_with(frame, out, &mut dec)
    }

    /// Like [`read_frame_into`](Self::read_frame_into) with a reusable decoder.
    pub fn read_frame_with(
        &self,
        frame: usize,
        out: &mut [u8],
        dec: &mut FrameDecoder,
    ) -> Result<usize> {
        let (f, raw) = self.frame_for(frame, out.len())?;
        let out = &mut out[..raw];
        let fail = |check| ImageError::Frame {
            frame,
            location: self.frame_location(&f),
            check,
        };
        match f.codec {
            Codec::Raw => {
                self.source
                    .read_exact_at(out, f.offset)
                    .map_err(ImageError::io("reading image data"))?;
                if checksum(out) != f.stored_xxh3 {
                    return Err(fail(FrameCheck::Stored));
                }
            }
            Codec::Zstd => {
                dec.stored.resize(f.stored_len as usize, 0);
                self.source
                    .read_exact_at(&mut dec.stored, f.offset)
                    .map_err(ImageError::io("reading image data"))?;
                if checksum(&dec.stored) != f.stored_xxh3 {
                    return Err(fail(FrameCheck::Stored));
                }
                let n = dec
                    .decompressor
                    .decompress_to_buffer(&dec.stored[..], out)
                    .map_err(|_| fail(FrameCheck::Decode))?;
                if n != raw || checksum(out) != f.raw_xxh3 {
                    return Err(fail(FrameCheck::Raw));
                }
            }
            Codec::Ref { parent, frame: pf } => {
                // `attach_parents` checked that the parent's frame has this raw length and
                // checksum; reading it verifies its own checksums.
                let p = self.chain.opened.get(parent as usize).ok_or_else(|| {
                    self.chain.error(
                        parent as usize,
                        "is not attached (open the image by its path)",
                    )
                })?;
                p.read_frame_with(pf as usize, out, dec)?;
            }
        }
        Ok(raw)
    }

    /// Decodes frame `frame` into `out` (at least its raw length) with one integrity check: the
    /// checksum of the stored bytes, verified before they are decoded. The raw checksum of a
    /// zstd frame is not recomputed (decoding verified bytes is deterministic, and a length
    /// mismatch still fails), which saves a pass over the raw bytes on the restart path.
    /// Returns the raw length.
    pub fn read_frame_verified_stored(
        &self,
        frame: usize,
        out: &mut [u8],
        dec: &mut FrameDecoder,
    ) -> Result<usize> {
        let (f, raw) = self.frame_for(frame, out.len())?;
        if f.codec != Codec::Zstd {
            // Stored and raw bytes are the same (or a reference frame, read from its parent):
            // the one check is already the only one.
            return self.read_frame_with(frame, out, dec);
        }
        let fail = |check| ImageError::Frame {
            frame,
            location: self.frame_location(&f),
            check,
        };
        dec.stored.resize(f.stored_len as usize, 0);
        self.source
            .read_exact_at(&mut dec.stored, f.offset)
            .map_err(ImageError::io("reading image data"))?;
        if checksum(&dec.stored) != f.stored_xxh3 {
            return Err(fail(FrameCheck::Stored));
        }
        let n = dec
            .decompressor
            .decompress_to_buffer(&dec.stored[..], &mut out[..raw])
            .map_err(|_| fail(FrameCheck::Decode))?;
        if n != raw {
            return Err(fail(FrameCheck::Raw));
        }
        Ok(raw)
    }

    /// Runs `f(frame, scratch)` for each frame of `frames` on `threads` threads, each with its
    /// own decoder and a buffer able to hold any frame; `f` decodes the frame itself (straight
    /// into its destination when it can). Frames are taken in the order given. Stops at the
    /// first error and returns it.
    pub fn for_frames_parallel<F>(&self, frames: &[usize], threads: usize, f: F) -> Result<()>
    where
        S: Sync,
        F: Fn(usize, &mut FrameScratch) -> Result<()> + Sync,
    {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let first_err: Mutex<Option<ImageError>> = Mutex::new(None);
        let max = frames
            .iter()
            .filter_map(|&i| self.frames.get(i))
            .map(|f| f.raw_len as usize)
            .max()
            .unwrap_or(0);
        let worker = || {
            let run = || -> Result<()> {
                let mut scratch = FrameScratch {
                    dec: FrameDecoder::new()?,
                    buf: Vec::new(),
                    max,
                };
                while !stop.load(Ordering::Relaxed) {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = frames.get(k) else { break };
                    f(i, &mut scratch)?;
                }
                Ok(())
            };
            if let Err(e) = run() {
                stop.store(true, Ordering::Relaxed);
                first_err
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
            }
        };
        let threads = threads.clamp(1, frames.len().max(1));
        std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(worker);
            }
            worker();
        });
        match first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Reads and checks every frame.
    pub fn verify_all(&self) -> Result<VerifyStats> {
        let mut dec = FrameDecoder::new()?;
        let max = self
            .frames
            .iter()
            .map(|f| f.raw_len as usize)
            .max()
            .unwrap_or(0);
        let mut buf = vec![0u8; max];
        let mut stats = VerifyStats::default();
        for (i, f) in self.frames.iter().enumerate() {
            self.read_frame_with(i, &mut buf, &mut dec)?;
            stats.frames += 1;
            stats.raw_bytes += u64::from(f.raw_len);
            stats.stored_bytes += u64::from(f.stored_len);
        }
        Ok(stats)
    }

    /// The frame holding byte `offset` of region `id`, and that byte's offset in the frame's
    /// raw bytes; `None` when the byte was not saved (zero page, file-backed, out of range).
    /// This is the lookup for fetching a single page lazily.
    pub fn locate(&self, id: RegionId, offset: u64) -> Option<(usize, u64)> {
        let Storage::Pages(runs) = &self.regions.get(id.0 as usize)?.storage else {
            return None;
        };
        let i = runs.partition_point(|r| r.offset + r.len <= offset);
        let run = runs.get(i).filter(|r| r.offset <= offset)?;
        let pos = run.stream_offset + (offset - run.offset);
        let frame = self.frame_stream.partition_point(|&o| o <= pos) - 1;
        Some((frame, pos - self.frame_stream[frame]))
    }

    /// Decodes every frame on `threads` threads, each with its own decoder and buffer, and
    /// calls `f(frame, raw_bytes)` for each, in no particular order. Stops at the first error
    /// (from decoding or from `f`) and returns it.
    pub fn decode_parallel<F>(&self, threads: usize, f: F) -> Result<()>
    where
        S: Sync,
        F: Fn(usize, &[u8]) -> Result<()> + Sync,
    {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let first_err: Mutex<Option<ImageError>> = Mutex::new(None);
        let max = self
            .frames
            .iter()
            .map(|f| f.raw_len as usize)
            .max()
            .unwrap_or(0);
        let worker = || {
            let run = || -> Result<()> {
                let mut dec = FrameDecoder::new()?;
                let mut buf = vec![0u8; max];
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= self.frames.len() {
                        break;
                    }
                    let n = self.read_frame_with(i, &mut buf, &mut dec)?;
                    f(i, &buf[..n])?;
                }
                Ok(())
            };
            if let Err(e) = run() {
                stop.store(true, Ordering::Relaxed);
                first_err
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
            }
        };
        let threads = threads.clamp(1, self.frames.len().max(1));
        std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(worker);
            }
            worker();
        });
        match first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Fills `out` (exactly the region's length) with the region's saved content, zeros where
    /// nothing was saved. File-backed regions are not read here: their content is the file's.
    pub fn read_region_into(&self, id: RegionId, out: &mut [u8]) -> Result<()> {
        let region = self.region(id)?;
        if out.len() as u64 != region.meta.len {
            return Err(ImageError::BufferTooSmall {
                need: region.meta.len,
                got: out.len() as u64,
            });
        }
        out.fill(0);
        let runs = match &region.storage {
            Storage::Pages(runs) => runs,
            Storage::Zero => return Ok(()),
            Storage::File(_) => {
                return Err(ImageError::Misuse(format!(
                    "region {} is file-backed; map its file instead",
                    region.describe()
                )));
            }
        };
        let mut dec = FrameDecoder::new()?;
        let mut buf = Vec::new();
        let mut loaded: Option<usize> = None;
        for run in runs {
            let (s, e) = (run.stream_offset, run.stream_offset + run.len);
            let mut fi = self.frame_stream.partition_point(|&o| o <= s) - 1;
            while fi < self.frames.len() && self.frame_stream[fi] < e {
                if loaded != Some(fi) {
                    buf.resize(self.frames[fi].raw_len as usize, 0);
                    self.read_frame_with(fi, &mut buf, &mut dec)?;
                    loaded = Some(fi);
                }
                let fs = self.frame_stream[fi];
                let a = s.max(fs);
                let b = e.min(self.frame_stream[fi + 1]);
                let dst = (run.offset + (a - s)) as usize;
                out[dst..dst + (b - a) as usize]
                    .copy_from_slice(&buf[(a - fs) as usize..(b - fs) as usize]);
                fi += 1;
            }
        }
        Ok(())
    }

    /// `region 0x..-0x.. [heap] +0x1000` for frame messages.
    fn frame_location(&self, f: &FrameEntry) -> String {
        match self.regions.get(f.region as usize) {
            Some(r) => format!("region {} +{:#x}", r.describe(), f.region_offset),
            None => format!("region #{}", f.region),
        }
    }

    /// Each frame's recorded (region, offset) must be where its first raw byte lands.
    fn check_frame_locations(&self) -> Result<()> {
        for (i, f) in self.frames.iter().enumerate() {
            let pieces = self.frame_pieces(i)?;
            let first = pieces.first().ok_or_else(|| {
                ImageError::malformed(Part::FrameIndex, format!("frame {i} covers no run"))
            })?;
            if first.region.0 != f.region || first.region_offset != f.region_offset {
                return Err(ImageError::malformed(
                    Part::FrameIndex,
                    format!("frame {i} location disagrees with the region table"),
                ));
            }
        }
        Ok(())
    }
}

/// The parts must tile the file: prelude+header, data, table, index, trailer.
fn check_layout(t: &Trailer, p: Prelude, header_end: u64, size: u64) -> Result<()> {
    if t.version != p.version {
        return Err(ImageError::malformed(
            Part::Trailer,
            "version differs from the prelude's",
        ));
    }
    if t.file_len > size {
        return Err(ImageError::Truncated {
            expected: t.file_len,
            found: size,
        });
    }
    if t.file_len != size {
        return Err(ImageError::malformed(
            Part::Trailer,
            format!("records {} bytes but the file has {size}", t.file_len),
        ));
    }
    if t.table_len > MAX_TABLE_LEN {
        return Err(ImageError::TooLarge {
            part: Part::RegionTable,
            len: t.table_len,
            limit: MAX_TABLE_LEN,
        });
    }
    if t.index_len > MAX_INDEX_LEN {
        return Err(ImageError::TooLarge {
            part: Part::FrameIndex,
            len: t.index_len,
            limit: MAX_INDEX_LEN,
        });
    }
    let tiles = t.data_offset == header_end
        && t.data_offset.checked_add(t.data_len) == Some(t.table_offset)
        && t.table_offset.checked_add(t.table_len) == Some(t.index_offset)
        && t.index_offset.checked_add(t.index_len) == Some(size - TRAILER_LEN as u64);
    if !tiles {
        return Err(ImageError::malformed(
            Part::Trailer,
            "part offsets do not tile the file",
        ));
    }
    Ok(())
}

/// Frames must be contiguous from the data offset, sized within limits; returns their raw-stream
/// offsets (with the total appended).
fn check_frames(frames: &[FrameEntry], t: &Trailer) -> Result<Vec<u64>> {
    let bad = |i: usize, what: &str| {
        ImageError::malformed(Part::FrameIndex, format!("frame {i}: {what}"))
    };
    let mut pos = t.data_offset;
    let mut stream = Vec::with_capacity(frames.len() + 1);
    let mut raw_total = 0u64;
    for (i, f) in frames.iter().enumerate() {
        if f.offset != pos {
            return Err(bad(i, "not contiguous with the previous frame"));
        }
        if f.raw_len == 0 || f.raw_len as usize > MAX_FRAME_RAW {
            return Err(bad(i, "raw length out of range"));
        }
        let ok = match f.codec {
            Codec::Raw => f.stored_len == f.raw_len && f.stored_xxh3 == f.raw_xxh3,
            Codec::Zstd => f.stored_len > 0 && f.stored_len < f.raw_len,
            Codec::Ref { .. } => f.stored_len == 0 && f.stored_xxh3 == 0,
        };
        if !ok {
            return Err(bad(i, "stored length does not fit its codec"));
        }
        pos += u64::from(f.stored_len);
        if pos > t.table_offset {
            return Err(bad(i, "extends past the data part"));
        }
        stream.push(raw_total);
        raw_total += u64::from(f.raw_len);
    }
    if pos != t.table_offset {
        return Err(ImageError::malformed(
            Part::FrameIndex,
            "frames do not fill the data part",
        ));
    }
    stream.push(raw_total);
    Ok(stream)
}

fn check_regions(regions: &[Region], page: u64) -> Result<()> {
    let mut prev_end = 0u64;
    for (i, r) in regions.iter().enumerate() {
        let bad =
            |what: &str| ImageError::malformed(Part::RegionTable, format!("region {i}: {what}"));
        let m = &r.meta;
        if m.len == 0 || m.start % page != 0 || m.len % page != 0 {
            return Err(bad("empty or not page-aligned"));
        }
        let end = m
            .start
            .checked_add(m.len)
            .ok_or_else(|| bad("wraps around"))?;
        if i > 0 && m.start < prev_end {
            return Err(bad("overlaps or precedes the previous region"));
        }
        prev_end = end;
        if let Storage::Pages(runs) = &r.storage {
            let mut run_end = 0u64;
            for run in runs {
                let e = run
                    .offset
                    .checked_add(run.len)
                    .ok_or_else(|| bad("run wraps around"))?;
                if run.len == 0 || run.offset < run_end || e > m.len {
                    return Err(bad("runs are empty, overlapping or outside the region"));
                }
                run_end = e;
            }
        }
    }
    Ok(())
}

/// Runs must tile the raw stream `0..total` exactly; returns them sorted by stream offset.
fn check_stream(regions: &[Region], total: u64) -> Result<Vec<StreamRun>> {
    let mut runs = Vec::new();
    for (i, r) in regions.iter().enumerate() {
        if let Storage::Pages(rs) = &r.storage {
            runs.extend(rs.iter().map(|run| StreamRun {
                stream_offset: run.stream_offset,
                len: run.len,
                region: i as u32,
                region_offset: run.offset,
            }));
        }
    }
    runs.sort_unstable_by_key(|r| r.stream_offset);
    let mut pos = 0u64;
    for r in &runs {
        if r.stream_offset != pos {
            return Err(ImageError::malformed(
                Part::RegionTable,
                "saved runs do not tile the data stream",
            ));
        }
        pos = pos
            .checked_add(r.len)
            .ok_or_else(|| ImageError::malformed(Part::RegionTable, "saved runs overflow"))?;
    }
    if pos != total {
        return Err(ImageError::malformed(
            Part::RegionTable,
            format!("runs hold {pos} bytes but frames hold {total}"),
        ));
    }
    Ok(runs)
}
