//! Pipes and FIFOs shared by several processes of the computation (`fork` after `pipe`,
//! `popen`, `a | b`): they come back as one pipe connecting the same processes, with the bytes
//! in flight delivered once.
//!
//! At checkpoint ([`elect`], on the checkpoint thread while the program is frozen) every
//! process publishes the pipe and FIFO inodes it holds in the coordinator's key-value store
//! (db `dmtcp:pipes`, keys per generation): a holder count, the holders' virtual pids, and the
//! smallest vpid among holders of a readable end (the leader; the smallest holder when nobody
//! reads). After the global barrier `DMT:PIPES` everyone is frozen, so the leader alone drains
//! and saves the data; the others pass the inode in `SaveOptions::skip_drain`. The result, the
//! [`Plan`], lives in a static and so comes back with the memory at restart.
//!
//! At restart ([`rejoin`], before any program thread runs) the leader's fd restore recreates
//! the pipe with its data; every other holder binds an abstract unix datagram socket named
//! after the computation, generation and its vpid, all meet at `DMT:PIPES_RESTART`, the leader
//! sends both ends of each pipe it leads with SCM_RIGHTS (the inode as payload), and each
//! receiver `dup3`s the ends onto its saved fd numbers, replacing the unconnected pipe its
//! own restore made. FIFOs need no hand-over (they are reopened by path); only their data
//! goes through the leader.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use dmtcp_fds::{Class, FdObject, FdTable, OrphanPipeEnd};
use dmtcp_protocol::KvOp;

use crate::session::{self, SessionError};

const DB: &str = "dmtcp:pipes";
/// Seconds a receiver waits for the leader's ends.
const RECV_TIMEOUT_S: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("{0}")]
    Session(#[from] SessionError),
    #[error("cannot list the fds: {0}")]
    Fds(#[from] dmtcp_fds::FdError),
    #[error("shared pipe hand-over: {op}: {source}")]
    Sys {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("shared pipe hand-over: {0}")]
    Protocol(String),
}

fn sys_err(op: &'static str) -> impl FnOnce(std::io::Error) -> SharedError {
    move |source| SharedError::Sys { op, source }
}

/// One pipe or FIFO this process shares with others.
#[derive(Debug, Clone)]
struct Shared {
    inode: u64,
    fifo: bool,
    leader: i32,
    /// The other holders' vpids (filled for the leader only).
    others: Vec<i32>,
}

#[derive(Debug, Clone)]
struct Plan {
    comp: String,
    generation: u32,
    me: i32,
    shared: Vec<Shared>,
}

static PLAN: Mutex<Option<Plan>> = Mutex::new(None);

/// This process's vpid and computation id.
fn identity() -> (i32, String) {
    let id = session::IDENTITY.lock().unwrap_or_else(|e| e.into_inner());
    match id.as_ref() {
        Some(a) => (a.virtual_pid, a.comp_id.to_string()),
        // SAFETY: a plain query of our pid.
        None => (unsafe { libc::getpid() }, String::new()),
    }
}

fn number(v: Option<Vec<u8>>) -> Option<i64> {
    v.and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.parse().ok())
}

/// The pipes and FIFOs among `fds`: inode → (is a FIFO, some description is readable).
fn pipes_held(fds: &[RawFd]) -> Result<BTreeMap<u64, (bool, bool)>, SharedError> {
    let mut held = BTreeMap::new();
    for &fd in fds {
        let d = dmtcp_fds::describe(fd)?;
        let fifo = match d.class {
            Class::Pipe => false,
            Class::Fifo => true,
            _ => continue,
        };
        let e = held.entry(d.ino).or_insert((fifo, false));
        e.1 |= d.readable();
    }
    Ok(held)
}

/// Checkpoint side: elects a leader for every pipe/FIFO held by several processes and returns
/// the inodes whose data this process must not save. Every process of the computation calls
/// it (or [`elect_absent`]) once per checkpoint, while frozen.
pub fn elect(generation: u32, fds: &[RawFd]) -> Result<Vec<u64>, SharedError> {
    let (me, comp) = identity();
    let held = match pipes_held(fds) {
        Ok(h) => h,
        Err(e) => {
            // The others wait for us at the barrier; meet them, then fail this checkpoint.
            elect_absent()?;
            return Err(e);
        }
    };
    let key = |what: &str, ino: u64| format!("{generation}:{what}:{ino}");
    for (&ino, &(_, readable)) in &held {
        let idx = number(session::kv(DB, key("n", ino).as_bytes(), KvOp::IncrBy(1))?)
            .ok_or_else(|| SharedError::Protocol("holder count is not a number".into()))?;
        session::kv(
            DB,
            format!("{generation}:h:{ino}:{idx}").as_bytes(),
            KvOp::Set(me.to_string().into_bytes()),
        )?;
        session::kv(DB, key("any", ino).as_bytes(), KvOp::Min(me as i64))?;
        if readable {
            session::kv(DB, key("rd", ino).as_bytes(), KvOp::Min(me as i64))?;
        }
    }
    session::barrier("DMT:PIPES")?;
    let mut shared = Vec::new();
    for (&ino, &(fifo, _)) in &held {
        let n = number(session::kv(DB, key("n", ino).as_bytes(), KvOp::Get)?).unwrap_or(0);
        if n < 2 {
            continue;
        }
        let leader = match number(session::kv(DB, key("rd", ino).as_bytes(), KvOp::Get)?) {
            Some(v) => v,
            None => {
                number(session::kv(DB, key("any", ino).as_bytes(), KvOp::Get)?).unwrap_or(me as i64)
            }
        } as i32;
        let mut others = Vec::new();
        if leader == me && !fifo {
            for i in 1..=n {
                let k = format!("{generation}:h:{ino}:{i}");
                if let Some(v) = number(session::kv(DB, k.as_bytes(), KvOp::Get)?)
                    && v as i32 != me
                    && !others.contains(&(v as i32))
                {
                    others.push(v as i32);
                }
            }
        }
        crate::debug!("pipe {ino} shared by {n} processes, leader {leader}");
        shared.push(Shared {
            inode: ino,
            fifo,
            leader,
            others,
        });
    }
    let skip = shared
        .iter()
        .filter(|s| s.leader != me)
        .map(|s| s.inode)
        .collect();
    *PLAN.lock().unwrap_or_else(|e| e.into_inner()) = Some(Plan {
        comp,
        generation,
        me,
        shared,
    });
    Ok(skip)
}

/// A process whose checkpoint failed before [`elect`] still meets the others at the barrier.
pub fn elect_absent() -> Result<(), SessionError> {
    session::barrier("DMT:PIPES").map(drop)
}

/// Restart side, before the fd restore: the pipes to restore even at stdio numbers.
pub fn shared_pipe_inodes() -> Vec<u64> {
    PLAN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|p| {
            p.shared
                .iter()
                .filter(|s| !s.fifo)
                .map(|s| s.inode)
                .collect()
        })
        .unwrap_or_default()
}

/// Restart side, after the fd restore: hands the leaders' pipe ends to the other holders and
/// installs the received ones. Every restarted process calls it once (global barrier).
pub fn rejoin(table: Option<&FdTable>, orphans: Vec<OrphanPipeEnd>) -> Result<(), SharedError> {
    let plan = PLAN.lock().unwrap_or_else(|e| e.into_inner()).take();
    let pipes: Vec<&Shared> = plan
        .as_ref()
        .map(|p| p.shared.iter().filter(|s| !s.fifo).collect())
        .unwrap_or_default();
    let expected = plan
        .as_ref()
        .map_or(0, |p| pipes.iter().filter(|s| s.leader != p.me).count());
    let name = |p: &Plan, vpid: i32| format!("dmtcp-pipes-{}-{}-{vpid}", p.comp, p.generation);
    let sock = match &plan {
        Some(p) if expected > 0 => Some(sock::bind(&name(p, p.me)).map_err(sys_err("bind"))?),
        _ => None,
    };
    session::barrier("DMT:PIPES_RESTART")?;
    let (Some(plan), Some(table)) = (&plan, table) else {
        return Ok(());
    };
    let tx = sock::unbound().map_err(sys_err("socket"))?;
    for s in pipes.iter().filter(|s| s.leader == plan.me) {
        let (r, w) = leader_ends(table, &orphans, s.inode)?;
        for &to in &s.others {
            // A holder whose image was left out of the restart: the pipe lives on without it.
            if let Err(e) = sock::send(tx.as_raw_fd(), &name(plan, to), s.inode, [r, w]) {
                crate::warn!("pipe {}: cannot hand it to process {to}: {e}", s.inode);
            }
        }
    }
    drop(orphans);
    if let Some(sock) = sock {
        sock::set_timeout(sock.as_raw_fd(), RECV_TIMEOUT_S).map_err(sys_err("SO_RCVTIMEO"))?;
        for _ in 0..expected {
            let (inode, [r, w]) = sock::recv(sock.as_raw_fd()).map_err(sys_err("receive"))?;
            if !pipes.iter().any(|s| s.inode == inode) {
                return Err(SharedError::Protocol(format!("unexpected pipe {inode}")));
            }
            install(table, inode, &r, &w)?;
        }
    }
    Ok(())
}

/// The leader's read and write ends of the new pipe: its own restored fds, or the orphan end.
fn leader_ends(
    table: &FdTable,
    orphans: &[OrphanPipeEnd],
    inode: u64,
) -> Result<(RawFd, RawFd), SharedError> {
    let (mut r, mut w) = (None, None);
    for e in &table.entries {
        if let FdObject::Pipe(p) = &e.object
            && p.inode == inode
        {
            if p.flags & libc::O_ACCMODE == libc::O_RDWR {
                r.get_or_insert(e.fd);
                w.get_or_insert(e.fd);
            } else if p.write_end {
                w.get_or_insert(e.fd);
            } else {
                r.get_or_insert(e.fd);
            }
        }
    }
    for o in orphans.iter().filter(|o| o.inode == inode) {
        let slot = if o.write_end { &mut w } else { &mut r };
        slot.get_or_insert(o.fd.as_raw_fd());
    }
    match (r, w) {
        (Some(r), Some(w)) => Ok((r, w)),
        _ => Err(SharedError::Protocol(format!(
            "pipe {inode}: the leader has no end of it"
        ))),
    }
}

/// Puts the received ends at every fd number (dups included) that held pipe `inode`.
fn install(table: &FdTable, inode: u64, r: &OwnedFd, w: &OwnedFd) -> Result<(), SharedError> {
    let mut placed: Vec<RawFd> = Vec::new();
    for e in &table.entries {
        let FdObject::Pipe(p) = &e.object else {
            continue;
        };
        if p.inode != inode {
            continue;
        }
        let mode = p.flags & libc::O_ACCMODE;
        let rdwr;
        let src = if mode == libc::O_RDWR {
            rdwr = sock::reopen_rdwr(r.as_raw_fd()).map_err(sys_err("reopen read-write"))?;
            rdwr.as_raw_fd()
        } else if p.write_end {
            w.as_raw_fd()
        } else {
            r.as_raw_fd()
        };
        sock::dup3(src, e.fd, e.cloexec).map_err(sys_err("dup3"))?;
        sock::set_fl(e.fd, p.flags).map_err(sys_err("F_SETFL"))?;
        placed.push(e.fd);
    }
    for e in &table.entries {
        if let FdObject::Dup { of } = e.object
            && placed.contains(&of)
        {
            sock::dup3(of, e.fd, e.cloexec).map_err(sys_err("dup3"))?;
        }
    }
    Ok(())
}

/// The system calls of the hand-over: abstract unix datagram sockets and SCM_RIGHTS.
mod sock {
    use super::*;
    use std::io;

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
        let fd =
            cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
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

    pub fn set_timeout(fd: RawFd, secs: i64) -> io::Result<()> {
        let tv = libc::timeval {
            tv_sec: secs,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a timeval of the right size.
        cvt(unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        })
        .map(drop)
    }

    const NFDS: usize = 2;
    /// Room for one SCM_RIGHTS message with two fds (u64-aligned).
    type CmsgBuf = [u64; 8];

    pub fn send(fd: RawFd, to: &str, inode: u64, fds: [RawFd; NFDS]) -> io::Result<()> {
        let (mut a, alen) = addr(to);
        let mut payload = inode.to_le_bytes();
        let mut iov = libc::iovec {
            iov_base: payload.as_mut_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        };
        let mut cbuf: CmsgBuf = [0; 8];
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE((NFDS * 4) as u32) } as usize;
        // SAFETY: msghdr is plain data; every pointer set below outlives the sendmsg call,
        // and the control buffer (64 bytes) is larger than `space`.
        let r = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_name = &mut a as *mut _ as *mut libc::c_void;
            msg.msg_namelen = alen;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = space as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN((NFDS * 4) as u32) as _;
            let data = libc::CMSG_DATA(c) as *mut RawFd;
            for (i, f) in fds.iter().enumerate() {
                data.add(i).write_unaligned(*f);
            }
            libc::sendmsg(fd, &msg, 0)
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// One message: the inode and the two ends (read, write).
    pub fn recv(fd: RawFd) -> io::Result<(u64, [OwnedFd; NFDS])> {
        loop {
            let mut payload = [0u8; 8];
            let mut iov = libc::iovec {
                iov_base: payload.as_mut_ptr() as *mut libc::c_void,
                iov_len: payload.len(),
            };
            let mut cbuf: CmsgBuf = [0; 8];
            // SAFETY: as in `send`; the kernel writes at most msg_controllen bytes of control
            // data and the received fds are taken into OwnedFds right away.
            let got = unsafe {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = &mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
                msg.msg_controllen = std::mem::size_of::<CmsgBuf>() as _;
                let n = libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC);
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() == Some(libc::EINTR) {
                        continue;
                    }
                    return Err(e);
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
            if n != 8 || flags & libc::MSG_CTRUNC != 0 {
                return Err(io::Error::other("malformed pipe hand-over message"));
            }
            let fds: [OwnedFd; NFDS] = fds
                .try_into()
                .map_err(|_| io::Error::other("pipe hand-over message without two fds"))?;
            return Ok((u64::from_le_bytes(payload), fds));
        }
    }

    pub fn dup3(from: RawFd, to: RawFd, cloexec: bool) -> io::Result<()> {
        if from == to {
            return Ok(());
        }
        let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
        // SAFETY: dup3 on fds we hold; `to` is one of the program's restored numbers, which
        // it replaces on purpose.
        cvt(unsafe { libc::dup3(from, to, flags) }).map(drop)
    }

    pub fn set_fl(fd: RawFd, flags: i32) -> io::Result<()> {
        // SAFETY: F_SETFL on an open fd.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }).map(drop)
    }

    pub fn reopen_rdwr(fd: RawFd) -> io::Result<OwnedFd> {
        let path = std::ffi::CString::new(format!("/proc/self/fd/{fd}"))
            .map_err(|_| io::Error::other("path with NUL"))?;
        // SAFETY: open(2) of a NUL-terminated path; the new fd is owned here.
        let n = cvt(unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) })?;
        // SAFETY: n was just returned by open(2).
        Ok(unsafe { OwnedFd::from_raw_fd(n) })
    }
}
