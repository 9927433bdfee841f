//! Pseudo-terminals: masters are reopened with posix_openpt and get back their termios,
//! window size and lock state; slaves follow their master. Data in flight is not kept, and the
//! controlling terminal is process-tree work.

use std::os::fd::{AsRawFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::error::{FdError, Result};
use crate::install::RestoreCtx;
use crate::scan::FdDesc;
use crate::sys;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: Vec<u8>,
    pub ispeed: u32,
    pub ospeed: u32,
}

impl Termios {
    fn from_raw(t: &libc::termios) -> Self {
        Termios {
            iflag: t.c_iflag,
            oflag: t.c_oflag,
            cflag: t.c_cflag,
            lflag: t.c_lflag,
            line: t.c_line,
            cc: t.c_cc.to_vec(),
            ispeed: t.c_ispeed,
            ospeed: t.c_ospeed,
        }
    }

    fn to_raw(&self) -> libc::termios {
        let mut cc = [0u8; libc::NCCS];
        let n = self.cc.len().min(cc.len());
        cc[..n].copy_from_slice(&self.cc[..n]);
        libc::termios {
            c_iflag: self.iflag,
            c_oflag: self.oflag,
            c_cflag: self.cflag,
            c_lflag: self.lflag,
            c_line: self.line,
            c_cc: cc,
            c_ispeed: self.ispeed,
            c_ospeed: self.ospeed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterState {
    /// The pts number at checkpoint (`TIOCGPTN`), which links slaves to this master.
    pub index: u32,
    /// Slave still locked (`unlockpt` not called yet).
    pub locked: bool,
    pub flags: i32,
    pub termios: Termios,
    /// rows, cols, xpixel, ypixel.
    pub winsize: (u16, u16, u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaveState {
    pub index: u32,
    pub path: String,
    pub flags: i32,
}

pub fn save_master(d: &FdDesc) -> Result<MasterState> {
    let fd = d.fd;
    let index =
        sys::ioctl_get_int(fd, libc::TIOCGPTN).map_err(FdError::sys(fd, "TIOCGPTN"))? as u32;
    let locked =
        sys::ioctl_get_int(fd, libc::TIOCGPTLCK).map_err(FdError::sys(fd, "TIOCGPTLCK"))? != 0;
    let termios = Termios::from_raw(&sys::tcgetattr(fd).map_err(FdError::sys(fd, "tcgetattr"))?);
    let w = sys::get_winsize(fd).map_err(FdError::sys(fd, "TIOCGWINSZ"))?;
    Ok(MasterState {
        index,
        locked,
        flags: d.flags(),
        termios,
        winsize: (w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel),
    })
}

pub fn save_slave(d: &FdDesc) -> Result<SlaveState> {
    let index = d
        .link
        .strip_prefix("/dev/pts/")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| FdError::Inconsistent {
            fd: d.fd,
            why: format!("{} is not a pts", d.link),
        })?;
    Ok(SlaveState {
        index,
        path: d.link.clone(),
        flags: d.flags(),
    })
}

pub fn restore_master(
    s: &MasterState,
    target: RawFd,
    cloexec: bool,
    ctx: &mut RestoreCtx,
) -> Result<()> {
    let fd = sys::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC)
        .map_err(FdError::sys(target, "posix_openpt"))?;
    let fd = ctx.fresh(fd, target)?;
    let raw = fd.as_raw_fd();
    if !s.locked {
        sys::set_pty_lock(raw, false).map_err(FdError::sys(target, "unlockpt"))?;
    }
    sys::tcsetattr(raw, &s.termios.to_raw()).map_err(FdError::sys(target, "tcsetattr"))?;
    let (ws_row, ws_col, ws_xpixel, ws_ypixel) = s.winsize;
    sys::set_winsize(
        raw,
        &libc::winsize {
            ws_row,
            ws_col,
            ws_xpixel,
            ws_ypixel,
        },
    )
    .map_err(FdError::sys(target, "TIOCSWINSZ"))?;
    ctx.set_status_flags(raw, s.flags)?;
    ctx.pty_masters.insert(s.index, target);
    ctx.install(fd, target, cloexec)
}

/// Whether the slave's master was restored in this table.
pub fn has_master(s: &SlaveState, ctx: &RestoreCtx) -> bool {
    ctx.pty_masters.contains_key(&s.index)
}

pub fn restore_slave(
    s: &SlaveState,
    target: RawFd,
    cloexec: bool,
    ctx: &mut RestoreCtx,
) -> Result<()> {
    let path = match ctx.pty_masters.get(&s.index) {
        Some(&master) => sys::ptsname(master).map_err(FdError::sys(target, "ptsname"))?,
        None => {
            // A terminal outside the table (the user's): reopen it if it still exists.
            ctx.report
                .warn(format!("fd {target}: reopened terminal {} by name", s.path));
            s.path.clone()
        }
    };
    let fd = match sys::open(
        &path,
        (s.flags & !libc::O_CREAT) | libc::O_NOCTTY | libc::O_CLOEXEC,
        0,
    ) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            return Err(FdError::Missing { fd: target, path });
        }
        Err(e) => {
            return Err(FdError::Sys {
                fd: target,
                op: "open pts",
                source: e,
            });
        }
    };
    let fd = ctx.fresh(fd, target)?;
    ctx.install(fd, target, cloexec)
}
