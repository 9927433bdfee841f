//! The fd table: every fd's saved state, and the ordered save and restore of all of them.

use std::collections::{HashMap, HashSet};
use std::os::fd::RawFd;

use serde::{Deserialize, Serialize};

use crate::classify::Class;
use crate::error::{FdError, Result};
use crate::install::{RestoreCtx, RestoreOptions, RestoreReport};
use crate::kinds::{epoll, eventfd, file, inotify, memfd, pipe, pty, signalfd, socket, timerfd};
use crate::scan::{FdDesc, describe, list_fds};
use crate::{SaveOptions, sys};

/// What one fd number refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FdObject {
    /// Shares the open file description (offset, flags) of an earlier fd of the table.
    Dup {
        of: RawFd,
    },
    File(file::State),
    Dir(file::by_path::State),
    Device(file::by_path::State),
    PathOnly(file::by_path::State),
    Pipe(pipe::State),
    Fifo(pipe::fifo::State),
    EventFd(eventfd::State),
    TimerFd(timerfd::State),
    SignalFd(signalfd::State),
    Epoll(epoll::State),
    Inotify(inotify::State),
    Memfd(memfd::State),
    PtyMaster(pty::MasterState),
    PtySlave(pty::SlaveState),
    /// Recognised; saved and restored by the socket layer.
    Socket(socket::State),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdEntry {
    pub fd: RawFd,
    pub cloexec: bool,
    pub object: FdObject,
}

/// The saved fds of one process, ascending by number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdTable {
    pub entries: Vec<FdEntry>,
}

impl FdTable {
    /// The postcard encoding stored in the image's fd section.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("an fd table always serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<FdTable, postcard::Error> {
        postcard::from_bytes(bytes)
    }

    pub fn get(&self, fd: RawFd) -> Option<&FdEntry> {
        self.entries.iter().find(|e| e.fd == fd)
    }
}

/// Saves every fd of the process except the runtime's protected ones.
pub fn save_all(opts: &SaveOptions) -> Result<FdTable> {
    save_fds(&list_fds()?, opts)
}

/// Saves the given fds (ascending, all open). Dups and pipe ends are matched within this set.
pub fn save_fds(fds: &[RawFd], opts: &SaveOptions) -> Result<FdTable> {
    let descs: Vec<FdDesc> = fds.iter().map(|&fd| describe(fd)).collect::<Result<_>>()?;
    // Refuse before touching anything (draining pipes changes nothing visible, but a failed
    // checkpoint should not have done work).
    if let Some(d) = descs
        .iter()
        .find(|d| matches!(d.class, Class::Unsupported { .. }))
    {
        let Class::Unsupported { what, hint } = &d.class else {
            unreachable!()
        };
        return Err(FdError::Unsupported {
            fd: d.fd,
            what: what.clone(),
            hint: hint.clone(),
        });
    }
    let mut opts = opts.clone();
    if opts.inotify_search_roots.is_empty()
        && let Ok(cwd) = std::env::current_dir()
        && let Some(cwd) = cwd.to_str()
    {
        opts.inotify_search_roots.push(cwd.to_string());
    }
    let mut primaries: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    let mut drained = pipe::Drained::new();
    let mut memfds = HashSet::new();
    let mut entries = Vec::with_capacity(descs.len());
    for (i, d) in descs.iter().enumerate() {
        let same = primaries.entry((d.dev, d.ino)).or_default();
        let mut dup_of = None;
        for &p in same.iter() {
            if shares_description(&descs[p], d)? {
                dup_of = Some(descs[p].fd);
                break;
            }
        }
        let object = match dup_of {
            Some(of) => FdObject::Dup { of },
            None => {
                same.push(i);
                save_one(d, &opts, &mut drained, &mut memfds)?
            }
        };
        entries.push(FdEntry {
            fd: d.fd,
            cloexec: d.cloexec,
            object,
        });
    }
    link_pipe_peers(&mut entries);
    Ok(FdTable { entries })
}

/// kcmp(KCMP_FILE) when the kernel has it; otherwise same inode, offset and flags (never for
/// anonymous inodes, which all eventfds, timerfds, ... share).
fn shares_description(a: &FdDesc, b: &FdDesc) -> Result<bool> {
    match sys::same_file_description(a.fd, b.fd).map_err(FdError::sys(b.fd, "kcmp"))? {
        Some(same) => Ok(same),
        None => Ok(!a.link.starts_with("anon_inode:")
            && a.info.pos == b.info.pos
            && a.flags() == b.flags()),
    }
}

fn save_one(
    d: &FdDesc,
    opts: &SaveOptions,
    drained: &mut pipe::Drained,
    memfds: &mut HashSet<u64>,
) -> Result<FdObject> {
    Ok(match &d.class {
        Class::File => FdObject::File(file::save(d, opts)?),
        Class::Dir => FdObject::Dir(file::by_path::save(d)?),
        Class::Device => FdObject::Device(file::by_path::save(d)?),
        Class::PathOnly => FdObject::PathOnly(file::by_path::save(d)?),
        Class::Pipe => FdObject::Pipe(pipe::save(d, drained, opts)?),
        Class::Fifo => FdObject::Fifo(pipe::fifo::save(d, drained, opts)?),
        Class::EventFd => FdObject::EventFd(eventfd::save(d)?),
        Class::TimerFd => FdObject::TimerFd(timerfd::save(d)?),
        Class::SignalFd => FdObject::SignalFd(signalfd::save(d)?),
        Class::Epoll => FdObject::Epoll(epoll::save(d)?),
        Class::Inotify => FdObject::Inotify(inotify::save(d, opts)?),
        Class::Memfd => FdObject::Memfd(memfd::save(d, memfds)?),
        Class::PtyMaster => FdObject::PtyMaster(pty::save_master(d, opts)?),
        Class::PtySlave => FdObject::PtySlave(pty::save_slave(d)?),
        Class::Socket => FdObject::Socket(socket::save(d)?),
        Class::Unsupported { what, hint } => {
            return Err(FdError::Unsupported {
                fd: d.fd,
                what: what.clone(),
                hint: hint.clone(),
            });
        }
    })
}

/// Marks pipes whose both ends are in the table as in-process.
fn link_pipe_peers(entries: &mut [FdEntry]) {
    let mut ends: HashSet<(u64, bool)> = HashSet::new();
    for e in entries.iter() {
        if let FdObject::Pipe(p) = &e.object {
            ends.insert((p.inode, p.write_end));
            // A read-write description (reopened through /proc) is both ends.
            if p.flags & libc::O_ACCMODE == libc::O_RDWR {
                ends.insert((p.inode, !p.write_end));
            }
        }
    }
    for e in entries.iter_mut() {
        if let FdObject::Pipe(p) = &mut e.object
            && ends.contains(&(p.inode, !p.write_end))
        {
            p.peer = pipe::Peer::InProcess;
        }
    }
}

/// Whether restore leaves this fd to someone else, and who.
enum Skip {
    Socket,
    Inherited,
    HandedOver,
}

fn skip_reason(e: &FdEntry, table: &FdTable, opts: &RestoreOptions) -> Option<Skip> {
    if opts.handed_over.contains(&e.fd) {
        return Some(Skip::HandedOver);
    }
    if let FdObject::Pipe(p) = &e.object
        && opts.shared_pipes.contains(&p.inode)
    {
        return None;
    }
    let stdio = opts.inherit_stdio && (0..=2).contains(&e.fd);
    if opts.inherit_all_stdio && (0..=2).contains(&e.fd) && !matches!(e.object, FdObject::Socket(_))
    {
        return Some(Skip::Inherited);
    }
    match &e.object {
        FdObject::Socket(_) => Some(Skip::Socket),
        FdObject::Pipe(p) if stdio && p.peer == pipe::Peer::External => Some(Skip::Inherited),
        FdObject::PtySlave(s) if stdio => {
            let master_here = table
                .entries
                .iter()
                .any(|m| matches!(&m.object, FdObject::PtyMaster(ms) if ms.index == s.index));
            (!master_here).then_some(Skip::Inherited)
        }
        FdObject::Device(d) if stdio && is_terminal_device(&d.path) => Some(Skip::Inherited),
        _ => None,
    }
}

fn is_terminal_device(path: &str) -> bool {
    path.starts_with("/dev/tty") || path == "/dev/console"
}

/// Checks the table's own consistency before anything is created.
fn validate(table: &FdTable) -> Result<()> {
    let mut seen = HashSet::new();
    for e in &table.entries {
        if e.fd < 0 || !seen.insert(e.fd) {
            return Err(FdError::Inconsistent {
                fd: e.fd,
                why: "fd listed twice or negative".into(),
            });
        }
        if let FdObject::Dup { of } = e.object {
            let target = table.get(of).map(|t| &t.object);
            if of >= e.fd || matches!(target, None | Some(FdObject::Dup { .. })) {
                return Err(FdError::Inconsistent {
                    fd: e.fd,
                    why: format!("dup of fd {of}, which is not an earlier non-dup entry"),
                });
            }
        }
    }
    Ok(())
}

/// Recreates every fd of the table at its number. The numbers should be free (anything open
/// there is replaced). Order: plain objects, pipes per pipe, pty slaves after their masters,
/// epoll instances, dups, then epoll registrations, which need all their targets.
pub fn restore_all(table: &FdTable, opts: &RestoreOptions) -> Result<RestoreReport> {
    validate(table)?;
    let max_fd = table.entries.iter().map(|e| e.fd).max().unwrap_or(0);
    let mut ctx = RestoreCtx::new(opts, (max_fd + 1).max(3));
    let mut skipped: HashSet<RawFd> = HashSet::new();
    for e in &table.entries {
        match skip_reason(e, table, opts) {
            Some(Skip::Socket) => ctx.report.sockets.push(e.fd),
            Some(Skip::Inherited) => ctx.report.inherited.push(e.fd),
            Some(Skip::HandedOver) => ctx.report.handed_over.push(e.fd),
            None => continue,
        }
        skipped.insert(e.fd);
    }
    let live = || table.entries.iter().filter(|e| !skipped.contains(&e.fd));

    let mut pipes_done = HashSet::new();
    for e in live() {
        let (fd, cx) = (e.fd, e.cloexec);
        match &e.object {
            FdObject::File(s) => file::restore(s, fd, cx, &mut ctx)?,
            FdObject::Dir(s) | FdObject::Device(s) | FdObject::PathOnly(s) => {
                file::by_path::restore(s, fd, cx, &mut ctx)?
            }
            FdObject::Pipe(p) => {
                if pipes_done.insert(p.inode) {
                    let ends: Vec<pipe::End> = live()
                        .filter_map(|o| match &o.object {
                            FdObject::Pipe(q) if q.inode == p.inode => Some((o.fd, o.cloexec, q)),
                            _ => None,
                        })
                        .collect();
                    pipe::restore_group(&ends, &mut ctx)?;
                }
            }
            FdObject::Fifo(s) => pipe::fifo::restore(s, fd, cx, &mut ctx)?,
            FdObject::EventFd(s) => eventfd::restore(s, fd, cx, &mut ctx)?,
            FdObject::TimerFd(s) => timerfd::restore(s, fd, cx, &mut ctx)?,
            FdObject::SignalFd(s) => signalfd::restore(s, fd, cx, &mut ctx)?,
            FdObject::Inotify(s) => inotify::restore(s, fd, cx, &mut ctx)?,
            FdObject::Memfd(s) => memfd::restore(s, fd, cx, &mut ctx)?,
            FdObject::PtyMaster(s) => pty::restore_master(s, fd, cx, &mut ctx)?,
            FdObject::PtySlave(_) | FdObject::Epoll(_) | FdObject::Dup { .. } => {}
            FdObject::Socket(_) => unreachable!("sockets are skipped"),
        }
    }
    for e in live() {
        match &e.object {
            FdObject::PtySlave(s) => pty::restore_slave(s, e.fd, e.cloexec, &mut ctx)?,
            FdObject::Epoll(s) => epoll::create(s, e.fd, e.cloexec, &mut ctx)?,
            _ => {}
        }
    }
    for e in &table.entries {
        let FdObject::Dup { of } = e.object else {
            continue;
        };
        if ctx.report.sockets.contains(&of) {
            // The socket layer owns the original and makes its dups too.
            ctx.report.sockets.push(e.fd);
            continue;
        }
        if opts.handed_over.contains(&of) {
            // Made by the cross-process layer once the original arrives.
            ctx.report.handed_over.push(e.fd);
            continue;
        }
        if skipped.contains(&of) && !sys::is_open(of) {
            ctx.report.inherited.push(e.fd);
            continue;
        }
        let flags = if e.cloexec { libc::O_CLOEXEC } else { 0 };
        sys::dup3(of, e.fd, flags).map_err(FdError::sys(e.fd, "dup3"))?;
    }
    let sockets = ctx.report.sockets.clone();
    for e in live() {
        if let FdObject::Epoll(s) = &e.object {
            epoll::register(s, e.fd, &sockets, &mut ctx)?;
        }
    }
    Ok(ctx.report)
}

/// One line per entry, for `dmtcp_inspect` and logs.
impl std::fmt::Display for FdEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ce = if self.cloexec { " cloexec" } else { "" };
        write!(f, "fd {}{ce}: ", self.fd)?;
        match &self.object {
            FdObject::Dup { of } => write!(f, "dup of fd {of}"),
            FdObject::File(s) => {
                let del = if s.deleted { " (deleted)" } else { "" };
                let saved = s
                    .contents
                    .as_ref()
                    .map(|c| format!(", {} bytes saved", c.len()));
                write!(
                    f,
                    "file {}{del}, flags {:#o}, offset {}{}",
                    s.path,
                    s.flags,
                    s.offset,
                    saved.unwrap_or_default()
                )
            }
            FdObject::Dir(s) => write!(f, "directory {}, position {}", s.path, s.offset),
            FdObject::Device(s) => write!(f, "device {}, flags {:#o}", s.path, s.flags),
            FdObject::PathOnly(s) => write!(f, "O_PATH {}", s.path),
            FdObject::Pipe(s) => write!(
                f,
                "pipe {} {} end, {:?} peer, capacity {}, {} bytes in flight",
                s.inode,
                if s.write_end { "write" } else { "read" },
                s.peer,
                s.capacity,
                s.data.len()
            ),
            FdObject::Fifo(s) => write!(f, "FIFO {}, {} bytes in flight", s.path, s.data.len()),
            FdObject::EventFd(s) => {
                write!(
                    f,
                    "eventfd count {}{}",
                    s.count,
                    if s.semaphore { " semaphore" } else { "" }
                )
            }
            FdObject::TimerFd(s) => write!(
                f,
                "timerfd clock {}, remaining {}.{:09}s, interval {}.{:09}s, {} ticks",
                s.clockid, s.remaining.0, s.remaining.1, s.interval.0, s.interval.1, s.ticks
            ),
            FdObject::SignalFd(s) => write!(f, "signalfd mask {:#x}", s.mask),
            FdObject::Epoll(s) => {
                let t: Vec<String> = s.targets.iter().map(|t| t.fd.to_string()).collect();
                write!(f, "epoll watching fds [{}]", t.join(", "))
            }
            FdObject::Inotify(s) => write!(f, "inotify with {} watches", s.watches.len()),
            FdObject::Memfd(s) => write!(
                f,
                "memfd {:?}, size {}, seals {:#x}",
                s.name, s.size, s.seals
            ),
            FdObject::PtyMaster(s) => write!(
                f,
                "pty master (was pts {}), {} bytes to the slave, {} to the master in flight",
                s.index,
                s.to_slave.len(),
                s.to_master.len()
            ),
            FdObject::PtySlave(s) => write!(f, "pty slave {}", s.path),
            FdObject::Socket(s) => write!(
                f,
                "socket {} (domain {}, type {}), restored by the socket layer",
                s.inode, s.domain, s.kind
            ),
        }
    }
}
