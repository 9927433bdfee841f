//! Sleeps that a checkpoint does not cut short.
//!
//! Freezing a thread interrupts its `nanosleep` with our signal, and the kernel never restarts
//! a sleep after a signal handler ran: the program would see `EINTR` (or `sleep()` returning
//! early) for a signal it never sent. These wrappers sleep again for the time that was left
//! when the interruption came from a checkpoint (also after a restart, where the remaining
//! time is the one saved at checkpoint). Interruptions by the program's own signals are
//! returned as before.

use crate::{ckpt_lock, real_fn};
use libc::{c_int, c_uint, clockid_t, timespec};

type NanosleepFn = unsafe extern "C" fn(*const timespec, *mut timespec) -> c_int;
type ClockNanosleepFn =
    unsafe extern "C" fn(clockid_t, c_int, *const timespec, *mut timespec) -> c_int;

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// # Safety
/// Same contract as nanosleep(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    let real: NanosleepFn = real_fn!("nanosleep");
    if req.is_null() {
        // SAFETY: forwarding the caller's arguments (the kernel reports EFAULT).
        return unsafe { real(req, rem) };
    }
    // SAFETY: the caller passes a valid request.
    let mut want = unsafe { *req };
    loop {
        let before = ckpt_lock::freezes();
        let mut left = timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid request and remainder buffers.
        let r = unsafe { real(&want, &mut left) };
        if r == 0 || errno() != libc::EINTR || ckpt_lock::freezes() == before {
            if !rem.is_null() && r != 0 {
                // SAFETY: the caller's remainder buffer.
                unsafe { *rem = left };
            }
            return r;
        }
        want = left;
    }
}

/// # Safety
/// Same contract as clock_nanosleep(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let real: ClockNanosleepFn = real_fn!("clock_nanosleep");
    if req.is_null() {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { real(clock, flags, req, rem) };
    }
    // SAFETY: the caller passes a valid request.
    let mut want = unsafe { *req };
    loop {
        let before = ckpt_lock::freezes();
        let mut left = timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid request and remainder buffers. clock_nanosleep returns the error.
        let r = unsafe { real(clock, flags, &want, &mut left) };
        if r != libc::EINTR || ckpt_lock::freezes() == before {
            if !rem.is_null() && r == libc::EINTR {
                // SAFETY: the caller's remainder buffer.
                unsafe { *rem = left };
            }
            return r;
        }
        // An absolute deadline stays as it is; a relative one continues with what was left.
        if flags & libc::TIMER_ABSTIME == 0 {
            want = left;
        }
    }
}

/// # Safety
/// Same contract as sleep(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sleep(seconds: c_uint) -> c_uint {
    let req = timespec {
        tv_sec: seconds as libc::time_t,
        tv_nsec: 0,
    };
    let mut rem = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid buffers; our nanosleep resumes after checkpoints.
    if unsafe { nanosleep(&req, &mut rem) } == 0 {
        return 0;
    }
    // Like glibc: the unslept seconds, rounded up.
    (rem.tv_sec + (rem.tv_nsec > 0) as libc::time_t) as c_uint
}

/// # Safety
/// Same contract as usleep(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usleep(usec: libc::useconds_t) -> c_int {
    let req = timespec {
        tv_sec: (usec / 1_000_000) as libc::time_t,
        tv_nsec: ((usec % 1_000_000) * 1000) as libc::c_long,
    };
    // SAFETY: a valid request; our nanosleep resumes after checkpoints.
    unsafe { nanosleep(&req, core::ptr::null_mut()) }
}
