//! POSIX timers (`timer_create`) across checkpoint and restart. They are not fds: the kernel
//! lists a process's timers in `/proc/self/timers` (id, signal and value, notification,
//! clock); `timer_gettime` gives the remaining time and the interval. At restart each timer is
//! created again **with the same id**, so the `timer_t` the program holds keeps working:
//! with `PR_TIMER_CREATE_RESTORE_IDS` where the kernel has it (6.16+), else by creating dummy
//! timers until the kernel's per-process counter reaches the id, then deleting the dummies.
//! A timer comes back armed with the time it had left at checkpoint (time spent between
//! checkpoint and restart does not count) and its interval.
//!
//! The list is kept in a static of this library, saved with the memory.
//!
//! `SIGEV_THREAD` timers: glibc runs them from a helper thread that blocks every signal, the
//! checkpoint signal included, so such a process could never be frozen. The `timer_create`
//! wrapper below creates them instead as thread-directed timers (`SIGEV_THREAD_ID`, signal 32)
//! aimed at a helper thread of ours, which blocks only that signal, waits for it and calls the
//! program's function with its value. The helper is an ordinary thread of the program for the
//! checkpoint (frozen, saved, recreated); the timers are then ordinary thread-directed timers.
//! Differences from glibc: the functions run one after the other on the helper thread (not
//! each on a new thread), and `sigev_notify_attributes` is ignored.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicUsize, Ordering};

#[derive(Debug, Clone, Copy)]
struct Saved {
    id: i32,
    clock: i32,
    /// `sigev_notify`: SIGEV_SIGNAL, SIGEV_NONE or SIGEV_THREAD_ID.
    notify: i32,
    signo: i32,
    value: u64,
    /// Target thread of SIGEV_THREAD_ID.
    tid: i32,
    spec: libc::itimerspec,
}

static SAVED: Mutex<Vec<Saved>> = Mutex::new(Vec::new());

const SIGEV_THREAD_ID: i32 = 4;
const PR_TIMER_CREATE_RESTORE_IDS: i32 = 77;

/// The kernel's `struct sigevent` as timer_create reads it (64 bytes on x86-64).
#[repr(C)]
struct KernelSigevent {
    value: u64,
    signo: i32,
    notify: i32,
    tid: i32,
    _pad: [i32; 11],
}

/// One timer of `/proc/self/timers` (before timer_gettime).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Listed {
    id: i32,
    signo: i32,
    value: u64,
    notify: i32,
    target: i32,
    clock: i32,
}

/// Parses `/proc/<pid>/timers`; entries the runtime cannot recreate (SIGEV_THREAD in the
/// kernel, unknown notification) are skipped with `skipped` set.
fn parse(text: &str) -> (Vec<Listed>, usize) {
    let mut out = Vec::new();
    let mut skipped = 0;
    let mut cur: Option<Listed> = None;
    let mut bad = false;
    let mut finish = |cur: &mut Option<Listed>, bad: &mut bool, out: &mut Vec<Listed>| {
        if let Some(t) = cur.take() {
            if *bad {
                skipped += 1;
            } else {
                out.push(t);
            }
        }
        *bad = false;
    };
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "ID" => {
                finish(&mut cur, &mut bad, &mut out);
                match v.parse() {
                    Ok(id) => {
                        cur = Some(Listed {
                            id,
                            ..Listed::default()
                        })
                    }
                    Err(_) => bad = true,
                }
            }
            "signal" => {
                if let Some(t) = cur.as_mut() {
                    let (s, val) = v.split_once('/').unwrap_or((v, "0"));
                    t.signo = s.parse().unwrap_or(0);
                    t.value = u64::from_str_radix(val.trim_start_matches("0x"), 16).unwrap_or(0);
                }
            }
            "notify" => {
                if let Some(t) = cur.as_mut() {
                    // "signal/pid.N", "signal/tid.N", "none/pid.N", "thread/pid.N"
                    let (how, who) = v.split_once('/').unwrap_or((v, ""));
                    let (kind, n) = who.split_once('.').unwrap_or((who, "0"));
                    t.target = n.parse().unwrap_or(0);
                    t.notify = match (how, kind) {
                        ("signal", "tid") => SIGEV_THREAD_ID,
                        ("signal", _) => libc::SIGEV_SIGNAL,
                        ("none", _) => libc::SIGEV_NONE,
                        _ => {
                            bad = true;
                            0
                        }
                    };
                }
            }
            "ClockID" => {
                if let Some(t) = cur.as_mut() {
                    t.clock = v.parse().unwrap_or(0);
                    // CPU clocks of a given process or thread are negative: not portable to
                    // the restarted process.
                    if t.clock < 0 {
                        bad = true;
                    }
                }
            }
            _ => {}
        }
    }
    finish(&mut cur, &mut bad, &mut out);
    (out, skipped)
}

/// Records every POSIX timer of the process with its remaining time (program frozen).
pub fn capture() {
    forget_helper_pending();
    let text = std::fs::read_to_string("/proc/self/timers").unwrap_or_default();
    let (listed, skipped) = parse(&text);
    if skipped > 0 {
        crate::warn!(
            "{skipped} POSIX timer(s) with a notification the runtime cannot recreate will be lost at restart"
        );
    }
    let mut saved = Vec::with_capacity(listed.len());
    for t in listed {
        // SAFETY: zeroed itimerspec is valid; raw syscall on the kernel id.
        let mut spec: libc::itimerspec = unsafe { std::mem::zeroed() };
        // SAFETY: timer_gettime writes one itimerspec.
        let r = unsafe { libc::syscall(libc::SYS_timer_gettime, t.id, &mut spec) };
        if r != 0 {
            continue;
        }
        saved.push(Saved {
            id: t.id,
            clock: t.clock,
            notify: t.notify,
            signo: t.signo,
            value: t.value,
            // Virtual ids: the program knows the thread by its virtual tid.
            tid: if t.notify == SIGEV_THREAD_ID {
                crate::vids::table::to_virtual(t.target)
            } else {
                t.target
            },
            spec,
        });
    }
    *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = saved;
}

#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    #[error("cannot recreate POSIX timer {id}: {err}")]
    Create { id: i32, err: std::io::Error },
    #[error("cannot recreate POSIX timer {id}: the kernel gave id {got}")]
    WrongId { id: i32, got: i32 },
}

fn create(t: &Saved, id_in: i32) -> Result<i32, std::io::Error> {
    let mut ev = KernelSigevent {
        value: t.value,
        signo: t.signo,
        notify: t.notify,
        tid: crate::vids::table::to_real(t.tid),
        _pad: [0; 11],
    };
    let mut id: i32 = id_in;
    // SAFETY: timer_create reads the sigevent and writes the id.
    let r = unsafe {
        libc::syscall(
            libc::SYS_timer_create,
            t.clock,
            &mut ev as *mut KernelSigevent,
            &mut id as *mut i32,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(id)
}

fn delete(id: i32) {
    // SAFETY: deleting a timer we created.
    unsafe { libc::syscall(libc::SYS_timer_delete, id) };
}

/// At restart, before the program's threads run: recreates every saved timer with its id.
pub fn restore() -> Result<(), TimerError> {
    let mut saved = SAVED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if saved.is_empty() {
        return Ok(());
    }
    saved.sort_by_key(|t| t.id);
    // SAFETY: a prctl that only changes how this process's timer_create picks ids.
    let by_request = unsafe { libc::prctl(PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0) } == 0;
    let mut dummies = Vec::new();
    let mut result = Ok(());
    for t in &saved {
        let got = if by_request {
            create(t, t.id)
        } else {
            // The kernel hands out ids in increasing order: fill the gap with dummies.
            let mut got = create(t, 0);
            while let Ok(g) = got {
                if g >= t.id {
                    break;
                }
                dummies.push(g);
                got = create(t, 0);
            }
            got
        };
        match got {
            Ok(g) if g == t.id => {}
            Ok(g) => {
                delete(g);
                result = Err(TimerError::WrongId { id: t.id, got: g });
                break;
            }
            Err(err) => {
                result = Err(TimerError::Create { id: t.id, err });
                break;
            }
        }
    }
    if by_request {
        // SAFETY: back to normal id allocation for the program.
        unsafe { libc::prctl(PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0) };
    }
    for d in dummies {
        delete(d);
    }
    result?;
    for t in saved.iter_mut() {
        let zero = |v: &libc::timespec| v.tv_sec == 0 && v.tv_nsec == 0;
        if zero(&t.spec.it_value) {
            if zero(&t.spec.it_interval) {
                continue;
            }
            // A periodic timer whose signal was still queued at checkpoint reads as disarmed
            // (the kernel re-arms it when the signal is taken): arm it for its next period.
            t.spec.it_value = t.spec.it_interval;
        }
        // SAFETY: arming our timer with a relative time.
        unsafe {
            libc::syscall(
                libc::SYS_timer_settime,
                t.id,
                0,
                &t.spec as *const libc::itimerspec,
                std::ptr::null_mut::<libc::itimerspec>(),
            )
        };
    }
    Ok(())
}

/// The signal the helper waits for (glibc's own SIGTIMER).
const SIGTIMER: i32 = 32;
const SI_TIMER: i32 = -2;

/// `SIGEV_THREAD` timers: kernel id (-1 = free), function and value.
struct ThreadTimer {
    id: AtomicI64,
    func: AtomicUsize,
    value: AtomicUsize,
}

static THREAD_TIMERS: [ThreadTimer; 64] = [const {
    ThreadTimer {
        id: AtomicI64::new(-1),
        func: AtomicUsize::new(0),
        value: AtomicUsize::new(0),
    }
}; 64];
/// The helper's tid as the program sees it (virtual where ids are: the real one changes at a
/// restart), and the pid of the process it belongs to (a forked child has none).
static HELPER_TID: AtomicI32 = AtomicI32::new(0);
static HELPER_PID: AtomicI32 = AtomicI32::new(0);
static HELPER_LOCK: Mutex<()> = Mutex::new(());

/// The kernel's sigset with only SIGTIMER (glibc's `sigaddset` refuses its internal signals).
fn sigtimer_set() -> u64 {
    1u64 << (SIGTIMER - 1)
}

/// Blocks exactly SIGTIMER in the calling thread (raw call: glibc's `pthread_sigmask` refuses
/// to block its internal signals).
fn block_only_sigtimer() {
    let set = sigtimer_set();
    // SAFETY: sets this thread's mask from a local kernel sigset.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &set as *const u64,
            std::ptr::null_mut::<u64>(),
            8,
        );
    }
}

extern "C" fn helper_main(_: *mut libc::c_void) -> *mut libc::c_void {
    block_only_sigtimer();
    // The kernel's tid (libc's syscall() is the virtual-id wrapper), made virtual once.
    let tid = dmtcp_restorer::sys::gettid();
    HELPER_TID.store(crate::vids::table::to_virtual(tid), Ordering::Release);
    let set = sigtimer_set();
    // Wake up now and then: a restart may hand this thread back with another signal mask,
    // which is set right again here.
    let period = libc::timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    loop {
        let mut si = [0u8; 128];
        // SAFETY: waits for SIGTIMER into a siginfo-sized buffer; EINTR (the checkpoint
        // signal) and EAGAIN (the period) just loop.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &set as *const u64,
                si.as_mut_ptr(),
                &period as *const libc::timespec,
                8,
            )
        };
        if r < 0 {
            block_only_sigtimer();
            continue;
        }
        let code = i32::from_ne_bytes([si[8], si[9], si[10], si[11]]);
        if r != SIGTIMER as i64 || code != SI_TIMER {
            crate::debug!("timer helper: ignoring signal {r} with code {code}");
            continue;
        }
        // The kernel's siginfo for a timer: si_tid (the timer id) at offset 16.
        let id = i32::from_ne_bytes([si[16], si[17], si[18], si[19]]) as i64;
        if let Some(t) = THREAD_TIMERS
            .iter()
            .find(|t| t.id.load(Ordering::Acquire) == id)
        {
            let f = t.func.load(Ordering::Acquire);
            if f != 0 {
                // SAFETY: the program gave this function for this timer.
                let f: extern "C" fn(usize) = unsafe { std::mem::transmute(f) };
                f(t.value.load(Ordering::Acquire));
            }
        } else {
            crate::warn!("timer helper: a signal of timer {id}, which has no function");
        }
    }
}

/// A SIGTIMER still queued for our helper must not be raised again at restart: the engine
/// re-raises a thread's pending signals with `tgkill`, which glibc's handler of that signal
/// (SIGCANCEL) takes for a cancellation request. The lost expiration is one more overrun.
fn forget_helper_pending() {
    // SAFETY: plain getpid.
    if HELPER_PID.load(Ordering::Acquire) != unsafe { libc::getpid() } {
        return;
    }
    let tid = crate::vids::table::to_real(HELPER_TID.load(Ordering::Acquire));
    for i in 0..super::threads::COUNT.load(Ordering::Acquire) {
        // SAFETY: the program is frozen; the checkpoint thread alone updates the records.
        let r = unsafe { super::threads::slot(i) };
        if r.tid == tid {
            r.pending &= !(1u64 << (SIGTIMER - 1));
        }
    }
}

/// The helper's real tid in this process, started on first use (again in a forked child).
fn helper_tid() -> Option<i32> {
    // SAFETY: plain getpid.
    let pid = unsafe { libc::getpid() };
    let _g = HELPER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if HELPER_PID.load(Ordering::Acquire) == pid {
        return Some(crate::vids::table::to_real(
            HELPER_TID.load(Ordering::Acquire),
        ));
    }
    // A forked child inherits the table but neither the timers nor the helper.
    for t in &THREAD_TIMERS {
        t.id.store(-1, Ordering::Release);
    }
    HELPER_TID.store(0, Ordering::Release);
    let mut th: libc::pthread_t = 0;
    // SAFETY: a detached helper thread running `helper_main`.
    unsafe {
        if libc::pthread_create(&mut th, std::ptr::null(), helper_main, std::ptr::null_mut()) != 0 {
            return None;
        }
        libc::pthread_detach(th);
    }
    while HELPER_TID.load(Ordering::Acquire) == 0 {
        std::thread::yield_now();
    }
    HELPER_PID.store(pid, Ordering::Release);
    Some(crate::vids::table::to_real(
        HELPER_TID.load(Ordering::Acquire),
    ))
}

/// glibc's `struct sigevent` for SIGEV_THREAD: value, signo, notify, function, attributes.
#[repr(C)]
struct UserSigevent {
    value: usize,
    signo: i32,
    notify: i32,
    function: usize,
    attributes: usize,
}

#[unsafe(no_mangle)]
pub extern "C" fn timer_create(
    clock: libc::clockid_t,
    sevp: *mut libc::sigevent,
    timerid: *mut libc::timer_t,
) -> libc::c_int {
    let real: extern "C" fn(
        libc::clockid_t,
        *mut libc::sigevent,
        *mut libc::timer_t,
    ) -> libc::c_int = crate::real_fn!("timer_create");
    // SAFETY: the caller passes a valid sigevent or null.
    let ev = unsafe { sevp.cast::<UserSigevent>().as_ref() };
    let Some(ev) = ev.filter(|e| e.notify == libc::SIGEV_THREAD) else {
        return real(clock, sevp, timerid);
    };
    let Some(slot) = THREAD_TIMERS.iter().find(|t| {
        t.id.compare_exchange(-1, i64::MIN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }) else {
        // Table full: glibc's way (such a process cannot be checkpointed).
        return real(clock, sevp, timerid);
    };
    let Some(tid) = helper_tid() else {
        slot.id.store(-1, Ordering::Release);
        return real(clock, sevp, timerid);
    };
    let mut kev = KernelSigevent {
        value: 0,
        signo: SIGTIMER,
        notify: SIGEV_THREAD_ID,
        tid,
        _pad: [0; 11],
    };
    let mut id: i32 = 0;
    // SAFETY: timer_create reads the sigevent and writes the id.
    let r = unsafe {
        libc::syscall(
            libc::SYS_timer_create,
            clock,
            &mut kev as *mut KernelSigevent,
            &mut id as *mut i32,
        )
    };
    if r != 0 {
        slot.id.store(-1, Ordering::Release);
        return -1;
    }
    slot.func.store(ev.function, Ordering::Release);
    slot.value.store(ev.value, Ordering::Release);
    slot.id.store(id as i64, Ordering::Release);
    // A non-negative timer_t is a plain kernel timer id to glibc's timer_settime & co.
    // SAFETY: the caller's output pointer.
    unsafe { *timerid = id as usize as libc::timer_t };
    0
}

#[unsafe(no_mangle)]
pub extern "C" fn timer_delete(timerid: libc::timer_t) -> libc::c_int {
    let real: extern "C" fn(libc::timer_t) -> libc::c_int = crate::real_fn!("timer_delete");
    let r = real(timerid);
    let id = timerid as usize as i64;
    if r == 0
        && let Some(t) = THREAD_TIMERS
            .iter()
            .find(|t| t.id.load(Ordering::Acquire) == id)
    {
        t.id.store(-1, Ordering::Release);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_timers() {
        let text = "ID: 0\nsignal: 14/00000000deadbeef\nnotify: signal/pid.1234\nClockID: 1\n\
                    ID: 3\nsignal: 34/0000000000000000\nnotify: signal/tid.1240\nClockID: 0\n\
                    ID: 4\nsignal: 0/0000000000000000\nnotify: none/pid.1234\nClockID: 7\n\
                    ID: 5\nsignal: 10/0000000000000000\nnotify: thread/pid.1234\nClockID: 1\n\
                    ID: 6\nsignal: 10/0000000000000000\nnotify: signal/pid.1234\nClockID: -6\n";
        let (l, skipped) = parse(text);
        assert_eq!(skipped, 2);
        assert_eq!(
            l[0],
            Listed {
                id: 0,
                signo: 14,
                value: 0xdeadbeef,
                notify: libc::SIGEV_SIGNAL,
                target: 1234,
                clock: 1
            }
        );
        assert_eq!(
            (l[1].id, l[1].notify, l[1].target),
            (3, SIGEV_THREAD_ID, 1240)
        );
        assert_eq!((l[2].id, l[2].notify, l[2].clock), (4, libc::SIGEV_NONE, 7));
        assert_eq!(l.len(), 3);
    }
}
