//! Lists the process's fds and describes each one (link target, `fstat`, fdinfo, kind).

use std::os::fd::RawFd;

use crate::classify::{Class, classify};
use crate::error::{FdError, Result};
use crate::fdinfo::FdInfo;
use crate::sys;

/// The runtime's own fds (coordinator session, log, ...), never saved or touched.
pub const PROTECTED_FDS: std::ops::RangeInclusive<RawFd> = 820..=839;

/// Everything known about one fd before its kind-specific save.
#[derive(Debug, Clone)]
pub struct FdDesc {
    pub fd: RawFd,
    /// `readlink /proc/self/fd/N`.
    pub link: String,
    pub mode: u32,
    pub dev: u64,
    pub ino: u64,
    pub rdev: u64,
    pub size: i64,
    pub nlink: u64,
    pub mtime: (i64, i64),
    pub info: FdInfo,
    pub cloexec: bool,
    pub class: Class,
}

impl FdDesc {
    /// Open flags without O_CLOEXEC (that one is per fd, kept in `cloexec`).
    pub fn flags(&self) -> i32 {
        self.info.flags & !libc::O_CLOEXEC
    }

    pub fn access_mode(&self) -> i32 {
        self.info.flags & libc::O_ACCMODE
    }

    pub fn readable(&self) -> bool {
        self.access_mode() != libc::O_WRONLY && self.info.flags & libc::O_PATH == 0
    }

    pub fn writable(&self) -> bool {
        self.access_mode() != libc::O_RDONLY && self.info.flags & libc::O_PATH == 0
    }
}

/// Describes one open fd.
pub fn describe(fd: RawFd) -> Result<FdDesc> {
    let link =
        sys::readlink(&format!("/proc/self/fd/{fd}")).map_err(FdError::sys(fd, "readlink"))?;
    let st = sys::fstat(fd).map_err(FdError::sys(fd, "fstat"))?;
    let info = FdInfo::read(fd).map_err(|e| FdError::FdInfo {
        fd,
        detail: e.to_string(),
    })?;
    let fdflags = sys::fcntl(fd, libc::F_GETFD, 0).map_err(FdError::sys(fd, "F_GETFD"))?;
    let class = classify(&link, st.st_mode, info.flags);
    Ok(FdDesc {
        fd,
        link,
        mode: st.st_mode,
        dev: st.st_dev,
        ino: st.st_ino,
        rdev: st.st_rdev,
        size: st.st_size,
        nlink: st.st_nlink,
        mtime: (st.st_mtime, st.st_mtime_nsec),
        info,
        cloexec: fdflags & libc::FD_CLOEXEC != 0,
        class,
    })
}

/// Numbers of the process's open fds, ascending, without the protected range.
pub fn list_fds() -> Result<Vec<RawFd>> {
    let names = sys::list_dir("/proc/self/fd").map_err(FdError::sys(-1, "read /proc/self/fd"))?;
    let mut fds: Vec<RawFd> = names
        .iter()
        .filter_map(|n| n.parse().ok())
        .filter(|fd| !PROTECTED_FDS.contains(fd))
        .collect();
    // The directory's own fd was in the listing and is closed now.
    fds.retain(|&fd| sys::is_open(fd));
    fds.sort_unstable();
    Ok(fds)
}

/// Describes every fd of the process (protected fds excluded), ascending.
pub fn scan() -> Result<Vec<FdDesc>> {
    list_fds()?.into_iter().map(describe).collect()
}
