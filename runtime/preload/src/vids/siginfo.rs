//! The sender's pid in a `siginfo_t` handed to the program's `SA_SIGINFO` handlers (`si_pid`
//! of `kill`/`sigqueue`/`tgkill` signals and of `SIGCHLD`) is a real pid: a trampoline
//! rewrites it to the virtual one before calling the program's handler (and `sigwaitinfo`,
//! `sigtimedwait` rewrite the siginfo they return). `sigaction` installs
//! the trampoline in place of such handlers and reports the program's own handler back.
//! The trampoline is installed whether or not a translation is in force, so a handler set
//! before a checkpoint is covered after the restart too (the kernel's dispositions are saved
//! and restored as they are).

use super::real::real;
use super::table;
use core::sync::atomic::{AtomicUsize, Ordering};
use libc::{c_int, c_void, siginfo_t};

type Handler = extern "C" fn(c_int, *mut siginfo_t, *mut c_void);
type SigactionFn = unsafe fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;

#[allow(clippy::declare_interior_mutable_const)]
const NONE: AtomicUsize = AtomicUsize::new(0);
/// The program's `SA_SIGINFO` handler of each signal (0: none).
static HANDLERS: [AtomicUsize; 65] = [NONE; 65];

/// `si_code`s whose `si_pid` names a sending process (SI_USER, SI_QUEUE, SI_MESGQ, SI_TKILL).
pub(crate) fn carries_pid(sig: c_int, code: c_int) -> bool {
    matches!(code, 0 | -1 | -3 | -6) || (sig == libc::SIGCHLD && (1..=6).contains(&code))
}

/// A delivery the checkpoint signal caught before the trampoline ran (the kernel set up the
/// checkpoint signal's frame on top of it, so the thread resumes at the trampoline's first
/// instruction): its `si_pid` is a real id of the run being checkpointed, meaningless after a
/// restart. Translated now, while the table still describes it; the trampoline then finds no
/// real id equal to that virtual one and leaves it.
///
/// # Safety
/// `uc` is null or the ucontext of the checkpoint signal's delivery to this thread.
pub(crate) unsafe fn settle_interrupted(uc: *mut libc::ucontext_t) {
    if uc.is_null() || !table::active() {
        return;
    }
    // SAFETY: the kernel's ucontext for this delivery.
    let g = unsafe { &(*uc).uc_mcontext.gregs };
    if g[libc::REG_RIP as usize] as usize != trampoline as *const () as usize {
        return;
    }
    // The kernel passes (sig, info, uc) in rdi, rsi, rdx.
    let sig = g[libc::REG_RDI as usize] as c_int;
    let info = g[libc::REG_RSI as usize] as *mut siginfo_t;
    if info.is_null() {
        return;
    }
    // SAFETY: the siginfo the kernel wrote into the pending frame.
    let code = unsafe { (*info).si_code };
    if carries_pid(sig, code) {
        // SAFETY: as above; si_pid is valid for these codes.
        unsafe { super::wrappers::virtualize_siginfo(info) };
    }
}

extern "C" fn trampoline(sig: c_int, info: *mut siginfo_t, uc: *mut c_void) {
    if table::active() && !info.is_null() {
        // SAFETY: the kernel's siginfo for this delivery.
        let code = unsafe { (*info).si_code };
        if carries_pid(sig, code) {
            // SAFETY: as above; si_pid is valid for these codes.
            unsafe { super::wrappers::virtualize_siginfo(info) };
        }
    }
    let h = HANDLERS
        .get(sig as usize)
        .map_or(0, |h| h.load(Ordering::Acquire));
    if h != 0 {
        // SAFETY: the program installed this address as an SA_SIGINFO handler.
        let h: Handler = unsafe { core::mem::transmute::<usize, Handler>(h) };
        h(sig, info, uc);
    }
}

/// `sigaction` through `real`, with the trampoline in place of an `SA_SIGINFO` handler.
///
/// # Safety
/// As `sigaction(2)`.
pub unsafe fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
    real: SigactionFn,
) -> c_int {
    let Some(slot) = HANDLERS.get(sig as usize) else {
        // SAFETY: forwarding (the kernel reports EINVAL).
        return unsafe { real(sig, act, old) };
    };
    let prev = slot.load(Ordering::Acquire);
    let mut copy: libc::sigaction;
    let mut act_ptr = act;
    let mut new_handler = None;
    if !act.is_null() {
        // SAFETY: the caller's act is valid for reading.
        copy = unsafe { *act };
        let h = copy.sa_sigaction;
        if copy.sa_flags & libc::SA_SIGINFO != 0 && h != libc::SIG_DFL && h != libc::SIG_IGN {
            new_handler = Some(h);
            copy.sa_sigaction = trampoline as *const () as usize;
            act_ptr = &copy;
        } else {
            new_handler = Some(0);
        }
    }
    // The new handler is in place before the trampoline can be reached with it.
    if let Some(h) = new_handler
        && h != 0
    {
        slot.store(h, Ordering::Release);
    }
    // SAFETY: forwarding with an equivalent action.
    let r = unsafe { real(sig, act_ptr, old) };
    if r != 0 {
        slot.store(prev, Ordering::Release);
        return r;
    }
    if new_handler == Some(0) {
        slot.store(0, Ordering::Release);
    }
    if !old.is_null() {
        // SAFETY: the caller's writable sigaction, just filled in.
        unsafe {
            if (*old).sa_sigaction == trampoline as *const () as usize {
                (*old).sa_sigaction = prev;
            }
        }
    }
    r
}

/// The virtual sender in a siginfo a wait returned for `sig`.
///
/// # Safety
/// `info` is null or a siginfo the kernel filled for `sig`.
unsafe fn virtualize_returned(sig: c_int, info: *mut siginfo_t) {
    if sig > 0 && !info.is_null() && table::active() {
        // SAFETY: as the caller says.
        let code = unsafe { (*info).si_code };
        if carries_pid(sig, code) {
            // SAFETY: si_pid is valid for these codes.
            unsafe { super::wrappers::virtualize_siginfo(info) };
        }
    }
}

/// # Safety
/// As `sigwaitinfo(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigwaitinfo(set: *const libc::sigset_t, info: *mut siginfo_t) -> c_int {
    let f: unsafe extern "C" fn(*const libc::sigset_t, *mut siginfo_t) -> c_int =
        real!(sigwaitinfo);
    // SAFETY: forwarding; the kernel filled `info` for the returned signal.
    unsafe {
        let sig = f(set, info);
        virtualize_returned(sig, info);
        sig
    }
}

/// # Safety
/// As `sigtimedwait(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigtimedwait(
    set: *const libc::sigset_t,
    info: *mut siginfo_t,
    timeout: *const libc::timespec,
) -> c_int {
    let f: unsafe extern "C" fn(
        *const libc::sigset_t,
        *mut siginfo_t,
        *const libc::timespec,
    ) -> c_int = real!(sigtimedwait);
    // SAFETY: forwarding; the kernel filled `info` for the returned signal.
    unsafe {
        let sig = f(set, info, timeout);
        virtualize_returned(sig, info);
        sig
    }
}
