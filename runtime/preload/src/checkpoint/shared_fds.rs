//! File descriptors shared by several processes of the computation come back shared.
//!
//! - Pipes and FIFOs (`fork` after `pipe`, `popen`, `a | b`): one pipe connecting the same
//!   processes, with the bytes in flight delivered once. At checkpoint ([`elect`], on the
//!   checkpoint thread while the program is frozen) every process publishes the pipe and FIFO
//!   inodes it holds in the coordinator's key-value store (db `dmtcp:pipes`, keys per
//!   generation): a holder count, the holders' virtual pids, and the smallest vpid among
//!   holders of a readable end (the leader; the smallest holder when nobody reads). After the
//!   global barrier `DMT:PIPES` everyone is frozen, so the leader alone drains and saves the
//!   data; the others pass the inode in `SaveOptions::skip_drain`.
//! - Other open file descriptions (regular files with their offset, eventfds, ...) and ptys
//!   (a master and its slave in different processes): see [`desc`]. They are published and
//!   resolved around the same barrier.
//!
//! The result, the [`Plan`], lives in a static and so comes back with the memory at restart.
//! At restart ([`rejoin`], before any program thread runs) the leaders' fd restore recreates
//! the objects; every other holder binds an abstract unix datagram socket named after the
//! computation, generation and its vpid, all meet at `DMT:PIPES_RESTART`, the leaders send
//! what they lead with SCM_RIGHTS, and each receiver `dup3`s it onto its saved fd numbers,
//! replacing the unconnected pipe its own restore made (other kinds are not restored by the
//! receivers at all: `RestoreOptions::handed_over`). FIFOs need no hand-over (they are
//! reopened by path); only their data goes through the leader. Last, the controlling terminal
//! is taken back ([`terminal`]).

mod desc;
mod sock;
mod terminal;

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dmtcp_fds::{Class, FdObject, FdTable, OrphanPipeEnd};
use dmtcp_protocol::KvOp;

use crate::session::{self, SessionError};

const DB: &str = "dmtcp:pipes";
/// Image section, present (empty) when fd 0 was the process's controlling terminal and that
/// terminal came from outside the computation (read by dmtcp_restart's tree.rs).
pub const TERMINAL_SECTION: &str = "terminal";
/// Seconds a receiver waits for the leader's ends.
const RECV_TIMEOUT_S: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("{0}")]
    Session(#[from] SessionError),
    #[error("cannot list the fds: {0}")]
    Fds(#[from] dmtcp_fds::FdError),
    #[error("shared fd hand-over: {op}: {source}")]
    Sys {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("shared fd hand-over: {0}")]
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
    leads: Vec<desc::Lead>,
    recvs: Vec<desc::Recv>,
    terminal: Option<terminal::Saved>,
}

static PLAN: Mutex<Option<Plan>> = Mutex::new(None);

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

/// What this process must not save because another process saves it.
#[derive(Debug, Default)]
pub struct NotMine {
    /// Pipe and FIFO inodes (their data).
    pub pipes: Vec<u64>,
    /// pts numbers of ptys led elsewhere (their bytes in flight).
    pub ptys: Vec<u32>,
}

/// Checkpoint side: elects a leader for every pipe/FIFO, description and pty held by several
/// processes and returns what this process must not save. Every process of the computation calls
/// it (or [`elect_absent`]) once per checkpoint, while frozen.
pub fn elect(generation: u32, fds: &[RawFd]) -> Result<NotMine, SharedError> {
    let (me, comp) = session::own_ids();
    // The real pid (kcmp's), not the virtual one `getpid` gives under virtual ids.
    let pid = dmtcp_restorer::sys::getpid();
    let restore_stdio = !dmtcp_fds::RestoreOptions::from_env().inherit_all_stdio;
    let found = pipes_held(fds).and_then(|h| Ok((h, desc::candidates(fds, restore_stdio)?)));
    let (held, cands) = match found {
        Ok(h) => h,
        Err(e) => {
            // The others wait for us at the barrier; meet them, then fail this checkpoint.
            elect_absent()?;
            return Err(e);
        }
    };
    let key = |what: &str, ino: u64| format!("{generation}:{what}:{ino}");
    // Two round trips for all pipes: the holder counts (each holder's index), then the rest.
    let counts = held
        .keys()
        .map(|&ino| session::kv_item(DB, key("n", ino), KvOp::IncrBy(1)))
        .collect();
    let idxs = session::kv_batch(counts)?;
    let mut publish = Vec::new();
    for ((&ino, &(_, readable)), idx) in held.iter().zip(idxs) {
        let idx = session::kv_number(idx)
            .ok_or_else(|| SharedError::Protocol("holder count is not a number".into()))?;
        let me_s = me.to_string().into_bytes();
        let h = format!("{generation}:h:{ino}:{idx}");
        publish.push(session::kv_item(DB, h, KvOp::Set(me_s)));
        publish.push(session::kv_item(DB, key("any", ino), KvOp::Min(me as i64)));
        if readable {
            publish.push(session::kv_item(DB, key("rd", ino), KvOp::Min(me as i64)));
        }
    }
    session::kv_batch(publish)?;
    desc::publish(generation, me, pid, &cands)?;
    session::barrier("DMT:PIPES")?;
    let (leads, recvs) = desc::resolve(generation, me, pid, &cands)?;
    // Two round trips: counts and leaders of every pipe, then the holders of the shared ones.
    let first = held
        .keys()
        .flat_map(|&ino| ["n", "rd", "any"].map(|w| key(w, ino).into_bytes()))
        .collect();
    let mut pre = session::KvPrefetch::fetch(DB, first)?;
    let mut entries = Vec::new();
    for &ino in held.keys() {
        let n = session::kv_number(pre.get(key("n", ino).as_bytes())?).unwrap_or(0);
        for i in (1..=n).filter(|_| n > 1) {
            entries.push(format!("{generation}:h:{ino}:{i}").into_bytes());
        }
    }
    pre.more(entries)?;
    let mut shared = Vec::new();
    for (&ino, &(fifo, _)) in &held {
        let n = session::kv_number(pre.get(key("n", ino).as_bytes())?).unwrap_or(0);
        if n < 2 {
            continue;
        }
        let leader = match session::kv_number(pre.get(key("rd", ino).as_bytes())?) {
            Some(v) => v,
            None => session::kv_number(pre.get(key("any", ino).as_bytes())?).unwrap_or(me as i64),
        } as i32;
        let mut others = Vec::new();
        if leader == me && !fifo {
            for i in 1..=n {
                let k = format!("{generation}:h:{ino}:{i}");
                if let Some(v) = session::kv_number(pre.get(k.as_bytes())?)
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
    let skip = NotMine {
        pipes: shared
            .iter()
            .filter(|s| s.leader != me)
            .map(|s| s.inode)
            .collect(),
        ptys: recvs
            .iter()
            .filter_map(|r| match r.key {
                desc::Key::Pty { index, .. } => Some(index),
                desc::Key::Desc { .. } => None,
            })
            .collect(),
    };
    let terminal = terminal::capture();
    // A terminal from outside the computation (not a pty some process of it leads): tell
    // dmtcp_restart, which decides the session before the memory is back.
    let fd0_pts = std::fs::read_link("/proc/self/fd/0")
        .ok()
        .and_then(|p| p.to_str()?.strip_prefix("/dev/pts/")?.parse::<u32>().ok());
    let pty_index = |k: &desc::Key| match *k {
        desc::Key::Pty { index, .. } => Some(index),
        desc::Key::Desc { .. } => None,
    };
    let inner = fd0_pts.is_some_and(|n| {
        recvs.iter().any(|r| pty_index(&r.key) == Some(n))
            || leads.iter().any(|l| pty_index(&l.key) == Some(n))
    });
    if terminal.is_some()
        && !inner
        && let Some(job) = super::JOB
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
    {
        job.sections
            .push((TERMINAL_SECTION.to_string(), Vec::new()));
    }
    *PLAN.lock().unwrap_or_else(|e| e.into_inner()) = Some(Plan {
        comp,
        generation,
        me,
        shared,
        leads,
        recvs,
        terminal,
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

/// Restart side, before the fd restore: the fds another process restores and hands over.
pub fn handed_over_fds() -> Vec<RawFd> {
    PLAN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|p| p.recvs.iter().flat_map(|r| r.fds.iter().copied()).collect())
        .unwrap_or_default()
}

const TAG_PIPE: u32 = 1;

/// Something a receiver waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Wanted {
    Pipe(u64),
    Other(desc::Key),
}

/// Restart side, after the fd restore: hands the leaders' pipes, descriptions and ptys to the
/// other holders and installs the received ones, then takes back the controlling terminal.
/// Every restarted process calls it once (global barrier).
pub fn rejoin(table: Option<&FdTable>, orphans: Vec<OrphanPipeEnd>) -> Result<(), SharedError> {
    let plan = PLAN.lock().unwrap_or_else(|e| e.into_inner()).take();
    let mut wanted: BTreeSet<Wanted> = BTreeSet::new();
    if let Some(p) = &plan {
        let pipes = p.shared.iter().filter(|s| !s.fifo && s.leader != p.me);
        wanted.extend(pipes.map(|s| Wanted::Pipe(s.inode)));
        wanted.extend(p.recvs.iter().map(|r| Wanted::Other(r.key)));
    }
    let name = |p: &Plan, vpid: i32| format!("dmtcp-pipes-{}-{}-{vpid}", p.comp, p.generation);
    // Every fd made here stays above the table, whose handed-over numbers are still free.
    let above = table
        .map_or(0, |t| t.entries.iter().map(|e| e.fd + 1).max().unwrap_or(0))
        .max(3);
    let rx = match &plan {
        Some(p) if !wanted.is_empty() => {
            let s = sock::bind(&name(p, p.me)).map_err(sys_err("bind"))?;
            Some(sock::lift(s, above).map_err(sys_err("F_DUPFD"))?)
        }
        _ => None,
    };
    session::barrier("DMT:PIPES_RESTART")?;
    let (Some(plan), Some(table)) = (&plan, table) else {
        return Ok(());
    };
    // Held open until sent: new slave descriptions made for the receivers.
    let mut keep: Vec<OwnedFd> = Vec::new();
    // The restore made orphan pipe ends while the handed-over numbers were free.
    let orphans = orphans
        .into_iter()
        .map(|o| {
            Ok(OrphanPipeEnd {
                fd: sock::lift(o.fd, above)?,
                ..o
            })
        })
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(sys_err("F_DUPFD"))?;
    let mut out: BTreeMap<i32, sock::Outgoing> = BTreeMap::new();
    for s in plan
        .shared
        .iter()
        .filter(|s| !s.fifo && s.leader == plan.me)
    {
        let (r, w) = leader_ends(table, &orphans, s.inode)?;
        let head = sock::ItemHead {
            tag: TAG_PIPE,
            value: s.inode,
        };
        for &to in &s.others {
            out.entry(to).or_default().push((head, vec![r, w]));
        }
    }
    for l in &plan.leads {
        let fds = match l.key {
            desc::Key::Desc { fd, .. } => vec![fd],
            desc::Key::Pty { index, .. } => {
                let master = pty_master(table, index)?;
                match sock::open_peer(master) {
                    Ok(slave) => {
                        let slave = sock::lift(slave, above).map_err(sys_err("F_DUPFD"))?;
                        let fds = vec![master, slave.as_raw_fd()];
                        keep.push(slave);
                        fds
                    }
                    // Still locked (unlockpt never called): nobody can hold its slave; the
                    // master stands in for it so the message keeps its shape.
                    Err(_) => vec![master, master],
                }
            }
        };
        for &to in &l.to {
            out.entry(to).or_default().push((l.key.head(), fds.clone()));
        }
    }
    let tx = sock::unbound().map_err(sys_err("socket"))?;
    let tx = sock::lift(tx, above).map_err(sys_err("F_DUPFD"))?;
    let mut queue: Vec<(i32, sock::Outgoing)> = Vec::new();
    for (to, items) in out {
        let mut msg = Vec::new();
        let mut n = 0;
        for it in items {
            if n + it.1.len() > sock::MAX_FDS {
                queue.push((to, std::mem::take(&mut msg)));
                n = 0;
            }
            n += it.1.len();
            msg.push(it);
        }
        queue.push((to, msg));
    }
    // Sends and receives interleaved without blocking: a full receive queue on one side must
    // not stop that side from emptying its own.
    let deadline = Instant::now() + Duration::from_secs(RECV_TIMEOUT_S as u64);
    while !queue.is_empty() || !wanted.is_empty() {
        let mut progress = false;
        let mut i = 0;
        while i < queue.len() {
            let (to, items) = &queue[i];
            match sock::send(tx.as_raw_fd(), &name(plan, *to), items) {
                Ok(false) => i += 1,
                Ok(true) => {
                    queue.remove(i);
                    progress = true;
                }
                Err(e) => {
                    // A holder whose image was left out of the restart: it lives on without.
                    crate::warn!("cannot hand shared fds to process {to}: {e}");
                    queue.remove(i);
                }
            }
        }
        if let Some(rx) = &rx
            && let Some(items) = sock::try_recv(rx.as_raw_fd()).map_err(sys_err("receive"))?
        {
            progress = true;
            for (head, fds) in items {
                let fds = fds
                    .into_iter()
                    .map(|f| sock::lift(f, above))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sys_err("F_DUPFD"))?;
                let w = if head.tag == TAG_PIPE {
                    Wanted::Pipe(head.value)
                } else {
                    match desc::Key::from_head(head) {
                        Some(k) => Wanted::Other(k),
                        None => return Err(SharedError::Protocol(format!("bad item {head:?}"))),
                    }
                };
                if !wanted.remove(&w) {
                    return Err(SharedError::Protocol(format!("unexpected {w:?}")));
                }
                crate::debug!("received {w:?}: {} fds", fds.len());
                install_item(table, plan, w, &fds)?;
            }
        }
        if !progress {
            if Instant::now() > deadline {
                return Err(SharedError::Protocol(format!(
                    "gave up waiting for {wanted:?} (sends pending: {})",
                    queue.len()
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    drop(keep);
    drop(orphans);
    if let Some(t) = &plan.terminal {
        terminal::acquire(t);
        terminal::settle(t);
    }
    Ok(())
}

fn install_item(
    table: &FdTable,
    plan: &Plan,
    w: Wanted,
    fds: &[OwnedFd],
) -> Result<(), SharedError> {
    match (w, fds) {
        (Wanted::Pipe(inode), [r, w]) => install(table, inode, r, w),
        (Wanted::Other(key), received) => {
            let mine = plan
                .recvs
                .iter()
                .find(|r| r.key == key)
                .map(|r| r.fds.as_slice())
                .unwrap_or_default();
            match (key, received) {
                (desc::Key::Desc { .. }, [d]) => install_desc(table, mine, d),
                (desc::Key::Pty { .. }, [m, s]) => install_pty(table, mine, m, s),
                _ => Err(SharedError::Protocol(format!(
                    "{key:?}: wrong number of fds"
                ))),
            }
        }
        _ => Err(SharedError::Protocol(format!("{w:?}: wrong number of fds"))),
    }
}

fn cloexec_of(table: &FdTable, fd: RawFd) -> bool {
    table.get(fd).is_some_and(|e| e.cloexec)
}

/// One description at all the receiver's fds that held it (dups included).
fn install_desc(table: &FdTable, fds: &[RawFd], d: &OwnedFd) -> Result<(), SharedError> {
    for &fd in fds {
        sock::dup3(d.as_raw_fd(), fd, cloexec_of(table, fd)).map_err(sys_err("dup3"))?;
    }
    Ok(())
}

/// The new pty: the master at the receiver's master fds, a new description of the slave for
/// each of its slave descriptions (with its saved flags), then their dups.
fn install_pty(
    table: &FdTable,
    fds: &[RawFd],
    master: &OwnedFd,
    slave: &OwnedFd,
) -> Result<(), SharedError> {
    for &fd in fds {
        let Some(e) = table.get(fd) else { continue };
        match &e.object {
            FdObject::PtyMaster(_) => {
                sock::dup3(master.as_raw_fd(), fd, e.cloexec).map_err(sys_err("dup3"))?
            }
            FdObject::PtySlave(s) => {
                let flags = (s.flags & !(libc::O_CREAT | libc::O_TRUNC)) | libc::O_NOCTTY;
                let new = sock::reopen(slave.as_raw_fd(), flags).map_err(sys_err("open pts"))?;
                sock::dup3(new.as_raw_fd(), fd, e.cloexec).map_err(sys_err("dup3"))?;
            }
            _ => {}
        }
    }
    for &fd in fds {
        if let Some(e) = table.get(fd)
            && let FdObject::Dup { of } = e.object
        {
            sock::dup3(of, fd, e.cloexec).map_err(sys_err("dup3"))?;
        }
    }
    Ok(())
}

/// The leader's restored master of the pty that was pts `index`.
fn pty_master(table: &FdTable, index: u32) -> Result<RawFd, SharedError> {
    table
        .entries
        .iter()
        .find_map(|e| match &e.object {
            FdObject::PtyMaster(m) if m.index == index => Some(e.fd),
            _ => None,
        })
        .ok_or_else(|| SharedError::Protocol(format!("pty {index}: the leader has no master")))
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
