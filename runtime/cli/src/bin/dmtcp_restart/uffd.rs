//! A minimal userfaultfd binding: creating the descriptor (privileged, through
//! /dev/userfaultfd, or user-mode only), registering ranges, resolving faults, reading events.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const UFFD_API: u64 = 0xaa;
const UFFD_USER_MODE_ONLY: i32 = 1;
const UFFDIO_API: u64 = 0xc018_aa3f;
const UFFDIO_REGISTER: u64 = 0xc020_aa00;
const UFFDIO_WAKE: u64 = 0x8010_aa02;
const UFFDIO_COPY: u64 = 0xc028_aa03;
const UFFDIO_ZEROPAGE: u64 = 0xc020_aa04;
const USERFAULTFD_IOC_NEW: u64 = 0xaa00;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
const FEATURE_EVENT_REMAP: u64 = 1 << 2;
const FEATURE_EVENT_REMOVE: u64 = 1 << 3;
const FEATURE_EVENT_UNMAP: u64 = 1 << 6;

pub const EVENT_PAGEFAULT: u8 = 0x12;
pub const EVENT_REMAP: u8 = 0x14;
pub const EVENT_REMOVE: u8 = 0x15;
pub const EVENT_UNMAP: u8 = 0x16;

#[repr(C)]
#[derive(Default)]
struct ApiArg {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct RangeArg {
    start: u64,
    len: u64,
}

#[repr(C)]
#[derive(Default)]
struct RegisterArg {
    range: RangeArg,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct CopyArg {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

#[repr(C)]
#[derive(Default)]
struct ZeroArg {
    range: RangeArg,
    mode: u64,
    zeropage: i64,
}

/// One message read from the descriptor (`struct uffd_msg`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Msg {
    pub event: u8,
    _reserved: [u8; 7],
    /// pagefault: flags, address; remap: from, to, len; remove/unmap: start, end.
    pub arg: [u64; 3],
}

/// How the descriptor was obtained, which decides what it can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Faults from the kernel too (privileged, or through /dev/userfaultfd).
    Full,
    /// Only faults of user code: a system call touching a missing page fails with EFAULT.
    UserModeOnly,
}

pub struct Uffd {
    pub fd: OwnedFd,
    pub kind: Kind,
}

fn cvt(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The outcome of resolving a range.
pub enum Copied {
    /// Every page of the range was filled.
    All,
    /// `n` bytes were filled, then a page that is already present (EEXIST).
    Partial(u64),
    /// The address space is changing (an event must be read first): retry later.
    Again,
    /// No registered mapping there any more (unmapped meanwhile).
    Gone,
    /// The process's address space is gone (it exited).
    Exited,
    /// Another error (errno).
    Failed(i32),
}

fn open_fd() -> io::Result<(RawFd, Kind)> {
    let flags = libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: plain system call.
    if let Ok(fd) = cvt(unsafe { libc::syscall(libc::SYS_userfaultfd, flags) }) {
        return Ok((fd as RawFd, Kind::Full));
    }
    if let Ok(dev) = std::fs::File::open("/dev/userfaultfd") {
        // SAFETY: the documented ioctl of /dev/userfaultfd, creating a new descriptor.
        let r = unsafe { libc::ioctl(dev.as_raw_fd(), USERFAULTFD_IOC_NEW as _, flags) };
        if r >= 0 {
            return Ok((r, Kind::Full));
        }
    }
    // SAFETY: plain system call.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY) })?;
    Ok((fd as RawFd, Kind::UserModeOnly))
}

impl Uffd {
    /// Creates a descriptor for this process's address space, with the events a pager needs
    /// to follow the mappings it serves (moves, discards, unmaps).
    pub fn new() -> io::Result<Uffd> {
        let (fd, kind) = open_fd()?;
        // SAFETY: a fresh descriptor that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut api = ApiArg {
            api: UFFD_API,
            features: FEATURE_EVENT_REMAP | FEATURE_EVENT_REMOVE | FEATURE_EVENT_UNMAP,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_API reads and writes one ApiArg.
        cvt(unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API as _, &mut api) } as _)?;
        Ok(Uffd { fd, kind })
    }

    /// Routes faults on missing pages of `[start, start+len)` to this descriptor.
    pub fn register(&self, start: u64, len: u64) -> io::Result<()> {
        let mut r = RegisterArg {
            range: RangeArg { start, len },
            mode: UFFDIO_REGISTER_MODE_MISSING,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_REGISTER reads and writes one RegisterArg.
        cvt(unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_REGISTER as _, &mut r) } as _)?;
        if r.ioctls & (1 << 3) == 0 {
            return Err(io::Error::other(
                "UFFDIO_COPY is not available for this range",
            ));
        }
        Ok(())
    }

    fn outcome(&self, r: libc::c_int, done: i64, len: u64) -> Copied {
        if r == 0 && done as u64 == len {
            return Copied::All;
        }
        let err = if r < 0 {
            io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        };
        match err {
            libc::EEXIST => Copied::Partial(done.max(0) as u64),
            libc::EAGAIN => Copied::Again,
            libc::ENOENT => Copied::Gone,
            libc::ESRCH => Copied::Exited,
            e => Copied::Failed(e),
        }
    }

    /// Fills the missing pages at `dst` with `src` (page-aligned, whole pages) and wakes the
    /// threads waiting on them.
    pub fn copy(&self, dst: u64, src: &[u8]) -> Copied {
        let mut a = CopyArg {
            dst,
            src: src.as_ptr() as u64,
            len: src.len() as u64,
            ..Default::default()
        };
        // SAFETY: UFFDIO_COPY reads `len` bytes of `src` (a live slice) into the registered
        // process and writes back the count.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_COPY as _, &mut a) };
        self.outcome(r, a.copy, a.len)
    }

    /// Maps zero pages at `[start, start+len)`.
    pub fn zero(&self, start: u64, len: u64) -> Copied {
        let mut a = ZeroArg {
            range: RangeArg { start, len },
            ..Default::default()
        };
        // SAFETY: UFFDIO_ZEROPAGE reads and writes one ZeroArg.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_ZEROPAGE as _, &mut a) };
        self.outcome(r, a.zeropage, len)
    }

    /// Wakes threads waiting on `[start, start+len)` (whose pages someone else filled).
    pub fn wake(&self, start: u64, len: u64) {
        let mut a = RangeArg { start, len };
        // SAFETY: UFFDIO_WAKE reads one RangeArg.
        unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_WAKE as _, &mut a) };
    }

    /// Reads the pending messages into `out` without blocking; returns how many.
    pub fn read_msgs(&self, out: &mut [Msg]) -> io::Result<usize> {
        let size = std::mem::size_of_val(out);
        // SAFETY: reading whole messages into a buffer of plain-old-data structs.
        let r = unsafe { libc::read(self.fd.as_raw_fd(), out.as_mut_ptr().cast(), size) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        Ok(r as usize / std::mem::size_of::<Msg>())
    }

    /// Waits up to `ms` milliseconds for a message.
    pub fn wait(&self, ms: i32) {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polling one descriptor.
        unsafe { libc::poll(&mut p, 1, ms) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout_matches_the_kernel() {
        assert_eq!(std::mem::size_of::<Msg>(), 32);
        assert_eq!(std::mem::size_of::<ApiArg>(), 24);
        assert_eq!(std::mem::size_of::<RegisterArg>(), 32);
        assert_eq!(std::mem::size_of::<CopyArg>(), 40);
        assert_eq!(std::mem::size_of::<ZeroArg>(), 32);
        // _IOWR(0xAA, nr, size): the size field must match the structs.
        assert_eq!((UFFDIO_COPY >> 16) & 0x3fff, 40);
        assert_eq!((UFFDIO_REGISTER >> 16) & 0x3fff, 32);
        assert_eq!((UFFDIO_API >> 16) & 0x3fff, 24);
    }
}
