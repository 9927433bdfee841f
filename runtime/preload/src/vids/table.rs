//! The virtual→real id table of one process (DESIGN.md §5, virtual-id strategy).
//!
//! Until a restart in virtual mode the table is off and every translation is the identity:
//! one relaxed load and a branch, no lookup. A restart fills it with the pairs whose virtual
//! id (the id the program knows) differs from the real one (the kernel's id of the moment),
//! for every process and thread of the computation; ids not in the table are their own
//! virtual ids (processes and threads created after the restart).
//!
//! The table is a fixed static array (no allocation, usable from signal handlers and fork
//! children). It is written only by the checkpoint thread while the program's threads are
//! frozen, or by a fork wrapper removing a stale entry, so readers need no lock: each slot is
//! a pair of atomics and a reader may at worst see a slot that is being cleared.

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

/// Processes plus threads of a computation this table can describe.
pub const CAPACITY: usize = 4096;

struct Pair {
    virt: AtomicI32,
    real: AtomicI32,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Pair = Pair {
    virt: AtomicI32::new(0),
    real: AtomicI32::new(0),
};

static PAIRS: [Pair; CAPACITY] = [EMPTY; CAPACITY];
static LEN: AtomicUsize = AtomicUsize::new(0);
/// Read by the `vfork` wrapper's assembly (`children.rs`).
pub(crate) static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Is any translation in force (a restart in virtual mode happened)?
#[inline(always)]
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

fn pairs() -> &'static [Pair] {
    &PAIRS[..LEN.load(Ordering::Acquire).min(CAPACITY)]
}

/// The real id of virtual id `v` (ids <= 0 are not ids and pass through).
#[inline(always)]
pub fn to_real(v: i32) -> i32 {
    if !active() || v <= 0 {
        return v;
    }
    lookup_real(v)
}

/// The virtual id of real id `r` (ids <= 0 pass through).
#[inline(always)]
pub fn to_virtual(r: i32) -> i32 {
    if !active() || r <= 0 {
        return r;
    }
    lookup_virtual(r)
}

#[cold]
fn lookup_real(v: i32) -> i32 {
    pairs()
        .iter()
        .find(|p| p.virt.load(Ordering::Relaxed) == v)
        .map_or(v, |p| p.real.load(Ordering::Relaxed))
}

#[cold]
fn lookup_virtual(r: i32) -> i32 {
    pairs()
        .iter()
        .find(|p| p.real.load(Ordering::Relaxed) == r)
        .map_or(r, |p| p.virt.load(Ordering::Relaxed))
}

/// `kill`/`waitpid` style argument: a positive pid, or minus a process group id.
#[inline(always)]
pub fn signed_to_real(id: i32) -> i32 {
    if id < -1 { -to_real(-id) } else { to_real(id) }
}

/// What a newly created process with real id `r` means for the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewId {
    /// `r` is free as a virtual id: the new process is its own virtual id.
    Free,
    /// Another process or thread of the computation uses `r` as its virtual id.
    Taken,
}

/// Checks a real id just handed out by the kernel. A table entry whose real side is `r`
/// belonged to a task that is gone (the kernel reuses only free ids): it is dropped.
pub fn classify_new(r: i32) -> NewId {
    if !active() {
        return NewId::Free;
    }
    let mut taken = false;
    for p in pairs() {
        if p.real.load(Ordering::Relaxed) == r {
            p.virt.store(0, Ordering::Relaxed);
            p.real.store(0, Ordering::Relaxed);
        } else if p.virt.load(Ordering::Relaxed) == r {
            taken = true;
        }
    }
    if taken { NewId::Taken } else { NewId::Free }
}

/// Replaces the whole table by `new` (virtual, real) pairs and turns translation on. Pairs
/// that are the identity are left out. Only the checkpoint thread calls this, while the
/// program's threads are frozen. Returns how many pairs did not fit.
pub fn replace(new: &[(i32, i32)]) -> usize {
    let mut n = 0;
    let mut dropped = 0;
    for &(v, r) in new {
        if v == r || v <= 0 || r <= 0 {
            continue;
        }
        if n == CAPACITY {
            dropped += 1;
            continue;
        }
        PAIRS[n].virt.store(v, Ordering::Relaxed);
        PAIRS[n].real.store(r, Ordering::Relaxed);
        n += 1;
    }
    LEN.store(n, Ordering::Release);
    ACTIVE.store(true, Ordering::Release);
    dropped
}

/// Virtual ids handed to tasks whose real id is taken start above the kernel's largest
/// possible pid (`PID_MAX_LIMIT`, 2^22), so they can never be anybody's real id.
const FRESH_BASE: i32 = (1 << 22) + 1;

static APPEND_LOCK: AtomicBool = AtomicBool::new(false);

/// Gives the task with real id `r` a virtual id of its own (its real id is another task's
/// virtual id) and returns it. False lookups are impossible: the new id is above every real id.
pub fn add_fresh(r: i32) -> i32 {
    while APPEND_LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    let n = LEN.load(Ordering::Acquire).min(CAPACITY);
    let v = PAIRS[..n]
        .iter()
        .map(|p| p.virt.load(Ordering::Relaxed))
        .filter(|&v| v >= FRESH_BASE)
        .max()
        .map_or(FRESH_BASE, |m| m + 1);
    if n < CAPACITY {
        PAIRS[n].virt.store(v, Ordering::Relaxed);
        PAIRS[n].real.store(r, Ordering::Relaxed);
        LEN.store(n + 1, Ordering::Release);
    }
    APPEND_LOCK.store(false, Ordering::Release);
    v
}

/// Turns translation off: after a restart with exact ids every virtual id is real again.
pub fn clear() {
    ACTIVE.store(false, Ordering::Release);
    LEN.store(0, Ordering::Release);
}

/// Copies the table's pairs into `out`; returns how many (for handing the table on at exec).
pub fn snapshot(out: &mut [(i32, i32)]) -> usize {
    let mut n = 0;
    for p in pairs() {
        let (v, r) = (
            p.virt.load(Ordering::Relaxed),
            p.real.load(Ordering::Relaxed),
        );
        if v > 0 && n < out.len() {
            out[n] = (v, r);
            n += 1;
        }
    }
    n
}
