//! POSIX message queues (`mq_open`) across checkpoint and restart. A `mqd_t` is a descriptor
//! on the mqueue filesystem; the fd layer leaves those to this module.
//!
//! Checkpoint (every process frozen): for each queue one process of the computation is elected
//! through the coordinator's key-value store (first to increment `mq:<generation>:<inode>`).
//! The leader drains the queue (highest priority first, oldest first within a priority) and
//! sends every message straight back in the same order, so the running program loses nothing
//! and the queue's order is unchanged; it keeps the messages, the attributes and the mode.
//! Restart: the leader recreates the queue under its name (removing a stale one first) with the
//! same attributes and messages before the restart barrier; after the barrier the others open
//! it by name. Each descriptor comes back at its number with its access mode, O_NONBLOCK and
//! close-on-exec flag. `mq_notify` registrations: `notify.rs`.
//!
//! The state lives in a static of this library, saved with the memory.

mod notify;

use crate::session;
use dmtcp_protocol::KvOp;
use std::ffi::CString;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

const MQUEUE_MAGIC: i64 = 0x1980_0202;

#[derive(Debug, Clone)]
struct Queue {
    name: String,
    ino: u64,
    leader: bool,
    mode: u32,
    maxmsg: i64,
    msgsize: i64,
    /// (priority, bytes), in the order they are received.
    messages: Vec<(u32, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy)]
struct Desc {
    fd: i32,
    ino: u64,
    /// Access mode and O_NONBLOCK.
    flags: i32,
    cloexec: bool,
}

struct Saved {
    queues: Vec<Queue>,
    descs: Vec<Desc>,
}

static SAVED: Mutex<Saved> = Mutex::new(Saved {
    queues: Vec::new(),
    descs: Vec::new(),
});

/// Is `fd` a POSIX message queue?
pub fn is_mq(fd: i32) -> bool {
    // SAFETY: fstatfs into a zeroed local.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        libc::fstatfs(fd, &mut s) == 0 && s.f_type == MQUEUE_MAGIC
    }
}

fn mq_fds() -> Vec<i32> {
    dmtcp_fds::list_fds()
        .unwrap_or_default()
        .into_iter()
        .filter(|&fd| is_mq(fd))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum MqError {
    #[error("{0}")]
    Session(#[from] session::SessionError),
    #[error("POSIX message queue {name}: cannot {what}: {err}")]
    Io {
        name: String,
        what: &'static str,
        err: std::io::Error,
    },
}

fn io_err(name: &str, what: &'static str) -> MqError {
    MqError::Io {
        name: name.to_string(),
        what,
        err: std::io::Error::last_os_error(),
    }
}

/// Checkpoint, program frozen, BEFORE the fd election barrier: the owner of a `mq_notify`
/// registration takes its queue's election (see `notify.rs`). Never fails.
pub fn claim_notified(generation: u32) {
    notify::claim(generation);
}

/// Saves every queue the process has open (program frozen, after the fd election barrier).
pub fn capture(generation: u32) -> Result<(), MqError> {
    let mut queues: Vec<Queue> = Vec::new();
    let mut descs = Vec::new();
    for fd in mq_fds() {
        // SAFETY: fstat into a zeroed local; fcntl queries.
        let (st, fl, fdfl) = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            libc::fstat(fd, &mut st);
            (
                st,
                libc::fcntl(fd, libc::F_GETFL),
                libc::fcntl(fd, libc::F_GETFD),
            )
        };
        descs.push(Desc {
            fd,
            ino: st.st_ino,
            flags: fl & (libc::O_ACCMODE | libc::O_NONBLOCK),
            cloexec: fdfl & libc::FD_CLOEXEC != 0,
        });
        if queues.iter().any(|q| q.ino == st.st_ino) {
            continue;
        }
        let name = std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = format!("mq:{generation}:{}", st.st_ino);
        // The owner of a notification took the election before the fd barrier.
        let first = notify::claimed(generation, st.st_ino)
            || session::kv("dmtcp:ipc", key.as_bytes(), KvOp::IncrBy(1))?
                .and_then(|v| String::from_utf8(v).ok())
                .is_some_and(|v| v == "1");
        let mut q = Queue {
            name,
            ino: st.st_ino,
            leader: first,
            mode: st.st_mode & 0o777,
            maxmsg: 0,
            msgsize: 0,
            messages: Vec::new(),
        };
        // SAFETY: mq_getattr into a zeroed local.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::mq_getattr(fd, &mut attr) } != 0 {
            return Err(io_err(&q.name, "read its attributes"));
        }
        q.maxmsg = attr.mq_maxmsg;
        q.msgsize = attr.mq_msgsize;
        if first {
            // Our own registration, if any, must not fire on the refill.
            notify::suspend(st.st_ino);
            let drained = drain_and_refill(fd, &q.name, attr.mq_msgsize as usize);
            notify::resume(st.st_ino);
            q.messages = drained?;
        }
        queues.push(q);
    }
    let mut saved = SAVED.lock().unwrap_or_else(|e| e.into_inner());
    saved.queues = queues;
    saved.descs = descs;
    Ok(())
}

/// Takes every message out (without blocking) and puts them back in the same order.
fn drain_and_refill(fd: i32, name: &str, size: usize) -> Result<Vec<(u32, Vec<u8>)>, MqError> {
    // A descriptor of our own in non-blocking read-write mode, whatever the program's is.
    let path = format!("/proc/self/fd/{fd}");
    let own = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|err| MqError::Io {
            name: name.to_string(),
            what: "reopen it",
            err,
        })?;
    let q = std::os::fd::AsRawFd::as_raw_fd(&own);
    let mut out = Vec::new();
    let mut buf = vec![0u8; size.max(1)];
    loop {
        let mut prio = 0u32;
        // SAFETY: receives into a buffer of the queue's message size.
        let n = unsafe { libc::mq_receive(q, buf.as_mut_ptr().cast(), buf.len(), &mut prio) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) {
                break;
            }
            return Err(io_err(name, "read its messages"));
        }
        out.push((prio, buf[..n as usize].to_vec()));
    }
    for (prio, m) in &out {
        // SAFETY: sends bytes we own; the queue had room for them a moment ago.
        if unsafe { libc::mq_send(q, m.as_ptr().cast(), m.len(), *prio) } != 0 {
            return Err(io_err(name, "put its messages back"));
        }
    }
    Ok(out)
}

fn cname(name: &str) -> CString {
    CString::new(name).unwrap_or_default()
}

/// Opens queue `q` by name with a description's flags and puts it at the description's fd.
fn place(q: &Queue, d: &Desc) -> Result<(), MqError> {
    let n = cname(&q.name);
    // SAFETY: mq_open of an existing queue.
    let fd = unsafe { libc::mq_open(n.as_ptr(), d.flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io_err(&q.name, "open it again"));
    }
    if fd != d.fd {
        let cloexec = if d.cloexec { libc::O_CLOEXEC } else { 0 };
        // SAFETY: moving our new descriptor onto its saved number.
        let r = unsafe { libc::dup3(fd, d.fd, cloexec) };
        // SAFETY: closing the temporary.
        unsafe { libc::close(fd) };
        if r < 0 {
            return Err(io_err(&q.name, "place its descriptor"));
        }
    } else if !d.cloexec {
        // SAFETY: clearing FD_CLOEXEC on our own descriptor.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    Ok(())
}

/// Restart, before the barrier: the leader of each queue recreates it with its messages and
/// every description of it in this process.
pub fn restore_leading() -> Result<(), MqError> {
    notify::restore_helper();
    let saved = SAVED.lock().unwrap_or_else(|e| e.into_inner());
    for q in saved.queues.iter().filter(|q| q.leader) {
        let n = cname(&q.name);
        // SAFETY: removing a stale queue of that name (ENOENT is fine).
        unsafe { libc::mq_unlink(n.as_ptr()) };
        // SAFETY: zeroed attr then the saved limits.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        attr.mq_maxmsg = q.maxmsg;
        attr.mq_msgsize = q.msgsize;
        // SAFETY: mq_open with O_CREAT reads mode and attr.
        let fd = unsafe {
            libc::mq_open(
                n.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC,
                q.mode as libc::mode_t,
                &mut attr as *mut libc::mq_attr,
            )
        };
        if fd < 0 {
            return Err(io_err(&q.name, "create it again"));
        }
        for (prio, m) in &q.messages {
            // SAFETY: sends bytes we own into the fresh queue, sized like the old one.
            if unsafe { libc::mq_send(fd, m.as_ptr().cast(), m.len(), *prio) } != 0 {
                // SAFETY: closing our descriptor.
                unsafe { libc::close(fd) };
                return Err(io_err(&q.name, "refill it"));
            }
        }
        // SAFETY: closing our temporary descriptor.
        unsafe { libc::close(fd) };
        for d in saved.descs.iter().filter(|d| d.ino == q.ino) {
            place(q, d)?;
        }
        // The owner of a registration is its queue's leader: before anyone can send.
        notify::restore(q.ino);
    }
    Ok(())
}

/// Restart, after the barrier (every leader has recreated its queues): the other processes
/// open the queues by name.
pub fn restore_following() -> Result<(), MqError> {
    let saved = SAVED.lock().unwrap_or_else(|e| e.into_inner());
    for q in saved.queues.iter().filter(|q| !q.leader) {
        for d in saved.descs.iter().filter(|d| d.ino == q.ino) {
            place(q, d)?;
        }
        // Only when the owner lost the election (warned at checkpoint).
        notify::restore(q.ino);
    }
    Ok(())
}
