//! The system calls of the hand-over: abstract unix datagram sockets carrying fds
//! (SCM_RIGHTS), kcmp, and the few fd operations the installers need.
//!
//! One message carries several items; each item is a tag, a value and a number of fds, all
//! fds of the message following in item order in one SCM_RIGHTS block.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// An abstract-namespace address (leading NUL, not a file).
fn addr(name: &str) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: sockaddr_un is plain data; all zeroes is valid.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = name.as_bytes();
    let n = bytes.len().min(a.sun_path.len() - 1);
    for (d, s) in a.sun_path[1..=n].iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + n;
    (a, len as libc::socklen_t)
}

pub fn unbound() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the new fd is owned here.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    // SAFETY: fd was just returned by socket(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn bind(name: &str) -> io::Result<OwnedFd> {
    let fd = unbound()?;
    let (a, len) = addr(name);
    // SAFETY: binding our socket to a properly initialised address of length `len`.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), &a as *const _ as *const libc::sockaddr, len) })?;
    Ok(fd)
}

/// Fds per message: the control buffer below holds this many.
pub const MAX_FDS: usize = 64;
/// Room for one SCM_RIGHTS block of `MAX_FDS` fds (u64-aligned, generous).
type CmsgBuf = [u64; 48];
const ITEM_LEN: usize = 16;

/// One thing handed over: what it is (`tag`, `value`) and its fds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemHead {
    pub tag: u32,
    pub value: u64,
}

/// Items of one message as sent: heads and the fds to pass.
pub type Outgoing = Vec<(ItemHead, Vec<RawFd>)>;
/// Items of one message as received.
pub type Incoming = Vec<(ItemHead, Vec<OwnedFd>)>;

/// Sends items to the socket named `to`, without blocking: `Ok(false)` when the receiver's
/// queue is full (try again later).
pub fn send(fd: RawFd, to: &str, items: &[(ItemHead, Vec<RawFd>)]) -> io::Result<bool> {
    let (mut a, alen) = addr(to);
    let mut payload = Vec::with_capacity(items.len() * ITEM_LEN);
    let mut fds = Vec::new();
    for (h, f) in items {
        payload.extend_from_slice(&h.tag.to_le_bytes());
        payload.extend_from_slice(&(f.len() as u32).to_le_bytes());
        payload.extend_from_slice(&h.value.to_le_bytes());
        fds.extend_from_slice(f);
    }
    if fds.len() > MAX_FDS {
        return Err(io::Error::other("too many fds in one hand-over message"));
    }
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    let mut cbuf: CmsgBuf = [0; 48];
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE((fds.len() * 4) as u32) } as usize;
    // SAFETY: msghdr is plain data; every pointer set below outlives the sendmsg call, and
    // the control buffer (384 bytes) is larger than `space` for at most MAX_FDS fds.
    let r = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = &mut a as *mut _ as *mut libc::c_void;
        msg.msg_namelen = alen;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = space as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN((fds.len() * 4) as u32) as _;
            let data = libc::CMSG_DATA(c) as *mut RawFd;
            for (i, f) in fds.iter().enumerate() {
                data.add(i).write_unaligned(*f);
            }
        }
        libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(false),
            _ => Err(e),
        };
    }
    Ok(true)
}

/// One message if one is queued (`Ok(None)` otherwise): its items with their fds.
pub fn try_recv(fd: RawFd) -> io::Result<Option<Incoming>> {
    let mut payload = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    let mut cbuf: CmsgBuf = [0; 48];
    // SAFETY: as in `send`; the kernel writes at most msg_controllen bytes of control data
    // and the received fds are taken into OwnedFds right away.
    let got = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of::<CmsgBuf>() as _;
        let n = libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT);
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                _ => Err(e),
            };
        }
        let mut fds = Vec::new();
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let n = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                let data = libc::CMSG_DATA(c) as *const RawFd;
                for i in 0..n {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        (n as usize, msg.msg_flags, fds)
    };
    let (n, flags, fds) = got;
    if n % ITEM_LEN != 0 || flags & (libc::MSG_CTRUNC | libc::MSG_TRUNC) != 0 {
        return Err(io::Error::other("malformed hand-over message"));
    }
    let mut fds = fds.into_iter();
    let mut items = Vec::new();
    for chunk in payload[..n].chunks_exact(ITEM_LEN) {
        let word = |i: usize| u32::from_le_bytes(chunk[i..i + 4].try_into().unwrap_or([0; 4]));
        let value = u64::from_le_bytes(chunk[8..16].try_into().unwrap_or([0; 8]));
        let mine: Vec<OwnedFd> = fds.by_ref().take(word(4) as usize).collect();
        if mine.len() != word(4) as usize {
            return Err(io::Error::other("hand-over message with too few fds"));
        }
        items.push((
            ItemHead {
                tag: word(0),
                value,
            },
            mine,
        ));
    }
    Ok(Some(items))
}

pub fn dup3(from: RawFd, to: RawFd, cloexec: bool) -> io::Result<()> {
    if from == to {
        return Ok(());
    }
    let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: dup3 on fds we hold; `to` is one of the program's restored numbers, which it
    // replaces on purpose.
    cvt(unsafe { libc::dup3(from, to, flags) }).map(drop)
}

pub fn set_fl(fd: RawFd, flags: i32) -> io::Result<()> {
    // SAFETY: F_SETFL on an open fd.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }).map(drop)
}

/// A new open file description of what `fd` refers to (through /proc), with `flags`.
pub fn reopen(fd: RawFd, flags: i32) -> io::Result<OwnedFd> {
    let path = std::ffi::CString::new(format!("/proc/self/fd/{fd}"))
        .map_err(|_| io::Error::other("path with NUL"))?;
    // SAFETY: open(2) of a NUL-terminated path; the new fd is owned here.
    let n = cvt(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: n was just returned by open(2).
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

pub fn reopen_rdwr(fd: RawFd) -> io::Result<OwnedFd> {
    reopen(fd, libc::O_RDWR)
}

/// Whether fd `a` of process `pa` and fd `b` of process `pb` are one open file description
/// (`kcmp(KCMP_FILE)`); `None` when the kernel refuses to say.
pub fn same_description(pa: i32, a: RawFd, pb: i32, b: RawFd) -> Option<bool> {
    const KCMP_FILE: libc::c_long = 0;
    // SAFETY: kcmp takes only integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pa as libc::c_long,
            pb as libc::c_long,
            KCMP_FILE,
            a as libc::c_long,
            b as libc::c_long,
        )
    };
    (r >= 0).then_some(r == 0)
}

/// The pts number of a pty master (`TIOCGPTN`).
pub fn pty_index(master: RawFd) -> io::Result<u32> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int.
    cvt(unsafe { libc::ioctl(master, libc::TIOCGPTN, &mut n) })?;
    Ok(n)
}

/// A new description of the slave of pty master `master` (`TIOCGPTPEER`), not acquiring it as
/// controlling terminal.
pub fn open_peer(master: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd, owned here.
    let n = cvt(unsafe {
        libc::ioctl(
            master,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: n was just returned by the ioctl.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// `fd` moved to a number >= `min`, so it never sits on a number the program's table is
/// about to receive (a received fd lands on the lowest free number, often one of those).
pub fn lift(fd: OwnedFd, min: RawFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on an fd we own; the copy is owned here, the original dropped.
    let n = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) })?;
    // SAFETY: n was just returned by fcntl.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}
