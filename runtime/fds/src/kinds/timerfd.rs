//! timerfd: clock, remaining time, interval, absolute vs relative, unread expirations.

use std::os::fd::{AsRawFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::error::{FdError, Result};
use crate::install::RestoreCtx;
use crate::scan::FdDesc;
use crate::sys;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub clockid: i32,
    pub flags: i32,
    /// `TFD_TIMER_ABSTIME` / `TFD_TIMER_CANCEL_ON_SET` as last passed to timerfd_settime.
    pub settime_flags: i32,
    /// Time left until the next expiration; (0, 0) = disarmed.
    pub remaining: (i64, i64),
    pub interval: (i64, i64),
    /// For absolute timers: the deadline on `clockid` (what the program asked for).
    pub deadline: Option<(i64, i64)>,
    /// Expirations not yet read.
    pub ticks: u64,
}

fn ts(t: libc::timespec) -> (i64, i64) {
    (t.tv_sec, t.tv_nsec)
}

fn spec(v: (i64, i64)) -> libc::timespec {
    libc::timespec {
        tv_sec: v.0,
        tv_nsec: v.1,
    }
}

fn add(a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
    let ns = a.1 + b.1;
    (a.0 + b.0 + ns / 1_000_000_000, ns % 1_000_000_000)
}

pub fn save(d: &FdDesc) -> Result<State> {
    let missing = |what: &str| FdError::FdInfo {
        fd: d.fd,
        detail: format!("no {what} line"),
    };
    let clockid = d
        .info
        .get_dec("clockid")
        .ok_or_else(|| missing("clockid"))? as i32;
    let ticks = d.info.get_dec("ticks").ok_or_else(|| missing("ticks"))?;
    let settime_flags = d
        .info
        .get_oct("settime flags")
        .ok_or_else(|| missing("settime flags"))? as i32;
    let cur = sys::timerfd_gettime(d.fd).map_err(FdError::sys(d.fd, "timerfd_gettime"))?;
    let remaining = ts(cur.it_value);
    let armed = remaining != (0, 0);
    let deadline = if armed && settime_flags & libc::TFD_TIMER_ABSTIME != 0 {
        let now = sys::clock_gettime(clockid).map_err(FdError::sys(d.fd, "clock_gettime"))?;
        Some(add(ts(now), remaining))
    } else {
        None
    };
    Ok(State {
        clockid,
        flags: d.flags(),
        settime_flags,
        remaining,
        interval: ts(cur.it_interval),
        deadline,
        ticks,
    })
}

/// Clocks whose absolute values mean the same thing in another boot or on another machine.
fn wall_clock(clock: i32) -> bool {
    matches!(clock, libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_ALARM)
}

pub fn restore(s: &State, target: RawFd, cloexec: bool, ctx: &mut RestoreCtx) -> Result<()> {
    let fd = sys::timerfd_create(s.clockid, libc::TFD_CLOEXEC)
        .map_err(FdError::sys(target, "timerfd_create"))?;
    let fd = ctx.fresh(fd, target)?;
    if s.remaining != (0, 0) {
        // Absolute wall-clock deadlines stay absolute; anything else (monotonic, boottime,
        // relative) is re-armed with the time that was left, since those clocks restart.
        let (flags, value) = match s.deadline {
            Some(dl) if wall_clock(s.clockid) => (s.settime_flags, dl),
            _ => (0, s.remaining),
        };
        let v = libc::itimerspec {
            it_interval: spec(s.interval),
            it_value: spec(value),
        };
        sys::timerfd_settime(fd.as_raw_fd(), flags, &v)
            .map_err(FdError::sys(target, "timerfd_settime"))?;
    }
    if s.ticks > 0
        && let Err(e) = sys::timerfd_set_ticks(fd.as_raw_fd(), s.ticks)
    {
        ctx.report.warn(format!(
            "fd {target}: {} unread timer expirations lost: {e}",
            s.ticks
        ));
    }
    ctx.set_status_flags(fd.as_raw_fd(), s.flags)?;
    ctx.install(fd, target, cloexec)
}
