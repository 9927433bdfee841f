//! Checksums of many frames on several processes: the incremental writer compares every frame
//! no dirty source vouches for with the previous image, and one thread hashing 2 GiB takes
//! most of a generation's time. Workers ([`worker_clones`]) take frame numbers from a shared
//! counter, write each checksum beside a "done" word in a shared mapping, and exit. They
//! allocate nothing. The writer hashes too, and hashes itself whatever a worker that
//! died left undone.

use core::sync::atomic::{AtomicU64, Ordering};

use super::worker_clones::{self, SharedMap};

/// Below this many bytes the writer hashes alone.
const INLINE_BYTES: u64 = 128 << 20;

#[repr(C)]
struct Slot {
    done: AtomicU64,
    hash: AtomicU64,
}

/// The checksums (xxh3, as `dmtcp_image::checksum`) of the memory `frames` (address, length),
/// in order, computed by `workers` processes in all (this one included), or by this one alone
/// when there is too little to hash (see [`processes`]).
pub fn checksums(frames: &[(u64, u32)], workers: usize) -> Vec<u64> {
    checksums_inline_below(frames, workers, INLINE_BYTES)
}

/// How many processes [`checksums`] uses for `frames`.
pub fn processes(frames: &[(u64, u32)], workers: usize) -> usize {
    if inline(frames, workers, INLINE_BYTES) {
        1
    } else {
        workers
    }
}

fn inline(frames: &[(u64, u32)], workers: usize, below: u64) -> bool {
    workers <= 1 || frames.iter().map(|f| u64::from(f.1)).sum::<u64>() < below
}

fn checksums_inline_below(frames: &[(u64, u32)], workers: usize, inline_below: u64) -> Vec<u64> {
    let hash = |&(at, len): &(u64, u32)| {
        // SAFETY: the caller's frames are readable memory of this process's snapshot.
        dmtcp_image::checksum(unsafe { std::slice::from_raw_parts(at as *const u8, len as usize) })
    };
    let n = frames.len();
    // Cloning a worker copies the page tables of the whole snapshot (tens of ms for 2 GiB);
    // one thread hashes 128 MiB in about as long.
    if inline(frames, workers, inline_below) {
        return frames.iter().map(hash).collect();
    }
    let Ok(map) = SharedMap::new(8 + n * std::mem::size_of::<Slot>()) else {
        return frames.iter().map(hash).collect();
    };
    // SAFETY: the mapping is zeroed and large enough for the counter and n slots; atomics make
    // the sharing with the workers sound.
    let (next, slots) = unsafe {
        (
            &*(map.base as *const AtomicU64),
            std::slice::from_raw_parts(map.base.add(8) as *const Slot, n),
        )
    };
    let work = || {
        loop {
            let k = next.fetch_add(1, Ordering::AcqRel) as usize;
            if k >= n {
                break;
            }
            slots[k].hash.store(hash(&frames[k]), Ordering::Relaxed);
            slots[k].done.store(1, Ordering::Release);
        }
    };
    let pids: Vec<i32> = (1..workers.min(64))
        .map_while(|_| {
            worker_clones::spawn(|| {
                work();
                0
            })
            .ok()
        })
        .collect();
    work();
    worker_clones::reap(&pids, false);
    let out = frames
        .iter()
        .zip(slots)
        .map(|(f, s)| {
            if s.done.load(Ordering::Acquire) == 1 {
                s.hash.load(Ordering::Relaxed)
            } else {
                hash(f)
            }
        })
        .collect();
    drop(map); // The workers are gone.
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_give_the_checksums_of_one_thread() {
        let mem: Vec<u8> = (0..(5u32 << 20) + 777)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let base = mem.as_ptr() as u64;
        let frames: Vec<(u64, u32)> = (0..40)
            .map(|k| (base + k * 131_072 + 5, 131_072 - (k as u32 % 7)))
            .collect();
        let one = checksums(&frames, 1);
        assert_eq!(
            one[3],
            dmtcp_image::checksum(&mem[3 * 131_072 + 5..][..131_069])
        );
        assert_eq!(checksums_inline_below(&frames, 3, 0), one);
        assert_eq!(checksums_inline_below(&frames[..2], 4, 0), one[..2]);
        assert_eq!(checksums(&frames, 3), one, "small: hashed inline");
    }
}
