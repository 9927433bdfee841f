//! epoll: every registered fd with its events and data, replayed once the targets exist.

use std::os::fd::{AsRawFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::error::{FdError, Result};
use crate::fdinfo::kdev_to_st_dev;
use crate::install::RestoreCtx;
use crate::scan::FdDesc;
use crate::sys;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The fd number the registration was made with.
    pub fd: RawFd,
    pub events: u32,
    pub data: u64,
    /// False when that number no longer refers to the registered file (closed or reused):
    /// the registration lives on in the kernel but no fd reaches it, so it cannot be replayed.
    pub reachable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub flags: i32,
    pub targets: Vec<Target>,
}

pub fn save(d: &FdDesc) -> Result<State> {
    let targets = d
        .info
        .epoll
        .iter()
        .map(|t| {
            let reachable = sys::fstat(t.tfd)
                .map(|st| st.st_ino == t.ino && st.st_dev == kdev_to_st_dev(t.sdev))
                .unwrap_or(false);
            Target {
                fd: t.tfd,
                events: t.events,
                data: t.data,
                reachable,
            }
        })
        .collect();
    Ok(State {
        flags: d.flags(),
        targets,
    })
}

/// First phase: the empty epoll instance.
pub fn create(s: &State, target: RawFd, cloexec: bool, ctx: &mut RestoreCtx) -> Result<()> {
    let fd =
        sys::epoll_create1(libc::EPOLL_CLOEXEC).map_err(FdError::sys(target, "epoll_create1"))?;
    let fd = ctx.fresh(fd, target)?;
    ctx.set_status_flags(fd.as_raw_fd(), s.flags)?;
    ctx.install(fd, target, cloexec)
}

/// Second phase, after every other fd is back: `EPOLL_CTL_ADD` for each registration.
/// Registrations of fds in `deferred` (sockets, restored later by their own layer) are handed
/// back in the report instead.
pub fn register(s: &State, epfd: RawFd, deferred: &[RawFd], ctx: &mut RestoreCtx) -> Result<()> {
    for t in &s.targets {
        if t.reachable && deferred.contains(&t.fd) {
            ctx.report.deferred_epoll.push((epfd, t.clone()));
            continue;
        }
        if !t.reachable {
            ctx.report.warn(format!(
                "fd {epfd}: epoll registration of fd {} dropped: that fd was closed or reused before the checkpoint",
                t.fd
            ));
            continue;
        }
        if let Err(e) = sys::epoll_add(epfd, t.fd, t.events, t.data) {
            return Err(FdError::Sys {
                fd: epfd,
                op: "EPOLL_CTL_ADD",
                source: e,
            });
        }
    }
    Ok(())
}
