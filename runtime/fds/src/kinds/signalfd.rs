//! signalfd: the signal mask and flags. Pending signals are process state (kept by the engine).

use std::os::fd::{AsRawFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::error::{FdError, Result};
use crate::install::RestoreCtx;
use crate::scan::FdDesc;
use crate::sys;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Bit n-1 set = signal n is read through this fd.
    pub mask: u64,
    pub flags: i32,
}

pub fn save(d: &FdDesc) -> Result<State> {
    let mask = d.info.get_hex("sigmask").ok_or_else(|| FdError::FdInfo {
        fd: d.fd,
        detail: "no sigmask line".into(),
    })?;
    Ok(State {
        mask,
        flags: d.flags(),
    })
}

pub fn restore(s: &State, target: RawFd, cloexec: bool, ctx: &mut RestoreCtx) -> Result<()> {
    let fd = sys::signalfd(s.mask, libc::SFD_CLOEXEC).map_err(FdError::sys(target, "signalfd"))?;
    let fd = ctx.fresh(fd, target)?;
    ctx.set_status_flags(fd.as_raw_fd(), s.flags)?;
    ctx.install(fd, target, cloexec)
}
