//! Waits with a timeout that a checkpoint does not cut short: `poll`, `ppoll`, `select`,
//! `pselect`, `epoll_wait`, `epoll_pwait`.
//!
//! The kernel returns `EINTR` from these after any signal handler ran, whatever `SA_RESTART`
//! says, so freezing a thread would make the program see an interruption by a signal it never
//! sent. As for sleeps (`sleep.rs`), the wrappers wait again, for the time that was left, when
//! the interruption came from a checkpoint; the program's own signals still interrupt them.
//! After a restart the time left is capped by the original timeout, so a clock that differs
//! on the new host can shorten a wait but never lengthen it beyond what was asked.

use crate::{ckpt_lock, real_fn};
use libc::{c_int, epoll_event, fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};
use std::time::{Duration, Instant};

fn interrupted() -> bool {
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
}

/// What is left of a wait of `total` begun at `start`, never more than `total`.
fn left(start: Instant, total: Duration) -> Duration {
    total.saturating_sub(start.elapsed())
}

/// Runs `call(timeout)` until it returns something other than an interruption by a checkpoint.
/// `total` is None for a wait without a timeout (it restarts as it was).
fn retry<T>(total: Option<Duration>, mut call: impl FnMut(Option<Duration>) -> T) -> T
where
    T: PartialEq + From<i8>,
{
    let start = Instant::now();
    let mut timeout = total;
    loop {
        let before = ckpt_lock::freezes();
        let r = call(timeout);
        if r != T::from(-1) || !interrupted() || ckpt_lock::freezes() == before {
            return r;
        }
        timeout = total.map(|t| left(start, t));
    }
}

fn ms(d: Option<Duration>) -> c_int {
    // Round up so a wait never ends before its time; -1 waits forever.
    d.map_or(-1, |d| {
        d.as_micros().div_ceil(1000).min(c_int::MAX as u128) as c_int
    })
}

fn from_ms(timeout: c_int) -> Option<Duration> {
    (timeout >= 0).then(|| Duration::from_millis(timeout as u64))
}

fn to_timespec(d: Duration) -> timespec {
    timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// # Safety
/// `p` is null or points to a valid timespec.
unsafe fn from_timespec(p: *const timespec) -> Option<Duration> {
    // SAFETY: the caller's pointer, checked for null.
    let t = unsafe { p.as_ref() }?;
    (t.tv_sec >= 0 && (0..1_000_000_000).contains(&t.tv_nsec))
        .then(|| Duration::new(t.tv_sec as u64, t.tv_nsec as u32))
}

type PollFn = unsafe extern "C" fn(*mut pollfd, nfds_t, c_int) -> c_int;
type PpollFn = unsafe extern "C" fn(*mut pollfd, nfds_t, *const timespec, *const sigset_t) -> c_int;
type SelectFn =
    unsafe extern "C" fn(c_int, *mut fd_set, *mut fd_set, *mut fd_set, *mut timeval) -> c_int;
type PselectFn = unsafe extern "C" fn(
    c_int,
    *mut fd_set,
    *mut fd_set,
    *mut fd_set,
    *const timespec,
    *const sigset_t,
) -> c_int;
type EpollWaitFn = unsafe extern "C" fn(c_int, *mut epoll_event, c_int, c_int) -> c_int;
type EpollPwaitFn =
    unsafe extern "C" fn(c_int, *mut epoll_event, c_int, c_int, *const sigset_t) -> c_int;

/// # Safety
/// Same contract as poll(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    let real: PollFn = real_fn!("poll");
    // SAFETY: forwarding the caller's arguments with a shorter timeout.
    retry(from_ms(timeout), |t| unsafe { real(fds, n, ms(t)) })
}

/// # Safety
/// Same contract as ppoll(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    tmo: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    let real: PpollFn = real_fn!("ppoll");
    // SAFETY: the caller's timeout pointer.
    let total = unsafe { from_timespec(tmo) };
    if total.is_none() && !tmo.is_null() {
        // SAFETY: an invalid timeout: let the kernel report it.
        return unsafe { real(fds, n, tmo, mask) };
    }
    retry(total, |t| {
        let ts = t.map(to_timespec);
        let p = ts
            .as_ref()
            .map_or(std::ptr::null(), |ts| ts as *const timespec);
        // SAFETY: forwarding the caller's arguments with what is left of the timeout.
        unsafe { real(fds, n, p, mask) }
    })
}

/// # Safety
/// Same contract as select(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn select(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    tv: *mut timeval,
) -> c_int {
    let real: SelectFn = real_fn!("select");
    // SAFETY: the caller's timeout, checked for null.
    let Some(t) = (unsafe { tv.as_ref() }) else {
        // No timeout: the sets are only changed on success, so retrying is the same call.
        // SAFETY: forwarding the caller's arguments.
        return retry(None, |_| unsafe { real(nfds, r, w, e, tv) });
    };
    if t.tv_sec < 0 || !(0..1_000_000).contains(&t.tv_usec) {
        // SAFETY: an invalid timeout: let the kernel report it.
        return unsafe { real(nfds, r, w, e, tv) };
    }
    let total = Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    // The kernel writes the time left into `tv` (Linux semantics); keep doing so.
    retry(Some(total), |left| {
        let d = left.unwrap_or_default();
        // SAFETY: `tv` is the caller's valid timeval.
        unsafe {
            *tv = timeval {
                tv_sec: d.as_secs() as libc::time_t,
                tv_usec: d.subsec_micros() as libc::suseconds_t,
            };
            real(nfds, r, w, e, tv)
        }
    })
}

/// # Safety
/// Same contract as pselect(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pselect(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    tmo: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    let real: PselectFn = real_fn!("pselect");
    // SAFETY: the caller's timeout pointer.
    let total = unsafe { from_timespec(tmo) };
    if total.is_none() && !tmo.is_null() {
        // SAFETY: an invalid timeout: let the kernel report it.
        return unsafe { real(nfds, r, w, e, tmo, mask) };
    }
    retry(total, |t| {
        let ts = t.map(to_timespec);
        let p = ts
            .as_ref()
            .map_or(std::ptr::null(), |ts| ts as *const timespec);
        // SAFETY: forwarding the caller's arguments with what is left of the timeout.
        unsafe { real(nfds, r, w, e, p, mask) }
    })
}

/// # Safety
/// Same contract as epoll_wait(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    let real: EpollWaitFn = real_fn!("epoll_wait");
    // SAFETY: forwarding the caller's arguments with what is left of the timeout.
    retry(from_ms(timeout), |t| unsafe {
        real(epfd, events, max, ms(t))
    })
}

/// # Safety
/// Same contract as epoll_pwait(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const sigset_t,
) -> c_int {
    let real: EpollPwaitFn = real_fn!("epoll_pwait");
    // SAFETY: forwarding the caller's arguments with what is left of the timeout.
    retry(from_ms(timeout), |t| unsafe {
        real(epfd, events, max, ms(t), mask)
    })
}
