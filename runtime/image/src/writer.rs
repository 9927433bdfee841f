//! Streaming image writer: header first, then frames, then region table, index and trailer.
//!
//! The writer never seeks, so it can write into a pipe or a compressor process. Buffers and the
//! zstd context are created in [`ImageWriter::new`] and reused for every frame.

use crate::error::{ImageError, Result};
use crate::format::{
    DEFAULT_FRAME_SIZE, DEFAULT_LEVEL, FORMAT_VERSION, MAX_FRAME_RAW, MAX_HEADER_LEN, Prelude,
    TRAILER_LEN, Trailer, checksum,
};
use crate::frame::{Codec, EncodedFrame, FrameEncoder, FrameEntry};
use crate::header::Header;
use crate::region::{FileRef, Region, RegionId, RegionMeta, Run, Storage};
use std::io::Write;

mod parts;
pub use parts::FrameInfo;

/// Writer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// zstd level, or `None` to store every frame raw (`--no-gzip`). Default
    /// `Some(DEFAULT_LEVEL)` (-1).
    pub level: Option<i32>,
    /// Raw bytes per frame, 4 KiB to 4 MiB. Default 4 MiB.
    pub frame_size: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            level: Some(DEFAULT_LEVEL),
            frame_size: DEFAULT_FRAME_SIZE,
        }
    }
}

/// The writer's reusable memory: the zstd context (warmed up), the frame buffer and the output
/// buffer. Create it before the program is frozen (it calls C `malloc` through zstd) and pass
/// it to [`ImageWriter::with_buffers`]; [`ImageWriter::finish_keep_buffers`] hands it back for
/// the next checkpoint.
pub struct WriterBuffers {
    opts: WriterOptions,
    encoder: FrameEncoder,
    pending: Vec<u8>,
    scratch: EncodedFrame,
}

impl WriterBuffers {
    pub fn new(opts: WriterOptions) -> Result<Self> {
        if opts.frame_size < 4096 || opts.frame_size > MAX_FRAME_RAW {
            return Err(ImageError::Misuse(format!(
                "frame size {} is outside 4096..={MAX_FRAME_RAW}",
                opts.frame_size
            )));
        }
        Ok(WriterBuffers {
            opts,
            encoder: FrameEncoder::new(opts.level)?,
            pending: Vec::with_capacity(opts.frame_size),
            scratch: EncodedFrame::with_capacity(opts.frame_size),
        })
    }

    pub fn options(&self) -> WriterOptions {
        self.opts
    }
}

/// What [`ImageWriter::finish`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteStats {
    pub regions: usize,
    pub frames: usize,
    /// Saved memory bytes (sum of frames' raw lengths).
    pub raw_bytes: u64,
    /// Bytes those frames occupy in the file.
    pub stored_bytes: u64,
    /// Total file length.
    pub file_bytes: u64,
    /// XXH3-64 of the whole file, for the generation manifest.
    pub file_xxh3: u64,
}

/// A run as declared, in stream order.
#[derive(Debug, Clone, Copy)]
struct StreamRun {
    region: u32,
    offset: u64,
    len: u64,
    stream_offset: u64,
}

/// Counts and hashes everything written, so no seek is needed to know positions.
struct HashingWriter<W> {
    inner: W,
    pos: u64,
    hasher: xxhash_rust::xxh3::Xxh3,
}

impl<W: Write> HashingWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.inner
            .write_all(bytes)
            .map_err(ImageError::io("writing the image"))?;
        self.hasher.update(bytes);
        self.pos += bytes.len() as u64;
        Ok(())
    }
}

/// Writes one image. Usage: `new` (writes the header), `add_region`/`add_file_region` in
/// address order, then `write_data` for each saved run (or `add_run` + `append_frame` for
/// frames compressed elsewhere), then `finish`.
pub struct ImageWriter<W: Write> {
    out: HashingWriter<W>,
    page_size: u64,
    regions: Vec<RegionMeta>,
    file_refs: Vec<Option<FileRef>>,
    /// End of the last run declared per region, to keep runs ascending.
    run_end: Vec<u64>,
    runs: Vec<StreamRun>,
    frames: Vec<FrameEntry>,
    /// Raw stream bytes declared by runs / carried by appended frames.
    declared: u64,
    framed: u64,
    /// Index into `runs` of the run holding stream position `framed`.
    locate_cursor: usize,
    pending: Vec<u8>,
    frame_size: usize,
    opts: WriterOptions,
    encoder: FrameEncoder,
    scratch: EncodedFrame,
    stored_bytes: u64,
    data_offset: u64,
    /// Format version written (2 when the header lists parents), and how many it lists.
    version: u32,
    parents: u32,
}

impl<W: Write> ImageWriter<W> {
    /// Writes magic, version and `header`, and prepares buffers and the compression context
    /// (see [`WriterBuffers`] to prepare those ahead of time).
    pub fn new(w: W, header: &Header, opts: WriterOptions) -> Result<Self> {
        Self::with_buffers(w, header, WriterBuffers::new(opts)?)
    }

    /// Like [`new`](Self::new) with buffers prepared earlier: allocates only the header bytes.
    pub fn with_buffers(w: W, header: &Header, mut bufs: WriterBuffers) -> Result<Self> {
        let ps = header.page_size;
        if !ps.is_power_of_two() || ps < 4096 {
            return Err(ImageError::Misuse(format!(
                "page size {ps} is not a power of two >= 4096"
            )));
        }
        let hbytes = postcard::to_stdvec(header)
            .map_err(|e| ImageError::Misuse(format!("header does not serialize: {e}")))?;
        if hbytes.len() as u64 > MAX_HEADER_LEN {
            return Err(ImageError::Misuse(format!(
                "header is {} bytes, limit {MAX_HEADER_LEN}",
                hbytes.len()
            )));
        }
        // Version 2 only for images with parents, so full images stay readable by older tools.
        let parents = crate::chain::parents_of(header)
            .map_err(|e| ImageError::Misuse(format!("bad parent list: {e}")))?
            .len() as u32;
        let version = if header.section(crate::chain::PARENTS_SECTION).is_some() {
            FORMAT_VERSION
        } else {
            1
        };
        let prelude = Prelude {
            version,
            header_len: hbytes.len() as u32,
            header_xxh3: checksum(&hbytes),
        };
        let mut out = HashingWriter {
            inner: w,
            pos: 0,
            hasher: xxhash_rust::xxh3::Xxh3::new(),
        };
        out.put(&prelude.encode())?;
        out.put(&hbytes)?;
        bufs.pending.clear();
        Ok(ImageWriter {
            version,
            parents,
            data_offset: out.pos,
            out,
            page_size: u64::from(ps),
            regions: Vec::new(),
            file_refs: Vec::new(),
            run_end: Vec::new(),
            runs: Vec::new(),
            frames: Vec::new(),
            declared: 0,
            framed: 0,
            locate_cursor: 0,
            pending: bufs.pending,
            frame_size: bufs.opts.frame_size,
            opts: bufs.opts,
            encoder: bufs.encoder,
            scratch: bufs.scratch,
            stored_bytes: 0,
        })
    }

    /// Adds a region whose saved content is given by later `write_data`/`add_run` calls; pages
    /// never written read as zero. Regions must come in ascending, non-overlapping order.
    pub fn add_region(&mut self, meta: RegionMeta) -> Result<RegionId> {
        self.push_region(meta, None)
    }

    /// Adds a region whose content is an unmodified file (nothing is saved for it).
    pub fn add_file_region(&mut self, meta: RegionMeta, file: FileRef) -> Result<RegionId> {
        self.push_region(meta, Some(file))
    }

    fn push_region(&mut self, meta: RegionMeta, file: Option<FileRef>) -> Result<RegionId> {
        let ps = self.page_size;
        if meta.len == 0 || !meta.start.is_multiple_of(ps) || !meta.len.is_multiple_of(ps) {
            return Err(ImageError::Misuse(format!(
                "region {:#x}+{:#x} is empty or not page-aligned",
                meta.start, meta.len
            )));
        }
        if meta.start.checked_add(meta.len).is_none() {
            return Err(ImageError::Misuse(format!(
                "region at {:#x} wraps around",
                meta.start
            )));
        }
        if let Some(prev) = self.regions.last()
            && meta.start < prev.end()
        {
            return Err(ImageError::Misuse(format!(
                "region {:#x} is not above the previous one (ending {:#x})",
                meta.start,
                prev.end()
            )));
        }
        if self.regions.len() >= u32::MAX as usize {
            return Err(ImageError::Misuse("too many regions".into()));
        }
        let id = RegionId(self.regions.len() as u32);
        self.regions.push(meta);
        self.file_refs.push(file);
        self.run_end.push(0);
        Ok(id)
    }

    /// Declares a run of `len` saved bytes at `offset` in `region` without supplying them: the
    /// bytes come from frames passed to [`append_frame`](Self::append_frame), in the order the
    /// runs were declared. Declare runs before appending the frames that carry them.
    pub fn add_run(&mut self, region: RegionId, offset: u64, len: u64) -> Result<()> {
        let r = region.0 as usize;
        let meta = self
            .regions
            .get(r)
            .ok_or_else(|| ImageError::Misuse(format!("no region {}", region.0)))?;
        if self.file_refs[r].is_some() {
            return Err(ImageError::Misuse(format!(
                "region {} is file-backed; it takes no data",
                region.0
            )));
        }
        if len == 0 {
            return Ok(());
        }
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= meta.len)
            .ok_or_else(|| {
                ImageError::Misuse(format!(
                    "run {offset:#x}+{len:#x} exceeds region {} of {:#x} bytes",
                    region.0, meta.len
                ))
            })?;
        if offset < self.run_end[r] {
            return Err(ImageError::Misuse(format!(
                "run at {offset:#x} of region {} overlaps or precedes its previous run",
                region.0
            )));
        }
        self.run_end[r] = end;
        match self.runs.last_mut() {
            // Coalesce adjacent writes so a region written page by page is one run.
            Some(last) if last.region == region.0 && last.offset + last.len == offset => {
                last.len += len;
            }
            _ => self.runs.push(StreamRun {
                region: region.0,
                offset,
                len,
                stream_offset: self.declared,
            }),
        }
        self.declared += len;
        Ok(())
    }

    /// Saves `data` as the content of `region` at `offset`. Runs of one region must ascend.
    /// Full frames are compressed and written as they fill.
    pub fn write_data(&mut self, region: RegionId, offset: u64, data: &[u8]) -> Result<()> {
        if self.framed + self.pending.len() as u64 != self.declared {
            return Err(ImageError::Misuse(
                "write_data after add_run whose frames were not appended yet".into(),
            ));
        }
        self.add_run(region, offset, data.len() as u64)?;
        let mut rest = data;
        while !rest.is_empty() {
            let room = self.frame_size - self.pending.len();
            let take = room.min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == self.frame_size {
                self.flush_pending()?;
            }
        }
        Ok(())
    }

    /// Appends a frame encoded by [`FrameEncoder::encode_into`] (possibly on another thread).
    /// Its raw bytes continue the stream of declared runs.
    pub fn append_frame(&mut self, frame: &EncodedFrame) -> Result<()> {
        self.flush_pending()?;
        self.append_encoded(frame)
    }

    /// Appends a reference frame: `raw_len` raw bytes whose XXH3-64 is `raw_xxh3`, stored as
    /// frame `frame` of parent `parent` (an index into the header's parent list; see `chain`).
    /// Nothing is written to the data part. The caller vouches that the bytes are equal.
    pub fn append_ref(
        &mut self,
        parent: u32,
        frame: u32,
        raw_len: u32,
        raw_xxh3: u64,
    ) -> Result<()> {
        if parent >= self.parents {
            return Err(ImageError::Misuse(format!(
                "reference to parent {parent}, but the header lists {}",
                self.parents
            )));
        }
        if raw_len == 0 || raw_len as usize > MAX_FRAME_RAW {
            return Err(ImageError::Misuse(format!(
                "reference of {raw_len} raw bytes"
            )));
        }
        let f = EncodedFrame {
            codec: Some(Codec::Ref { parent, frame }),
            raw_len,
            raw_xxh3,
            stored_xxh3: 0,
            data: Vec::new(),
        };
        self.append_frame(&f)
    }

    fn flush_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let res = self
            .encoder
            .encode_into(&self.pending, &mut scratch)
            .and_then(|()| self.append_encoded(&scratch));
        self.scratch = scratch;
        self.pending.clear();
        res
    }

    fn append_encoded(&mut self, f: &EncodedFrame) -> Result<()> {
        let codec = f
            .codec
            .ok_or_else(|| ImageError::Misuse("appending an unencoded frame".into()))?;
        let raw = u64::from(f.raw_len);
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
        let entry = FrameEntry {
            offset: self.out.pos,
            stored_len: f.data.len() as u32,
            raw_len: f.raw_len,
            codec,
            stored_xxh3: f.stored_xxh3,
            raw_xxh3: f.raw_xxh3,
            region: run.region,
            region_offset: run.offset + (self.framed - run.stream_offset),
        };
        self.out.put(&f.data)?;
        self.frames.push(entry);
        self.framed += raw;
        self.stored_bytes += f.data.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.out.pos
    }

    /// Writes the region table, the frame index and the trailer; returns the sink and stats.
    pub fn finish(self) -> Result<(W, WriteStats)> {
        self.finish_keep_buffers().map(|(w, stats, _)| (w, stats))
    }

    /// Like [`finish`](Self::finish), also handing back the buffers for the next image.
    pub fn finish_keep_buffers(mut self) -> Result<(W, WriteStats, WriterBuffers)> {
        self.flush_pending()?;
        if self.framed != self.declared {
            return Err(ImageError::Misuse(format!(
                "runs declare {} bytes but frames carry {}",
                self.declared, self.framed
            )));
        }
        let mut table: Vec<Region> = self
            .regions
            .into_iter()
            .zip(self.file_refs)
            .map(|(meta, file)| Region {
                meta,
                storage: match file {
                    Some(f) => Storage::File(f),
                    None => Storage::Zero,
                },
            })
            .collect();
        for run in &self.runs {
            let r = Run {
                offset: run.offset,
                len: run.len,
                stream_offset: run.stream_offset,
            };
            let region = &mut table[run.region as usize];
            match &mut region.storage {
                Storage::Pages(runs) => runs.push(r),
                s => *s = Storage::Pages(vec![r]),
            }
        }
        let table_bytes = postcard::to_stdvec(&table)
            .map_err(|e| ImageError::Misuse(format!("region table does not serialize: {e}")))?;
        let index_bytes = postcard::to_stdvec(&self.frames)
            .map_err(|e| ImageError::Misuse(format!("frame index does not serialize: {e}")))?;
        let data_len = self.out.pos - self.data_offset;
        let table_offset = self.out.pos;
        self.out.put(&table_bytes)?;
        let index_offset = self.out.pos;
        self.out.put(&index_bytes)?;
        let trailer = Trailer {
            version: self.version,
            data_offset: self.data_offset,
            data_len,
            table_offset,
            table_len: table_bytes.len() as u64,
            table_xxh3: checksum(&table_bytes),
            index_offset,
            index_len: index_bytes.len() as u64,
            index_xxh3: checksum(&index_bytes),
            file_len: self.out.pos + TRAILER_LEN as u64,
        };
        self.out.put(&trailer.encode())?;
        self.out
            .inner
            .flush()
            .map_err(ImageError::io("writing the image"))?;
        let stats = WriteStats {
            regions: table.len(),
            frames: self.frames.len(),
            raw_bytes: self.framed,
            stored_bytes: self.stored_bytes,
            file_bytes: self.out.pos,
            file_xxh3: self.out.hasher.digest(),
        };
        tracing::debug!(?stats, "image written");
        let bufs = WriterBuffers {
            opts: self.opts,
            encoder: self.encoder,
            pending: self.pending,
            scratch: self.scratch,
        };
        Ok((self.out.inner, stats, bufs))
    }
}
