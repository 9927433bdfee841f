//! Sockets between processes of the computation: drained at checkpoint, refilled at resume,
//! reconnected and refilled at restart (docs/sockets.md).
//!
//! Checkpoint ([`checkpoint`], checkpoint thread, program frozen):
//! 1. every process publishes, per socket it holds, its ownership (socket inode → smallest
//!    vpid is the leader, like shared pipes) and its connection end (TCP: `local>peer`;
//!    UNIX: the inode, and its peer's inode from sock_diag); barrier `DMT:SOCKETS`;
//! 2. a connected socket whose peer end someone published is internal (a [`Role::Pair`]); the
//!    others are external and never touched; leaders drain their internal sockets until their
//!    TCP send queues are empty (the peers drain at the same time); barrier
//!    `DMT:SOCKETS_EMPTY`; a last drain; barrier `DMT:SOCKETS_DRAINED`.
//!
//! The plan (roles and drained data) lives in a static, so it is in the image.
//!
//! Resume ([`resume`], before the program's threads run again): every drained connection is
//! refilled by the echo (`refill`).
//!
//! Restart ([`restart`], after the fd restore, before any program thread runs): listeners are
//! bound again; for each internal TCP connection the passive end's process opens one
//! temporary listener per address family and publishes where it can be reached
//! (`<gen>:r:ep:<vpid>:<family>`); UNIX connections are recreated as socketpairs by one end's
//! process; barrier `DMT:SOCKETS_RESTART`; active ends connect and send the connection id,
//! passive ends accept; socketpair ends and sockets shared by several processes are handed
//! over with SCM_RIGHTS; everything is put at its fd number with its flags and options; then
//! the echo refills the data, and epoll registrations of sockets are replayed.

pub mod addr;
mod backlog;
mod drain;
mod opts;
mod refill;
mod sys;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use addr::Addr;
use dmtcp_fds::{Class, FdObject, FdTable, RestoreReport};
use dmtcp_protocol::KvOp;
use drain::Drained;

use crate::session::{self, SessionError};

const DB: &str = "dmtcp:sockets";
/// How long a process waits for its peers at restart, and for the echo.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How long the checkpoint waits for TCP send queues to empty.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The send buffer of a UNIX socket during the echo (capped by net.core.wmem_max).
const ECHO_SNDBUF: i32 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("{0}")]
    Session(#[from] SessionError),
    #[error("socket fd {fd}: {op}: {source}")]
    Sys {
        fd: RawFd,
        op: &'static str,
        source: io::Error,
    },
    #[error("sockets: {0}")]
    Protocol(String),
}

fn sys_err(fd: RawFd, op: &'static str) -> impl FnOnce(io::Error) -> SocketError {
    move |source| SocketError::Sys { fd, op, source }
}

/// What the socket is to the computation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    /// Another process holds this socket too and restores it; it hands it over at restart.
    Follower,
    Listener,
    /// Connected to an end held by a process of the computation (`peer`, a vpid).
    Pair {
        peer: i32,
        conn: u64,
        active: bool,
    },
    /// A UNIX datagram socket connected to another process's bound socket.
    DgramToPath,
    /// The connecting end of a TCP connection that was waiting in the backlog of a listener
    /// of the computation (bound at `listener`); `drained` holds the bytes it had sent.
    Backlog {
        listener: String,
    },
    /// A bound, unconnected UNIX datagram socket: its queue is refilled by sending to itself.
    BoundDgram,
    /// Connected to something outside the computation.
    External,
    /// Not connected (perhaps bound): created again with its options.
    Plain,
}

#[derive(Debug, Clone)]
struct Sock {
    fd: RawFd,
    cloexec: bool,
    ino: u64,
    domain: i32,
    ty: i32,
    protocol: i32,
    flags: i32,
    local: Option<Addr>,
    peer: Option<Addr>,
    listening: bool,
    /// UNIX only: the inode of the connected peer.
    unix_peer: Option<u64>,
    opts: Vec<opts::Opt>,
    role: Role,
    drained: Drained,
    /// Other processes holding this socket (leader only), to hand it to at restart.
    others: Vec<i32>,
}

impl Sock {
    fn message(&self) -> bool {
        self.ty != libc::SOCK_STREAM
    }

    fn tcp(&self) -> bool {
        self.domain != libc::AF_UNIX && self.ty == libc::SOCK_STREAM
    }

    /// The key of this connection end, and of its peer end, as published.
    fn end_keys(&self, stack: &str) -> Option<(String, String)> {
        if self.domain == libc::AF_UNIX {
            let mine = format!("u:{stack}:{}", self.ino);
            let peer = self.unix_peer.map(|p| format!("u:{stack}:{p}"));
            return Some((mine, peer.unwrap_or_default()));
        }
        if !self.tcp() {
            return None;
        }
        let (l, p) = (
            canonical(self.local.as_ref()?)?,
            canonical(self.peer.as_ref()?)?,
        );
        Some((format!("t:{l}>{p}"), format!("t:{p}>{l}")))
    }
}

fn canonical(a: &Addr) -> Option<SocketAddr> {
    a.inet()
        .map(|sa| SocketAddr::new(sa.ip().to_canonical(), sa.port()))
}

#[derive(Debug)]
struct Plan {
    comp: String,
    generation: u32,
    me: i32,
    stack: String,
    socks: Vec<Sock>,
    /// Drained at this checkpoint and not yet refilled.
    resume_pending: bool,
}

static PLAN: Mutex<Option<Plan>> = Mutex::new(None);

/// FNV-1a: a connection id both ends compute from the two end keys.
fn conn_id(a: &str, b: &str) -> u64 {
    let (x, y) = if a < b { (a, b) } else { (b, a) };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in x.bytes().chain([b'|']).chain(y.bytes()) {
        h ^= c as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h & !(1 << 63)
}

/// Reads what the layer needs of one socket; `None` for an fd that is not a socket.
fn describe(fd: RawFd, diag: Option<&sys::Diag>) -> Option<Sock> {
    let d = dmtcp_fds::describe(fd).ok()?;
    if d.class != Class::Socket {
        return None;
    }
    let int = |o| sys::get_int(fd, libc::SOL_SOCKET, o).unwrap_or(-1);
    let (domain, ty) = (int(libc::SO_DOMAIN), int(libc::SO_TYPE));
    let unix_peer = if domain == libc::AF_UNIX {
        diag.and_then(|g| g.unix_peer(d.ino).ok().flatten())
    } else {
        None
    };
    Some(Sock {
        fd,
        cloexec: d.cloexec,
        ino: d.ino,
        domain,
        ty,
        protocol: int(libc::SO_PROTOCOL),
        flags: d.flags(),
        local: sys::local_addr(fd).ok(),
        peer: sys::peer_addr(fd).ok(),
        listening: int(libc::SO_ACCEPTCONN) == 1,
        unix_peer,
        opts: opts::save(fd, domain, ty),
        role: Role::Plain,
        drained: Drained::default(),
        others: Vec::new(),
    })
}

/// Checkpoint side (see the module doc). Every process calls it, or [`absent`], once per
/// checkpoint; it meets the three barriers on every path.
pub fn checkpoint(generation: u32, fds: &[RawFd]) -> Result<(), SocketError> {
    let t0 = Instant::now();
    let (me, comp) = session::own_ids();
    let stack = sys::stack_id();
    let diag = sys::Diag::open().ok();
    let mut socks: Vec<Sock> = Vec::new();
    for &fd in fds {
        if let Some(s) = describe(fd, diag.as_ref())
            && !socks.iter().any(|o| o.ino == s.ino)
        {
            socks.push(s);
        }
    }
    let g = generation;
    let own = |ino: u64| format!("{g}:own:{stack}:{ino}");
    // Key-value traffic in batches, a few round trips in all rather than several per socket:
    // the holder counts first (each holder's index), then everything else it publishes.
    let counts = socks
        .iter()
        .map(|s| session::kv_item(DB, format!("{}:n", own(s.ino)), KvOp::IncrBy(1)))
        .collect();
    let idxs = session::kv_batch(counts)?;
    let mut publish = Vec::new();
    for (s, idx) in socks.iter().zip(idxs) {
        let idx = session::kv_number(idx).unwrap_or(1);
        let me_s = me.to_string().into_bytes();
        publish.push(session::kv_item(
            DB,
            format!("{}:h:{idx}", own(s.ino)),
            KvOp::Set(me_s),
        ));
        if let Some((mine, _)) = s.end_keys(&stack) {
            publish.push(session::kv_item(
                DB,
                format!("{g}:end:{mine}"),
                KvOp::Min(me as i64),
            ));
            if let Some(p) = s.unix_peer.filter(|_| s.ty == libc::SOCK_DGRAM) {
                let v = p.to_string().into_bytes();
                publish.push(session::kv_item(
                    DB,
                    format!("{g}:upeer:{mine}"),
                    KvOp::Set(v),
                ));
            }
        }
    }
    session::kv_batch(publish)?;
    session::barrier("DMT:SOCKETS")?;
    let counts = socks
        .iter()
        .map(|s| format!("{}:n", own(s.ino)).into_bytes())
        .collect();
    let mut holders = session::KvPrefetch::fetch(DB, counts)?;
    // Held by several processes: the smallest vpid leads (the holder lists, only then).
    let mut lists = Vec::new();
    for s in &socks {
        let n =
            session::kv_number(holders.get(format!("{}:n", own(s.ino)).as_bytes())?).unwrap_or(1);
        for i in (1..=n).filter(|_| n > 1) {
            lists.push(format!("{}:h:{i}", own(s.ino)).into_bytes());
        }
    }
    holders.more(lists)?;
    let mut led = Vec::new();
    for (k, s) in socks.iter_mut().enumerate() {
        let n =
            session::kv_number(holders.get(format!("{}:n", own(s.ino)).as_bytes())?).unwrap_or(1);
        let mut leader = me;
        for i in (1..=n).filter(|_| n > 1) {
            let key = format!("{}:h:{i}", own(s.ino));
            if let Some(v) = session::kv_number(holders.get(key.as_bytes())?).map(|v| v as i32)
                && v != me
                && !s.others.contains(&v)
            {
                s.others.push(v);
                leader = leader.min(v);
            }
        }
        if leader != me {
            s.role = Role::Follower;
            s.others.clear();
        } else {
            led.push(k);
        }
    }
    // What `classify` reads of the sockets this process leads, in one round trip.
    let mut wanted = Vec::new();
    for s in led.iter().map(|&k| &socks[k]) {
        if let Some((_, peer_key)) = s.end_keys(&stack) {
            wanted.push(format!("{g}:end:{peer_key}").into_bytes());
            if s.domain == libc::AF_UNIX && s.ty == libc::SOCK_DGRAM {
                wanted.push(format!("{g}:upeer:{peer_key}").into_bytes());
            }
        }
    }
    let published = session::KvPrefetch::fetch(DB, wanted)?;
    for k in led {
        let s = &mut socks[k];
        s.role = classify(s, &stack, g, &published)?;
        crate::debug!("socket fd {} ({}): {:?}", s.fd, s.ino, s.role);
    }
    // A killed process's connections linger in TIME_WAIT on their ports; with SO_REUSEADDR
    // they do not keep the restart from binding the listeners' ports again (set back at
    // resume).
    for s in socks
        .iter()
        .filter(|s| s.tcp() && matches!(s.role, Role::Pair { .. }))
    {
        let _ = sys::set_int(s.fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
    }
    let mut taken = take_backlogs(&socks, g)?;
    let r = drain_all(&mut socks);
    session::barrier("DMT:SOCKETS_EMPTY")?;
    let mut buf = vec![0u8; drain::MAX_MESSAGE];
    for (c, d) in taken.iter_mut() {
        if let Err(e) = drain::drain_once(c.as_raw_fd(), false, &mut buf, d) {
            crate::warn!("backlog connection: drain: {e}");
        }
    }
    // What an outside peer (or one that is gone) left unread: copied, not taken, so the
    // program still has it if it resumes; a restart delivers it before the connection's end.
    for s in socks
        .iter_mut()
        .filter(|s| s.role == Role::External && (s.tcp() || s.domain == libc::AF_UNIX))
    {
        if drain::peek_all(s.fd, s.message(), &mut buf, &mut s.drained).is_err() {
            s.drained = Drained::default();
        }
        s.drained.eof = s.domain == libc::AF_UNIX || sys::tcp_state(s.fd) == Some(TCP_CLOSE_WAIT);
    }
    let bl_key = |s: &Sock| format!("{g}:bl:{}", s.end_keys(&stack).unwrap_or_default().0);
    let backlogged = socks
        .iter()
        .filter(|s| s.role == Role::External && s.tcp())
        .map(|s| bl_key(s).into_bytes())
        .collect();
    let backlogged = session::KvPrefetch::fetch(DB, backlogged)?;
    for s in socks
        .iter_mut()
        .filter(|s| s.role == Role::External && s.tcp())
    {
        if let Some(v) = backlogged.get(bl_key(s).as_bytes())? {
            s.role = Role::Backlog {
                listener: String::from_utf8_lossy(&v).into_owned(),
            };
        }
    }
    for s in socks.iter_mut().filter(|s| drains(s)) {
        let r = if !s.tcp() {
            // UNIX: everything sent is already in the receiving queue, so a copy is enough
            // and the queue stays as it is for a resume.
            drain::peek_all(s.fd, s.message(), &mut buf, &mut s.drained)
        } else {
            drain::drain_once(s.fd, s.message(), &mut buf, &mut s.drained)
        };
        if let Err(e) = r {
            crate::warn!("socket fd {}: final drain: {e}", s.fd);
        }
    }
    session::barrier("DMT:SOCKETS_DRAINED")?;
    // Bytes of backlog connections go back to their connecting ends (both sides at once).
    for w in backlog::hand_back(taken, DRAIN_TIMEOUT) {
        crate::warn!("{w}");
    }
    for s in socks.iter_mut() {
        if matches!(s.role, Role::Backlog { .. }) {
            match backlog::collect(s.fd, DRAIN_TIMEOUT) {
                Ok(d) => s.drained = d,
                Err(e) => crate::warn!("socket fd {}: backlog bytes lost: {e}", s.fd),
            }
        }
    }
    let pairs = socks.iter().filter(|s| matches!(s.role, Role::Pair { .. }));
    let bytes: usize = pairs.clone().map(|s| s.drained.bytes()).sum();
    crate::debug!(
        "sockets: {} connection end(s) drained ({bytes} bytes) in {:.1} ms",
        pairs.count(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    let resume_pending = socks
        .iter()
        .any(|s| echoed(s) || matches!(s.role, Role::Backlog { .. }));
    *PLAN.lock().unwrap_or_else(|e| e.into_inner()) = Some(Plan {
        comp,
        generation,
        me,
        stack,
        socks,
        resume_pending,
    });
    r
}

/// Listener side: accepts the connections waiting on this process's TCP listeners when they
/// all come from the computation, and tells each connecting end (`<gen>:bl:<its end>` = the
/// listener's address).
fn take_backlogs(socks: &[Sock], g: u32) -> Result<Vec<(OwnedFd, Drained)>, SocketError> {
    let mut taken = Vec::new();
    let listeners: Vec<(&Sock, SocketAddr)> = socks
        .iter()
        .filter(|s| s.role == Role::Listener && s.tcp())
        .filter_map(|s| Some((s, canonical(s.local.as_ref()?)?)))
        .collect();
    if listeners.is_empty() {
        return Ok(taken);
    }
    let waiting = backlog::unowned_established();
    for (s, bound) in listeners {
        let mine: Vec<String> = waiting
            .iter()
            .filter(|(l, _)| backlog::listens_for(bound, *l))
            .map(|(l, r)| format!("t:{r}>{l}"))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let ends = mine
            .iter()
            .map(|k| session::kv_item(DB, format!("{g}:end:{k}"), KvOp::Get))
            .collect();
        let all_ours = session::kv_batch(ends)?.iter().all(Option::is_some);
        if !all_ours {
            crate::warn!(
                "socket fd {}: a connection from outside waits in the backlog; the waiting connections stay as they are",
                s.fd
            );
            continue;
        }
        for c in backlog::accept_all(s.fd) {
            // Its TIME_WAIT must not keep the listener's port from being bound at restart.
            let _ = sys::set_int(c.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
            let (Some(l), Some(r)) = (
                sys::local_addr(c.as_raw_fd())
                    .ok()
                    .and_then(|a| canonical(&a)),
                sys::peer_addr(c.as_raw_fd())
                    .ok()
                    .and_then(|a| canonical(&a)),
            ) else {
                continue;
            };
            let k = format!("{g}:bl:t:{r}>{l}");
            let v = canonical(s.local.as_ref().unwrap_or(&Addr::default()))
                .map(|a| a.to_string())
                .unwrap_or_default();
            session::kv(DB, k.as_bytes(), KvOp::Set(v.into_bytes()))?;
            let mut d = Drained::default();
            let mut buf = vec![0u8; 1 << 16];
            let _ = drain::drain_once(c.as_raw_fd(), false, &mut buf, &mut d);
            taken.push((c, d));
        }
    }
    Ok(taken)
}

/// A process that cannot take part (its checkpoint failed early) still meets the barriers.
pub fn absent() -> Result<(), SessionError> {
    for b in ["DMT:SOCKETS", "DMT:SOCKETS_EMPTY", "DMT:SOCKETS_DRAINED"] {
        session::barrier(b)?;
    }
    Ok(())
}

/// `published`: the end and datagram-peer keys, fetched in one batch after the barrier.
fn classify(
    s: &Sock,
    stack: &str,
    g: u32,
    published: &session::KvPrefetch,
) -> Result<Role, SocketError> {
    if s.listening {
        return Ok(Role::Listener);
    }
    let Some((mine, peer_key)) = s.end_keys(stack) else {
        // UDP and raw sockets: recreated, their data is not kept.
        return Ok(if s.peer.is_some() {
            Role::External
        } else {
            Role::Plain
        });
    };
    let connected = s.peer.is_some() || s.unix_peer.is_some();
    if !connected {
        let bound_dgram = s.domain == libc::AF_UNIX
            && s.ty == libc::SOCK_DGRAM
            && s.local.as_ref().is_some_and(Addr::is_bound);
        return Ok(if bound_dgram {
            Role::BoundDgram
        } else {
            Role::Plain
        });
    }
    let peer = session::kv_number(published.get(format!("{g}:end:{peer_key}").as_bytes())?);
    let Some(peer) = peer else {
        return Ok(Role::External);
    };
    if s.domain == libc::AF_UNIX && s.ty == libc::SOCK_DGRAM {
        // Mutual (a socketpair) or one-way (connected to someone's bound socket)?
        let back = session::kv_number(published.get(format!("{g}:upeer:{peer_key}").as_bytes())?);
        if back != Some(s.ino as i64) {
            return Ok(if s.peer.as_ref().and_then(Addr::unix_file).is_some() {
                Role::DgramToPath
            } else {
                Role::External
            });
        }
    }
    Ok(Role::Pair {
        peer: peer as i32,
        conn: conn_id(&mine, &peer_key),
        active: mine < peer_key,
    })
}

/// Sockets whose receive queue this process drains and refills.
/// TCP connections between processes of the computation: drained at checkpoint (their send
/// queues must empty), so echoed back at resume. UNIX ones are only copied.
fn echoed(s: &Sock) -> bool {
    s.tcp() && matches!(s.role, Role::Pair { .. })
}

fn drains(s: &Sock) -> bool {
    matches!(s.role, Role::Pair { .. } | Role::BoundDgram)
}

/// Drains until this process's TCP send queues are empty (acknowledged: the bytes are in the
/// peers' receive queues, which the peers drain at the same time).
fn drain_all(socks: &mut [Sock]) -> Result<(), SocketError> {
    let mut buf = vec![0u8; drain::MAX_MESSAGE];
    let start = Instant::now();
    loop {
        let mut pending = 0;
        for s in socks.iter_mut().filter(|s| echoed(s)) {
            if let Err(e) = drain::drain_once(s.fd, s.message(), &mut buf, &mut s.drained) {
                crate::warn!("socket fd {}: drain: {e}", s.fd);
            }
            if s.tcp() && !s.drained.eof && sys::outq(s.fd).unwrap_or(0) > 0 {
                pending += 1;
            }
        }
        if pending == 0 {
            return Ok(());
        }
        if start.elapsed() > DRAIN_TIMEOUT {
            return Err(SocketError::Protocol(format!(
                "{pending} TCP connection(s) still have unacknowledged data after {DRAIN_TIMEOUT:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Resume without restart: puts every drained byte back where it was. Runs before the
/// program's threads are released; a no-op when nothing was drained.
pub fn resume() {
    let mut guard = PLAN.lock().unwrap_or_else(|e| e.into_inner());
    let Some(plan) = guard.as_mut() else { return };
    if !std::mem::take(&mut plan.resume_pending) {
        return;
    }
    let t0 = Instant::now();
    let live: Vec<(RawFd, i32)> = plan
        .socks
        .iter()
        .filter(|s| echoed(s))
        .map(|s| (s.fd, s.flags))
        .collect();
    refill_all(&plan.socks, false);
    for (fd, flags) in live {
        let _ = sys::set_fl(fd, flags);
    }
    for s in plan
        .socks
        .iter()
        .filter(|s| s.tcp() && matches!(s.role, Role::Pair { .. }))
    {
        reuse_back(s, s.fd);
    }
    for s in plan
        .socks
        .iter()
        .filter(|s| matches!(s.role, Role::Backlog { .. }))
    {
        let Some(to) = &s.peer else { continue };
        if let Err(e) = reconnect_backlog(s, to) {
            crate::warn!("socket fd {}: cannot wait in the backlog again: {e}", s.fd);
        }
    }
    for s in plan.socks.iter_mut() {
        s.drained = Drained::default();
    }
    crate::debug!(
        "sockets: refilled at resume in {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
}

/// Echo for the pairs; at restart also self-sends for bound datagram sockets (at resume
/// their queue was only peeked at, so it is whole).
fn refill_all(socks: &[Sock], restart: bool) {
    let fd_of = |s: &Sock| s.fd;
    let pairs: Vec<&Sock> = socks
        .iter()
        .filter(|s| {
            if restart {
                matches!(s.role, Role::Pair { .. })
            } else {
                echoed(s)
            }
        })
        .collect();
    // The echo briefly holds both the requests and the echoed data in a UNIX socket's send
    // allowance: give it room, then set the old size back. (TCP: never touched, setting it
    // would turn off the kernel's autotuning.)
    let mut sndbuf = Vec::new();
    for s in &pairs {
        let fd = fd_of(s);
        let _ = sys::set_nonblocking(fd, true);
        if s.domain == libc::AF_UNIX
            && let Ok(old) = sys::get_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF)
        {
            let _ = sys::set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, ECHO_SNDBUF);
            sndbuf.push((fd, old));
        }
    }
    let jobs: Vec<refill::Job> = pairs
        .iter()
        .map(|s| refill::Job {
            fd: fd_of(s),
            message: s.message(),
            drained: &s.drained,
        })
        .collect();
    for w in refill::echo(&jobs, TIMEOUT) {
        crate::warn!("socket data could not be put back: {w}");
    }
    for (fd, old) in sndbuf {
        // The kernel doubles what is set.
        let _ = sys::set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, old / 2);
    }
    for s in socks
        .iter()
        .filter(|s| restart && s.role == Role::BoundDgram)
    {
        if s.drained.chunks.is_empty() {
            continue;
        }
        let Some(me) = &s.local else { continue };
        let tx = match sys::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0) {
            Ok(t) => t,
            Err(e) => {
                crate::warn!("socket fd {}: cannot refill: {e}", s.fd);
                continue;
            }
        };
        for m in &s.drained.chunks {
            if let Err(e) = sys::send_to(tx.as_raw_fd(), m, me) {
                crate::warn!("socket fd {}: a datagram could not be put back: {e}", s.fd);
                break;
            }
        }
    }
}

/// The address other hosts reach this process at: the local end of its coordinator
/// connection (the interface that routes to the coordinator).
fn routable_ip() -> IpAddr {
    sys::local_addr(crate::settings::COORD_FD)
        .ok()
        .and_then(|a| canonical(&a))
        .map(|sa| sa.ip())
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn handover_name(plan: &Plan, vpid: i32) -> String {
    format!("dmtcp-sk-{}-{}-{vpid}", plan.comp, plan.generation)
}

/// Restart side (see the module doc). Every restarted process calls it once, after the fd
/// restore; it meets `DMT:SOCKETS_RESTART` on every path.
pub fn restart(table: Option<&FdTable>, report: Option<&RestoreReport>) -> Result<(), SocketError> {
    let plan = PLAN.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(mut plan) = plan else {
        session::barrier("DMT:SOCKETS_RESTART")?;
        return Ok(());
    };
    plan.resume_pending = false;
    let t0 = Instant::now();
    let mut b = Rebuild::new(&plan);
    let prepared = b.prepare(&plan);
    let barrier = session::barrier("DMT:SOCKETS_RESTART");
    prepared?;
    barrier?;
    b.connect(&plan)?;
    b.accept(&plan)?;
    // Socketpair ends first (all were sent before anyone waits), then the sockets shared with
    // other processes, which a leader can only pass on once it has them.
    b.receive(&plan, false)?;
    b.hand_over(&plan);
    b.receive(&plan, true)?;
    b.install(&plan, table)?;
    let t1 = Instant::now();
    refill_all(&plan.socks, true);
    crate::debug!(
        "sockets: {} socket(s) reconnected in {:.1} ms, refilled in {:.1} ms",
        plan.socks.len(),
        (t1 - t0).as_secs_f64() * 1e3,
        t1.elapsed().as_secs_f64() * 1e3
    );
    for s in plan.socks.iter().filter(|s| drains(s)) {
        let _ = sys::set_fl(s.fd, s.flags);
    }
    if let Some(report) = report {
        for (epfd, t) in &report.deferred_epoll {
            if let Err(e) = sys::epoll_add(*epfd, t.fd, t.events, t.data) {
                crate::warn!("epoll fd {epfd}: cannot register socket fd {}: {e}", t.fd);
            }
        }
    }
    for s in plan.socks.iter_mut() {
        s.drained = Drained::default();
    }
    *PLAN.lock().unwrap_or_else(|e| e.into_inner()) = Some(plan);
    Ok(())
}

/// The restart work in progress: new sockets by index in the plan.
struct Rebuild {
    new: HashMap<usize, OwnedFd>,
    /// Temporary listeners of passive TCP ends, by family.
    listeners: HashMap<i32, OwnedFd>,
    /// UNIX pair ends kept for a peer in this same process, by connection id.
    local_ends: HashMap<u64, OwnedFd>,
    /// Socketpair ends to send to another process: (vpid, id, fd).
    to_send: Vec<(i32, u64, OwnedFd)>,
    inbox: Option<OwnedFd>,
    stack: String,
}

const FOLLOWER_ID_BIT: u64 = 1 << 63;
/// `tcpi_state` of a connection whose peer has closed its side.
const TCP_CLOSE_WAIT: u8 = 8;

impl Rebuild {
    fn new(plan: &Plan) -> Rebuild {
        Rebuild {
            new: HashMap::new(),
            listeners: HashMap::new(),
            local_ends: HashMap::new(),
            to_send: Vec::new(),
            inbox: None,
            stack: plan.stack.clone(),
        }
    }

    fn expected_handovers(plan: &Plan) -> usize {
        plan.socks
            .iter()
            .filter(|s| match s.role {
                Role::Follower => true,
                Role::Pair { peer, active, .. } => {
                    s.domain == libc::AF_UNIX && !active && peer != plan.me
                }
                _ => false,
            })
            .count()
    }

    /// Before the barrier: everything that others will look for.
    fn prepare(&mut self, plan: &Plan) -> Result<(), SocketError> {
        if Self::expected_handovers(plan) > 0 {
            let name = handover_name(plan, plan.me);
            self.inbox = Some(sys::handover_bind(&name).map_err(sys_err(-1, "bind hand-over"))?);
        }
        for (i, s) in plan.socks.iter().enumerate() {
            let fd = s.fd;
            match &s.role {
                Role::Follower => {}
                Role::Listener => {
                    let n = new_socket(s)?;
                    rebind(s, n.as_raw_fd())?;
                    sys::listen(n.as_raw_fd(), 4096).map_err(sys_err(fd, "listen"))?;
                    reuse_back(s, n.as_raw_fd());
                    self.publish_listener(plan, s, n.as_raw_fd())?;
                    self.new.insert(i, n);
                }
                Role::Plain | Role::BoundDgram => {
                    let n = new_socket(s)?;
                    if s.local.as_ref().is_some_and(Addr::is_bound) {
                        rebind(s, n.as_raw_fd())?;
                        reuse_back(s, n.as_raw_fd());
                    }
                    if let Some(p) = s.peer.as_ref().filter(|_| s.domain != libc::AF_UNIX)
                        && let Err(e) = sys::connect(n.as_raw_fd(), p)
                    {
                        crate::warn!("socket fd {fd}: cannot connect again to {}: {e}", p.key());
                    }
                    self.new.insert(i, n);
                }
                Role::External => {
                    if fd <= 2 && sys::get_fl(fd).is_ok() {
                        // Stdio leading outside: keep what the restart command gave us.
                        continue;
                    }
                    self.new.insert(i, dead_socket(s)?);
                }
                Role::DgramToPath | Role::Backlog { .. } => {
                    self.new.insert(i, new_socket(s)?);
                }
                Role::Pair { peer, conn, active } => {
                    if s.domain == libc::AF_UNIX {
                        if *active {
                            let (a, b) = sys::socketpair(libc::AF_UNIX, s.ty)
                                .map_err(sys_err(fd, "socketpair"))?;
                            self.new.insert(i, a);
                            if *peer == plan.me {
                                self.local_ends.insert(*conn, b);
                            } else {
                                self.to_send.push((*peer, *conn, b));
                            }
                        }
                    } else if *active {
                        self.new.insert(i, new_socket(s)?);
                    } else {
                        self.passive_listener(plan, s.domain)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// One temporary listener per family for this process's passive TCP ends, published as
    /// `port|stack|routable ip`.
    fn passive_listener(&mut self, plan: &Plan, family: i32) -> Result<(), SocketError> {
        if self.listeners.contains_key(&family) {
            return Ok(());
        }
        let any = if family == libc::AF_INET6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let l = sys::socket(family, libc::SOCK_STREAM, 0).map_err(sys_err(-1, "socket"))?;
        let fd = l.as_raw_fd();
        sys::bind(fd, &Addr::from_inet(SocketAddr::new(any, 0))).map_err(sys_err(-1, "bind"))?;
        sys::listen(fd, 4096).map_err(sys_err(-1, "listen"))?;
        let port = sys::local_addr(fd)
            .ok()
            .and_then(|a| a.inet())
            .map_or(0, |a| a.port());
        let value = format!("{port}|{}|{}", self.stack, routable_ip());
        let key = format!("{}:r:ep:{}:{family}", plan.generation, plan.me);
        session::kv(DB, key.as_bytes(), KvOp::Set(value.into_bytes()))?;
        self.listeners.insert(family, l);
        Ok(())
    }

    /// Where connections waiting in this listener's backlog at checkpoint connect again.
    fn publish_listener(&self, plan: &Plan, s: &Sock, fd: RawFd) -> Result<(), SocketError> {
        let (Some(old), Some(now)) = (
            s.local.as_ref().and_then(canonical),
            sys::local_addr(fd).ok().and_then(|a| canonical(&a)),
        ) else {
            return Ok(());
        };
        let ip = if now.ip().is_unspecified() || now.ip().is_loopback() {
            routable_ip()
        } else {
            now.ip()
        };
        let value = format!("{}|{}|{ip}|{}", now.port(), self.stack, now.ip());
        let key = format!("{}:r:lis:{old}", plan.generation);
        session::kv(DB, key.as_bytes(), KvOp::Set(value.into_bytes()))?;
        Ok(())
    }

    /// Where the passive end of a connection (in process `peer`) is reachable now.
    fn endpoint(&self, key: &str, family: i32) -> Result<Addr, SocketError> {
        let v = session::kv(DB, key.as_bytes(), KvOp::Get)?
            .and_then(|v| String::from_utf8(v).ok())
            .ok_or_else(|| {
                SocketError::Protocol(format!("nobody published {key} (not restarted?)"))
            })?;
        let mut parts = v.split('|');
        let port: u16 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let stack = parts.next().unwrap_or_default();
        let ip: IpAddr = parts
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let bound: Option<IpAddr> = parts.next().and_then(|p| p.parse().ok());
        let ip = if stack == self.stack
            && let Some(b) = bound.filter(|b| !b.is_unspecified())
        {
            // Same network stack, a listener bound to one address: that address.
            match (family, b) {
                (libc::AF_INET6, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
                (_, b) => b,
            }
        } else if stack == self.stack {
            // Same network stack: loopback always reaches a wildcard listener.
            if family == libc::AF_INET6 {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            }
        } else {
            match (family, ip) {
                (libc::AF_INET6, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
                (_, ip) => ip,
            }
        };
        Ok(Addr::from_inet(SocketAddr::new(ip, port)))
    }

    /// After the barrier: active TCP ends connect and say which connection they are; UNIX
    /// datagram senders reconnect to their path; socketpair ends go to their process.
    fn connect(&mut self, plan: &Plan) -> Result<(), SocketError> {
        for (i, s) in plan.socks.iter().enumerate() {
            let Some(n) = self.new.get(&i) else { continue };
            let nfd = n.as_raw_fd();
            match &s.role {
                Role::Pair {
                    peer,
                    conn,
                    active: true,
                } if s.domain != libc::AF_UNIX => {
                    let key = format!("{}:r:ep:{peer}:{}", plan.generation, s.domain);
                    let to = self.endpoint(&key, s.domain)?;
                    sys::set_timeouts(nfd, TIMEOUT.as_secs() as i64)
                        .map_err(sys_err(s.fd, "SO_SNDTIMEO"))?;
                    sys::connect(nfd, &to).map_err(sys_err(s.fd, "connect"))?;
                    send_all(nfd, &conn.to_le_bytes()).map_err(sys_err(s.fd, "send id"))?;
                    sys::set_timeouts(nfd, 0).map_err(sys_err(s.fd, "SO_SNDTIMEO"))?;
                }
                Role::Backlog { listener } => {
                    let key = format!("{}:r:lis:{listener}", plan.generation);
                    let to = self.endpoint(&key, s.domain)?;
                    backlog_send(s, nfd, &to)?;
                }
                Role::DgramToPath => {
                    if let Some(p) = &s.peer
                        && let Err(e) = sys::connect(nfd, p)
                    {
                        crate::warn!(
                            "socket fd {}: cannot connect again to {}: {e}",
                            s.fd,
                            p.key()
                        );
                    }
                }
                _ => {}
            }
        }
        if !self.to_send.is_empty() {
            let tx =
                sys::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0).map_err(sys_err(-1, "socket"))?;
            for (to, id, fd) in self.to_send.drain(..) {
                if let Err(e) =
                    sys::send_fd(tx.as_raw_fd(), &handover_name(plan, to), id, fd.as_raw_fd())
                {
                    crate::warn!("cannot hand a socket to process {to}: {e}");
                }
            }
        }
        Ok(())
    }

    /// Passive TCP ends: accept from the temporary listeners until every one has arrived.
    fn accept(&mut self, plan: &Plan) -> Result<(), SocketError> {
        let mut want: HashMap<u64, usize> = HashMap::new();
        for (i, s) in plan.socks.iter().enumerate() {
            if let Role::Pair {
                conn,
                active: false,
                ..
            } = s.role
                && s.domain != libc::AF_UNIX
            {
                want.insert(conn, i);
            }
        }
        let start = Instant::now();
        while !want.is_empty() {
            let left = TIMEOUT.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(SocketError::Protocol(format!(
                    "{} connection(s) were not re-established in {TIMEOUT:?}",
                    want.len()
                )));
            }
            let mut pfds: Vec<libc::pollfd> = self
                .listeners
                .values()
                .map(|l| libc::pollfd {
                    fd: l.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            sys::poll(&mut pfds, left.as_millis().min(1000) as i32).map_err(sys_err(-1, "poll"))?;
            for p in pfds.iter().filter(|p| p.revents != 0) {
                let c = sys::accept(p.fd).map_err(sys_err(-1, "accept"))?;
                sys::set_timeouts(c.as_raw_fd(), TIMEOUT.as_secs() as i64)
                    .map_err(sys_err(-1, "SO_RCVTIMEO"))?;
                let mut id = [0u8; 8];
                recv_all(c.as_raw_fd(), &mut id).map_err(sys_err(-1, "read id"))?;
                sys::set_timeouts(c.as_raw_fd(), 0).map_err(sys_err(-1, "SO_RCVTIMEO"))?;
                match want.remove(&u64::from_le_bytes(id)) {
                    Some(i) => {
                        self.new.insert(i, c);
                    }
                    None => crate::warn!("an unknown connection reached the restart listener"),
                }
            }
        }
        self.listeners.clear();
        Ok(())
    }

    /// Sockets held by several processes: the leader hands its new socket to the others.
    fn hand_over(&self, plan: &Plan) {
        let Ok(tx) = sys::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0) else {
            return;
        };
        for (i, s) in plan.socks.iter().enumerate() {
            let Some(n) = self.new.get(&i) else { continue };
            for &to in &s.others {
                let id = s.ino | FOLLOWER_ID_BIT;
                if let Err(e) =
                    sys::send_fd(tx.as_raw_fd(), &handover_name(plan, to), id, n.as_raw_fd())
                {
                    crate::warn!("socket {}: cannot hand it to process {to}: {e}", s.ino);
                }
            }
        }
    }

    /// Socketpair ends made by another process, and sockets whose leader is another process.
    fn receive(&mut self, plan: &Plan, followers: bool) -> Result<(), SocketError> {
        for (i, s) in plan.socks.iter().enumerate() {
            if let Role::Pair {
                peer,
                conn,
                active: false,
            } = s.role
                && s.domain == libc::AF_UNIX
                && peer == plan.me
                && let Some(end) = self.local_ends.remove(&conn)
            {
                self.new.insert(i, end);
            }
        }
        let waited = |i: usize| match plan.socks[i].role {
            Role::Follower => followers,
            Role::Pair { peer, active, .. } => {
                plan.socks[i].domain == libc::AF_UNIX && !active && peer != plan.me
            }
            _ => false,
        };
        let Some(inbox) = &self.inbox else {
            return Ok(());
        };
        sys::set_timeouts(inbox.as_raw_fd(), TIMEOUT.as_secs() as i64)
            .map_err(sys_err(-1, "SO_RCVTIMEO"))?;
        while (0..plan.socks.len()).any(|i| waited(i) && !self.new.contains_key(&i)) {
            let (id, fd) =
                sys::recv_fd(inbox.as_raw_fd()).map_err(sys_err(-1, "receive a socket"))?;
            let slot = plan.socks.iter().position(|s| match s.role {
                Role::Follower => id == s.ino | FOLLOWER_ID_BIT,
                Role::Pair { conn, .. } => id == conn,
                _ => false,
            });
            match slot {
                Some(i) if !self.new.contains_key(&i) => {
                    self.new.insert(i, fd);
                }
                _ => crate::warn!("received an unexpected socket (id {id:#x})"),
            }
        }
        Ok(())
    }

    /// Every new socket to its fd number (and its dups), with its flags and options.
    fn install(&mut self, plan: &Plan, table: Option<&FdTable>) -> Result<(), SocketError> {
        // The layer's own sockets may sit on saved numbers: close them before those numbers
        // are filled (a later close would close the program's socket).
        self.inbox = None;
        self.listeners.clear();
        self.local_ends.clear();
        // New sockets may sit on saved numbers still to be filled: move them all above.
        let top = table
            .and_then(|t| t.entries.iter().map(|e| e.fd).max())
            .into_iter()
            .chain(plan.socks.iter().map(|s| s.fd))
            .max()
            .unwrap_or(2)
            + 1;
        for n in self.new.values_mut() {
            *n = sys::dup_above(n.as_raw_fd(), top).map_err(sys_err(-1, "F_DUPFD"))?;
        }
        for (i, s) in plan.socks.iter().enumerate() {
            let Some(n) = self.new.remove(&i) else {
                if s.role != Role::External {
                    crate::warn!("socket fd {}: not restored", s.fd);
                }
                continue;
            };
            for w in opts::apply(n.as_raw_fd(), &s.opts, false) {
                crate::warn!("socket fd {}: {w}", s.fd);
            }
            sys::dup3(n.as_raw_fd(), s.fd, s.cloexec).map_err(sys_err(s.fd, "dup3"))?;
            // The echo needs the socket nonblocking; the saved flags are set after it.
            if !drains(s) {
                sys::set_fl(s.fd, s.flags).map_err(sys_err(s.fd, "F_SETFL"))?;
            }
        }
        let Some(table) = table else { return Ok(()) };
        for e in &table.entries {
            if let FdObject::Dup { of } = e.object
                && plan.socks.iter().any(|s| s.fd == of)
                && sys::get_fl(of).is_ok()
            {
                sys::dup3(of, e.fd, e.cloexec).map_err(sys_err(e.fd, "dup3"))?;
            }
        }
        Ok(())
    }
}

/// Connects a new socket to `to`, sends the saved bytes, and puts it at the saved fd number.
fn reconnect_backlog(s: &Sock, to: &Addr) -> Result<(), SocketError> {
    let n = new_socket(s)?;
    backlog_send(s, n.as_raw_fd(), to)?;
    for w in opts::apply(n.as_raw_fd(), &s.opts, false) {
        crate::warn!("socket fd {}: {w}", s.fd);
    }
    sys::dup3(n.as_raw_fd(), s.fd, s.cloexec).map_err(sys_err(s.fd, "dup3"))?;
    sys::set_fl(s.fd, s.flags).map_err(sys_err(s.fd, "F_SETFL"))
}

fn backlog_send(s: &Sock, fd: RawFd, to: &Addr) -> Result<(), SocketError> {
    sys::set_timeouts(fd, TIMEOUT.as_secs() as i64).map_err(sys_err(s.fd, "SO_SNDTIMEO"))?;
    sys::connect(fd, to).map_err(sys_err(s.fd, "connect"))?;
    for c in &s.drained.chunks {
        send_all(fd, c).map_err(sys_err(s.fd, "send"))?;
    }
    sys::set_timeouts(fd, 0).map_err(sys_err(s.fd, "SO_SNDTIMEO"))
}

/// A new socket like the saved one, with the options that must be set before bind.
fn new_socket(s: &Sock) -> Result<OwnedFd, SocketError> {
    let n = sys::socket(s.domain, s.ty, s.protocol).map_err(sys_err(s.fd, "socket"))?;
    for w in opts::apply(n.as_raw_fd(), &s.opts, true) {
        crate::warn!("socket fd {}: {w}", s.fd);
    }
    Ok(n)
}

/// Binds the new socket where the old one was: the same address, else the same port on
/// every interface (another host). `SO_REUSEADDR` stays on; [`reuse_back`] sets the saved
/// value after `listen`, which checks the port again.
fn rebind(s: &Sock, fd: RawFd) -> Result<(), SocketError> {
    let Some(local) = &s.local else { return Ok(()) };
    if let Some(path) = local.unix_file() {
        sys::unlink_stale_socket(path);
        return sys::bind(fd, local).map_err(sys_err(s.fd, "bind"));
    }
    if local.inet().is_none() {
        return sys::bind(fd, local).map_err(sys_err(s.fd, "bind"));
    }
    // The killed process's connections may hold the port in TIME_WAIT.
    let _ = sys::set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
    let mut r = sys::bind(fd, local);
    if let Err(e) = &r
        && e.raw_os_error() == Some(libc::EADDRNOTAVAIL)
        && let Some(w) = local.wildcard()
    {
        crate::warn!(
            "socket fd {}: {} is not here; binding to {}",
            s.fd,
            local.key(),
            w.key()
        );
        r = sys::bind(fd, &w);
    }
    r.map_err(sys_err(s.fd, "bind"))
}

fn reuse_back(s: &Sock, fd: RawFd) {
    let saved = s
        .opts
        .iter()
        .find(|o| o.level == libc::SOL_SOCKET && o.name == libc::SO_REUSEADDR)
        .map(|o| o.value.clone())
        .unwrap_or_else(|| 0i32.to_ne_bytes().to_vec());
    let _ = sys::set_raw(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &saved);
}

/// The stand-in for a connection to a peer outside the computation: a socket of the same
/// kind whose peer is gone. TCP: connected, then reset (read gives ECONNRESET, then 0;
/// write gives EPIPE). UNIX: the other end closed (read gives 0).
fn dead_socket(s: &Sock) -> Result<OwnedFd, SocketError> {
    let fd = s.fd;
    if !s.tcp() {
        if s.domain == libc::AF_UNIX {
            let (a, gone) =
                sys::socketpair(libc::AF_UNIX, s.ty).map_err(sys_err(fd, "socketpair"))?;
            leave_behind(s, gone.as_raw_fd());
            return Ok(a);
        }
        return new_socket(s);
    }
    let lo = if s.domain == libc::AF_INET6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    let l = sys::socket(s.domain, libc::SOCK_STREAM, 0).map_err(sys_err(fd, "socket"))?;
    sys::bind(l.as_raw_fd(), &Addr::from_inet(SocketAddr::new(lo, 0)))
        .map_err(sys_err(fd, "bind"))?;
    sys::listen(l.as_raw_fd(), 1).map_err(sys_err(fd, "listen"))?;
    let at = sys::local_addr(l.as_raw_fd()).map_err(sys_err(fd, "getsockname"))?;
    let c = new_socket(s)?;
    sys::connect(c.as_raw_fd(), &at).map_err(sys_err(fd, "connect"))?;
    let a = sys::accept(l.as_raw_fd()).map_err(sys_err(fd, "accept"))?;
    leave_behind(s, a.as_raw_fd());
    if !s.drained.eof {
        // SO_LINGER {on, 0 s}: close sends a reset (after the bytes left behind).
        let mut linger = 1i32.to_ne_bytes().to_vec();
        linger.extend_from_slice(&0i32.to_ne_bytes());
        sys::set_raw(a.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, &linger)
            .map_err(sys_err(fd, "SO_LINGER"))?;
    }
    drop(a);
    let _ = sys::wait_fd(c.as_raw_fd(), libc::POLLRDHUP, 1000);
    crate::debug!(
        "socket fd {fd}: peer {} is outside the computation; it comes back reset",
        s.peer.as_ref().map(Addr::key).unwrap_or_default()
    );
    Ok(c)
}

/// Writes what the peer had left unread into the stand-in's other end (`to`), before it goes.
fn leave_behind(s: &Sock, to: RawFd) {
    if s.drained.chunks.is_empty() {
        return;
    }
    let _ = sys::set_int(to, libc::SOL_SOCKET, libc::SO_SNDBUF, ECHO_SNDBUF);
    for c in &s.drained.chunks {
        if !matches!(sys::send(to, c, libc::MSG_DONTWAIT), Ok(Some(n)) if n == c.len()) {
            crate::warn!(
                "socket fd {}: some bytes from the outside peer are lost",
                s.fd
            );
            return;
        }
    }
}

fn send_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match sys::send(fd, buf, 0)? {
            Some(n) => buf = &buf[n..],
            None => return Err(io::Error::from(io::ErrorKind::TimedOut)),
        }
    }
    Ok(())
}

fn recv_all(fd: RawFd, buf: &mut [u8]) -> io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        match sys::recv(fd, &mut buf[at..], 0)? {
            Some(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Some(n) => at += n,
            None => return Err(io::Error::from(io::ErrorKind::TimedOut)),
        }
    }
    Ok(())
}
