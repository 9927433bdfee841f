//! Which memory changed since the previous checkpoint, without reading it: the "dirty source"
//! of incremental checkpoints. A frame the source vouches for becomes a reference to the
//! previous image without being read or hashed; everything else is hashed as before, so a
//! source only has to be right about what it vouches for.
//!
//! `DMTCP_DIRTY_TRACKING` chooses the source (default `uffd`):
//! - `uffd`: userfaultfd write-protection in asynchronous mode plus `PAGEMAP_SCAN` (Linux 6.7;
//!   kernels without soft-dirty bits have it). The private writable anonymous mappings are
//!   registered; at each forked checkpoint, right before the writer is cloned (the program
//!   frozen), one scan lists the pages written since the previous scan and write-protects them
//!   again. Missing kernel support is detected and every frame is hashed.
//! - `soft-dirty` (or `DMTCP_SOFT_DIRTY=1`): the kernel's soft-dirty bits (`incremental`).
//! - `off`: hash every frame.
//!
//! Why the scan is sound: a page keeps its uffd-wp bit only while nothing writes it (user
//! code, the kernel through `read(2)`, ptrace...); every page the scan did not protect
//! (populated later, moved by `mremap`, in a mapping registered since, in a process that forked
//! or restarted since) has no bit and reads as written. So "not written at scan N" means
//! "unchanged since scan N-1", which precedes the snapshot of the previous image, provided
//! nothing writes tracked memory between a scan and the fork that takes the snapshot: the scan
//! is the last thing before the clone, the state it fills lives in a mapping that is never
//! registered, and the checkpoint thread's stack is always re-read by the writer.

pub(super) mod pagemap_scan;
mod uffd_wp;

use core::sync::atomic::{AtomicUsize, Ordering};
use pagemap_scan::{PageRegion, Runs, ScanError};

/// The dirty source chosen by the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Uffd,
    SoftDirty,
    Off,
}

impl Mode {
    /// `DMTCP_DIRTY_TRACKING=uffd|soft-dirty|off`; `DMTCP_SOFT_DIRTY=1` when it is unset.
    pub fn from_env() -> Mode {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match var("DMTCP_DIRTY_TRACKING").as_deref() {
            Some("off" | "0" | "none" | "hash") => Mode::Off,
            Some("soft-dirty" | "soft_dirty") => Mode::SoftDirty,
            Some(_) => Mode::Uffd,
            None if var("DMTCP_SOFT_DIRTY").is_some_and(|v| v == "1") => Mode::SoftDirty,
            None => Mode::Uffd,
        }
    }
}

/// Dirty runs are kept per block of this size: the frame size of incremental images.
const BLOCK: u64 = dmtcp_image::delta::DELTA_FRAME;
const PAGE: usize = 4096;
const MAX_RANGES: usize = 16 << 10;
const MAX_RUNS: usize = 128 << 10;
const VEC_LEN: usize = 4096;

/// The tracker's state, at the start of its own mapping (never registered, so the scan and
/// what it writes afterwards leave tracked memory alone). A forked writer reads its copy.
#[repr(C)]
struct State {
    /// The process whose descriptor and scans these are (real pid; 0: none yet).
    owner: i32,
    /// The userfaultfd (-1: none).
    fd: i32,
    /// The kernel cannot do it: never try again.
    unsupported: bool,
    /// Generation of the newest scan (0: none, or in progress) and of the one before it.
    scan_gen: u64,
    prev_gen: u64,
    n_ranges: usize,
    n_runs: usize,
    /// Nanoseconds of the newest scan, and the pages it found written (for the log).
    scan_ns: u64,
    written_pages: u64,
}

const RANGES_AT: usize = PAGE;
const RUNS_AT: usize = RANGES_AT + MAX_RANGES * 16;
const VEC_AT: usize = RUNS_AT + MAX_RUNS * 16;
const MAP_LEN: usize = (VEC_AT + VEC_LEN * 24).div_ceil(PAGE) * PAGE;

static MAP: AtomicUsize = AtomicUsize::new(0);

fn map() -> Option<usize> {
    let m = MAP.load(Ordering::Acquire);
    if m != 0 {
        return Some(m);
    }
    // SAFETY: a new private anonymous mapping, kept for the life of the process (and restored
    // at restart with the rest of its memory). Pages are touched as they are needed.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            MAP_LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    let m = p as usize;
    // SAFETY: the new mapping is zeroed, which is a valid State except for `fd`.
    unsafe { (*(m as *mut State)).fd = -1 };
    MAP.store(m, Ordering::Release);
    Some(m)
}

type Parts = (
    &'static mut State,
    &'static mut [(u64, u64)],
    &'static mut [(u64, u64)],
    &'static mut [PageRegion],
);

/// The state, its tracked ranges, its dirty runs and the kernel's output buffer.
/// SAFETY (callers): only the checkpoint thread (or the forked writer, on its own copy) uses
/// the mapping, one borrow at a time.
unsafe fn parts(m: usize) -> Parts {
    // SAFETY: disjoint, aligned parts of the MAP_LEN bytes mapped in `map`; see above.
    unsafe {
        (
            &mut *(m as *mut State),
            std::slice::from_raw_parts_mut((m + RANGES_AT) as *mut (u64, u64), MAX_RANGES),
            std::slice::from_raw_parts_mut((m + RUNS_AT) as *mut (u64, u64), MAX_RUNS),
            std::slice::from_raw_parts_mut((m + VEC_AT) as *mut PageRegion, VEC_LEN),
        )
    }
}

fn now_ns() -> u64 {
    super::write::now_ns()
}

/// In the program process, frozen, right before the forked writer of `generation` is cloned:
/// registers the private writable anonymous mappings and scans them. Must be the last thing
/// done before the clone (see the module's comment).
pub fn before_clone(generation: u64) {
    if !super::incremental::settings().is_some_and(|s| s.tracking == Mode::Uffd) {
        return;
    }
    let Some(m) = map() else { return };
    // SAFETY: the checkpoint thread, the program frozen.
    let (st, ranges, runs, vec) = unsafe { parts(m) };
    if st.unsupported {
        return;
    }
    let me = dmtcp_restorer::sys::getpid();
    if st.owner == me && st.fd >= 0 && !uffd_wp::is_uffd(st.fd) {
        // The program closed it (closefrom) or put another file at its number: start over
        // (closing a userfaultfd clears its protections, so nothing stale is trusted).
        crate::plugin::unprotect(st.fd);
        st.fd = -1;
        st.owner = 0;
    }
    if st.owner != me {
        adopt(st, me);
    }
    if st.fd < 0 {
        return;
    }
    // Everything that allocates comes first: reading the map, registering.
    let own = m as u64..(m + MAP_LEN) as u64;
    let candidates = candidates(own);
    let mut n = 0usize;
    for &(s, e) in &candidates {
        if n == ranges.len() {
            break;
        }
        if uffd_wp::register(st.fd, s, e).is_err() {
            continue;
        }
        if n > 0 && ranges[n - 1].1 == s {
            ranges[n - 1].1 = e;
        } else {
            ranges[n] = (s, e);
            n += 1;
        }
    }
    // The test hook's victims: mappings of at least the size it names (a few, on the stack).
    let mut victims = [(0u64, 0u64); 8];
    if let Some(min) = sabotage() {
        for (v, c) in victims
            .iter_mut()
            .zip(candidates.iter().filter(|c| c.1 - c.0 >= min))
        {
            *v = *c;
        }
    }
    drop(candidates);
    // SAFETY: opening a procfs file with a static path.
    let pm = unsafe {
        libc::open(
            c"/proc/self/pagemap".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    st.prev_gen = st.scan_gen;
    st.scan_gen = 0;
    if pm < 0 {
        st.prev_gen = 0;
        return;
    }
    // From here on: no allocation, no write outside this mapping and the stack.
    let t0 = now_ns();
    let mut out = Runs {
        runs,
        len: 0,
        block: BLOCK,
    };
    let mut kept = 0usize;
    let mut failed = None;
    for i in 0..n {
        let (s, e) = ranges[i];
        match pagemap_scan::scan(pm, s, e, vec, &mut out) {
            Ok(()) => {
                ranges[kept] = (s, e);
                kept += 1;
            }
            // Untracked this time: its frames are hashed (the runs already pushed only
            // make more frames be read).
            Err(ScanError::Range(_)) => {}
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(pm) };
    st.n_ranges = kept;
    let mut n_runs = 0;
    for k in 0..out.len {
        let r = out.runs[k];
        if !victims.iter().any(|v| v.0 <= r.0 && r.1 <= v.1) {
            out.runs[n_runs] = r;
            n_runs += 1;
        }
    }
    st.n_runs = n_runs;
    st.scan_ns = now_ns() - t0;
    st.written_pages = out.runs[..n_runs].iter().map(|r| (r.1 - r.0) / 4096).sum();
    match failed {
        None => st.scan_gen = generation,
        Some(ScanError::Unsupported(_)) => st.unsupported = true,
        // Too many runs: this generation is hashed, but the next one may trust this scan
        // (the pages it did not reach stay unprotected: the next scan reports them).
        Some(_) => {
            st.prev_gen = 0;
            st.scan_gen = generation;
        }
    }
}

/// Test hook (`DMTCP_TEST_DIRTY_DROP=<MiB>`): the tracker forgets the writes to mappings of
/// at least that size, as a tracker missing writes would; the tests use it to show that they
/// catch such a miss.
fn sabotage() -> Option<u64> {
    static ON: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        let mib: u64 = std::env::var("DMTCP_TEST_DIRTY_DROP").ok()?.parse().ok()?;
        Some(mib << 20)
    })
}

/// In the parent after the clone: logs what the scan found (debug).
pub fn log_scan() {
    let m = MAP.load(Ordering::Acquire);
    if m == 0 || !crate::log::debug_enabled() {
        return;
    }
    // SAFETY: the checkpoint thread; the writer reads its own copy.
    let (st, ..) = unsafe { parts(m) };
    if st.unsupported {
        crate::debug!("dirty tracking: PAGEMAP_SCAN is not supported; hashing every frame");
    } else if st.fd >= 0 {
        crate::debug!(
            "dirty tracking: scan {} (previous {}): {} ranges, {} dirty runs ({} MiB blocks \
             written), {:.2} ms",
            st.scan_gen,
            st.prev_gen,
            st.n_ranges,
            st.n_runs,
            st.written_pages / 256,
            st.scan_ns as f64 / 1e6
        );
    }
}

/// A new process (the child of the program's fork, or the first checkpoint): its own
/// descriptor. One inherited through fork names the parent's address space: close it.
fn adopt(st: &mut State, me: i32) {
    if st.fd >= 0 && st.owner != 0 {
        crate::plugin::unprotect(st.fd);
        if uffd_wp::is_uffd(st.fd) {
            // SAFETY: our own descriptor, inherited through fork.
            unsafe { libc::close(st.fd) };
        }
    }
    st.owner = me;
    st.scan_gen = 0;
    st.prev_gen = 0;
    st.n_ranges = 0;
    st.n_runs = 0;
    match uffd_wp::open() {
        Ok(fd) => {
            crate::plugin::protect(fd);
            st.fd = fd;
        }
        Err(e) => {
            st.fd = -1;
            st.unsupported = true;
            crate::debug!("dirty tracking: no asynchronous userfaultfd ({e}); hashing every frame");
        }
    }
}

/// After a restart: the descriptor was not restored (its number may be the program's now)
/// and the restored pages carry no protection. Forget both; the next checkpoint starts over.
pub fn after_restart() {
    let m = MAP.load(Ordering::Acquire);
    if m == 0 {
        return;
    }
    // SAFETY: the checkpoint thread, before the program resumes checkpointing.
    let (st, ..) = unsafe { parts(m) };
    if st.fd >= 0 {
        crate::plugin::unprotect(st.fd);
    }
    st.fd = -1;
    st.owner = 0;
    st.scan_gen = 0;
    st.prev_gen = 0;
    st.unsupported = false;
}

/// The private writable anonymous mappings to track (page-aligned), in address order.
fn candidates(own: std::ops::Range<u64>) -> Vec<(u64, u64)> {
    let maps = super::maps::read_self().unwrap_or_default();
    maps.iter()
        .filter(|m| {
            m.write
                && m.is_private_anon()
                && !m.is_kernel_special()
                && !super::layout::in_hole(m)
                && m.len() > 0
                && (m.end <= own.start || m.start >= own.end)
        })
        .map(|m| (m.start, m.end))
        .collect()
}

/// What the forked writer of one generation may trust: frames in tracked ranges with no
/// written page since the previous image's snapshot.
pub struct CleanView {
    ranges: &'static [(u64, u64)],
    runs: &'static [(u64, u64)],
}

/// The view for the writer of `generation` whose basis is the image of `basis_generation`:
/// only in a forked writer whose parent scanned for this generation, and whose previous scan
/// came before the basis's snapshot.
pub fn clean_view(generation: u64, basis_generation: u64) -> Option<CleanView> {
    let m = MAP.load(Ordering::Acquire);
    if m == 0 {
        return None;
    }
    // SAFETY: the writer's private copy of the mapping, read only here.
    let (st, ranges, runs, _) = unsafe { parts(m) };
    let ok = st.owner != 0
        && st.owner == dmtcp_restorer::sys::getppid()
        && st.owner != dmtcp_restorer::sys::getpid()
        && st.scan_gen == generation
        && st.prev_gen != 0
        && st.prev_gen <= basis_generation;
    ok.then(|| CleanView {
        ranges: &ranges[..st.n_ranges],
        runs: &runs[..st.n_runs],
    })
}

impl CleanView {
    /// Whether `[addr, addr+len)` (within one block) is tracked and was not written.
    pub fn clean(&self, addr: u64, len: u64) -> bool {
        is_clean(self.ranges, self.runs, addr, len)
    }

    /// Whether `[addr, addr+len)` is tracked and a page of its block was written.
    pub fn written(&self, addr: u64, len: u64) -> bool {
        tracked(self.ranges, addr, len) && !is_clean(self.ranges, self.runs, addr, len)
    }
}

fn tracked(ranges: &[(u64, u64)], addr: u64, len: u64) -> bool {
    let i = ranges.partition_point(|r| r.0 <= addr);
    i > 0 && addr + len <= ranges[i - 1].1
}

fn is_clean(ranges: &[(u64, u64)], runs: &[(u64, u64)], addr: u64, len: u64) -> bool {
    let end = addr + len;
    if !tracked(ranges, addr, len) {
        return false;
    }
    let j = runs.partition_point(|r| r.0 < end);
    !(j > 0 && runs[j - 1].1 > addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tracked_unwritten_frames_are_clean() {
        let m = 1u64 << 20;
        let ranges = [(0x10 * m, 0x20 * m), (0x40 * m, 0x41 * m)];
        let runs = [(0x12 * m, 0x14 * m), (0x1f * m, 0x20 * m)];
        assert!(is_clean(&ranges, &runs, 0x10 * m, m));
        assert!(is_clean(&ranges, &runs, 0x14 * m, 4096));
        assert!(!is_clean(&ranges, &runs, 0x12 * m, m));
        assert!(!is_clean(&ranges, &runs, 0x13 * m + 4096, 4096));
        assert!(!is_clean(&ranges, &runs, 0x1f * m, m));
        // Outside any tracked range, or running past its end.
        assert!(!is_clean(&ranges, &runs, 0x30 * m, m));
        assert!(!is_clean(&ranges, &runs, 0x40 * m + 4096, m));
        assert!(is_clean(&ranges, &runs, 0x40 * m, m));
        assert!(!is_clean(&[], &[], 0, 4096));
        let v = CleanView {
            ranges: Box::leak(Box::new(ranges)),
            runs: Box::leak(Box::new(runs)),
        };
        assert!(v.written(0x12 * m, m) && v.written(0x1f * m + 4096, 4096));
        assert!(!v.written(0x10 * m, m) && !v.written(0x30 * m, m));
    }
}
