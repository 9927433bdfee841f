//! Pending signals keep their `siginfo` (sender pid and uid, `si_code`, value) across a
//! checkpoint.
//!
//! Process-directed ones: once every process is frozen the checkpoint thread takes them out of
//! the queue with their siginfo, and the main thread queues them again to its own process when
//! it resumes, after the checkpoint and after a restart (with the sender's pid mapped to its new
//! real id). Only the main thread can: `rt_sigqueueinfo` with a kernel-style `si_code` (SI_USER
//! from `kill`, SI_TKILL) is allowed only when the caller's tid is the target pid.
//!
//! Thread-directed ones (`tgkill`, `pthread_kill`, `pthread_sigqueue`, a `SIGEV_THREAD_ID`
//! timer): only the thread itself can dequeue its private queue, so each thread does it in its
//! checkpoint-signal handler, before it reports frozen, into a pool shared by the threads, and
//! queues them back to itself with `rt_tgsigqueueinfo` when it is released (resume) or recreated
//! (restart). The checkpoint thread records their senders' virtual ids once everything is
//! frozen. A signal that arrives after the thread froze stays in the kernel's queue (read from
//! /proc at checkpoint, raised again with `tgkill` at restart, sender unknown).
//!
//! Signals that cannot be saved this way (no frozen main thread, too many queued) stay pending
//! and are raised again at restart by `process::raise_shared_pending` or the thread itself,
//! sender unknown.

use super::threads;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};
use dmtcp_restorer::sys;

/// Queued instances kept per checkpoint (real-time signals queue several).
const MAX: usize = 64;

struct Saved {
    infos: [libc::siginfo_t; MAX],
    /// The sender's virtual id for infos that carry one, else 0.
    senders: [i32; MAX],
    n: usize,
}

struct Cell(UnsafeCell<Saved>);
// SAFETY: written by the checkpoint thread while every program thread is frozen, read and
// cleared by the main thread after its release (the checkpoint thread no longer touches it).
unsafe impl Sync for Cell {}

// SAFETY: siginfo_t is plain data; all zeroes is a valid value.
static SAVED: Cell = Cell(UnsafeCell::new(unsafe { core::mem::zeroed() }));

/// Dequeues the process-directed pending signals with their siginfo (the checkpoint thread,
/// after the barrier that every process meets frozen).
pub fn capture(ckpt_signal: i32) {
    note_thread_senders();
    // SAFETY: see `Cell`.
    let s = unsafe { &mut *SAVED.0.get() };
    s.n = 0;
    let main_frozen = threads::slots().iter().any(|r| r.is_main && r.frozen);
    if !main_frozen {
        return;
    }
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    let shared = super::process::pending_from_status(&status, "ShdPnd:");
    for sig in 1..=64i32 {
        if sig == ckpt_signal || sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        if shared & (1u64 << (sig - 1)) == 0 {
            continue;
        }
        let set: u64 = 1u64 << (sig - 1);
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        while s.n < MAX {
            let info = &mut s.infos[s.n];
            // SAFETY: rt_sigtimedwait with a zero timeout writes one siginfo into our slot.
            let got = unsafe {
                sys::syscall4(
                    libc::SYS_rt_sigtimedwait as usize,
                    &set as *const u64 as usize,
                    info as *mut libc::siginfo_t as usize,
                    &zero as *const libc::timespec as usize,
                    8,
                )
            };
            if got != sig as isize {
                break;
            }
            s.senders[s.n] = if crate::vids::siginfo::carries_pid(sig, info.si_code) {
                // SAFETY: si_pid is valid for these codes.
                crate::vids::table::to_virtual(unsafe { info.si_pid() })
            } else {
                0
            };
            s.n += 1;
        }
    }
    if s.n > 0 {
        crate::debug!("saved {} pending signals with their sender", s.n);
    }
}

/// Queues the saved signals again to our own process (the main thread, after its release;
/// `restarted`: the senders get their new real ids). Async-signal-safe: system calls only.
pub fn requeue(restarted: bool) {
    // SAFETY: see `Cell`; only the main thread calls this.
    let s = unsafe { &mut *SAVED.0.get() };
    let n = core::mem::replace(&mut s.n, 0).min(MAX);
    let pid = sys::getpid();
    for i in 0..n {
        let mut info = s.infos[i];
        if restarted && s.senders[i] > 0 {
            set_si_pid(&mut info, crate::vids::table::to_real(s.senders[i]));
        }
        // SAFETY: rt_sigqueueinfo to our own process with our copy of the siginfo.
        let r = unsafe {
            sys::syscall3(
                libc::SYS_rt_sigqueueinfo as usize,
                pid as usize,
                info.si_signo as usize,
                &info as *const libc::siginfo_t as usize,
            )
        };
        if r < 0 {
            // SAFETY: a plain kill to ourselves: the signal at least arrives.
            unsafe {
                sys::syscall2(
                    libc::SYS_kill as usize,
                    pid as usize,
                    info.si_signo as usize,
                )
            };
        }
    }
}

/// Thread-directed signals kept per checkpoint, all threads together.
const THREAD_MAX: usize = 256;

struct ThreadEntry {
    /// Whose entry it is (see `owner_key`); 0: free or already queued back.
    owner: AtomicUsize,
    info: UnsafeCell<libc::siginfo_t>,
    /// The sender's virtual id for infos that carry one, else 0.
    sender: UnsafeCell<i32>,
}

struct Pool([ThreadEntry; THREAD_MAX]);
// SAFETY: entry `i` is written only by the thread that claimed index `i` (its `info`, then
// `owner` with Release), its `sender` by the checkpoint thread while that thread is frozen, and
// read by the owner after `owner` says it is its own (Acquire).
unsafe impl Sync for Pool {}

static POOL: Pool = Pool(
    [const {
        ThreadEntry {
            owner: AtomicUsize::new(0),
            // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
            info: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            sender: UnsafeCell::new(0),
        }
    }; THREAD_MAX],
);
/// Entries claimed in this checkpoint (may exceed THREAD_MAX: the claim failed).
static POOL_USED: AtomicUsize = AtomicUsize::new(0);

const fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// A new freeze starts (before any thread is signalled): the pool is empty again, unless a
/// thread released by the previous freeze has not queued its signals back yet (then the new
/// entries go after its own).
pub fn begin_freeze() {
    let n = POOL_USED.load(Ordering::Acquire).min(THREAD_MAX);
    if POOL.0[..n]
        .iter()
        .all(|e| e.owner.load(Ordering::Acquire) == 0)
    {
        POOL_USED.store(0, Ordering::Release);
    }
}

/// An entry's owner: the thread's slot in `threads::TABLE` and the release generation its
/// freeze waits on (slots are handed out again at every freeze).
fn owner_key(slot: usize, release_gen: u32) -> usize {
    ((release_gen as usize) << 32) | (slot + 1)
}

/// The hex mask after `key` (such as `SigPnd:`) in a /proc status text, 0 when absent.
fn mask_after(text: &[u8], key: &[u8]) -> u64 {
    let Some(at) = text.windows(key.len()).position(|w| w == key) else {
        return 0;
    };
    let mut v = 0u64;
    for &c in text[at + key.len()..]
        .iter()
        .skip_while(|c| **c == b' ' || **c == b'\t')
    {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => break,
        };
        v = (v << 4) | d as u64;
    }
    v
}

/// This thread's private pending set (`SigPnd` of /proc/thread-self/status), raw calls only.
fn own_private_pending() -> u64 {
    // SAFETY: opening a constant NUL-terminated path.
    let fd = unsafe {
        sys::syscall3(
            sys::SYS_OPEN,
            c"/proc/thread-self/status".as_ptr() as usize,
            (libc::O_RDONLY | libc::O_CLOEXEC) as usize,
            0,
        )
    };
    if sys::is_err(fd) {
        return 0;
    }
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while len < buf.len() {
        // SAFETY: reading into the unused tail of a local buffer.
        let n = unsafe {
            sys::syscall3(
                sys::SYS_READ,
                fd as usize,
                buf[len..].as_mut_ptr() as usize,
                buf.len() - len,
            )
        };
        if n <= 0 {
            break;
        }
        len += n as usize;
    }
    // SAFETY: closing our own descriptor.
    unsafe { sys::syscall1(sys::SYS_CLOSE, fd as usize) };
    mask_after(&buf[..len], b"SigPnd:")
}

/// In the checkpoint-signal handler of thread `slot` (not the checkpoint thread), before it
/// reports frozen: dequeues its private pending signals with their siginfo into the pool.
/// Async-signal-safe: raw system calls and atomics only.
pub fn take_thread_pending(slot: usize, release_gen: u32, ckpt_signal: i32) {
    let skip = bit(ckpt_signal) | bit(libc::SIGKILL) | bit(libc::SIGSTOP);
    // Cheap test first: the union of our private and the shared set (everything is blocked
    // in the handler, so all of it shows).
    let mut any: u64 = 0;
    // SAFETY: rt_sigpending writes 8 bytes into a local.
    unsafe {
        sys::syscall2(
            libc::SYS_rt_sigpending as usize,
            &mut any as *mut u64 as usize,
            8,
        )
    };
    if any & !skip == 0 {
        return;
    }
    let mut private = own_private_pending() & !skip;
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    while private != 0 {
        let sig = private.trailing_zeros() as i32 + 1;
        let i = POOL_USED.fetch_add(1, Ordering::AcqRel);
        if i >= THREAD_MAX {
            return; // Left in the kernel's queue.
        }
        let e = &POOL.0[i];
        let set = bit(sig);
        // SAFETY: entry `i` is ours alone (claimed above); rt_sigtimedwait with a zero timeout
        // takes our private instance first and writes its siginfo there.
        let got = unsafe {
            sys::syscall4(
                libc::SYS_rt_sigtimedwait as usize,
                &set as *const u64 as usize,
                e.info.get() as usize,
                &zero as *const libc::timespec as usize,
                8,
            )
        };
        if got != sig as isize {
            e.owner.store(0, Ordering::Release);
            private &= !set;
            continue;
        }
        // SAFETY: as above.
        unsafe { *e.sender.get() = 0 };
        e.owner
            .store(owner_key(slot, release_gen), Ordering::Release);
        // A real-time signal may be queued several times: look again.
        private = own_private_pending() & !skip;
    }
}

/// The checkpoint thread, every thread frozen: the senders' virtual ids (the table still
/// describes this run).
fn note_thread_senders() {
    let n = POOL_USED.load(Ordering::Acquire).min(THREAD_MAX);
    for e in &POOL.0[..n] {
        if e.owner.load(Ordering::Acquire) == 0 {
            continue;
        }
        // SAFETY: the owner is frozen and wrote `info` before publishing `owner`.
        let info = unsafe { &*e.info.get() };
        let sender = if crate::vids::siginfo::carries_pid(info.si_signo, info.si_code) {
            // SAFETY: si_pid is valid for these codes.
            crate::vids::table::to_virtual(unsafe { info.si_pid() })
        } else {
            0
        };
        // SAFETY: see `Pool`.
        unsafe { *e.sender.get() = sender };
    }
}

/// Queues the signals thread `slot` had pending back to itself (after its release, or in its
/// recreated task at restart, where the senders get their new real ids). Async-signal-safe.
pub fn requeue_thread(slot: usize, release_gen: u32, restarted: bool) {
    let n = POOL_USED.load(Ordering::Acquire).min(THREAD_MAX);
    let pid = sys::getpid();
    let tid = sys::gettid();
    for e in &POOL.0[..n] {
        if e.owner.load(Ordering::Acquire) != owner_key(slot, release_gen) {
            continue;
        }
        // SAFETY: the entry is ours (see `Pool`).
        let mut info = unsafe { *e.info.get() };
        // SAFETY: as above.
        let sender = unsafe { *e.sender.get() };
        if restarted && sender > 0 {
            set_si_pid(&mut info, crate::vids::table::to_real(sender));
        }
        e.owner.store(0, Ordering::Release);
        // SAFETY: rt_tgsigqueueinfo to this very thread (allowed with any si_code) with our
        // copy of the siginfo.
        let r = unsafe {
            sys::syscall4(
                libc::SYS_rt_tgsigqueueinfo as usize,
                pid as usize,
                tid as usize,
                info.si_signo as usize,
                &info as *const libc::siginfo_t as usize,
            )
        };
        if r < 0 {
            threads::tgkill(tid, info.si_signo);
        }
    }
}

fn set_si_pid(info: &mut libc::siginfo_t, pid: i32) {
    // SAFETY: si_pid lies inside the siginfo (x86-64 layout: offset 16).
    unsafe {
        *(info as *mut libc::siginfo_t)
            .cast::<u8>()
            .add(16)
            .cast::<i32>() = pid
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_pending_mask_from_status() {
        let text = b"Name:\tx\nSigQ:\t2/63\nSigPnd:\t0000000000000a01\nShdPnd:\t0000000000000100\n";
        assert_eq!(mask_after(text, b"SigPnd:"), 0xa01);
        assert_eq!(mask_after(text, b"ShdPnd:"), 0x100);
        assert_eq!(mask_after(text, b"SigBlk:"), 0);
    }

    /// A signal queued to this thread with a value is taken out with its siginfo (no longer
    /// pending), and queued back to the same thread by its owner key only.
    #[test]
    fn takes_and_requeues_a_thread_signal_with_its_siginfo() {
        let sig = libc::SIGRTMIN() + 7;
        let set = bit(sig);
        let (pid, tid) = (sys::getpid(), sys::gettid());
        // SAFETY: blocking the signal in this test thread, then queueing it to ourselves.
        unsafe {
            libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, &set, 0usize, 8);
            let mut info: libc::siginfo_t = core::mem::zeroed();
            info.si_signo = sig;
            info.si_code = libc::SI_QUEUE;
            set_si_pid(&mut info, pid);
            *(&mut info as *mut libc::siginfo_t)
                .cast::<u8>()
                .add(24)
                .cast::<i32>() = 0x1234;
            let r = libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid, tid, sig, &info);
            assert_eq!(r, 0);
        }
        assert_ne!(own_private_pending() & set, 0);
        take_thread_pending(900, 7, libc::SIGSYS);
        assert_eq!(
            own_private_pending() & set,
            0,
            "still pending after the take"
        );
        // Another owner (slot or generation) does not get it.
        requeue_thread(900, 8, false);
        requeue_thread(901, 7, false);
        assert_eq!(own_private_pending() & set, 0);
        requeue_thread(900, 7, false);
        assert_ne!(own_private_pending() & set, 0, "not queued back");
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: dequeues the signal into a local siginfo.
        let (got, info) = unsafe {
            let mut info: libc::siginfo_t = core::mem::zeroed();
            let got = libc::syscall(libc::SYS_rt_sigtimedwait, &set, &mut info, &zero, 8);
            (got, info)
        };
        assert_eq!(got, sig as i64);
        assert_eq!(info.si_code, libc::SI_QUEUE);
        // SAFETY: si_pid and si_value are valid for SI_QUEUE.
        unsafe {
            assert_eq!(info.si_pid(), pid);
            assert_eq!(info.si_value().sival_ptr as usize as i32, 0x1234);
        }
    }
}
