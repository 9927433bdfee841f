//! The system calls of the socket layer. Every `unsafe` block of the layer is here.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::addr::Addr;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass an fd that a system call just returned and nobody else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

pub fn socket(domain: i32, ty: i32, protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with plain integer arguments.
    cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) }).map(owned)
}

pub fn socketpair(domain: i32, ty: i32) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut sv = [0; 2];
    // SAFETY: socketpair(2) writes two fds into `sv`.
    cvt(unsafe { libc::socketpair(domain, ty | libc::SOCK_CLOEXEC, 0, sv.as_mut_ptr()) })?;
    Ok((owned(sv[0]), owned(sv[1])))
}

type NameFn =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

fn name_of(fd: RawFd, f: NameFn) -> io::Result<Addr> {
    // SAFETY: sockaddr_storage is plain data; the kernel writes at most `len` bytes.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss` is large enough for any socket address.
    cvt(unsafe { f(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) })?;
    // SAFETY: reading back the `len` bytes the kernel filled.
    let bytes = unsafe { std::slice::from_raw_parts(&ss as *const _ as *const u8, len as usize) };
    Ok(Addr::from_raw(bytes))
}

pub fn local_addr(fd: RawFd) -> io::Result<Addr> {
    name_of(fd, libc::getsockname)
}

pub fn peer_addr(fd: RawFd) -> io::Result<Addr> {
    name_of(fd, libc::getpeername)
}

fn with_raw<T>(a: &Addr, f: impl FnOnce(*const libc::sockaddr, libc::socklen_t) -> T) -> T {
    // SAFETY: sockaddr_storage is plain data; `a.raw()` is at most its size.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let raw = a.raw();
    let n = raw.len().min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: copying n bytes into a buffer of at least n bytes; an aligned copy of the address.
    unsafe { std::ptr::copy_nonoverlapping(raw.as_ptr(), &mut ss as *mut _ as *mut u8, n) };
    f(
        &ss as *const _ as *const libc::sockaddr,
        n as libc::socklen_t,
    )
}

pub fn bind(fd: RawFd, a: &Addr) -> io::Result<()> {
    // SAFETY: bind(2) with a valid address of the given length.
    with_raw(a, |p, l| cvt(unsafe { libc::bind(fd, p, l) })).map(drop)
}

pub fn listen(fd: RawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: listen(2) on an fd we hold.
    cvt(unsafe { libc::listen(fd, backlog) }).map(drop)
}

/// A blocking connect (the socket is blocking while the layer works on it).
pub fn connect(fd: RawFd, a: &Addr) -> io::Result<()> {
    loop {
        // SAFETY: connect(2) with a valid address of the given length.
        let r = with_raw(a, |p, l| cvt(unsafe { libc::connect(fd, p, l) }));
        match r {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            // An interrupted connect goes on in the background.
            Err(e) if e.raw_os_error() == Some(libc::EALREADY) => {
                wait_fd(fd, libc::POLLOUT, 30_000)?;
                let err = get_int(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
                return if err == 0 {
                    Ok(())
                } else {
                    Err(io::Error::from_raw_os_error(err))
                };
            }
            Err(e) if e.raw_os_error() == Some(libc::EISCONN) => return Ok(()),
            r => return r.map(drop),
        }
    }
}

pub fn accept(fd: RawFd) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: accept4(2) without asking for the peer's address.
        let r = cvt(unsafe {
            libc::accept4(
                fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        });
        match r {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            r => return r.map(owned),
        }
    }
}

pub fn get_raw(fd: RawFd, level: i32, name: i32, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; max];
    let mut len = max as libc::socklen_t;
    // SAFETY: getsockopt(2) writes at most `len` bytes into `buf`.
    cvt(unsafe { libc::getsockopt(fd, level, name, buf.as_mut_ptr().cast(), &mut len) })?;
    buf.truncate(len as usize);
    Ok(buf)
}

pub fn set_raw(fd: RawFd, level: i32, name: i32, val: &[u8]) -> io::Result<()> {
    // SAFETY: setsockopt(2) reads `val.len()` bytes from `val`.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            val.as_ptr().cast(),
            val.len() as libc::socklen_t,
        )
    })
    .map(drop)
}

pub fn get_int(fd: RawFd, level: i32, name: i32) -> io::Result<i32> {
    let v = get_raw(fd, level, name, 4)?;
    Ok(i32::from_ne_bytes(v.try_into().unwrap_or([0; 4])))
}

pub fn set_int(fd: RawFd, level: i32, name: i32, v: i32) -> io::Result<()> {
    set_raw(fd, level, name, &v.to_ne_bytes())
}

/// Bytes in the send queue not yet acknowledged by the peer (TCP) or not yet read (UNIX).
pub fn outq(fd: RawFd) -> io::Result<i32> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (= TIOCOUTQ) writes one int.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) })?;
    Ok(n)
}

/// One receive; `Ok(None)` when nothing is queued (MSG_DONTWAIT).
pub fn recv(fd: RawFd, buf: &mut [u8], flags: i32) -> io::Result<Option<usize>> {
    loop {
        // SAFETY: recv(2) into a valid buffer of the given length.
        let r = cvt_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) });
        match r {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// One send without SIGPIPE; `Ok(None)` when the send buffer is full.
pub fn send(fd: RawFd, buf: &[u8], flags: i32) -> io::Result<Option<usize>> {
    loop {
        // SAFETY: send(2) from a valid buffer of the given length.
        let r = cvt_size(unsafe {
            libc::send(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                flags | libc::MSG_NOSIGNAL,
            )
        });
        match r {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

pub fn send_to(fd: RawFd, buf: &[u8], to: &Addr) -> io::Result<()> {
    // SAFETY: sendto(2) from a valid buffer to a valid address.
    with_raw(to, |p, l| {
        cvt_size(unsafe {
            libc::sendto(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL, p, l)
        })
    })
    .map(drop)
}

pub fn poll(fds: &mut [libc::pollfd], ms: i32) -> io::Result<usize> {
    // SAFETY: poll(2) on a valid array of pollfds.
    let r = cvt(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) });
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(0),
        r => r.map(|n| n as usize),
    }
}

/// Waits until `fd` has one of `events`; an error after `ms` milliseconds.
pub fn wait_fd(fd: RawFd, events: i16, ms: i32) -> io::Result<()> {
    let mut p = [libc::pollfd {
        fd,
        events,
        revents: 0,
    }];
    if poll(&mut p, ms)? == 0 {
        return Err(io::Error::from(io::ErrorKind::TimedOut));
    }
    Ok(())
}

pub fn get_fl(fd: RawFd) -> io::Result<i32> {
    // SAFETY: F_GETFL on an open fd.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })
}

pub fn set_fl(fd: RawFd, flags: i32) -> io::Result<()> {
    // SAFETY: F_SETFL on an open fd.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }).map(drop)
}

pub fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    let fl = get_fl(fd)?;
    let fl = if on {
        fl | libc::O_NONBLOCK
    } else {
        fl & !libc::O_NONBLOCK
    };
    set_fl(fd, fl)
}

pub fn dup3(from: RawFd, to: RawFd, cloexec: bool) -> io::Result<()> {
    if from == to {
        return Ok(());
    }
    let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: dup3 onto one of the program's saved fd numbers, which it replaces on purpose.
    cvt(unsafe { libc::dup3(from, to, flags) }).map(drop)
}

/// A copy of `fd` at the lowest free number >= `min` (close-on-exec).
pub fn dup_above(fd: RawFd, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on an fd we hold; the new fd is owned by the caller.
    cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) }).map(owned)
}

/// `tcpi_state`: the first byte of `TCP_INFO`.
pub fn tcp_state(fd: RawFd) -> Option<u8> {
    get_raw(fd, libc::IPPROTO_TCP, libc::TCP_INFO, 8)
        .ok()
        .and_then(|v| v.first().copied())
}

pub fn shutdown_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: shutdown(2) on an fd we hold.
    cvt(unsafe { libc::shutdown(fd, libc::SHUT_WR) }).map(drop)
}

pub fn epoll_add(epfd: RawFd, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: EPOLL_CTL_ADD with a valid event.
    cvt(unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
}

pub fn set_timeouts(fd: RawFd, secs: i64) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: secs,
        tv_usec: 0,
    };
    // SAFETY: a timeval viewed as its bytes, for setsockopt.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            &tv as *const _ as *const u8,
            std::mem::size_of::<libc::timeval>(),
        )
    };
    set_raw(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, bytes)?;
    set_raw(fd, libc::SOL_SOCKET, libc::SO_SNDTIMEO, bytes)
}

/// Removes a stale socket file left by the killed process, so its path can be bound again.
/// Anything that is not a socket is left alone.
pub fn unlink_stale_socket(path: &[u8]) {
    let Ok(c) = std::ffi::CString::new(path) else {
        return;
    };
    // SAFETY: stat is plain data; lstat/unlink take a NUL-terminated path.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::lstat(c.as_ptr(), &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK {
            libc::unlink(c.as_ptr());
        }
    }
}

/// The inode of the socket at the other end of a UNIX socket, from sock_diag
/// (works unprivileged for our own sockets). `Ok(None)`: not connected.
pub struct Diag(OwnedFd);

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const UDIAG_SHOW_PEER: u32 = 4;
const UNIX_DIAG_PEER: u16 = 2;

impl Diag {
    pub fn open() -> io::Result<Diag> {
        socket(libc::AF_NETLINK, libc::SOCK_DGRAM, libc::NETLINK_SOCK_DIAG).map(Diag)
    }

    pub fn unix_peer(&self, ino: u64) -> io::Result<Option<u64>> {
        let mut req = [0u8; 16 + 24];
        req[0..4].copy_from_slice(&40u32.to_ne_bytes());
        req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        req[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
        req[8..12].copy_from_slice(&(ino as u32).to_ne_bytes());
        // unix_diag_req: family, protocol, pad, states, ino, show, cookie[2].
        req[16] = libc::AF_UNIX as u8;
        req[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
        req[24..28].copy_from_slice(&(ino as u32).to_ne_bytes());
        req[28..32].copy_from_slice(&UDIAG_SHOW_PEER.to_ne_bytes());
        req[32..40].copy_from_slice(&[0xff; 8]);
        let fd = self.0.as_raw_fd();
        // SAFETY: the request's fields are filled above.
        let mut dst: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        dst.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: sendto with a netlink address of the right size.
        cvt_size(unsafe {
            libc::sendto(
                fd,
                req.as_ptr().cast(),
                req.len(),
                0,
                &dst as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })?;
        let mut buf = [0u8; 1024];
        let n = loop {
            match recv(fd, &mut buf, 0)? {
                Some(n) => break n,
                None => continue,
            }
        };
        let buf = &buf[..n];
        if n < 16 {
            return Err(io::Error::other("short sock_diag answer"));
        }
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        if ty == libc::NLMSG_ERROR as u16 {
            let err = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
            return Err(io::Error::from_raw_os_error(-err));
        }
        let len = (u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize).min(n);
        // Attributes follow the 16-byte header and the 16-byte unix_diag_msg.
        let mut at = 32;
        while at + 4 <= len {
            let alen = u16::from_ne_bytes([buf[at], buf[at + 1]]) as usize;
            let aty = u16::from_ne_bytes([buf[at + 2], buf[at + 3]]);
            if alen < 4 {
                break;
            }
            if aty == UNIX_DIAG_PEER && alen >= 8 && at + 8 <= len {
                let p = u32::from_ne_bytes([buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]]);
                return Ok((p != 0).then_some(p as u64));
            }
            at += (alen + 3) & !3;
        }
        Ok(None)
    }
}

/// The hand-over channel: abstract UNIX datagram sockets carrying one fd and a 64-bit id.
pub fn handover_bind(name: &str) -> io::Result<OwnedFd> {
    let fd = socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0)?;
    bind(fd.as_raw_fd(), &Addr::abstract_unix(name))?;
    Ok(fd)
}

type CmsgBuf = [u64; 4];

pub fn send_fd(sock: RawFd, to: &str, id: u64, fd: RawFd) -> io::Result<()> {
    let to = Addr::abstract_unix(to);
    let mut payload = id.to_le_bytes();
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    let mut cbuf: CmsgBuf = [0; 4];
    with_raw(&to, |p, l| {
        // SAFETY: every pointer in the msghdr outlives the call; the control buffer (32 bytes)
        // holds CMSG_SPACE(4).
        let r = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_name = p as *mut libc::c_void;
            msg.msg_namelen = l;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as _;
            (libc::CMSG_DATA(c) as *mut RawFd).write_unaligned(fd);
            libc::sendmsg(sock, &msg, 0)
        };
        cvt_size(r).map(drop)
    })
}

pub fn recv_fd(sock: RawFd) -> io::Result<(u64, OwnedFd)> {
    loop {
        let mut payload = [0u8; 8];
        let mut iov = libc::iovec {
            iov_base: payload.as_mut_ptr().cast(),
            iov_len: payload.len(),
        };
        let mut cbuf: CmsgBuf = [0; 4];
        // SAFETY: the kernel writes at most msg_controllen bytes of control data; a received
        // fd is taken into an OwnedFd at once.
        let (n, fd) = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of::<CmsgBuf>() as _;
            let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            let c = libc::CMSG_FIRSTHDR(&msg);
            let fd = if !c.is_null()
                && (*c).cmsg_level == libc::SOL_SOCKET
                && (*c).cmsg_type == libc::SCM_RIGHTS
            {
                Some(OwnedFd::from_raw_fd(
                    (libc::CMSG_DATA(c) as *const RawFd).read_unaligned(),
                ))
            } else {
                None
            };
            (n, fd)
        };
        return match fd {
            Some(fd) if n == 8 => Ok((u64::from_le_bytes(payload), fd)),
            _ => Err(io::Error::other("malformed socket hand-over message")),
        };
    }
}

/// This network stack's identity: the boot id and the network namespace, so two processes
/// know whether loopback reaches from one to the other.
pub fn stack_id() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let ns = std::fs::read_link("/proc/self/ns/net")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{}/{ns}", boot.trim())
}
