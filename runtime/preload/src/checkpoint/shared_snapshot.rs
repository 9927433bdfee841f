//! Shared writable memory in the forked writer. `MAP_SHARED` pages (shared files, POSIX and
//! SysV shm, memfd, `MAP_SHARED|MAP_ANONYMOUS`) are not copy-on-write across the writer's
//! clone: read live, they would hold whatever the resumed processes wrote after the
//! checkpoint. So the frozen process copies them into private memory just before the clone
//! ([`capture`]), the writer child puts each copy over its original at the same address
//! ([`swap_in`]) and saves that, and the parent drops its copies once the child exists
//! ([`release`]). The computation meets a barrier before anyone resumes (see `settle`), so
//! no process copies memory another one already changed.

use super::maps::Mapping;
use std::sync::Mutex;

/// (original start, length, copy): only the writer child ever sees it non-empty after
/// [`release`]; [`swap_in`] empties it before anything is saved, so no image holds it.
static COPIES: Mutex<Vec<(u64, u64, u64)>> = Mutex::new(Vec::new());

/// Above this many bytes of shared writable memory (default 1 GiB, `DMTCP_SHARED_COPY_MAX`)
/// the image is written in-process instead: the pause grows, memory does not double.
fn limit() -> u64 {
    static MAX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var("DMTCP_SHARED_COPY_MAX")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1 << 30)
    })
}

fn wanted(m: &Mapping, skip: u64) -> bool {
    m.shared && m.read && m.write && m.start != skip && !m.is_kernel_special()
}

/// Copies every shared writable mapping except `skip` (the writer's report page). Returns
/// false (nothing copied) when there is too much of it to copy: write in-process then.
pub fn capture(maps: &[Mapping], skip: u64) -> bool {
    let total: u64 = maps
        .iter()
        .filter(|m| wanted(m, skip))
        .map(Mapping::len)
        .sum();
    if total > limit() {
        crate::warn!(
            "{total} bytes of shared writable memory (more than DMTCP_SHARED_COPY_MAX={}): \
             writing this image in-process",
            limit()
        );
        return false;
    }
    let mut copies = COPIES.lock().unwrap_or_else(|e| e.into_inner());
    for m in maps.iter().filter(|m| wanted(m, skip)) {
        // SAFETY: a new private anonymous mapping, ours alone.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                m.len() as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            drop(copies);
            release();
            return false;
        }
        copy_own(m.start, p as u64, m.len());
        copies.push((m.start, m.len(), p as u64));
    }
    true
}

/// Copies our own memory with process_vm_readv: pages past the end of a shared file raise
/// SIGBUS when touched, here the copy just stops there (the writer does not save them).
fn copy_own(from: u64, to: u64, len: u64) {
    // The kernel's pid: libc::getpid() is our own wrapper, a virtual id after a restart.
    let me = dmtcp_restorer::sys::getpid();
    let mut done = 0;
    while done < len {
        let n = (len - done).min(64 << 20) as usize;
        let local = libc::iovec {
            iov_base: (to + done) as *mut libc::c_void,
            iov_len: n,
        };
        let remote = libc::iovec {
            iov_base: (from + done) as *mut libc::c_void,
            iov_len: n,
        };
        // SAFETY: reading this process's own mapped range into our private copy of it.
        let r = unsafe { libc::process_vm_readv(me, &local, 1, &remote, 1, 0) };
        if r <= 0 {
            crate::debug!(
                "shared memory copy stopped at {done} of {len} bytes ({})",
                std::io::Error::last_os_error()
            );
            return;
        }
        done += r as u64;
    }
}

/// Parent, after the clone: its copies are the child's now.
pub fn release() {
    let mut copies = COPIES.lock().unwrap_or_else(|e| e.into_inner());
    for (_, len, copy) in copies.drain(..) {
        // SAFETY: our own copy, which nothing else refers to in this process.
        unsafe { libc::munmap(copy as *mut libc::c_void, len as usize) };
    }
}

/// Writer child, right after reading its memory map: each copy replaces its original (the
/// map keeps describing the original: shared, its file), and the copies leave the map.
pub fn swap_in(maps: &mut Vec<Mapping>) {
    let copies: Vec<_> = COPIES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
        .collect();
    for &(start, len, copy) in &copies {
        cut_out(maps, copy, copy + len);
        // SAFETY: in the writer child only: moves our private copy over the shared mapping
        // at the same address, which this process never uses again except to save it.
        unsafe {
            libc::mremap(
                copy as *mut libc::c_void,
                len as usize,
                len as usize,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                start as *mut libc::c_void,
            )
        };
    }
}

/// Removes `[from, to)` from the map list: a copy may have merged with a neighbouring
/// private anonymous mapping, which then keeps only its own part.
fn cut_out(maps: &mut Vec<Mapping>, from: u64, to: u64) {
    let mut out = Vec::with_capacity(maps.len() + 1);
    for m in maps.drain(..) {
        if m.end <= from || m.start >= to {
            out.push(m);
            continue;
        }
        if m.start < from {
            out.push(Mapping {
                end: from,
                ..m.clone()
            });
        }
        if m.end > to {
            out.push(Mapping {
                offset: m.offset + (to - m.start),
                start: to,
                ..m
            });
        }
    }
    *maps = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon(start: u64, end: u64) -> Mapping {
        Mapping {
            start,
            end,
            read: true,
            write: true,
            exec: false,
            shared: false,
            offset: 0,
            dev: 0,
            inode: 0,
            path: String::new(),
        }
    }

    #[test]
    fn a_copy_merged_with_its_neighbours_leaves_only_them() {
        let mut maps = vec![anon(0x1000, 0x9000), anon(0x10000, 0x12000)];
        cut_out(&mut maps, 0x3000, 0x5000);
        let left: Vec<_> = maps.iter().map(|m| (m.start, m.end)).collect();
        assert_eq!(
            left,
            [(0x1000, 0x3000), (0x5000, 0x9000), (0x10000, 0x12000)]
        );
        cut_out(&mut maps, 0x10000, 0x12000);
        assert_eq!(maps.len(), 2);
    }
}
