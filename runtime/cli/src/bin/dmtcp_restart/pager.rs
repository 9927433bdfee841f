//! The lazy-restart pager: serves the restored process's first touches of its not-yet-loaded
//! memory from the image (UFFDIO_COPY), and meanwhile loads everything else in the background,
//! frame by frame, so that the process stops depending on it soon. It follows the process's
//! changes to the memory it serves (moves, discards, unmaps) through userfaultfd events.

use crate::uffd::{self, Copied, Msg, Uffd};
use dmtcp_image::{FrameDecoder, Image, ImageError, RegionId, Storage};
use std::collections::VecDeque;

const PAGE: u64 = 4096;

/// A range of a lazy region whose pages have not been filled yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    /// Current address in the process (follows mremap).
    addr: u64,
    len: u64,
    region: u32,
    /// Offset of `addr` within the region.
    region_off: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PagerError {
    #[error("{0}")]
    Image(#[from] ImageError),
    #[error("reading the userfaultfd: {0}")]
    Read(std::io::Error),
    #[error("cannot fill the process's memory at {addr:#x}: {err}")]
    Fill { addr: u64, err: std::io::Error },
}

/// The pager's address book: which ranges are still empty, where they are now.
#[derive(Default)]
struct Pending {
    spans: Vec<Span>,
}

impl Pending {
    /// Forgets `[a, b)`: filled, discarded or unmapped.
    fn cut(&mut self, a: u64, b: u64) {
        let mut out = Vec::with_capacity(self.spans.len() + 1);
        for s in self.spans.drain(..) {
            let e = s.addr + s.len;
            if e <= a || s.addr >= b {
                out.push(s);
                continue;
            }
            if s.addr < a {
                out.push(Span {
                    len: a - s.addr,
                    ..s
                });
            }
            if e > b {
                out.push(Span {
                    addr: b,
                    len: e - b,
                    region: s.region,
                    region_off: s.region_off + (b - s.addr),
                });
            }
        }
        self.spans = out;
    }

    /// `[from, from+len)` moved to `to` (mremap by the restorer or the program).
    fn moved(&mut self, from: u64, to: u64, len: u64) {
        let end = from + len;
        let mut out = Vec::with_capacity(self.spans.len() + 2);
        for s in self.spans.drain(..) {
            let e = s.addr + s.len;
            if e <= from || s.addr >= end {
                out.push(s);
                continue;
            }
            let (a, b) = (s.addr.max(from), e.min(end));
            if s.addr < a {
                out.push(Span {
                    len: a - s.addr,
                    ..s
                });
            }
            out.push(Span {
                addr: a - from + to,
                len: b - a,
                region: s.region,
                region_off: s.region_off + (a - s.addr),
            });
            if e > b {
                out.push(Span {
                    addr: b,
                    len: e - b,
                    region: s.region,
                    region_off: s.region_off + (b - s.addr),
                });
            }
        }
        self.spans = out;
    }

    fn find(&self, addr: u64) -> Option<Span> {
        self.spans
            .iter()
            .copied()
            .find(|s| s.addr <= addr && addr < s.addr + s.len)
    }

    /// The pending parts of region `region`'s `[off, off+len)`, as (address, offset in range,
    /// length).
    fn parts_of(&self, region: u32, off: u64, len: u64) -> Vec<(u64, u64, u64)> {
        let end = off + len;
        self.spans
            .iter()
            .filter(|s| s.region == region)
            .filter_map(|s| {
                let (a, b) = (s.region_off.max(off), (s.region_off + s.len).min(end));
                (a < b).then(|| (s.addr + (a - s.region_off), a - off, b - a))
            })
            .collect()
    }
}

/// How loading a frame went.
enum Load {
    Done,
    /// The address space is changing: read the events, then retry.
    Again,
    /// The process is gone.
    Exited,
    /// The kernel refused to fill `addr` (errno).
    Failed(u64, i32),
}

fn failed(addr: u64, errno: i32) -> PagerError {
    PagerError::Fill {
        addr,
        err: std::io::Error::from_raw_os_error(errno),
    }
}

pub struct Pager<'a> {
    image: &'a Image<std::fs::File>,
    uffd: Uffd,
    pending: Pending,
    lazy: Vec<bool>,
    dec: FrameDecoder,
    buf: Vec<u8>,
    faults: VecDeque<u64>,
    loaded: Vec<bool>,
    /// Least time between two background frames (ms; faults are still served at once):
    /// `DMTCP_PAGER_THROTTLE_MS`, for tests and demonstrations that need a slow pager.
    throttle_ms: i32,
    /// Lazy regions the restorer has not moved to their final address yet (one
    /// `UFFD_EVENT_REMAP` each). Its `mremap` waits until the pager has read the event, so the
    /// background load starts only once they are all in place: a frame being decoded would
    /// otherwise hold the restore (and the program's first instruction) back.
    unmoved: usize,
}

/// The longest the background load waits for the restorer's moves (a safety net: they come
/// within milliseconds of the pager's start).
const MOVES_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// After the moves, the restored runtime still recreates threads and meets the restart
/// barriers before the program runs; the background load (a core's worth of decoding) waits
/// this long so it does not compete with that on a busy machine. Faults are served at once.
const RESTORE_GRACE: std::time::Duration = std::time::Duration::from_millis(25);

/// What [`Pager::run`] reports at the end.
#[derive(Debug, Default, Clone, Copy)]
pub struct PagerStats {
    pub faults: u64,
    pub frames: u64,
}

impl<'a> Pager<'a> {
    /// `lazy` are (region index, current address) of the regions to serve.
    pub fn new(
        image: &'a Image<std::fs::File>,
        uffd: Uffd,
        lazy: &[(usize, u64)],
    ) -> Result<Self, PagerError> {
        let regions = image.regions();
        let mut is_lazy = vec![false; regions.len()];
        let mut pending = Pending::default();
        for &(i, addr) in lazy {
            is_lazy[i] = true;
            pending.spans.push(Span {
                addr,
                len: regions[i].meta.len,
                region: i as u32,
                region_off: 0,
            });
        }
        let max = image
            .frames()
            .iter()
            .map(|f| f.raw_len as usize)
            .max()
            .unwrap_or(0);
        Ok(Pager {
            image,
            uffd,
            pending,
            lazy: is_lazy,
            dec: FrameDecoder::new()?,
            buf: vec![0; max],
            faults: VecDeque::new(),
            loaded: vec![false; image.frames().len()],
            throttle_ms: std::env::var("DMTCP_PAGER_THROTTLE_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            unmoved: lazy.len(),
        })
    }

    /// Serves faults first and loads the remaining frames in between, until every frame of a
    /// lazy region is loaded or the process is gone.
    pub fn run(mut self) -> Result<PagerStats, PagerError> {
        let mut background: VecDeque<usize> = VecDeque::new();
        for f in 0..self.image.frames().len() {
            if self
                .image
                .frame_pieces(f)?
                .iter()
                .any(|p| self.lazy[p.region.0 as usize])
            {
                background.push_back(f);
            } else {
                self.loaded[f] = true;
            }
        }
        let mut stats = PagerStats::default();
        let mut msgs = [Msg::default(); 64];
        let mut next_background = std::time::Instant::now();
        let moves_deadline = std::time::Instant::now() + MOVES_TIMEOUT;
        let mut grace_set = false;
        loop {
            let n = self.uffd.read_msgs(&mut msgs).map_err(PagerError::Read)?;
            for m in &msgs[..n] {
                self.event(m);
            }
            if let Some(addr) = self.faults.pop_front() {
                stats.faults += 1;
                match self.serve(addr)? {
                    Load::Done => {}
                    Load::Again => {
                        self.faults.push_front(addr);
                        self.uffd.wait(1);
                    }
                    Load::Exited => return Ok(stats),
                    Load::Failed(a, e) => return Err(failed(a, e)),
                }
                continue;
            }
            if self.unmoved > 0 {
                let left = moves_deadline.saturating_duration_since(std::time::Instant::now());
                if !left.is_zero() {
                    self.uffd.wait(left.as_millis().clamp(1, 100) as i32);
                    continue;
                }
                tracing::debug!("pager: {} regions not moved in time", self.unmoved);
                self.unmoved = 0;
            }
            if !grace_set {
                grace_set = true;
                next_background = next_background.max(std::time::Instant::now() + RESTORE_GRACE);
            }
            let grace = next_background.saturating_duration_since(std::time::Instant::now());
            if self.throttle_ms == 0 && !grace.is_zero() {
                self.uffd.wait(grace.as_millis().max(1) as i32);
                continue;
            }
            if self.throttle_ms > 0 {
                let left = next_background.saturating_duration_since(std::time::Instant::now());
                if !left.is_zero() {
                    self.uffd.wait(left.as_millis().max(1) as i32);
                    continue;
                }
            }
            let Some(f) = background.pop_front() else {
                return Ok(stats);
            };
            if self.loaded[f] {
                continue;
            }
            match self.load(f)? {
                Load::Done => {
                    stats.frames += 1;
                    next_background = std::time::Instant::now()
                        + std::time::Duration::from_millis(self.throttle_ms as u64);
                }
                Load::Again => {
                    background.push_front(f);
                    self.uffd.wait(1);
                }
                Load::Exited => return Ok(stats),
                Load::Failed(a, e) => return Err(failed(a, e)),
            }
        }
    }

    fn event(&mut self, m: &Msg) {
        match m.event {
            uffd::EVENT_PAGEFAULT => self.faults.push_back(m.arg[1] & !(PAGE - 1)),
            uffd::EVENT_REMAP => {
                self.pending.moved(m.arg[0], m.arg[1], m.arg[2]);
                self.unmoved = self.unmoved.saturating_sub(1);
            }
            // Discarded pages read as zeros from now on, unmapped ones are not ours any more:
            // either way they must not receive the saved content.
            uffd::EVENT_REMOVE | uffd::EVENT_UNMAP => self.pending.cut(m.arg[0], m.arg[1]),
            other => tracing::debug!("pager: ignoring userfaultfd event {other:#x}"),
        }
    }

    /// A thread touched the missing page `page`.
    fn serve(&mut self, page: u64) -> Result<Load, PagerError> {
        let Some(s) = self.pending.find(page) else {
            // Not pending: filled meanwhile, or discarded/never saved (zero).
            return Ok(self.zero_page(page));
        };
        let off = s.region_off + (page - s.addr);
        match self.image.locate(RegionId(s.region), off) {
            Some((frame, _)) => {
                let r = self.load(frame)?;
                if let Load::Done = r {
                    // The page may have been filled by an earlier copy that skipped it.
                    self.uffd.wake(page, PAGE);
                }
                Ok(r)
            }
            None => {
                // A page that was not saved (zero): the whole hole around it reads as zeros,
                // so fill all of it at once rather than fault by fault.
                let (a, b) = self.hole_around(s.region, off);
                let mut r = Load::Done;
                for (addr, _, len) in self.pending.parts_of(s.region, a, b - a) {
                    r = self.zero_range(addr, len);
                    match r {
                        Load::Done => self.pending.cut(addr, addr + len),
                        _ => break,
                    }
                }
                self.uffd.wake(page, PAGE);
                Ok(r)
            }
        }
    }

    fn zero_page(&mut self, page: u64) -> Load {
        match self.uffd.zero(page, PAGE) {
            Copied::All | Copied::Gone => Load::Done,
            Copied::Partial(_) => {
                self.uffd.wake(page, PAGE);
                Load::Done
            }
            Copied::Again => Load::Again,
            Copied::Exited => Load::Exited,
            Copied::Failed(e) => Load::Failed(page, e),
        }
    }

    /// Maps zero pages over `[addr, addr+len)`, skipping pages present already.
    fn zero_range(&self, addr: u64, len: u64) -> Load {
        let mut done = 0u64;
        while done < len {
            match self.uffd.zero(addr + done, len - done) {
                Copied::All | Copied::Gone => return Load::Done,
                Copied::Partial(n) => done += n + PAGE,
                Copied::Again => return Load::Again,
                Copied::Exited => return Load::Exited,
                Copied::Failed(e) => return Load::Failed(addr + done, e),
            }
        }
        Load::Done
    }

    /// The unsaved range of region `region` around offset `off` (which is not saved).
    fn hole_around(&self, region: u32, off: u64) -> (u64, u64) {
        let page_start = off & !(PAGE - 1);
        let Ok(r) = self.image.region(RegionId(region)) else {
            return (page_start, page_start + PAGE);
        };
        let Storage::Pages(runs) = &r.storage else {
            return (0, r.meta.len);
        };
        let i = runs.partition_point(|run| run.offset + run.len <= off);
        let start = if i > 0 {
            runs[i - 1].offset + runs[i - 1].len
        } else {
            0
        };
        let end = runs.get(i).map_or(r.meta.len, |run| run.offset);
        if start > page_start || end <= page_start {
            return (page_start, page_start + PAGE);
        }
        (start, end)
    }

    /// Decodes frame `f` and fills every still-pending page it holds.
    fn load(&mut self, f: usize) -> Result<Load, PagerError> {
        let n = self
            .image
            .read_frame_verified_stored(f, &mut self.buf, &mut self.dec)?;
        for p in self.image.frame_pieces(f)? {
            if !self.lazy[p.region.0 as usize] {
                continue;
            }
            for (addr, at, len) in self.pending.parts_of(p.region.0, p.region_offset, p.len) {
                let from = (p.frame_offset + at) as usize;
                let src = &self.buf[from..(from + len as usize).min(n)];
                match self.fill(addr, src) {
                    Load::Done => self.pending.cut(addr, addr + len),
                    other => return Ok(other),
                }
            }
        }
        self.loaded[f] = true;
        Ok(Load::Done)
    }

    /// Copies `src` to `addr`, skipping pages that are present already.
    fn fill(&self, addr: u64, src: &[u8]) -> Load {
        let mut done = 0u64;
        let len = src.len() as u64;
        while done < len {
            match self.uffd.copy(addr + done, &src[done as usize..]) {
                Copied::All => return Load::Done,
                Copied::Partial(n) => done += n + PAGE,
                Copied::Gone => return Load::Done,
                Copied::Again => return Load::Again,
                Copied::Exited => return Load::Exited,
                Copied::Failed(e) => return Load::Failed(addr + done, e),
            }
        }
        Load::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(addr: u64, len: u64, region_off: u64) -> Span {
        Span {
            addr,
            len,
            region: 0,
            region_off,
        }
    }

    #[test]
    fn cut_and_move_keep_region_offsets() {
        let mut p = Pending {
            spans: vec![span(0x10000, 0x10000, 0)],
        };
        p.cut(0x14000, 0x15000);
        assert_eq!(
            p.spans,
            vec![span(0x10000, 0x4000, 0), span(0x15000, 0xb000, 0x5000)]
        );
        // The middle of the second span moves away.
        p.moved(0x16000, 0x90000, 0x2000);
        assert_eq!(
            p.spans,
            vec![
                span(0x10000, 0x4000, 0),
                span(0x15000, 0x1000, 0x5000),
                span(0x90000, 0x2000, 0x6000),
                span(0x18000, 0x8000, 0x8000),
            ]
        );
        assert_eq!(p.find(0x91000), Some(span(0x90000, 0x2000, 0x6000)));
        assert_eq!(p.find(0x14000), None);
        // Region bytes 0x3000..0x7000 are pending at three addresses.
        assert_eq!(
            p.parts_of(0, 0x3000, 0x4000),
            vec![
                (0x13000, 0, 0x1000),
                (0x15000, 0x2000, 0x1000),
                (0x90000, 0x3000, 0x1000)
            ]
        );
    }
}
