//! Pipes and FIFOs: data in flight, capacity, O_NONBLOCK; pipes come back as real pipes.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::error::{FdError, Result};
use crate::install::{OrphanPipeEnd, RestoreCtx};
use crate::scan::FdDesc;
use crate::{SaveOptions, sys};

/// Where the pipe's other end is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Peer {
    /// Both ends are fds of this process: restore recreates the pipe whole.
    InProcess,
    /// Only this end is here; the other is in another process (or was closed). Restore creates
    /// a new pipe and hands the other end out as an [`OrphanPipeEnd`] keyed by `inode`, for the
    /// cross-process layer to rejoin.
    External,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The pipe's inode at checkpoint: groups the ends of one pipe, here and across processes.
    pub inode: u64,
    pub write_end: bool,
    /// Status flags (O_NONBLOCK, O_DIRECT) and access mode.
    pub flags: i32,
    /// `F_GETPIPE_SZ`.
    pub capacity: i32,
    pub peer: Peer,
    /// Bytes that were in the pipe; held by the first read end saved for the inode only.
    pub data: Vec<u8>,
}

/// Keys of pipes/FIFOs whose data was already drained during this save.
pub type Drained = HashSet<(u64, u64)>;

/// The pipe's capacity, and its queued bytes when this fd saves them: from a readable end,
/// once per pipe, and not when another process was elected to save them.
fn capacity_and_data(
    d: &FdDesc,
    drained: &mut Drained,
    opts: &SaveOptions,
) -> Result<(i32, Vec<u8>)> {
    let capacity =
        sys::fcntl(d.fd, libc::F_GETPIPE_SZ, 0).map_err(FdError::sys(d.fd, "F_GETPIPE_SZ"))?;
    let drains =
        d.readable() && !opts.skip_drain.contains(&d.ino) && drained.insert((d.dev, d.ino));
    let data = if drains {
        drain_refill(d.fd)?
    } else {
        Vec::new()
    };
    Ok((capacity, data))
}

pub fn save(d: &FdDesc, drained: &mut Drained, opts: &SaveOptions) -> Result<State> {
    let write_end = d.access_mode() == libc::O_WRONLY;
    let (capacity, data) = capacity_and_data(d, drained, opts)?;
    Ok(State {
        inode: d.ino,
        write_end,
        flags: d.flags(),
        capacity,
        // Fixed up by save_all once every fd has been seen.
        peer: Peer::External,
        data,
    })
}

/// Reads everything queued in the pipe behind `fd` without blocking, then writes it back
/// through a new write-side description, so the running program loses nothing.
///
/// Both sides are private descriptions opened through `/proc/self/fd`: the program's own
/// description (often shared with other processes, which may be reading its flags for their
/// own images at this very moment) never has O_NONBLOCK set, not even briefly.
pub(crate) fn drain_refill(fd: RawFd) -> Result<Vec<u8>> {
    let path = format!("/proc/self/fd/{fd}");
    let r = sys::open(
        &path,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        0,
    )
    .map_err(FdError::sys(fd, "open read side for drain"))?;
    let mut data = Vec::new();
    let mut chunk = vec![0u8; 65536];
    loop {
        match sys::read(r.as_raw_fd(), &mut chunk) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => {
                return Err(FdError::Sys {
                    fd,
                    op: "drain read",
                    source: e,
                });
            }
        }
    }
    if !data.is_empty() {
        let w = sys::open(
            &path,
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
            0,
        )
        .map_err(FdError::sys(fd, "open write side for refill"))?;
        write_all(w.as_raw_fd(), &data).map_err(FdError::sys(fd, "refill"))?;
    }
    Ok(data)
}

/// Writes all of `data` to a (non-blocking) pipe; EAGAIN means it no longer fits.
fn write_all(fd: RawFd, data: &[u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < data.len() {
        match sys::write(fd, &data[done..]) {
            Ok(n) => done += n,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A new description of the pipe behind `existing`, as `open("/proc/self/fd/N")` gives.
fn reopen(existing: RawFd, mode: i32, target: RawFd, ctx: &RestoreCtx) -> Result<OwnedFd> {
    let path = format!("/proc/self/fd/{existing}");
    let fd = sys::open(&path, mode | libc::O_NONBLOCK | libc::O_CLOEXEC, 0)
        .map_err(FdError::sys(target, "reopen pipe end"))?;
    ctx.fresh(fd, target)
}

/// One saved description of a pipe end: its fd number, close-on-exec flag and state.
pub type End<'a> = (RawFd, bool, &'a State);

/// Recreates one pipe (every saved description of it in this process) and refills its data.
pub fn restore_group(ends: &[End], ctx: &mut RestoreCtx) -> Result<()> {
    let Some(&(first, _, _)) = ends.first() else {
        return Ok(());
    };
    let (r, w) =
        sys::pipe2(libc::O_CLOEXEC | libc::O_NONBLOCK).map_err(FdError::sys(first, "pipe2"))?;
    let r = ctx.fresh(r, first)?;
    let w = ctx.fresh(w, first)?;
    let capacity = ends.iter().map(|e| e.2.capacity).max().unwrap_or(0);
    if capacity > 0
        && let Err(e) = sys::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, capacity)
    {
        ctx.report.warn(format!(
            "fd {first}: cannot set pipe capacity {capacity}: {e}"
        ));
    }
    for (fd, _, s) in ends {
        if !s.data.is_empty()
            && let Err(e) = write_all(w.as_raw_fd(), &s.data)
        {
            ctx.report.warn(format!(
                "fd {fd}: only part of the pipe's {} bytes fit back: {e}",
                s.data.len()
            ));
        }
    }
    let mut placed_read: Option<RawFd> = None;
    let mut placed_write: Option<RawFd> = None;
    for &(fd, cloexec, s) in ends {
        let new = if s.flags & libc::O_ACCMODE == libc::O_RDWR {
            // A read-write description (opened through /proc): reopen the new pipe that way.
            placed_read.get_or_insert(fd);
            placed_write.get_or_insert(fd);
            reopen(r.as_raw_fd(), libc::O_RDWR, fd, ctx)?
        } else {
            let (placed, fresh, mode) = if s.write_end {
                (&mut placed_write, &w, libc::O_WRONLY)
            } else {
                (&mut placed_read, &r, libc::O_RDONLY)
            };
            match placed.replace(placed.unwrap_or(fd)) {
                // Another description of the same end: open it through /proc, as the program did.
                Some(p) => reopen(p, mode, fd, ctx)?,
                None => sys::dup_above(fresh.as_raw_fd(), ctx.scratch_min)
                    .map_err(FdError::sys(fd, "F_DUPFD"))?,
            }
        };
        ctx.set_status_flags(new.as_raw_fd(), s.flags)?;
        ctx.install(new, fd, cloexec)?;
    }
    let orphan: Option<(OwnedFd, bool)> = match (placed_read, placed_write) {
        (Some(_), Some(_)) => None,
        (Some(_), None) => Some((w, true)),
        (None, Some(_)) => Some((r, false)),
        (None, None) => None,
    };
    if let Some((fd, write_end)) = orphan {
        // The holder in the other process decides its own flags; hand it a blocking end.
        let fl =
            sys::fcntl(fd.as_raw_fd(), libc::F_GETFL, 0).map_err(FdError::sys(first, "F_GETFL"))?;
        ctx.set_status_flags(fd.as_raw_fd(), fl & !libc::O_NONBLOCK)?;
        ctx.report.orphan_pipe_ends.push(OrphanPipeEnd {
            inode: ends[0].2.inode,
            write_end,
            fd,
        });
    }
    Ok(())
}

/// FIFOs (named pipes): reopened by path, data refilled.
pub mod fifo {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct State {
        pub path: String,
        pub flags: i32,
        pub capacity: i32,
        /// Bytes that were in the FIFO; held by the first readable fd saved for it only.
        pub data: Vec<u8>,
    }

    pub fn save(d: &FdDesc, drained: &mut Drained, opts: &SaveOptions) -> Result<State> {
        let (capacity, data) = capacity_and_data(d, drained, opts)?;
        Ok(State {
            path: d.link.clone(),
            flags: d.flags(),
            capacity,
            data,
        })
    }

    pub fn restore(s: &State, target: RawFd, cloexec: bool, ctx: &mut RestoreCtx) -> Result<()> {
        // A read-write keeper makes both opens non-blocking and holds the data until the
        // restored fd exists.
        let keeper = sys::open(
            &s.path,
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            0,
        )
        .map_err(FdError::reopen(target, &s.path, "open FIFO"))?;
        let st = sys::fstat(keeper.as_raw_fd()).map_err(FdError::sys(target, "fstat"))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
            return Err(FdError::Inconsistent {
                fd: target,
                why: format!("{} is no longer a FIFO", s.path),
            });
        }
        let mode = s.flags & libc::O_ACCMODE;
        let fd = sys::open(&s.path, mode | libc::O_NONBLOCK | libc::O_CLOEXEC, 0)
            .map_err(FdError::sys(target, "open FIFO"))?;
        let fd = ctx.fresh(fd, target)?;
        if s.capacity > 0
            && let Err(e) = sys::fcntl(keeper.as_raw_fd(), libc::F_SETPIPE_SZ, s.capacity)
        {
            ctx.report.warn(format!(
                "fd {target}: cannot set FIFO capacity {}: {e}",
                s.capacity
            ));
        }
        if !s.data.is_empty() {
            write_all(keeper.as_raw_fd(), &s.data).map_err(FdError::sys(target, "refill FIFO"))?;
        }
        ctx.set_status_flags(fd.as_raw_fd(), s.flags)?;
        ctx.install(fd, target, cloexec)
    }
}
