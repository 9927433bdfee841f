//! Writing incremental images: cut memory into frames at fixed address boundaries, so that
//! the same memory gives the same frames from one generation to the next, and store a
//! reference instead of every frame whose bytes the previous generation already holds.
//!
//! Whether a frame is unchanged is decided by content only: same address, same length and same
//! XXH3-64 of the raw bytes as a frame of the previous image. The previous image's own
//! references are followed (flattened), so a reference always names the file holding the bytes.

use crate::chain::ParentImage;
use crate::error::{ImageError, Result};
use crate::format::{MAX_FRAME_RAW, checksum};
use crate::frame::{Codec, EncodedFrame, FrameEncoder};
use crate::reader::Image;
use crate::region::RegionId;
use crate::source::Source;
use crate::writer::{FrameInfo, ImageWriter};
use std::collections::HashMap;
use std::io::Write;

/// Frames of an incremental image start at multiples of this address (1 MiB): small enough
/// that a change costs little, large enough for zstd and a small index (2048 frames per GiB).
pub const DELTA_FRAME: u64 = 1 << 20;

/// What a new image may refer to: the previous image of the same process, and the images that
/// one refers to.
#[derive(Debug, Clone, Default)]
pub struct Basis {
    parents: Vec<ParentImage>,
    /// (address, raw length) -> (raw xxh3, parent, frame in that parent).
    frames: HashMap<(u64, u32), (u64, u32, u32)>,
}

impl Basis {
    /// The basis made of `prev` (to be found as `prev_file` beside the new image) and the
    /// parents its frames refer to. Parents that no frame of `prev` uses are left out, so
    /// chains drop images whose every frame has changed since.
    pub fn from_previous<S: Source>(prev: &Image<S>, prev_file: &str) -> Basis {
        let declared = prev.parents();
        let mut used = vec![false; declared.len()];
        for f in prev.frames() {
            if let Codec::Ref { parent, .. } = f.codec {
                used[parent as usize] = true;
            }
        }
        // New index of each used parent of `prev` (0 is `prev` itself).
        let mut renumber = vec![u32::MAX; declared.len()];
        let mut parents = vec![ParentImage::of(prev_file, prev)];
        for (i, p) in declared.iter().enumerate() {
            if used[i] {
                renumber[i] = parents.len() as u32;
                parents.push(p.clone());
            }
        }
        let mut frames = HashMap::with_capacity(prev.frames().len());
        for (i, f) in prev.frames().iter().enumerate() {
            let Some(r) = prev.regions().get(f.region as usize) else {
                continue;
            };
            let target = match f.codec {
                Codec::Ref { parent, frame } => (renumber[parent as usize], frame),
                _ => (0, i as u32),
            };
            frames.insert(
                (r.meta.start + f.region_offset, f.raw_len),
                (f.raw_xxh3, target.0, target.1),
            );
        }
        Basis { parents, frames }
    }

    /// The parent list to put in the new image's header (`chain::PARENTS_SECTION`).
    pub fn parents(&self) -> &[ParentImage] {
        &self.parents
    }

    /// The oldest generation whose bytes the new image could still need.
    pub fn oldest_generation(&self) -> Option<u64> {
        self.parents.iter().map(|p| p.generation).min()
    }

    /// The previous image's frame at `addr` of `raw_len` bytes: its raw checksum and where its
    /// bytes are stored.
    pub fn frame_at(&self, addr: u64, raw_len: u32) -> Option<(u64, u32, u32)> {
        self.frames.get(&(addr, raw_len)).copied()
    }

    /// Where the bytes at `addr` (`raw_len` long, hashing to `raw_xxh3`) are already stored.
    pub fn lookup(&self, addr: u64, raw_len: u32, raw_xxh3: u64) -> Option<(u32, u32)> {
        match self.frames.get(&(addr, raw_len)) {
            Some(&(h, p, f)) if h == raw_xxh3 => Some((p, f)),
            _ => None,
        }
    }
}

/// What a [`DeltaWriter`] stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeltaStats {
    /// Frames written into the image, and their raw bytes.
    pub new_frames: usize,
    pub new_bytes: u64,
    /// Frames stored as references, and their raw bytes.
    pub ref_frames: usize,
    pub ref_bytes: u64,
    /// References taken without reading the memory (the caller said it had not changed).
    pub unread_frames: usize,
}

/// Saves memory into an [`ImageWriter`] in address-aligned frames, referring to the basis
/// where it can. Use it for every run of an image (it never leaves a partial frame behind).
pub struct DeltaWriter {
    basis: Option<Basis>,
    encoder: FrameEncoder,
    scratch: EncodedFrame,
    frame: u64,
    /// Checksums computed ahead (by several processes): `(address, raw length, xxh3)` in the
    /// order the frames will be appended (None: known to have changed), and the next one to
    /// look at.
    known: Vec<(u64, u32, Option<u64>)>,
    known_at: usize,
    pub stats: DeltaStats,
}

impl DeltaWriter {
    /// `basis: None` writes a full image with the same frame cut (the first of a chain).
    pub fn new(basis: Option<Basis>, level: Option<i32>) -> Result<Self> {
        Self::with_frame_size(basis, level, DELTA_FRAME)
    }

    /// Like [`new`](Self::new) with another frame alignment (a power of two, 4 KiB ..= 4 MiB;
    /// it must be the one the basis was written with for references to be found).
    pub fn with_frame_size(basis: Option<Basis>, level: Option<i32>, frame: u64) -> Result<Self> {
        if !frame.is_power_of_two() || !(4096..=MAX_FRAME_RAW as u64).contains(&frame) {
            return Err(ImageError::Misuse(format!("delta frame size {frame}")));
        }
        Ok(DeltaWriter {
            basis,
            encoder: FrameEncoder::new(level)?,
            scratch: EncodedFrame::with_capacity(frame as usize),
            frame,
            known: Vec::new(),
            known_at: 0,
            stats: DeltaStats::default(),
        })
    }

    /// The frame cut: `(address, raw length)` of the frames `[addr, addr+len)` becomes.
    pub fn frames_of(&self, addr: u64, len: u64) -> impl Iterator<Item = (u64, u32)> + use<> {
        let frame = self.frame;
        let end = addr + len;
        let mut at = addr;
        std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let n = (frame - at % frame).min(end - at);
            let f = (at, n as u32);
            at += n;
            Some(f)
        })
    }

    /// Checksums of frames computed ahead, in append order (`(address, raw length, xxh3)`):
    /// used instead of reading those frames again, except for the volatile ones. `None`: the
    /// caller knows the frame changed (a dirty source saw it written): it is stored without
    /// being compared with the basis.
    pub fn set_known_checksums(&mut self, known: Vec<(u64, u32, Option<u64>)>) {
        self.known = known;
        self.known_at = 0;
    }

    fn known_checksum(&mut self, at: u64, len: u32) -> Option<Option<u64>> {
        while self.known.get(self.known_at).is_some_and(|k| k.0 < at) {
            self.known_at += 1;
        }
        match self.known.get(self.known_at) {
            Some(&(a, l, h)) if a == at && l == len => Some(h),
            _ => None,
        }
    }

    pub fn basis(&self) -> Option<&Basis> {
        self.basis.as_ref()
    }

    /// Saves `data`, the content of region `id` (which starts at address `region_start`) at
    /// `offset`. Runs of one region must ascend, as for [`ImageWriter::write_data`].
    pub fn write<W: Write>(
        &mut self,
        w: &mut ImageWriter<W>,
        id: RegionId,
        region_start: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<()> {
        w.add_run(id, offset, data.len() as u64)?;
        self.append(w, region_start + offset, data)
    }

    /// Appends the frames of `data`, the memory at `addr`, whose run the caller has declared
    /// already ([`ImageWriter::add_run`]); runs are appended in the order they were declared.
    pub fn append<W: Write>(
        &mut self,
        w: &mut ImageWriter<W>,
        addr: u64,
        data: &[u8],
    ) -> Result<()> {
        self.append_inner(w, addr, data, None, 0..0, None)
    }

    /// Like [`append`](Self::append) for a process saving its own memory, which the writer
    /// itself changes (its stack, its heap buffers, zstd's work space): every frame that is
    /// stored is first copied into `stage` (memory outside what is saved, at least one frame
    /// long) and checksummed and compressed from there, so its bytes and checksum agree.
    /// Frames overlapping `volatile` (the writer's own stack) are copied before they are even
    /// compared with the basis. `unchanged(addr, len)`, when given, may vouch that memory has
    /// not changed since the basis was written (soft-dirty bits): such a frame becomes a
    /// reference to the basis's frame at that address without being read.
    pub fn append_staged<W: Write>(
        &mut self,
        w: &mut ImageWriter<W>,
        addr: u64,
        data: &[u8],
        stage: &mut [u8],
        volatile: std::ops::Range<u64>,
        unchanged: Option<&mut dyn FnMut(u64, u64) -> bool>,
    ) -> Result<()> {
        if (stage.len() as u64) < self.frame {
            return Err(ImageError::Misuse(format!(
                "stage of {} bytes for {} byte frames",
                stage.len(),
                self.frame
            )));
        }
        self.append_inner(w, addr, data, Some(stage), volatile, unchanged)
    }

    fn append_inner<W: Write>(
        &mut self,
        w: &mut ImageWriter<W>,
        addr: u64,
        data: &[u8],
        mut stage: Option<&mut [u8]>,
        volatile: std::ops::Range<u64>,
        mut unchanged: Option<&mut dyn FnMut(u64, u64) -> bool>,
    ) -> Result<()> {
        let mut pos = 0usize;
        while pos < data.len() {
            let at = addr + pos as u64;
            let room = (self.frame - at % self.frame) as usize;
            let chunk = &data[pos..pos + room.min(data.len() - pos)];
            let n = chunk.len();
            let len = n as u32;
            let staged_early = at < volatile.end && volatile.start < at + u64::from(len);
            if !staged_early
                && let (Some(b), Some(u)) = (self.basis.as_ref(), unchanged.as_deref_mut())
                && let Some((h, parent, frame)) = b.frame_at(at, len)
                && u(at, u64::from(len))
            {
                w.append_ref(parent, frame, len, h)?;
                self.stats.ref_frames += 1;
                self.stats.ref_bytes += u64::from(len);
                self.stats.unread_frames += 1;
                pos += n;
                continue;
            }
            let known = if staged_early {
                None
            } else {
                self.known_checksum(at, len)
            };
            let h = match stage.as_deref_mut() {
                Some(st) if staged_early => {
                    st[..n].copy_from_slice(chunk);
                    Some(checksum(&st[..n]))
                }
                _ => known.unwrap_or_else(|| Some(checksum(chunk))),
            };
            let found = h.and_then(|h| Some((h, self.basis.as_ref()?.lookup(at, len, h)?)));
            match found {
                Some((h, (parent, frame))) => {
                    w.append_ref(parent, frame, len, h)?;
                    self.stats.ref_frames += 1;
                    self.stats.ref_bytes += u64::from(len);
                }
                None => {
                    let raw = match stage.as_deref_mut() {
                        Some(st) => {
                            if !staged_early {
                                st[..n].copy_from_slice(chunk);
                            }
                            &st[..n]
                        }
                        None => chunk,
                    };
                    // Frames stored raw go from `raw` to the file: no copy into `scratch`.
                    if self.encoder.worth_compressing(raw) {
                        self.encoder.compress_into(raw, &mut self.scratch)?;
                        w.append_frame(&self.scratch)?;
                    } else {
                        let h = checksum(raw);
                        let info = FrameInfo {
                            zstd: false,
                            raw_len: len,
                            stored_len: len,
                            raw_xxh3: h,
                            stored_xxh3: h,
                        };
                        w.append_stored(&info, raw)?;
                    }
                    self.stats.new_frames += 1;
                    self.stats.new_bytes += u64::from(len);
                }
            }
            pos += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Header;
    use crate::region::{Prot, RegionFlags, RegionMeta};
    use crate::writer::WriterOptions;

    const BASE: u64 = 0x7f00_0000_0000;

    fn mem() -> Vec<u8> {
        (0..3u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect()
    }

    /// A basis holding exactly `mem` (frame `i` as frame `i` of parent 0).
    fn basis_of(mem: &[u8]) -> Basis {
        let mut frames = HashMap::new();
        for (i, c) in mem.chunks(DELTA_FRAME as usize).enumerate() {
            let at = BASE + i as u64 * DELTA_FRAME;
            frames.insert((at, c.len() as u32), (checksum(c), 0, i as u32));
        }
        Basis {
            parents: vec![ParentImage {
                file: "p.dmtcp".into(),
                generation: 1,
                file_len: 1,
                index_xxh3: 1,
            }],
            frames,
        }
    }

    fn stats_with(known: Vec<(u64, u32, Option<u64>)>) -> DeltaStats {
        let mem = mem();
        let basis = basis_of(&mem);
        let mut h = Header::new();
        h.push_section(
            crate::PARENTS_SECTION,
            crate::chain::encode_parents(basis.parents()),
        );
        let mut sink = Vec::new();
        let mut w = ImageWriter::new(&mut sink, &h, WriterOptions::default()).unwrap();
        let id = w
            .add_region(RegionMeta {
                start: BASE,
                len: mem.len() as u64,
                prot: Prot(Prot::READ | Prot::WRITE),
                flags: RegionFlags(RegionFlags::ANONYMOUS),
                path: String::new(),
                offset: 0,
                dev: 0,
                inode: 0,
            })
            .unwrap();
        let mut d = DeltaWriter::new(Some(basis), Some(1)).unwrap();
        d.set_known_checksums(known);
        d.write(&mut w, id, BASE, 0, &mem).unwrap();
        d.stats
    }

    #[test]
    fn checksums_computed_ahead_decide_references() {
        let mem = mem();
        let d = DeltaWriter::new(None, None).unwrap();
        let frames: Vec<(u64, u32)> = d.frames_of(BASE + 4096, 2 << 20).collect();
        assert_eq!(
            frames,
            [
                (BASE + 4096, (1 << 20) - 4096),
                (BASE + (1 << 20), 1 << 20),
                (BASE + (2 << 20), 4096)
            ]
        );
        let right: Vec<(u64, u32, Option<u64>)> = mem
            .chunks(DELTA_FRAME as usize)
            .enumerate()
            .map(|(i, c)| {
                (
                    BASE + i as u64 * DELTA_FRAME,
                    c.len() as u32,
                    Some(checksum(c)),
                )
            })
            .collect();
        let s = stats_with(right.clone());
        assert_eq!((s.ref_frames, s.new_frames), (3, 0));
        // A wrong checksum given ahead is believed (the frame is stored, not referred to):
        // the writer does not read the frame again.
        let mut wrong = right.clone();
        wrong[1].2 = wrong[1].2.map(|h| h ^ 1);
        let s = stats_with(wrong);
        assert_eq!((s.ref_frames, s.new_frames), (2, 1));
        // Known to have changed: stored without comparing.
        let mut changed = right.clone();
        changed[2].2 = None;
        let s = stats_with(changed);
        assert_eq!((s.ref_frames, s.new_frames), (2, 1));
        // Entries for other frames are skipped; frames without one are hashed.
        let s = stats_with(vec![(BASE + 4096, 10, Some(0)), right[2]]);
        assert_eq!((s.ref_frames, s.new_frames), (3, 0));
    }
}
