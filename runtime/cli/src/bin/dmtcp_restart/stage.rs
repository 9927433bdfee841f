//! Staging: every saved region is decompressed into a private mapping placed where neither the
//! image's layout nor this process needs the addresses; the restorer later moves each staging
//! mapping to its final address with `mremap` (no copy).

use crate::images::Checked;
use dmtcp_image::{ImageError, Prot, RegionFlags, Storage};
use dmtcp_restorer::abi::{Range, RegionMove};
use std::io;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Image(#[from] ImageError),
    #[error("region {0} overlaps {1}; the image's address layout is damaged")]
    Overlap(String, String),
    #[error("region {0} is stored as a file reference, which this version cannot restore yet")]
    FileRef(String),
    #[error("no free address range of {0:#x} bytes for staging the image's memory")]
    NoRoom(u64),
    #[error("cannot map {len:#x} bytes of staging memory: {err}")]
    Map { len: u64, err: io::Error },
}

pub struct Staged {
    pub moves: Vec<RegionMove>,
    /// Staging mappings, sorted (kept by the restorer while it unmaps everything else).
    pub staging: Vec<Range>,
}

const PAGE: u64 = 4096;

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
    threads: usize,
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

    let skip: Vec<bool> = from_shared.iter().map(Option::is_some).collect();
    fill(c, &staging_of, &skip, threads)?;

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
            let (fd, shared) = match from_shared[i] {
                Some(fd) if fd >= 0 => (fd, true),
                _ => open_backing_file(&r.meta),
            };
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
    Ok(Staged { moves, staging })
}

/// Decodes every frame once (verifying both checksums), on every CPU, and copies its pieces
/// into the staging mappings.
fn fill(c: &Checked, staging_of: &[u64], skip: &[bool], threads: usize) -> Result<(), StageError> {
    c.image.decode_parallel(threads, |frame, raw| {
        for p in c.image.frame_pieces(frame)? {
            if skip[p.region.0 as usize] {
                continue;
            }
            let dst = staging_of[p.region.0 as usize];
            let from = p.frame_offset as usize;
            let len = p.len as usize;
            if dst == 0 || from + len > raw.len() {
                return Err(ImageError::Malformed {
                    part: dmtcp_image::Part::FrameIndex,
                    detail: format!("frame {frame} carries bytes for a region without storage"),
                });
            }
            // SAFETY: the destination lies inside the staging mapping of that region (the
            // reader checked every run against its region's length); pieces of different
            // frames never overlap, so threads write disjoint bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    raw.as_ptr().add(from),
                    (dst + p.region_offset) as *mut u8,
                    len,
                );
            }
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
        if p != libc::MAP_FAILED {
            // SAFETY: an old kernel placed it elsewhere; give it back.
            unsafe { libc::munmap(p, total as usize) };
        }
    }
    Err(StageError::NoRoom(total))
}
