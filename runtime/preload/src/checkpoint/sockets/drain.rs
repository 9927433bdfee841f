//! Draining a socket's receive queue while the program is frozen: bytes for stream sockets,
//! whole messages (boundaries kept) for datagram and seqpacket sockets.

use std::io;
use std::os::fd::RawFd;

use super::sys;

/// The largest message read at once: above any datagram the kernel lets a UNIX socket send.
pub const MAX_MESSAGE: usize = 4 << 20;

/// What was drained from one socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drained {
    /// One chunk per message for message sockets; chunks of the byte stream otherwise.
    pub chunks: Vec<Vec<u8>>,
    /// The peer shut down its sending side (a stream read returned 0).
    pub eof: bool,
}

impl Drained {
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }
}

/// Reads everything queued now, without waiting.
pub fn drain_once(fd: RawFd, message: bool, buf: &mut [u8], out: &mut Drained) -> io::Result<()> {
    if out.eof {
        return Ok(());
    }
    loop {
        let Some(n) = sys::recv(fd, buf, libc::MSG_DONTWAIT)? else {
            return Ok(());
        };
        if n == 0 && !message {
            out.eof = true;
            return Ok(());
        }
        if message {
            out.chunks.push(buf[..n].to_vec());
        } else {
            match out.chunks.last_mut() {
                Some(last) if last.len() < (1 << 20) => last.extend_from_slice(&buf[..n]),
                _ => out.chunks.push(buf[..n].to_vec()),
            }
        }
    }
}

/// Copies everything queued without taking it (SO_PEEK_OFF walks the queue): for a bound
/// datagram socket, whose senders may run again before this process could put data back, and
/// for connections to peers outside the computation, which are never drained.
pub fn peek_all(fd: RawFd, message: bool, buf: &mut [u8], out: &mut Drained) -> io::Result<()> {
    sys::set_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, 0)?;
    let r = (|| {
        // 0: end of a stream (or an empty datagram, which is not kept).
        while let Some(n) = sys::recv(fd, buf, libc::MSG_DONTWAIT | libc::MSG_PEEK)? {
            if n == 0 {
                out.eof |= !message;
                break;
            }
            out.chunks.push(buf[..n].to_vec());
        }
        Ok(())
    })();
    // -1: peeking without an offset again, the default.
    sys::set_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, -1)?;
    r
}
