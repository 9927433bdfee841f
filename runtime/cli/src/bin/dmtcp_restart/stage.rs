//! Staging: every saved region is decompressed into a private mapping placed where neither the
//! image's layout nor this process needs the addresses; the restorer later moves each staging
//! mapping to its final address with `mremap` (no copy).

use crate::images::Checked;
use dmtcp_image::{ImageError, Prot, RegionFlags, Storage};
use dmtcp_restorer::abi::{Range, RegionMove};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Image(#[from] ImageError),
    #[error("region {0} overlaps {1}; the image's address layout is damaged")]
    Overlap(String, String),
    #[error("region {0} is stored as a file reference, which this version cannot restore yet")]
    FileRef(String),
    #[error(
        "cannot reserve {} MiB of address space for the image's memory: {err}{}",
        len >> 20,
        address_limit()
    )]
    NoRoom { len: u64, err: io::Error },
    #[error("cannot map {len:#x} bytes of staging memory: {err}")]
    Map { len: u64, err: io::Error },
}

pub struct Staged {
    pub moves: Vec<RegionMove>,
    /// Staging mappings, sorted (kept by the restorer while it unmaps everything else).
    pub staging: Vec<Range>,
    /// Staging address of each region (0: none).
    pub staging_of: Vec<u64>,
    /// Regions whose staging mapping was left empty for a lazy pager (indices).
    pub lazy: Vec<usize>,
}

/// How [`stage`] fills the staging mappings.
pub struct Options<'a> {
    pub threads: usize,
    /// Leave large anonymous regions empty (their pages come from a pager on first touch).
    pub lazy: bool,
    pub progress: Option<&'a crate::progress::Progress>,
}

const PAGE: u64 = 4096;
/// Regions at least this large are loaded lazily with `--lazy`; smaller ones (stacks, the
/// runtime's and libraries' data) are cheap to load now, and the kernel may read them before
/// the pager got to them (see docs/checkpoint-restart.md, lazy restart).
const LAZY_MIN: u64 = 1 << 20;
/// `MADV_POPULATE_WRITE` (Linux 5.14; not in the libc crate yet).
const MADV_POPULATE_WRITE: i32 = 23;

fn prot_bits(p: Prot) -> u64 {
    let mut b = 0;
    if p.readable() {
        b |= libc::PROT_READ;
    }
    if p.writable() {
        b |= libc::PROT_WRITE;
    }
    if p.executable() {
        b |= libc::PROT_EXEC;
    }
    b as u64
}

fn overlaps(a: &Range, b: &Range) -> bool {
    a.start < b.end && b.start < a.end
}

/// Plans and fills the staging mappings for image `c`; `reserved` are ranges the final layout
/// needs besides the regions (hole, kernel pages).
pub fn stage(
    c: &Checked,
    reserved: &[(Range, &str)],
    shared: &crate::shm::SharedObjects,
    opts: &Options,
) -> Result<Staged, StageError> {
    let regions = c.image.regions();
    for r in regions {
        let t = Range {
            start: r.meta.start,
            end: r.meta.end(),
        };
        for (res, what) in reserved {
            if overlaps(&t, res) {
                return Err(StageError::Overlap(r.describe(), what.to_string()));
            }
        }
        if let Storage::File(_) = r.storage {
            return Err(StageError::FileRef(r.describe()));
        }
    }
    // Regions of a shared object take their content from its memfd, not from staging.
    let from_shared: Vec<Option<i32>> = regions
        .iter()
        .map(|r| {
            crate::shm::is_shared_object(&r.meta)
                .then(|| shared.objects.get(&crate::shm::key(&r.meta)))
                .flatten()
                .map(|fd| {
                    // SAFETY: dup of a descriptor we own; the restorer closes the copy.
                    unsafe { libc::dup(std::os::fd::AsRawFd::as_raw_fd(fd)) }
                })
        })
        .collect();
    let with_content: Vec<usize> = (0..regions.len())
        .filter(|&i| matches!(regions[i].storage, Storage::Pages(_)) && from_shared[i].is_none())
        .collect();

    let total: u64 = with_content
        .iter()
        .map(|&i| regions[i].meta.len + PAGE)
        .sum();
    let base = reserve_staging(
        total,
        regions.iter().map(|r| Range {
            start: r.meta.start,
            end: r.meta.end(),
        }),
        reserved,
    )?;

    let mut staging_of = vec![0u64; regions.len()];
    let mut staging = Vec::new();
    let mut cursor = base;
    for &i in &with_content {
        let len = regions[i].meta.len;
        // SAFETY: replacing part of our own PROT_NONE reservation with a writable mapping.
        let p = unsafe {
            libc::mmap(
                cursor as *mut _,
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(StageError::Map {
                len,
                err: io::Error::last_os_error(),
            });
        }
        staging_of[i] = cursor;
        staging.push(Range {
            start: cursor,
            end: cursor + len,
        });
        cursor += len + PAGE;
    }

    let backing: Vec<(i32, bool)> = regions
        .iter()
        .enumerate()
        .map(|(i, r)| match from_shared[i] {
            Some(fd) if fd >= 0 => (fd, true),
            _ => open_backing_file(&r.meta),
        })
        .collect();
    // Lazy candidates: large private anonymous regions that the restorer moves with mremap
    // (file-backed regions and growable stacks are copied by the restorer, so they must be
    // complete before it runs). The brk heap and the runtime's own memory stay eager: the
    // kernel writes into them early (stdio, the coordinator's messages), and with a user-mode
    // userfaultfd a kernel access to a missing page fails instead of waiting for the pager.
    let lazy: Vec<usize> = with_content
        .iter()
        .copied()
        .filter(|&i| {
            let m = &regions[i].meta;
            opts.lazy
                && backing[i].0 < 0
                && m.len >= LAZY_MIN
                && !m.flags.has(RegionFlags::GROWSDOWN)
                && !m.flags.has(RegionFlags::STACK)
                && !m.flags.has(RegionFlags::HEAP)
                && !m.flags.has(RegionFlags::RUNTIME)
                && !m.flags.has(RegionFlags::SHARED)
        })
        .collect();
    let mut eager: Vec<bool> = staging_of.iter().map(|&s| s != 0).collect();
    for &i in &lazy {
        eager[i] = false;
    }
    fill(c, &staging_of, &eager, opts.threads, opts.progress)?;

    let moves = regions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut map_flags = 0u64;
            if r.meta.flags.has(RegionFlags::GROWSDOWN) || r.meta.flags.has(RegionFlags::STACK) {
                map_flags |= libc::MAP_GROWSDOWN as u64;
            }
            if staging_of[i] == 0 && r.meta.len >= 1 << 30 {
                map_flags |= libc::MAP_NORESERVE as u64;
            }
            let (fd, shared) = backing[i];
            RegionMove {
                staging: staging_of[i],
                target: r.meta.start,
                len: r.meta.len,
                prot: prot_bits(r.meta.prot),
                map_flags,
                fd: fd as i64,
                file_offset: r.meta.offset,
                shared: shared as u64,
            }
        })
        .collect();
    Ok(Staged {
        moves,
        staging,
        staging_of,
        lazy,
    })
}

/// Faults in `len` bytes at `addr` in one call (instead of one page fault per page while
/// decoding into them). Best effort: older kernels refuse the advice and the pages fault in
/// as they are written.
fn populate(addr: u64, len: u64) {
    let start = addr & !(PAGE - 1);
    let end = (addr + len).div_ceil(PAGE) * PAGE;
    // SAFETY: the range lies inside one of our staging mappings.
    unsafe { libc::madvise(start as *mut _, (end - start) as usize, MADV_POPULATE_WRITE) };
}

/// Decodes every frame that holds bytes of a region with `wanted[region]` (verifying it once),
/// on `threads` threads, into the staging mappings: straight into place when the frame fills
/// one piece of one region (the usual case), through a buffer otherwise.
pub fn fill(
    c: &Checked,
    staging_of: &[u64],
    wanted: &[bool],
    threads: usize,
    progress: Option<&crate::progress::Progress>,
) -> Result<(), StageError> {
    let image = &c.image;
    // Frames are read in file order (two threads a frame apart): a larger readahead window
    // helps a cold cache.
    // SAFETY: advice on our own open descriptor.
    unsafe {
        libc::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(image.source()),
            0,
            0,
            libc::POSIX_FADV_SEQUENTIAL,
        )
    };
    let mut frames = Vec::new();
    let mut bytes = 0u64;
    for (i, f) in image.frames().iter().enumerate() {
        let pieces = image.frame_pieces(i)?;
        if pieces.iter().any(|p| wanted[p.region.0 as usize]) {
            frames.push(i);
            bytes += u64::from(f.raw_len);
        }
    }
    if let Some(p) = progress {
        p.start(bytes);
    }
    let stop = AtomicBool::new(false);
    let fd = std::os::fd::AsRawFd::as_raw_fd(image.source());
    let spans = read_spans(image, &frames);
    std::thread::scope(|s| {
        // Reading overlaps decoding: one thread queues the stored bytes of every wanted frame
        // (in file order) for the page cache while the decoders work, so a cold restart's
        // decoders seldom wait for the disk. Not with one decoder: that is the exact-ids case
        // where no extra task may take a pid number a sibling must recreate.
        if threads > 1 {
            s.spawn(|| read_ahead(fd, &spans, &stop));
        }
        let r = decode_frames(c, staging_of, wanted, threads, &frames, progress);
        stop.store(true, Ordering::Relaxed);
        r
    })?;
    if let Some(p) = progress {
        p.finish();
    }
    Ok(())
}

/// File ranges holding the stored bytes of `frames`, neighbours merged, at most
/// [`READ_AHEAD_CHUNK`] each.
fn read_spans(image: &dmtcp_image::Image<std::fs::File>, frames: &[usize]) -> Vec<(u64, u64)> {
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for &k in frames {
        let f = &image.frames()[k];
        let (at, len) = (f.offset, u64::from(f.stored_len));
        match spans.last_mut() {
            Some((s, l)) if *s + *l == at && *l + len <= READ_AHEAD_CHUNK => *l += len,
            _ => spans.push((at, len)),
        }
    }
    spans
}

const READ_AHEAD_CHUNK: u64 = 8 << 20;

fn read_ahead(fd: i32, spans: &[(u64, u64)], stop: &AtomicBool) {
    for &(at, len) in spans {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // SAFETY: readahead on our own open descriptor: it only fills the page cache (it
        // returns once the reads are queued); errors just leave the decoders to read.
        unsafe { libc::readahead(fd, at as libc::off64_t, len as usize) };
    }
}

/// Decodes `frames` (see [`fill`]) on `threads` threads.
fn decode_frames(
    c: &Checked,
    staging_of: &[u64],
    wanted: &[bool],
    threads: usize,
    frames: &[usize],
    progress: Option<&crate::progress::Progress>,
) -> Result<(), StageError> {
    let image = &c.image;
    let malformed = |frame: usize| ImageError::Malformed {
        part: dmtcp_image::Part::FrameIndex,
        detail: format!("frame {frame} carries bytes for a region without storage"),
    };
    image.for_frames_parallel(frames, threads, |frame, scratch| {
        let raw_len = u64::from(image.frames()[frame].raw_len);
        let pieces = image.frame_pieces(frame)?;
        if let [p] = pieces[..]
            && p.frame_offset == 0
            && p.len == raw_len
        {
            let dst = staging_of[p.region.0 as usize];
            if dst == 0 {
                return Err(malformed(frame));
            }
            let at = dst + p.region_offset;
            populate(at, p.len);
            // SAFETY: the range lies inside the staging mapping of that region (the reader
            // checked every run against its region's length), and frames fill disjoint
            // ranges, so no other thread touches these bytes.
            let out = unsafe { std::slice::from_raw_parts_mut(at as *mut u8, p.len as usize) };
            image.read_frame_verified_stored(frame, out, &mut scratch.dec)?;
        } else {
            let (buf, dec) = scratch.split();
            let n = image.read_frame_verified_stored(frame, buf, dec)?;
            for p in pieces.iter().filter(|p| wanted[p.region.0 as usize]) {
                let dst = staging_of[p.region.0 as usize];
                let (from, len) = (p.frame_offset as usize, p.len as usize);
                if dst == 0 || from + len > n {
                    return Err(malformed(frame));
                }
                populate(dst + p.region_offset, p.len);
                // SAFETY: as above; pieces of different frames never overlap.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        buf.as_ptr().add(from),
                        (dst + p.region_offset) as *mut u8,
                        len,
                    );
                }
            }
        }
        if let Some(p) = progress {
            p.add(raw_len);
        }
        Ok(())
    })?;
    Ok(())
}

/// The region's file, opened for the restorer to map, when it is still the file that was
/// mapped (same device and inode) and covers the whole region; else (-1, false) and the region
/// is restored as anonymous memory with the saved content.
fn open_backing_file(meta: &dmtcp_image::RegionMeta) -> (i32, bool) {
    use std::os::unix::fs::MetadataExt;
    let p = &meta.path;
    let special = ["/dev/", "/memfd:", "/SYSV", "/proc/", "/sys/"];
    // POSIX shared memory (`shm_open`) is a plain file on the /dev/shm tmpfs.
    let posix_shm = p.starts_with("/dev/shm/");
    if !p.starts_with('/')
        || p.ends_with(" (deleted)")
        || meta.inode == 0
        || meta.flags.has(RegionFlags::ANONYMOUS)
        || (!posix_shm && special.iter().any(|s| p.starts_with(s)))
    {
        return (-1, false);
    }
    let Ok(md) = std::fs::metadata(p) else {
        return (-1, false);
    };
    let covers = md.len().div_ceil(PAGE) * PAGE >= meta.offset + meta.len;
    if !md.is_file() || md.ino() != meta.inode || md.dev() != meta.dev || !covers {
        return (-1, false);
    }
    let shared = meta.flags.has(RegionFlags::SHARED);
    let rw = shared && meta.prot.writable();
    let f = std::fs::OpenOptions::new().read(true).write(rw).open(p);
    match f {
        Ok(f) => (std::os::fd::IntoRawFd::into_raw_fd(f), shared),
        Err(_) => (-1, false),
    }
}

/// Finds and reserves (PROT_NONE) `total` bytes of address space that no region, reserved
/// range or current mapping of ours uses.
fn reserve_staging(
    total: u64,
    targets: impl Iterator<Item = Range>,
    reserved: &[(Range, &str)],
) -> Result<u64, StageError> {
    let mut busy: Vec<Range> = targets.collect();
    busy.extend(reserved.iter().map(|(r, _)| *r));
    let total = total.max(PAGE);
    let mut last = io::Error::from_raw_os_error(libc::EEXIST);
    // Candidates spread over the lower half of the address space, where PIE programs,
    // libraries and stacks (0x55.., 0x7f..) are not.
    let candidates = (1..=0x3eu64)
        .map(|i| i << 40)
        .chain((1..0x7f).map(|i| i << 32));
    for base in candidates {
        let want = Range {
            start: base,
            end: base + total,
        };
        if want.end > 0x7fff_0000_0000 || busy.iter().any(|b| overlaps(b, &want)) {
            continue;
        }
        // SAFETY: a new inaccessible reservation that must not replace anything.
        let p = unsafe {
            libc::mmap(
                base as *mut _,
                total as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE
                    | libc::MAP_ANONYMOUS
                    | libc::MAP_NORESERVE
                    | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if p as u64 == base {
            return Ok(base);
        }
        last = io::Error::last_os_error();
        if p != libc::MAP_FAILED {
            // SAFETY: an old kernel placed it elsewhere; give it back.
            unsafe { libc::munmap(p, total as usize) };
        }
    }
    Err(StageError::NoRoom {
        len: total,
        err: last,
    })
}

/// The address-space limit when one is set (a common reason for [`StageError::NoRoom`]).
fn address_limit() -> String {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit into a local.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) };
    if r == 0 && lim.rlim_cur != libc::RLIM_INFINITY {
        format!(
            " (this process may map at most {} MiB: `ulimit -v`)",
            lim.rlim_cur >> 20
        )
    } else {
        String::new()
    }
}
