//! memfd: name, contents, size, seals, flags and offset.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::error::{FdError, Result};
use crate::install::RestoreCtx;
use crate::kinds::file::read_all;
use crate::scan::FdDesc;
use crate::sys;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Inode at checkpoint: descriptions of one memfd share it.
    pub inode: u64,
    pub name: String,
    pub flags: i32,
    pub offset: i64,
    /// `F_GET_SEALS`; `F_SEAL_SEAL` alone means sealing was never allowed.
    pub seals: i32,
    pub size: i64,
    /// The bytes, held by the first description of the memfd only; `None` for the others,
    /// which reopen the first one at restore.
    pub contents: Option<Vec<u8>>,
}

pub fn save(d: &FdDesc, saved: &mut HashSet<u64>) -> Result<State> {
    let name = d.link.strip_prefix("/memfd:").unwrap_or(&d.link);
    let name = name.strip_suffix(" (deleted)").unwrap_or(name).to_string();
    let seals =
        sys::fcntl(d.fd, libc::F_GET_SEALS, 0).map_err(FdError::sys(d.fd, "F_GET_SEALS"))?;
    let offset = sys::lseek(d.fd, 0, libc::SEEK_CUR).map_err(FdError::sys(d.fd, "lseek"))?;
    let contents = if saved.insert(d.ino) {
        Some(read_all(d.fd, d.size)?)
    } else {
        None
    };
    Ok(State {
        inode: d.ino,
        name,
        flags: d.flags(),
        offset,
        seals,
        size: d.size,
        contents,
    })
}

pub fn restore(s: &State, target: RawFd, cloexec: bool, ctx: &mut RestoreCtx) -> Result<()> {
    let fd = match &s.contents {
        None => {
            let first = *ctx
                .memfds
                .get(&s.inode)
                .ok_or_else(|| FdError::Inconsistent {
                    fd: target,
                    why: format!("memfd {} refers to a memfd restored nowhere", s.name),
                })?;
            sys::open(
                &format!("/proc/self/fd/{first}"),
                s.flags | libc::O_CLOEXEC,
                0,
            )
            .map_err(FdError::sys(target, "reopen memfd"))?
        }
        Some(contents) => {
            let fd = sys::memfd_create(&s.name, libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
                .map_err(FdError::sys(target, "memfd_create"))?;
            let raw = fd.as_raw_fd();
            let mut done = 0;
            while done < contents.len() {
                done += sys::pwrite(raw, &contents[done..], done as i64)
                    .map_err(FdError::sys(target, "pwrite"))?;
            }
            sys::ftruncate(raw, s.size).map_err(FdError::sys(target, "ftruncate"))?;
            if s.seals != 0 {
                sys::fcntl(raw, libc::F_ADD_SEALS, s.seals)
                    .map_err(FdError::sys(target, "F_ADD_SEALS"))?;
            }
            ctx.memfds.insert(s.inode, target);
            if s.flags & libc::O_ACCMODE == libc::O_RDWR {
                fd
            } else {
                sys::open(
                    &format!("/proc/self/fd/{raw}"),
                    s.flags | libc::O_CLOEXEC,
                    0,
                )
                .map_err(FdError::sys(target, "reopen memfd"))?
            }
        }
    };
    let fd = ctx.fresh(fd, target)?;
    ctx.set_status_flags(fd.as_raw_fd(), s.flags)?;
    sys::lseek(fd.as_raw_fd(), s.offset, libc::SEEK_SET).map_err(FdError::sys(target, "lseek"))?;
    ctx.install(fd, target, cloexec)
}
