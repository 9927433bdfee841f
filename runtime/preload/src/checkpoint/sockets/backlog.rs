//! TCP connections waiting in a listen backlog (connected, not yet accepted). Their bytes sit
//! in a socket no fd reaches, so at checkpoint the listener's process accepts them, drains
//! them and sends the bytes back to the connecting end, which keeps them; the connecting end
//! then connects again (at resume to the same address, at restart to wherever the listener is
//! published) and sends them again, so the new connection waits in the backlog with the same
//! bytes. Only done when every connection waiting on that listener comes from the computation
//! (an outside client's connection cannot be put back).

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::drain::Drained;
use super::sys;

/// (local, remote) of the established connections in `/proc/net/tcp{,6}` that no fd holds
/// (inode 0): the accept queue's connections, and orphans being closed.
pub fn unowned_established() -> Vec<(SocketAddr, SocketAddr)> {
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "01" || f[9] != "0" {
                continue;
            }
            if let (Some(l), Some(r)) = (parse(f[1], v6), parse(f[2], v6)) {
                out.push((l, r));
            }
        }
    }
    out
}

/// "0100007F:1F90" (IPv4, words in host order) or 32 hex digits (IPv6, four host-order words).
fn parse(s: &str, v6: bool) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = if v6 {
        if ip.len() != 32 {
            return None;
        }
        let mut o = [0u8; 16];
        for w in 0..4 {
            let word = u32::from_str_radix(&ip[w * 8..w * 8 + 8], 16).ok()?;
            o[w * 4..w * 4 + 4].copy_from_slice(&word.to_ne_bytes());
        }
        IpAddr::V6(Ipv6Addr::from(o)).to_canonical()
    } else {
        IpAddr::V4(u32::from_str_radix(ip, 16).ok()?.to_ne_bytes().into())
    };
    Some(SocketAddr::new(ip, port))
}

/// Whether a listener bound at `bound` receives connections addressed to `to`.
pub fn listens_for(bound: SocketAddr, to: SocketAddr) -> bool {
    bound.port() == to.port() && (bound.ip().is_unspecified() || bound.ip() == to.ip())
}

/// Accepts every waiting connection (nonblocking).
pub fn accept_all(listener: RawFd) -> Vec<OwnedFd> {
    let mut v = Vec::new();
    let fl = sys::get_fl(listener).unwrap_or(0);
    if sys::set_fl(listener, fl | libc::O_NONBLOCK).is_err() {
        return v;
    }
    while let Ok(c) = sys::accept(listener) {
        v.push(c);
    }
    let _ = sys::set_fl(listener, fl);
    v
}

/// Listener side: writes each connection's drained bytes back into it, then closes it.
pub fn hand_back(conns: Vec<(OwnedFd, Drained)>, timeout: Duration) -> Vec<String> {
    let mut failed = Vec::new();
    let mut left: Vec<(OwnedFd, Vec<u8>, usize)> = conns
        .into_iter()
        .map(|(fd, d)| (fd, d.chunks.concat(), 0))
        .collect();
    let start = Instant::now();
    while !left.is_empty() {
        left.retain_mut(|(fd, data, at)| {
            while *at < data.len() {
                match sys::send(fd.as_raw_fd(), &data[*at..], libc::MSG_DONTWAIT) {
                    Ok(Some(n)) => *at += n,
                    Ok(None) => return true,
                    Err(e) => {
                        failed.push(format!("backlog connection: {e}"));
                        return false;
                    }
                }
            }
            let _ = sys::shutdown_write(fd.as_raw_fd());
            false
        });
        if start.elapsed() > timeout {
            failed.push(format!("{} backlog connection(s) timed out", left.len()));
            break;
        }
        if !left.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    failed
}

/// Connecting side: reads what the listener's process sent back, until end-of-file.
pub fn collect(fd: RawFd, timeout: Duration) -> io::Result<Drained> {
    let mut out = Drained::default();
    let mut buf = vec![0u8; 1 << 16];
    let start = Instant::now();
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        let _ = sys::wait_fd(fd, libc::POLLIN, left.as_millis().min(1000) as i32);
        match sys::recv(fd, &mut buf, libc::MSG_DONTWAIT)? {
            Some(0) => return Ok(out),
            Some(n) => out.chunks.push(buf[..n].to_vec()),
            None => {}
        }
    }
}
