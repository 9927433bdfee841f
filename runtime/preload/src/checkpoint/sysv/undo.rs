//! SysV semaphore undo adjustments (`SEM_UNDO`) across checkpoint and restart.
//!
//! The kernel keeps, per process, an adjustment for each semaphore the process changed with
//! `SEM_UNDO` (`semadj`, minus the sum of those changes) and applies it when the process
//! exits, so a lock holder that dies releases its lock. It does not export that list, so the
//! `semop`/`semtimedop` wrappers below keep a copy, following the kernel's rules:
//! - an operation with `SEM_UNDO` that succeeded subtracts its `sem_op` from the entry;
//! - `SETVAL`/`SETALL` clear the entries of the semaphores they set, `IPC_RMID` those of the set;
//! - the list is per process (threads share it) and a `fork` child starts with none: the table
//!   names the process that owns it, and a child's first operation empties its inherited copy.
//!
//! The wrapper holds the checkpoint lock across the call and the bookkeeping, so a checkpoint
//! never sees an operation the kernel applied but the table lacks (or the reverse). A blocking
//! operation waits in slices of [`SLICE_MS`] and drops the lock in between, so a checkpoint
//! waits at most that long for it.
//!
//! Restart: `dmtcp_restart` recreated each set with its saved values, which already include
//! every live process's undone changes. Each process then recreates its entries, for each
//! adjustment `a`, with one atomic `semop` of two operations on that semaphore: `-a` with
//! `SEM_UNDO` (the kernel sets the entry to `a`) and `+a` without it (the value is unchanged),
//! the positive one first so the call never blocks or goes below zero on the way.

use crate::{ckpt_lock, real_fn};
use libc::{c_int, sembuf, size_t, timespec};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

/// Longest time a blocked `semop` with `SEM_UNDO` keeps a checkpoint waiting.
const SLICE_MS: i64 = 20;
const SLOTS: usize = 512;
const SEM_UNDO: i16 = 0x1000;

type SemtimedopFn = unsafe extern "C" fn(c_int, *mut sembuf, size_t, *const timespec) -> c_int;

/// `(semid as u32) << 32 | (semnum + 1)`; 0 = free slot. Lock-free: any thread may add.
static KEYS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// The adjustment of the semaphore named by the same slot of [`KEYS`].
static ADJ: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
/// Kernel pid of the process the table belongs to (0 = nobody yet).
static OWNER: AtomicI32 = AtomicI32::new(0);
/// Set at checkpoint: the table was this process's own (not a copy inherited by `fork`).
static OWN_AT_CHECKPOINT: AtomicBool = AtomicBool::new(false);

/// The kernel's pid (an inline syscall: libc's `syscall` is wrapped by the virtual-pid layer,
/// which would answer with the virtual pid once a restart has set it up).
fn kernel_pid() -> i32 {
    dmtcp_restorer::sys::getpid()
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn set_errno(e: c_int) {
    // SAFETY: errno is this thread's own variable.
    unsafe { *libc::__errno_location() = e };
}

fn key(id: i32, num: u16) -> u64 {
    (id as u32 as u64) << 32 | (num as u64 + 1)
}

fn clear_all() {
    for (k, a) in KEYS.iter().zip(&ADJ) {
        k.store(0, Ordering::Release);
        a.store(0, Ordering::Release);
    }
}

/// The table handed to the program an `exec` of this process starts (the kernel keeps the
/// adjustments over `exec`): `<kernel pid>;<semid>:<semnum>:<adj>,...`. The pid keeps a
/// process started by `posix_spawn` (which inherits the variable) from taking it.
pub const ENV: &str = "DMTCP_SEMADJ";
static IMPORTED: AtomicBool = AtomicBool::new(false);

/// The value of [`ENV`] for an `exec` of this process, if it holds adjustments.
pub fn export() -> Option<String> {
    let e = entries();
    if e.is_empty() {
        return None;
    }
    let mut v = format!("{};", kernel_pid());
    for (id, num, adj) in e {
        v.push_str(&format!("{id}:{num}:{adj},"));
    }
    Some(v)
}

fn parse_env(v: &str, me: i32) -> Option<Vec<(i32, u16, i32)>> {
    let (pid, list) = v.split_once(';')?;
    if pid.parse::<i32>().ok()? != me {
        return None;
    }
    list.split(',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            let mut w = t.split(':');
            Some((
                w.next()?.parse().ok()?,
                w.next()?.parse().ok()?,
                w.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// Takes the table an `exec` handed over (once, on first use).
fn import_once() {
    if IMPORTED.swap(true, Ordering::AcqRel) {
        return;
    }
    // SAFETY: getenv of a NUL-terminated name (no lock: a checkpoint may call this while
    // the program is frozen); the value is copied at once.
    let v = unsafe {
        let p = libc::getenv(c"DMTCP_SEMADJ".as_ptr());
        if p.is_null() {
            return;
        }
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
    };
    let me = kernel_pid();
    let Some(list) = parse_env(&v, me) else {
        return;
    };
    clear_all();
    OWNER.store(me, Ordering::Release);
    for (id, num, adj) in list {
        if let Some(i) = slot(id, num) {
            ADJ[i].store(adj, Ordering::Release);
        }
    }
}

/// Empties a table inherited through `fork`, and claims it for this process.
fn claim() {
    import_once();
    let me = kernel_pid();
    if OWNER.load(Ordering::Acquire) != me {
        clear_all();
        OWNER.store(me, Ordering::Release);
    }
}

fn slot(id: i32, num: u16) -> Option<usize> {
    let k = key(id, num);
    for (i, s) in KEYS.iter().enumerate() {
        match s.compare_exchange(0, k, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(i),
            Err(cur) if cur == k => return Some(i),
            Err(_) => {}
        }
    }
    None
}

/// Records a successful operation: the kernel subtracts each undoable `sem_op`.
fn note(id: i32, ops: &[sembuf]) {
    claim();
    for o in ops
        .iter()
        .filter(|o| o.sem_flg & SEM_UNDO != 0 && o.sem_op != 0)
    {
        match slot(id, o.sem_num) {
            Some(i) => {
                ADJ[i].fetch_sub(o.sem_op as i32, Ordering::AcqRel);
            }
            None => crate::warn!(
                "more than {SLOTS} semaphores with SEM_UNDO; the adjustment of {id}/{} will not be restored",
                o.sem_num
            ),
        }
    }
}

/// `SETVAL` (one semaphore) or `SETALL` (`num` = None): the kernel clears those adjustments
/// in every process; here only this process's copy can follow.
pub fn reset(id: i32, num: Option<u16>) {
    import_once();
    for (k, a) in KEYS.iter().zip(&ADJ) {
        let v = k.load(Ordering::Acquire);
        if v >> 32 == id as u32 as u64 && num.is_none_or(|n| v == key(id, n)) {
            a.store(0, Ordering::Release);
        }
    }
}

/// This process's non-zero adjustments, as (semid, semnum, adjustment).
pub fn entries() -> Vec<(i32, u16, i32)> {
    import_once();
    if OWNER.load(Ordering::Acquire) != kernel_pid() {
        return Vec::new();
    }
    KEYS.iter()
        .zip(&ADJ)
        .map(|(k, a)| (k.load(Ordering::Acquire), a.load(Ordering::Acquire)))
        .filter(|&(k, a)| k != 0 && a != 0)
        .map(|(k, a)| ((k >> 32) as u32 as i32, (k as u32 - 1) as u16, a))
        .collect()
}

/// Ids of the sets this process holds adjustments on (they must be saved with the images).
pub fn set_ids() -> Vec<i32> {
    let mut ids: Vec<i32> = entries().into_iter().map(|(id, _, _)| id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// At checkpoint (everyone frozen): remembers whether the table is this process's own.
pub fn capture() {
    import_once();
    OWN_AT_CHECKPOINT.store(
        OWNER.load(Ordering::Acquire) == kernel_pid(),
        Ordering::Release,
    );
}

#[derive(Debug, thiserror::Error)]
#[error("cannot recreate the SEM_UNDO adjustment {adj} of SysV semaphore {id}/{num}: {err}")]
pub struct UndoError {
    id: i32,
    num: u16,
    adj: i32,
    err: std::io::Error,
}

/// The two operations that recreate adjustment `adj` on semaphore `num` and leave its value
/// as it was: positive one first, so neither blocks nor goes below zero.
pub fn recreate_ops(num: u16, adj: i32) -> [sembuf; 2] {
    let op = |sem_op: i32, undo: bool| sembuf {
        sem_num: num,
        sem_op: sem_op as i16,
        sem_flg: libc::IPC_NOWAIT as i16 | if undo { SEM_UNDO } else { 0 },
    };
    // The kernel's entry becomes `-sem_op` of the undoable operation.
    if adj > 0 {
        [op(adj, false), op(-adj, true)]
    } else {
        [op(-adj, true), op(adj, false)]
    }
}

/// At restart, after the sets were recreated with their values and before the program runs:
/// recreates this process's adjustments in the kernel. The table itself came back with the
/// memory; it now belongs to the restored process (whose kernel pid may differ).
pub fn restore() -> Vec<UndoError> {
    let own = OWN_AT_CHECKPOINT.load(Ordering::Acquire);
    if !own {
        clear_all();
        OWNER.store(kernel_pid(), Ordering::Release);
        return Vec::new();
    }
    OWNER.store(kernel_pid(), Ordering::Release);
    let real: SemtimedopFn = real_fn!("semtimedop");
    let mut errors = Vec::new();
    for (id, num, adj) in entries() {
        let mut ops = recreate_ops(num, adj);
        // SAFETY: two valid operations; IPC_NOWAIT, no timeout.
        if unsafe { real(id, ops.as_mut_ptr(), 2, std::ptr::null()) } != 0 {
            errors.push(UndoError {
                id,
                num,
                adj,
                err: std::io::Error::last_os_error(),
            });
        } else {
            crate::debug!("SysV semaphore {id}/{num}: SEM_UNDO adjustment {adj} recreated");
        }
    }
    errors
}

fn now_ns() -> i64 {
    let mut t = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec for the clock to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec * 1_000_000_000 + t.tv_nsec
}

fn ts(ns: i64) -> timespec {
    timespec {
        tv_sec: ns / 1_000_000_000,
        tv_nsec: ns % 1_000_000_000,
    }
}

/// `semtimedop` for an operation list with at least one `SEM_UNDO` operation.
///
/// # Safety
/// Same contract as semtimedop(2).
pub unsafe fn tracked(id: c_int, sops: *mut sembuf, n: size_t, timeout: *const timespec) -> c_int {
    let real: SemtimedopFn = real_fn!("semtimedop");
    // SAFETY: the caller passes `n` operations at `sops` (checked non-null by the wrapper).
    let ops = unsafe { std::slice::from_raw_parts(sops, n) };
    let nowait = |o: &sembuf| o.sem_flg & libc::IPC_NOWAIT as i16 != 0;
    let all_nowait = ops.iter().all(nowait);
    let any_nowait = ops.iter().any(nowait);
    // SAFETY: the caller's timeout, if any; an invalid one goes to the kernel as it is.
    let user = (!timeout.is_null()).then(|| unsafe { *timeout });
    let valid = user.is_none_or(|t| t.tv_sec >= 0 && (0..1_000_000_000).contains(&t.tv_nsec));
    if all_nowait || !valid {
        // Cannot block: one call under the lock.
        ckpt_lock::enter();
        // SAFETY: forwarding the caller's arguments.
        let r = unsafe { real(id, sops, n, timeout) };
        let e = errno();
        if r == 0 {
            note(id, ops);
        }
        ckpt_lock::leave();
        set_errno(e);
        return r;
    }
    let deadline = user.map(|t| now_ns().saturating_add(t.tv_sec * 1_000_000_000 + t.tv_nsec));
    loop {
        let start = now_ns();
        let wait = deadline.map_or(SLICE_MS * 1_000_000, |d| {
            (d - start).clamp(0, SLICE_MS * 1_000_000)
        });
        let slice = ts(wait);
        ckpt_lock::enter();
        // SAFETY: the caller's operations with a timeout of our own.
        let r = unsafe { real(id, sops, n, &slice) };
        let e = errno();
        if r == 0 {
            note(id, ops);
        }
        ckpt_lock::leave();
        let ours = e == libc::EAGAIN
            && deadline.is_none_or(|d| now_ns() < d)
            // With some IPC_NOWAIT operations, an early EAGAIN is the program's own.
            && !(any_nowait && now_ns() - start < wait / 2);
        if r == 0 || !ours {
            set_errno(e);
            return r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recreate_ops_set_the_adjustment_and_keep_the_value() {
        for adj in [-5, -1, 1, 3] {
            let ops = recreate_ops(2, adj);
            // The value does not move, and the positive operation comes first.
            assert_eq!(ops.iter().map(|o| o.sem_op as i32).sum::<i32>(), 0);
            assert!(ops[0].sem_op > 0);
            // The kernel's entry is minus the sum of undoable operations.
            let entry: i32 = -ops
                .iter()
                .filter(|o| o.sem_flg & SEM_UNDO != 0)
                .map(|o| o.sem_op as i32)
                .sum::<i32>();
            assert_eq!(entry, adj);
            assert!(ops.iter().all(|o| o.sem_num == 2));
        }
    }

    #[test]
    fn exec_hand_over_is_for_the_same_process_only() {
        let v = "4242;32768:0:1,32768:1:-5,";
        assert_eq!(
            parse_env(v, 4242),
            Some(vec![(32768, 0, 1), (32768, 1, -5)])
        );
        assert_eq!(parse_env(v, 4243), None);
        assert_eq!(parse_env("4242;", 4242), Some(vec![]));
        assert_eq!(parse_env("4242;1:x:3,", 4242), None);
    }

    #[test]
    fn table_follows_the_kernel_rules() {
        clear_all();
        OWNER.store(0, Ordering::Release);
        let op = |num, sem_op, undo| sembuf {
            sem_num: num,
            sem_op,
            sem_flg: if undo { SEM_UNDO } else { 0 },
        };
        note(7, &[op(0, -1, true), op(1, 5, true), op(2, 9, false)]);
        note(7, &[op(1, 2, true)]);
        note(8, &[op(0, -3, true)]);
        let mut e = entries();
        e.sort();
        assert_eq!(e, vec![(7, 0, 1), (7, 1, -7), (8, 0, 3)]);
        reset(7, Some(1));
        let mut e = entries();
        e.sort();
        assert_eq!(e, vec![(7, 0, 1), (8, 0, 3)]);
        reset(8, None);
        assert_eq!(entries(), vec![(7, 0, 1)]);
        assert_eq!(set_ids(), vec![7]);
        // A table inherited from another process (fork) is not this one's.
        OWNER.store(kernel_pid() + 1, Ordering::Release);
        assert!(entries().is_empty());
        note(9, &[op(0, -1, true)]);
        assert_eq!(entries(), vec![(9, 0, 1)]);
        clear_all();
    }
}
