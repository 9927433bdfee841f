//! Keeps the checkpoint signal away from the program: it can neither replace our handler nor
//! block the signal (DMTCP's rule; programs that wait for "all signals" keep working).

use crate::real_fn;
use core::sync::atomic::{AtomicI32, Ordering};
use dmtcp_restorer::sys;
use libc::{c_int, sigset_t};

static HIDDEN: AtomicI32 = AtomicI32::new(0);

pub fn set_hidden_signal(sig: i32) {
    HIDDEN.store(sig, Ordering::Release);
}

fn hidden(sig: c_int) -> bool {
    let h = HIDDEN.load(Ordering::Acquire);
    h != 0 && sig == h
}

type SigactionFn =
    unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;
type SignalFn = unsafe extern "C" fn(c_int, libc::sighandler_t) -> libc::sighandler_t;

/// glibc's sigaction, for our own handler.
///
/// # Safety
/// As `sigaction(2)`.
pub unsafe fn real_sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    let f: SigactionFn = real_fn!("sigaction");
    // SAFETY: forwarding the caller's arguments.
    unsafe { f(sig, act, old) }
}

/// # Safety
/// As `sigaction(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    if hidden(sig) {
        if !old.is_null() {
            // SAFETY: the caller passed a writable sigaction; report the default disposition.
            unsafe { core::ptr::write_bytes(old, 0, 1) };
        }
        return 0;
    }
    // SAFETY: forwarding; SA_SIGINFO handlers get virtual sender pids (vids/siginfo.rs).
    unsafe { crate::vids::siginfo::sigaction(sig, act, old, real_sigaction) }
}

/// # Safety
/// As `signal(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    if hidden(sig) {
        return libc::SIG_DFL;
    }
    let f: SignalFn = real_fn!("signal");
    // SAFETY: forwarding.
    unsafe { f(sig, handler) }
}

/// glibc's internal signals (SIGCANCEL = 32, SIGSETXID = 33), which its own `pthread_sigmask`
/// never lets a program block; the raw call below keeps that rule.
const GLIBC_INTERNAL: u64 = (1 << (32 - 1)) | (1 << (33 - 1));

/// Sets the calling thread's mask as glibc's `pthread_sigmask` does, minus the checkpoint
/// signal, returning 0 or the error number.
///
/// This is the hot path of every program that masks signals around critical sections, so it
/// is one atomic load, one test of the caller's first mask word and the system call itself: no
/// copy of the 128-byte set unless a signal must be taken out, and no call into glibc (the
/// kernel only reads the first 8 bytes of a set on x86-64, `_NSIG / 8`).
///
/// # Safety
/// `set` is null or readable, `old` is null or writable, as for `pthread_sigmask(3)`.
#[inline(always)]
unsafe fn set_mask(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int {
    let filtered: u64;
    let mut set_ptr = set.cast::<u64>();
    if !set.is_null() && how != libc::SIG_UNBLOCK {
        let h = HIDDEN.load(Ordering::Relaxed);
        let hidden_bit = if h > 0 && h <= 64 { 1u64 << (h - 1) } else { 0 };
        // SAFETY: a sigset_t starts with its first 64 signals as an aligned u64 word.
        let w = unsafe { *set_ptr };
        let drop = w & (GLIBC_INTERNAL | hidden_bit);
        if drop != 0 {
            filtered = w & !drop;
            set_ptr = &filtered;
        }
    }
    // SAFETY: rt_sigprocmask with the caller's (or our filtered) 8-byte set and old set.
    let r = unsafe {
        sys::syscall4(
            sys::SYS_RT_SIGPROCMASK,
            how as usize,
            set_ptr as usize,
            old as usize,
            8,
        )
    };
    if sys::is_err(r) { -r as c_int } else { 0 }
}

/// # Safety
/// As `sigprocmask(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigprocmask(
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
) -> c_int {
    // SAFETY: as the caller's contract.
    let e = unsafe { set_mask(how, set, old) };
    if e == 0 {
        return 0;
    }
    // SAFETY: this thread's errno.
    unsafe { *libc::__errno_location() = e };
    -1
}

/// # Safety
/// As `pthread_sigmask(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_sigmask(
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
) -> c_int {
    // SAFETY: as the caller's contract.
    unsafe { set_mask(how, set, old) }
}
