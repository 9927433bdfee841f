//! This process's membership in the computation: its identity and its coordinator connection,
//! kept at the protected fd `COORD_FD` so it survives `exec` and can be replaced at restart.

use crate::raw_lock::RawLock;
use crate::settings::{COORD_FD, Settings};
use dmtcp_protocol::frame::{self, FrameError};
use dmtcp_protocol::{
    Assignment, ClientError, Connection, CoordMsg, KvBatchRequest, KvItem, KvOp, KvRequest, Role,
    UniquePid, WorkerHello, WorkerMsg,
};
use std::io::{self, Read, Write};
use std::os::fd::IntoRawFd;
use std::sync::Mutex;
use std::time::Duration;

/// Serialises frames written by different threads (the checkpoint thread, and user threads
/// asking for a checkpoint).
static WRITE_LOCK: RawLock = RawLock::new();

/// The identity of this process, set at join, after exec and after restart.
pub static IDENTITY: Mutex<Option<Assignment>> = Mutex::new(None);

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("lost the coordinator connection: {0}")]
    Frame(#[from] FrameError),
    #[error("the coordinator gave up on this process: {0}")]
    Fatal(String),
    #[error("the coordinator asked this process to exit")]
    Killed,
}

/// Reads and writes the coordinator fd without owning it.
pub struct CoordFd;

impl Read for CoordFd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: reading into a valid buffer from our protected fd.
            let n = unsafe { libc::read(COORD_FD, buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Write for CoordFd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: writing a valid buffer to our protected fd; MSG_NOSIGNAL avoids SIGPIPE
            // reaching the program when the coordinator is gone.
            let n =
                unsafe { libc::send(COORD_FD, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn progname() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

/// Joins the coordinator as a new process (launched, forked or spawned by a member).
pub fn join(settings: &Settings, parent: Option<UniquePid>) -> Result<Assignment, ClientError> {
    let hello = WorkerHello {
        hostname: dmtcp_protocol::ids::hostname(),
        progname: progname(),
        // The kernel's ids, by raw system calls: libc's getpid/getppid and syscall() are our
        // virtual-id wrappers.
        real_pid: dmtcp_restorer::sys::getpid(),
        real_ppid: dmtcp_restorer::sys::getppid(),
        parent,
        interval: settings.interval,
    };
    let (host, port) =
        crate::runtime::coordinator().unwrap_or((settings.coord_host.clone(), settings.coord_port));
    let (conn, assignment) = Connection::open(
        &host,
        port,
        Role::Worker(hello),
        Some(Duration::from_secs(30)),
    )?;
    let _ = conn.stream.set_read_timeout(None);
    adopt_fd(conn.stream.into_raw_fd());
    let assignment = assignment.expect("the coordinator assigns an identity to workers");
    *IDENTITY.lock().unwrap_or_else(|e| e.into_inner()) = Some(assignment.clone());
    Ok(assignment)
}

/// Moves a connected socket to `COORD_FD` (close-on-exec; the exec wrapper clears it).
pub fn adopt_fd(fd: i32) {
    if fd != COORD_FD {
        // SAFETY: dup3 onto our reserved number, then close the temporary descriptor.
        unsafe {
            libc::dup3(fd, COORD_FD, libc::O_CLOEXEC);
            libc::close(fd);
        }
    }
}

/// Is `COORD_FD` an open socket (inherited across exec)?
pub fn coord_fd_is_open() -> bool {
    // SAFETY: fstat into a local buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstat(COORD_FD, &mut st) } == 0)
        && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
}

pub fn close_coord_fd() {
    // SAFETY: closing our own reserved descriptor.
    unsafe { libc::close(COORD_FD) };
}

pub fn send(msg: &WorkerMsg) -> Result<(), FrameError> {
    WRITE_LOCK.lock();
    let r = frame::write_frame(&mut CoordFd, msg);
    WRITE_LOCK.unlock();
    r
}

/// In the child of `fork`: the parent's writer may have held the lock.
pub fn reset_locks_in_child() {
    WRITE_LOCK.force_unlock();
    DEFERRED.lock.force_unlock();
    // An order meant for the parent is not the child's.
    let _ = take_deferred();
}

pub fn recv() -> Result<CoordMsg, FrameError> {
    frame::read_frame(&mut CoordFd)
}

/// Waits until `COORD_FD` has data (or is closed), without consuming anything.
/// Retries after a signal: returning early would make the caller block in `recv` while holding
/// the checkpoint thread's gate, and an `exec` of the program would then wait forever.
pub fn wait_readable() {
    loop {
        let mut pfd = libc::pollfd {
            fd: COORD_FD,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, -1) };
        if n != 0 && !(n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted) {
            return;
        }
    }
}

/// A checkpoint order that arrived while the checkpoint thread waited for a reply (a plugin's
/// key-value request at init, say); the thread handles it next instead of losing it.
struct Deferred {
    lock: RawLock,
    order: core::cell::UnsafeCell<Option<dmtcp_protocol::CheckpointOrder>>,
}

// SAFETY: `order` is only accessed with `lock` held.
unsafe impl Sync for Deferred {}

static DEFERRED: Deferred = Deferred {
    lock: RawLock::new(),
    order: core::cell::UnsafeCell::new(None),
};

fn defer(msg: CoordMsg, waiting_for: &str) {
    match msg {
        CoordMsg::DoCheckpoint(order) => {
            DEFERRED.lock.lock();
            // SAFETY: the lock is held.
            unsafe { *DEFERRED.order.get() = Some(order) };
            DEFERRED.lock.unlock();
        }
        other => crate::debug!("ignoring {other:?} while waiting for {waiting_for}"),
    }
}

/// The checkpoint order deferred by [`barrier`] or [`kv`], if any.
pub fn take_deferred() -> Option<dmtcp_protocol::CheckpointOrder> {
    DEFERRED.lock.lock();
    // SAFETY: the lock is held.
    let order = unsafe { (*DEFERRED.order.get()).take() };
    DEFERRED.lock.unlock();
    order
}

/// Arrives at the named global barrier and waits for its release; returns the peer count.
/// Only the checkpoint thread reads the connection, so it may call this.
pub fn barrier(name: &str) -> Result<u32, SessionError> {
    send(&WorkerMsg::Barrier {
        name: name.to_string(),
    })?;
    loop {
        match recv()? {
            CoordMsg::BarrierReleased { name: n, num_peers } if n == name => return Ok(num_peers),
            CoordMsg::Fatal { message } => return Err(SessionError::Fatal(message)),
            CoordMsg::Kill => return Err(SessionError::Killed),
            other => defer(other, name),
        }
    }
}

/// This process's virtual pid and computation id (its real pid and "" before it joined).
pub fn own_ids() -> (i32, String) {
    let id = IDENTITY.lock().unwrap_or_else(|e| e.into_inner());
    match id.as_ref() {
        Some(a) => (a.virtual_pid, a.comp_id.to_string()),
        // SAFETY: a plain query of our pid.
        None => (unsafe { libc::getpid() }, String::new()),
    }
}

/// A key-value answer holding a decimal number.
pub fn kv_number(v: Option<Vec<u8>>) -> Option<i64> {
    v.and_then(|v| String::from_utf8(v).ok())
        .and_then(|s| s.parse().ok())
}

static KV_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// One key-value request, answered in order (checkpoint thread only, like `barrier`).
pub fn kv(db: &str, key: &[u8], op: KvOp) -> Result<Option<Vec<u8>>, SessionError> {
    let id = KV_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    send(&WorkerMsg::Kv(KvRequest {
        id,
        db: db.into(),
        key: key.into(),
        op,
    }))?;
    loop {
        match recv()? {
            CoordMsg::Kv(r) if r.id == id => {
                return r.result.map_err(|e| SessionError::Fatal(e.to_string()));
            }
            CoordMsg::Fatal { message } => return Err(SessionError::Fatal(message)),
            CoordMsg::Kill => return Err(SessionError::Killed),
            other => defer(other, "a key-value reply"),
        }
    }
}

/// Most operations per batch request (keeps a frame far below `MAX_FRAME`).
const KV_BATCH_MAX: usize = 4096;

/// Many key-value operations in one round trip per [`KV_BATCH_MAX`] (checkpoint thread only,
/// like [`kv`]): the results in the order of `items`. The coordinator applies the operations
/// of one request in order, with no other request in between.
pub fn kv_batch(items: Vec<KvItem>) -> Result<Vec<Option<Vec<u8>>>, SessionError> {
    let mut out = Vec::with_capacity(items.len());
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let chunk: Vec<KvItem> = items.by_ref().take(KV_BATCH_MAX).collect();
        let n = chunk.len();
        let id = KV_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        send(&WorkerMsg::KvBatch(KvBatchRequest { id, items: chunk }))?;
        let results = loop {
            match recv()? {
                CoordMsg::KvBatch(r) if r.id == id => break r.results,
                CoordMsg::Fatal { message } => return Err(SessionError::Fatal(message)),
                CoordMsg::Kill => return Err(SessionError::Killed),
                other => defer(other, "a key-value batch reply"),
            }
        };
        if results.len() != n {
            return Err(SessionError::Fatal(format!(
                "key-value batch: {} results for {n} operations",
                results.len()
            )));
        }
        for r in results {
            out.push(r.map_err(|e| SessionError::Fatal(e.to_string()))?);
        }
    }
    Ok(out)
}

/// A [`KvItem`] of database `db`.
pub fn kv_item(db: &str, key: impl Into<Vec<u8>>, op: KvOp) -> KvItem {
    KvItem {
        db: db.into(),
        key: key.into(),
        op,
    }
}

/// Values read in one [`kv_batch`] round trip, for lookups after a barrier (when the values no
/// longer change). A key that was not fetched is read with [`kv`].
pub struct KvPrefetch {
    db: String,
    values: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl KvPrefetch {
    pub fn fetch(db: &str, keys: Vec<Vec<u8>>) -> Result<Self, SessionError> {
        let items = keys
            .iter()
            .map(|k| kv_item(db, k.clone(), KvOp::Get))
            .collect();
        let values = keys.into_iter().zip(kv_batch(items)?).collect();
        Ok(Self {
            db: db.into(),
            values,
        })
    }

    /// Fetches `keys` too, in one more round trip.
    pub fn more(&mut self, keys: Vec<Vec<u8>>) -> Result<(), SessionError> {
        let items = keys
            .iter()
            .map(|k| kv_item(&self.db, k.clone(), KvOp::Get))
            .collect();
        self.values.extend(keys.into_iter().zip(kv_batch(items)?));
        Ok(())
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SessionError> {
        match self.values.get(key) {
            Some(v) => Ok(v.clone()),
            None => kv(&self.db, key, KvOp::Get),
        }
    }
}
