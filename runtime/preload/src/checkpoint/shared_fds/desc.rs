//! Open file descriptions and ptys shared between processes (everything the fd crate restores
//! except pipes, FIFOs, sockets and epoll instances).
//!
//! Descriptions: every process publishes, per (device, inode), its vpid, its pid and its fds;
//! after the barrier each compares its fds with the other holders' by `kcmp(KCMP_FILE)`. The
//! processes holding one description elect the smallest vpid; it restores the description and
//! the others receive it (SCM_RIGHTS), so offset and status flags stay shared.
//!
//! Ptys: a pty is one object made of a master and a slave that may be in different processes
//! (`script`: master in the parent, slave as the child's terminal). Every holder publishes
//! the pts number; the smallest vpid holding the master leads: its restore makes the new pair,
//! and it sends master and slave to every other holder, which places the master on its master
//! fds and a new description of the slave on its slave fds.

use std::collections::BTreeMap;
use std::os::fd::RawFd;

use dmtcp_fds::Class;
use dmtcp_protocol::KvOp;

use super::{DB, SharedError, sock};
use crate::session;

/// What is handed over, named the same way by the leader and the receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// The description the leader restores at its fd `fd`.
    Desc { leader: i32, fd: RawFd },
    /// The pty whose slave was pts `index` at checkpoint.
    Pty { leader: i32, index: u32 },
}

const TAG_DESC: u32 = 2;
const TAG_PTY: u32 = 3;

impl Key {
    pub fn head(&self) -> sock::ItemHead {
        let (tag, leader, v) = match *self {
            Key::Desc { leader, fd } => (TAG_DESC, leader, fd as u32),
            Key::Pty { leader, index } => (TAG_PTY, leader, index),
        };
        sock::ItemHead {
            tag,
            value: ((leader as u32 as u64) << 32) | v as u64,
        }
    }

    pub fn from_head(h: sock::ItemHead) -> Option<Key> {
        let leader = (h.value >> 32) as u32 as i32;
        let v = h.value as u32;
        match h.tag {
            TAG_DESC => Some(Key::Desc {
                leader,
                fd: v as RawFd,
            }),
            TAG_PTY => Some(Key::Pty { leader, index: v }),
            _ => None,
        }
    }
}

/// This process leads `key` and sends it to `to`.
#[derive(Debug, Clone)]
pub struct Lead {
    pub key: Key,
    pub to: Vec<i32>,
}

/// This process receives `key` for its fds `fds` (dups included).
#[derive(Debug, Clone)]
pub struct Recv {
    pub key: Key,
    pub fds: Vec<RawFd>,
}

/// One fd taking part, as published before the barrier.
#[derive(Debug, Clone)]
pub struct Candidate {
    fd: RawFd,
    group: Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Desc { dev: u64, ino: u64 },
    Pty { index: u32, master: bool },
}

/// The fds of `fds` that may be shared: ptys at any number; other descriptions above 2 (the
/// stdio numbers come from the restart command), or at any number for regular files when
/// stdio is restored (`DMTCP_RESTORE_STDIO=1`).
pub fn candidates(fds: &[RawFd], restore_stdio: bool) -> Result<Vec<Candidate>, SharedError> {
    let mut out = Vec::new();
    for &fd in fds {
        let d = dmtcp_fds::describe(fd)?;
        let group = match d.class {
            Class::PtyMaster => match sock::pty_index(fd) {
                Ok(index) => Group::Pty {
                    index,
                    master: true,
                },
                Err(_) => continue,
            },
            Class::PtySlave => match d
                .link
                .strip_prefix("/dev/pts/")
                .and_then(|n| n.parse().ok())
            {
                Some(index) => Group::Pty {
                    index,
                    master: false,
                },
                None => continue,
            },
            Class::Pipe
            | Class::Fifo
            | Class::Socket
            | Class::Epoll
            | Class::Unsupported { .. } => continue,
            Class::File if fd <= 2 && restore_stdio => Group::Desc {
                dev: d.dev,
                ino: d.ino,
            },
            _ if fd <= 2 => continue,
            _ => Group::Desc {
                dev: d.dev,
                ino: d.ino,
            },
        };
        out.push(Candidate { fd, group });
    }
    Ok(out)
}

fn group_key(generation: u32, g: &Group) -> String {
    match g {
        Group::Desc { dev, ino } => format!("{generation}:d:{dev}:{ino}"),
        Group::Pty { index, .. } => format!("{generation}:t:{index}"),
    }
}

/// Before the barrier: publishes this process's candidates.
pub fn publish(generation: u32, me: i32, pid: i32, cands: &[Candidate]) -> Result<(), SharedError> {
    let mut groups: BTreeMap<String, Vec<&Candidate>> = BTreeMap::new();
    for c in cands {
        groups
            .entry(group_key(generation, &c.group))
            .or_default()
            .push(c);
    }
    // Two round trips in all: the holder counts (each group's index), then the entries.
    let counts = groups
        .keys()
        .map(|key| session::kv_item(DB, key.as_str(), KvOp::IncrBy(1)))
        .collect();
    let idxs = session::kv_batch(counts)?;
    let mut entries = Vec::new();
    for ((key, members), idx) in groups.into_iter().zip(idxs) {
        let idx = session::kv_number(idx)
            .ok_or_else(|| SharedError::Protocol("holder count is not a number".into()))?;
        let mut value = format!("{me} {pid}");
        for c in &members {
            let m = matches!(c.group, Group::Pty { master: true, .. });
            value.push_str(&format!(" {}{}", if m { "m" } else { "" }, c.fd));
        }
        entries.push(session::kv_item(
            DB,
            format!("{key}:{idx}"),
            KvOp::Set(value.into_bytes()),
        ));
        if members
            .iter()
            .any(|c| matches!(c.group, Group::Pty { master: true, .. }))
        {
            entries.push(session::kv_item(
                DB,
                format!("{key}:m"),
                KvOp::Min(me as i64),
            ));
        }
    }
    session::kv_batch(entries)?;
    Ok(())
}

/// Another process's entry of a group.
struct Holder {
    vpid: i32,
    pid: i32,
    /// (fd, is a pty master)
    fds: Vec<(RawFd, bool)>,
}

fn parse_holder(v: &[u8]) -> Option<Holder> {
    let s = std::str::from_utf8(v).ok()?;
    let mut w = s.split(' ');
    let vpid = w.next()?.parse().ok()?;
    let pid = w.next()?.parse().ok()?;
    let fds = w
        .map(|f| match f.strip_prefix('m') {
            Some(n) => n.parse().ok().map(|n| (n, true)),
            None => f.parse().ok().map(|n| (n, false)),
        })
        .collect::<Option<_>>()?;
    Some(Holder { vpid, pid, fds })
}

/// The entries of group `key`, from `pre` (see [`prefetch`]).
fn holders(key: &str, pre: &session::KvPrefetch) -> Result<Vec<Holder>, SharedError> {
    let n = session::kv_number(pre.get(key.as_bytes())?).unwrap_or(0);
    let mut out = Vec::new();
    for i in 1..=n {
        if let Some(v) = pre.get(format!("{key}:{i}").as_bytes())?
            && let Some(h) = parse_holder(&v)
        {
            out.push(h);
        }
    }
    Ok(out)
}

/// After the barrier, in two round trips: every group's count and pty master, then the
/// entries of the groups held by several processes.
fn prefetch<'a>(
    keys: impl Iterator<Item = &'a String> + Clone,
) -> Result<session::KvPrefetch, SharedError> {
    let first = keys
        .clone()
        .flat_map(|k| [k.clone().into_bytes(), format!("{k}:m").into_bytes()])
        .collect();
    let mut pre = session::KvPrefetch::fetch(DB, first)?;
    let mut entries = Vec::new();
    for k in keys {
        let n = session::kv_number(pre.get(k.as_bytes())?).unwrap_or(0);
        for i in (1..=n).filter(|_| n > 1) {
            entries.push(format!("{k}:{i}").into_bytes());
        }
    }
    pre.more(entries)?;
    Ok(pre)
}

/// After the barrier: what this process leads and what it receives.
pub fn resolve(
    generation: u32,
    me: i32,
    pid: i32,
    cands: &[Candidate],
) -> Result<(Vec<Lead>, Vec<Recv>), SharedError> {
    let mut groups: BTreeMap<String, Vec<&Candidate>> = BTreeMap::new();
    for c in cands {
        groups
            .entry(group_key(generation, &c.group))
            .or_default()
            .push(c);
    }
    let mut leads: BTreeMap<Key, Vec<i32>> = BTreeMap::new();
    let mut recvs: BTreeMap<Key, Vec<RawFd>> = BTreeMap::new();
    let pre = prefetch(groups.keys())?;
    for (key, mine) in groups {
        if let Group::Pty { index, .. } = mine[0].group {
            // Checked first: a terminal from outside (no master in the computation, the
            // common case of every process's stdio) needs no holder list.
            let Some(leader) = session::kv_number(pre.get(format!("{key}:m").as_bytes())?) else {
                continue;
            };
            let k = Key::Pty {
                leader: leader as i32,
                index,
            };
            if leader as i32 == me {
                let to: Vec<i32> = holders(&key, &pre)?
                    .into_iter()
                    .map(|h| h.vpid)
                    .filter(|&v| v != me)
                    .collect();
                if !to.is_empty() {
                    leads.entry(k).or_default().extend(to);
                }
            } else {
                recvs
                    .entry(k)
                    .or_default()
                    .extend(mine.iter().map(|c| c.fd));
            }
            continue;
        }
        let others: Vec<Holder> = holders(&key, &pre)?
            .into_iter()
            .filter(|h| h.vpid != me)
            .collect();
        if others.is_empty() {
            continue;
        }
        for c in &mine {
            let sharing: Vec<(i32, RawFd)> = others
                .iter()
                .flat_map(|h| h.fds.iter().map(move |&(fd, _)| (h, fd)))
                .filter(|(h, fd)| sock::same_description(pid, c.fd, h.pid, *fd) == Some(true))
                .map(|(h, fd)| (h.vpid, fd))
                .collect();
            let Some(&(leader, _)) = sharing.iter().min() else {
                continue;
            };
            if leader > me {
                // We lead: name it after our smallest fd of this description.
                let fd = mine
                    .iter()
                    .map(|o| o.fd)
                    .filter(|&o| {
                        o == c.fd || sock::same_description(pid, o, pid, c.fd) == Some(true)
                    })
                    .min()
                    .unwrap_or(c.fd);
                let to = leads.entry(Key::Desc { leader: me, fd }).or_default();
                to.extend(sharing.iter().map(|s| s.0));
            } else {
                let fd = sharing
                    .iter()
                    .filter(|s| s.0 == leader)
                    .map(|s| s.1)
                    .min()
                    .unwrap_or(-1);
                recvs
                    .entry(Key::Desc { leader, fd })
                    .or_default()
                    .push(c.fd);
            }
        }
    }
    let leads = leads
        .into_iter()
        .map(|(key, mut to)| {
            to.sort_unstable();
            to.dedup();
            crate::debug!("shared {key:?}: sent to {to:?} at restart");
            Lead { key, to }
        })
        .collect();
    let recvs = recvs
        .into_iter()
        .map(|(key, mut fds)| {
            fds.sort_unstable();
            fds.dedup();
            crate::debug!("shared {key:?}: received at restart for fds {fds:?}");
            Recv { key, fds }
        })
        .collect();
    Ok((leads, recvs))
}
