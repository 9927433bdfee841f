//! eventfd: counter, EFD_SEMAPHORE, EFD_NONBLOCK.

use std::os::fd::{AsRawFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::error::{FdError, Result};
use crate::install::RestoreCtx;
use crate::scan::FdDesc;
use crate::sys;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub count: u64,
    pub semaphore: bool,
    pub flags: i32,
}

pub fn save(d: &FdDesc) -> Result<State> {
    let count = d
        .info
        .get_hex("eventfd-count")
        .ok_or_else(|| FdError::FdInfo {
            fd: d.fd,
            detail: "no eventfd-count line".into(),
        })?;
    // Kernels before 6.6 do not print the semaphore flag; such eventfds restore as counters.
    let semaphore = d.info.get_dec("eventfd-semaphore").unwrap_or(0) != 0;
    Ok(State {
        count,
        semaphore,
        flags: d.flags(),
    })
}

pub fn restore(s: &State, target: RawFd, cloexec: bool, ctx: &mut RestoreCtx) -> Result<()> {
    let mut flags = libc::EFD_CLOEXEC | libc::EFD_NONBLOCK;
    if s.semaphore {
        flags |= libc::EFD_SEMAPHORE;
    }
    let fd = sys::eventfd(0, flags).map_err(FdError::sys(target, "eventfd"))?;
    let fd = ctx.fresh(fd, target)?;
    // The counter is 64-bit but eventfd()'s initial value only 32: write it instead.
    if s.count > 0 {
        sys::write(fd.as_raw_fd(), &s.count.to_ne_bytes())
            .map_err(FdError::sys(target, "write counter"))?;
    }
    ctx.set_status_flags(fd.as_raw_fd(), s.flags)?;
    ctx.install(fd, target, cloexec)
}
