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

use std::sync::Mutex;

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
    for t in &saved {
        if t.spec.it_value.tv_sec == 0 && t.spec.it_value.tv_nsec == 0 {
            continue;
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
