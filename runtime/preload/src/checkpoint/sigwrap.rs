//! Keeps the checkpoint signal away from the program: it can neither replace our handler nor
//! block the signal (DMTCP's rule; programs that wait for "all signals" keep working).

use crate::real_fn;
use core::sync::atomic::{AtomicI32, Ordering};
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
type MaskFn = unsafe extern "C" fn(c_int, *const sigset_t, *mut sigset_t) -> c_int;

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

/// The caller's mask without the checkpoint signal.
unsafe fn filtered(how: c_int, set: *const sigset_t, copy: &mut sigset_t) -> *const sigset_t {
    let h = HIDDEN.load(Ordering::Acquire);
    if set.is_null() || h == 0 || how == libc::SIG_UNBLOCK {
        return set;
    }
    // SAFETY: the caller's set is valid for reading; we edit a copy.
    unsafe {
        *copy = *set;
        libc::sigdelset(copy, h);
    }
    copy
}

/// # Safety
/// As `sigprocmask(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigprocmask(
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
) -> c_int {
    // SAFETY: an all-zero sigset_t is valid.
    let mut copy: sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: as the caller's contract.
    let set = unsafe { filtered(how, set, &mut copy) };
    let f: MaskFn = real_fn!("sigprocmask");
    // SAFETY: forwarding.
    unsafe { f(how, set, old) }
}

/// # Safety
/// As `pthread_sigmask(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_sigmask(
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
) -> c_int {
    // SAFETY: an all-zero sigset_t is valid.
    let mut copy: sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: as the caller's contract.
    let set = unsafe { filtered(how, set, &mut copy) };
    let f: MaskFn = real_fn!("pthread_sigmask");
    // SAFETY: forwarding.
    unsafe { f(how, set, old) }
}
