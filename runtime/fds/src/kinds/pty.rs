//! Pseudo-terminals: masters are reopened with posix_openpt and get back their termios,
//! window size, lock state and the bytes in flight in both directions; slaves follow their
//! master. The controlling terminal is the runtime's work (restart side).
//!
//! Bytes in flight are read at save time through a slave description opened for the purpose
//! (the program's side: what it has not read yet, read in non-canonical mode so a partly typed
//! line comes too) and through the master (what the program wrote to its terminal and the
//! master holder has not read), then written back at once so the running program loses
//! nothing, and again at restore. Writing back goes through the line discipline, so it is done
//! with echo, signals, input translation, output post-processing and the editing characters
//! off, in the terminal's own canonical or raw mode, so line ends are marked as they were and a
//! partly typed line stays in the edit buffer.

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
    /// Bytes written to the master that the slave side has not read.
    pub to_slave: Vec<u8>,
    /// Bytes written to the slave that the master side has not read.
    pub to_master: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaveState {
    pub index: u32,
    pub path: String,
    pub flags: i32,
}

pub fn save_master(d: &FdDesc, opts: &crate::SaveOptions) -> Result<MasterState> {
    let fd = d.fd;
    let index =
        sys::ioctl_get_int(fd, libc::TIOCGPTN).map_err(FdError::sys(fd, "TIOCGPTN"))? as u32;
    let locked =
        sys::ioctl_get_int(fd, libc::TIOCGPTLCK).map_err(FdError::sys(fd, "TIOCGPTLCK"))? != 0;
    let termios = Termios::from_raw(&sys::tcgetattr(fd).map_err(FdError::sys(fd, "tcgetattr"))?);
    let w = sys::get_winsize(fd).map_err(FdError::sys(fd, "TIOCGWINSZ"))?;
    let (to_slave, to_master) = if locked || opts.skip_pty_data.contains(&index) {
        (Vec::new(), Vec::new())
    } else {
        queues::drain_and_refill(fd).map_err(FdError::sys(fd, "pty data"))?
    };
    Ok(MasterState {
        index,
        locked,
        flags: d.flags(),
        termios,
        winsize: (w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel),
        to_slave,
        to_master,
    })
}

/// The bytes in flight in a pty (see the module doc).
mod queues {
    use std::io;
    use std::os::fd::{AsRawFd, RawFd};
    use std::time::{Duration, Instant};

    use crate::sys;

    /// How long the line discipline gets to take written-back bytes (it works asynchronously).
    const SETTLE: Duration = Duration::from_millis(500);

    fn open_slave(master: RawFd) -> io::Result<std::os::fd::OwnedFd> {
        let path = sys::ptsname(master)?;
        sys::open(
            &path,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC,
            0,
        )
    }

    fn pending(fd: RawFd) -> io::Result<usize> {
        Ok(sys::ioctl_get_int(fd, libc::FIONREAD)?.max(0) as usize)
    }

    /// Reads the `n` bytes `fd` has ready (never blocks: exactly what FIONREAD said).
    fn take(fd: RawFd, mut n: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        let mut buf = [0u8; 4096];
        while n > 0 {
            let got = sys::read(fd, &mut buf[..n.min(4096)])?;
            if got == 0 {
                break;
            }
            out.extend_from_slice(&buf[..got]);
            n -= got;
        }
        Ok(out)
    }

    /// Waits until `fd` has at least `n` bytes to read (the line discipline took them).
    fn settle(fd: RawFd, n: usize) -> io::Result<()> {
        let end = Instant::now() + SETTLE;
        while pending(fd)? < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    fn write_all(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
        let end = Instant::now() + SETTLE;
        while !data.is_empty() {
            match sys::write(fd, data) {
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Non-canonical, no echo, no signals, no translation either way: bytes pass as they are.
    fn transparent(t: &libc::termios) -> libc::termios {
        let mut r = *t;
        r.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ECHONL | libc::ISIG | libc::IEXTEN);
        r.c_iflag &= !(libc::ICRNL
            | libc::INLCR
            | libc::IGNCR
            | libc::IXON
            | libc::ISTRIP
            | libc::BRKINT
            | libc::PARMRK);
        r.c_oflag &= !libc::OPOST;
        r.c_cc[libc::VMIN] = 0;
        r.c_cc[libc::VTIME] = 0;
        r
    }

    /// The modes for writing bytes back: those of `t` (canonical or not, so the line
    /// discipline marks line ends as it did) without echo, signals, input translation, output
    /// post-processing, or editing characters (the bytes were edited already).
    fn refilling(t: &libc::termios) -> libc::termios {
        let mut r = transparent(t);
        r.c_lflag |= t.c_lflag & libc::ICANON;
        r.c_cc[libc::VMIN] = t.c_cc[libc::VMIN];
        r.c_cc[libc::VTIME] = t.c_cc[libc::VTIME];
        for c in [
            libc::VERASE,
            libc::VKILL,
            libc::VEOF,
            libc::VWERASE,
            libc::VREPRINT,
            libc::VLNEXT,
            libc::VINTR,
            libc::VQUIT,
            libc::VSUSP,
        ] {
            r.c_cc[c] = 0;
        }
        r
    }

    /// The bytes of `data` the slave can read once they are in: all of them, or in canonical
    /// mode those up to the last line end (a partly typed line stays in the edit buffer).
    fn readable(t: &libc::termios, data: &[u8]) -> usize {
        if t.c_lflag & libc::ICANON == 0 {
            return data.len();
        }
        let eol = [b'\n', t.c_cc[libc::VEOL], t.c_cc[libc::VEOL2]];
        data.iter()
            .rposition(|b| *b != 0 && eol.contains(b))
            .map_or(0, |i| i + 1)
    }

    /// Writes the queues back, the terminal's queues being empty and its modes anything:
    /// `to_slave` through the master, `to_master` through `slave`; then puts back `t`.
    fn refill(
        master: RawFd,
        slave: RawFd,
        t: &libc::termios,
        to_slave: &[u8],
        to_master: &[u8],
    ) -> io::Result<()> {
        sys::tcsetattr(slave, &refilling(t))?;
        write_all(master, to_slave)?;
        let want = readable(t, to_slave);
        settle(slave, want)?;
        if want < to_slave.len() {
            // Nothing tells when a partial line was taken; the same work item takes it.
            std::thread::sleep(Duration::from_millis(10));
        }
        write_all(slave, to_master)?;
        settle(master, to_master.len())?;
        sys::tcsetattr(slave, t)
    }

    /// Save side, program frozen: takes the bytes in flight and puts them back.
    pub fn drain_and_refill(master: RawFd) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let slave = open_slave(master)?;
        let s = slave.as_raw_fd();
        let t = sys::tcgetattr(s)?;
        sys::tcsetattr(s, &transparent(&t))?;
        let to_slave = take(s, pending(s)?)?;
        let to_master = take(master, pending(master)?)?;
        if to_slave.is_empty() && to_master.is_empty() {
            sys::tcsetattr(s, &t)?;
        } else {
            refill(master, s, &t, &to_slave, &to_master)?;
        }
        Ok((to_slave, to_master))
    }

    /// Restore side: the new pty gets the saved bytes, with termios `t` afterwards.
    pub fn restore(
        master: RawFd,
        t: &libc::termios,
        to_slave: &[u8],
        to_master: &[u8],
    ) -> io::Result<()> {
        if to_slave.is_empty() && to_master.is_empty() {
            return Ok(());
        }
        let slave = open_slave(master)?;
        refill(master, slave.as_raw_fd(), t, to_slave, to_master)
    }
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
    if !s.locked {
        queues::restore(raw, &s.termios.to_raw(), &s.to_slave, &s.to_master)
            .map_err(FdError::sys(target, "pty data"))?;
    }
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
