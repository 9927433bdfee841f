//! Process-wide kernel state that memory does not carry: signal dispositions, pending signals,
//! interval timers, umask, resource limits and the working directory. Captured while every
//! program thread is frozen (into a static that is saved with the image) and re-applied by the
//! restart entry.

use core::cell::UnsafeCell;
use dmtcp_restorer::sys;

/// The kernel's `struct sigaction` (x86-64): handler, flags, restorer, mask.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct KSigaction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ProcessState {
    pub valid: bool,
    pub actions: [KSigaction; 65],
    /// Signals pending for the whole process (bit n-1 for signal n).
    pub shared_pending: u64,
    /// ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF: interval and value (sec, usec).
    pub itimers: [[i64; 4]; 3],
    pub umask: u32,
    pub rlimits: [[u64; 2]; 16],
    pub cwd: [u8; 4096],
    pub cwd_len: usize,
}

pub struct Cell(UnsafeCell<ProcessState>);
// SAFETY: written only by the checkpoint thread while every other thread is frozen, and read by
// the restart entry before any other thread exists.
unsafe impl Sync for Cell {}

pub static STATE: Cell = Cell(UnsafeCell::new(ProcessState {
    valid: false,
    actions: [KSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    }; 65],
    shared_pending: 0,
    itimers: [[0; 4]; 3],
    umask: 0o022,
    rlimits: [[0; 2]; 16],
    cwd: [0; 4096],
    cwd_len: 0,
}));

/// # Safety
/// Only the checkpoint thread with the program frozen, or the restart entry.
pub unsafe fn state() -> &'static mut ProcessState {
    // SAFETY: see `Cell`.
    unsafe { &mut *STATE.0.get() }
}

/// Reads a `SigPnd:`/`ShdPnd:` style hex mask from a /proc status file.
pub fn pending_from_status(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

/// Captures the process-wide state (the program is frozen).
pub fn capture() {
    // SAFETY: the program is frozen; we are the checkpoint thread.
    let s = unsafe { state() };
    for sig in 1..=64usize {
        if sig == 9 || sig == 19 {
            continue;
        }
        // SAFETY: rt_sigaction reading into our table entry.
        unsafe {
            sys::syscall4(
                sys::SYS_RT_SIGACTION,
                sig,
                0,
                &mut s.actions[sig] as *mut KSigaction as usize,
                8,
            )
        };
    }
    for (i, t) in s.itimers.iter_mut().enumerate() {
        let mut v = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            it_value: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
        };
        // SAFETY: getitimer into a local.
        unsafe { libc::getitimer(i as libc::c_int, &mut v) };
        *t = [
            v.it_interval.tv_sec,
            v.it_interval.tv_usec,
            v.it_value.tv_sec,
            v.it_value.tv_usec,
        ];
    }
    // SAFETY: umask swaps; set it straight back.
    let old = unsafe { libc::umask(0o022) };
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    s.umask = old;
    for (i, l) in s.rlimits.iter_mut().enumerate() {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit into a local.
        if unsafe { libc::getrlimit(i as libc::__rlimit_resource_t, &mut r) } == 0 {
            *l = [r.rlim_cur, r.rlim_max];
        }
    }
    // SAFETY: getcwd into our buffer.
    let p = unsafe { libc::getcwd(s.cwd.as_mut_ptr().cast(), s.cwd.len()) };
    s.cwd_len = if p.is_null() {
        0
    } else {
        s.cwd.iter().position(|&b| b == 0).unwrap_or(0)
    };
    s.valid = true;
}

/// Re-applies the captured state in the restarted process (before any thread resumes).
/// Only raw system calls: this runs from the restart entry.
pub fn apply() {
    // SAFETY: the restart entry runs alone.
    let s = unsafe { state() };
    if !s.valid {
        return;
    }
    for sig in 1..=64usize {
        if sig == 9 || sig == 19 {
            continue;
        }
        // SAFETY: installing the saved kernel sigaction.
        unsafe {
            sys::syscall4(
                sys::SYS_RT_SIGACTION,
                sig,
                &s.actions[sig] as *const _ as usize,
                0,
                8,
            )
        };
    }
    // SAFETY: plain system calls with pointers to our saved values.
    unsafe {
        sys::syscall1(sys::SYS_UMASK, s.umask as usize);
        if s.cwd_len > 0 && s.cwd_len < s.cwd.len() {
            s.cwd[s.cwd_len] = 0;
            sys::syscall1(sys::SYS_CHDIR, s.cwd.as_ptr() as usize);
        }
        for (i, t) in s.itimers.iter().enumerate() {
            let mut t = *t;
            // A periodic timer that expired while the process was frozen reads 0 (its signal
            // is pending): arm it for the next period, or it would never fire again.
            if t[2] == 0 && t[3] == 0 && (t[0] != 0 || t[1] != 0) {
                t[2] = t[0];
                t[3] = t[1];
            }
            if t[2] != 0 || t[3] != 0 {
                sys::syscall3(sys::SYS_SETITIMER, i, t.as_ptr() as usize, 0);
            }
        }
    }
}

/// Captures the process-wide pending signals (every process of the computation is frozen).
pub fn capture_shared_pending(ckpt_signal: i32) {
    // SAFETY: the program is frozen; we are the checkpoint thread.
    let s = unsafe { state() };
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    s.shared_pending = pending_from_status(&status, "ShdPnd:") & !(1u64 << (ckpt_signal - 1));
}

/// Re-applies the resource limits (after the fds are back: see `after_restart`).
pub fn apply_rlimits() {
    // SAFETY: read-only use after restart.
    let s = unsafe { state() };
    if !s.valid {
        return;
    }
    for (i, l) in s.rlimits.iter().enumerate() {
        // prlimit64(0, resource, new, NULL): may fail to raise a hard limit; keep going.
        // SAFETY: points at our saved pair.
        unsafe { sys::syscall4(302, 0, i, l.as_ptr() as usize, 0) };
    }
}

/// Raises the process-wide pending signals again (after restart, before threads resume).
pub fn raise_shared_pending() {
    // SAFETY: read-only use after restart.
    let s = unsafe { state() };
    for sig in 1..=64 {
        if s.shared_pending & (1u64 << (sig - 1)) != 0 {
            // SAFETY: kill to our own process.
            unsafe { sys::syscall2(62, sys::getpid() as usize, sig) };
        }
    }
}
