//! Process-directed pending signals keep their `siginfo` (sender pid and uid, `si_code`, value)
//! across a checkpoint: once every process is frozen the checkpoint thread takes them out of
//! the queue with their siginfo, and the main thread queues them again to its own process when
//! it resumes, after the checkpoint and after a restart (with the sender's pid mapped to its new
//! real id). Only the main thread can: `rt_sigqueueinfo` with a kernel-style `si_code` (SI_USER
//! from `kill`, SI_TKILL) is allowed only when the caller's tid is the target pid.
//!
//! Signals that cannot be saved this way (no frozen main thread, too many queued) stay pending
//! and are raised again at restart by `process::raise_shared_pending`, sender unknown.

use super::threads;
use core::cell::UnsafeCell;
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
            let real = crate::vids::table::to_real(s.senders[i]);
            // SAFETY: si_pid lies inside our copy (x86-64 layout: offset 16).
            unsafe {
                *(&mut info as *mut libc::siginfo_t)
                    .cast::<u8>()
                    .add(16)
                    .cast::<i32>() = real
            };
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
