//! Putting drained bytes back into the receive queue they came from: the "echo". A process
//! cannot write into its own receive queue, so each end sends its drained data to the peer,
//! which sends it straight back; the echo lands where the data was.
//!
//! On each connection, each end writes a 16-byte header (amount: bytes for streams, messages
//! otherwise; flags: bit 0 = "I saw end-of-file, shut down your sending side afterwards"),
//! then its drained data, then the echo of what the peer sent. It reads the peer's header and
//! exactly the announced amount, which it echoes; what the peer echoes is left unread, in the
//! receive queue, for the program. Every connection runs in one nonblocking poll loop, so a
//! large echo never waits for another connection.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::drain::{Drained, MAX_MESSAGE};
use super::sys;

const HEADER: usize = 16;
const FLAG_EOF: u64 = 1;

/// One connection end to refill. The fd must be nonblocking while [`echo`] runs.
pub struct Job<'a> {
    pub fd: RawFd,
    pub message: bool,
    pub drained: &'a Drained,
}

struct State {
    fd: RawFd,
    message: bool,
    /// Messages (or stream chunks) still to send, and how much of the first is sent.
    out: VecDeque<Vec<u8>>,
    sent: usize,
    header: Vec<u8>,
    /// Bytes or messages of the peer's data still to read and echo.
    left: Option<u64>,
    peer_eof: bool,
    done: bool,
    failed: Option<String>,
}

impl State {
    fn new(j: &Job) -> State {
        let amount = if j.message {
            j.drained.chunks.len() as u64
        } else {
            j.drained.bytes() as u64
        };
        let flags = if j.drained.eof { FLAG_EOF } else { 0 };
        let mut header = amount.to_le_bytes().to_vec();
        header.extend_from_slice(&flags.to_le_bytes());
        let mut out = VecDeque::with_capacity(j.drained.chunks.len() + 1);
        out.push_back(header);
        out.extend(
            j.drained
                .chunks
                .iter()
                .filter(|c| j.message || !c.is_empty())
                .cloned(),
        );
        State {
            fd: j.fd,
            message: j.message,
            out,
            sent: 0,
            header: Vec::with_capacity(HEADER),
            left: None,
            peer_eof: false,
            done: false,
            failed: None,
        }
    }

    fn reading(&self) -> bool {
        self.left != Some(0)
    }

    fn write_some(&mut self) -> std::io::Result<()> {
        while let Some(front) = self.out.front() {
            let Some(n) = sys::send(self.fd, &front[self.sent..], libc::MSG_DONTWAIT)? else {
                return Ok(());
            };
            if self.message {
                self.out.pop_front();
                continue;
            }
            self.sent += n;
            if self.sent == front.len() {
                self.out.pop_front();
                self.sent = 0;
            }
        }
        Ok(())
    }

    fn read_some(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        while self.reading() {
            let want = match self.left {
                _ if self.message => buf.len(),
                None => HEADER - self.header.len(),
                Some(n) => (n as usize).min(buf.len()),
            };
            let Some(got) = sys::recv(self.fd, &mut buf[..want], libc::MSG_DONTWAIT)? else {
                return Ok(());
            };
            if got == 0 && !self.message {
                return Err(std::io::Error::other("the peer closed during the refill"));
            }
            match self.left {
                None => {
                    self.header.extend_from_slice(&buf[..got]);
                    if self.header.len() == HEADER {
                        let amount =
                            u64::from_le_bytes(self.header[..8].try_into().unwrap_or_default());
                        let flags =
                            u64::from_le_bytes(self.header[8..].try_into().unwrap_or_default());
                        self.peer_eof = flags & FLAG_EOF != 0;
                        self.left = Some(amount);
                    } else if self.message {
                        return Err(std::io::Error::other("malformed refill header"));
                    }
                }
                Some(n) => {
                    self.out.push_back(buf[..got].to_vec());
                    let used = if self.message { 1 } else { got as u64 };
                    self.left = Some(n - used);
                }
            }
        }
        Ok(())
    }

    fn step(&mut self, buf: &mut [u8]) {
        let r = self.read_some(buf).and_then(|()| self.write_some());
        if let Err(e) = r {
            self.failed = Some(e.to_string());
            self.done = true;
            return;
        }
        if !self.reading() && self.out.is_empty() {
            if self.peer_eof
                && let Err(e) = sys::shutdown_write(self.fd)
            {
                self.failed = Some(format!("shutdown: {e}"));
            }
            self.done = true;
        }
    }
}

/// Runs the echo on every job until all are done or `timeout` passes. Returns one line per
/// connection that could not be refilled.
pub fn echo(jobs: &[Job], timeout: Duration) -> Vec<String> {
    let mut states: Vec<State> = jobs.iter().map(State::new).collect();
    let mut buf = vec![0u8; MAX_MESSAGE];
    let start = Instant::now();
    for s in states.iter_mut() {
        s.step(&mut buf);
    }
    loop {
        let live: Vec<usize> = (0..states.len()).filter(|&i| !states[i].done).collect();
        if live.is_empty() {
            break;
        }
        if start.elapsed() > timeout {
            for &i in &live {
                states[i].failed = Some("timed out".into());
            }
            break;
        }
        let mut pfds: Vec<libc::pollfd> = live
            .iter()
            .map(|&i| {
                let s = &states[i];
                let mut events = 0;
                if s.reading() {
                    events |= libc::POLLIN;
                }
                if !s.out.is_empty() {
                    events |= libc::POLLOUT;
                }
                libc::pollfd {
                    fd: s.fd,
                    events,
                    revents: 0,
                }
            })
            .collect();
        if sys::poll(&mut pfds, 100).is_err() {
            continue;
        }
        for (p, &i) in pfds.iter().zip(&live) {
            if p.revents != 0 {
                states[i].step(&mut buf);
            }
        }
    }
    states
        .iter()
        .filter_map(|s| s.failed.as_ref().map(|e| format!("fd {}: {e}", s.fd)))
        .collect()
}
