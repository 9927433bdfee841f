//! Carrying out one checkpoint order, and coming back from a restart.
//!
//! The checkpoint path, top to bottom ([`run`]): freeze every program thread with the checkpoint
//! signal (`threads`), capture process-wide state (`process`), then signal ourselves: our own
//! handler records our signal frame like everyone else's and writes the image (`write`), so the
//! image holds a frame for every thread, this one included. Then report to the coordinator and
//! release the threads.
//!
//! The restart path: `dmtcp_restart` and the restorer rebuild the address space and enter
//! `restart::dmtcp_restart_entry`, which recreates every thread; this thread comes back out of
//! its self-signal with `restart::RESTARTED` set and finishes the restart in [`after_restart`].
//!
//! Contract with the rest of the runtime:
//! - take `ckpt_lock::acquire_exclusive()` before freezing anyone (waits for
//!   `dmtcp_disable_ckpt` sections and fork/exec wrappers) and `release_exclusive()` on resume;
//! - report outcomes to the program's API: `api::note_checkpoint_done(generation, image)`,
//!   `api::note_checkpoint_failed()`, and after a restart `api::note_restart(generation)`.

mod compress;
mod dirty;
mod fds;
mod forked;
mod incremental;
mod layout;
pub(crate) mod lazy_wait;
mod maps;
mod parallel_hash;
mod pending_info;
mod posix_mq;
mod posix_timers;
mod process;
pub mod restart;
mod shared_fds;
mod shared_snapshot;
mod sigwrap;
mod sockets;
pub(crate) mod sysv;
pub(crate) mod threads;
mod worker_clones;
mod write;
mod zombies;

use crate::plugin::{self, Event};
use crate::session::{self, SessionError};
use crate::{api, ckpt_lock, runtime};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use dmtcp_protocol::{
    Assignment, CheckpointOrder, CkptPhases, CoordMsg, KvOp, WorkerMsg, WorkerState,
};
use dmtcp_restorer::sys;
use std::sync::Mutex;

/// Seconds a thread may take to answer the checkpoint signal (`DMTCP_FREEZE_TIMEOUT`).
const FREEZE_TIMEOUT_S: u64 = 30;
static FREEZE_TIMEOUT: AtomicUsize = AtomicUsize::new(FREEZE_TIMEOUT_S as usize);

static READY: AtomicBool = AtomicBool::new(false);
/// 1 while a checkpoint is under way (its image may still be written by the forked child).
static IN_CHECKPOINT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
static CKPT_SIGNAL: AtomicUsize = AtomicUsize::new(0);

/// The writer's input and output, handed to and from our own signal handler.
static JOB: Mutex<Option<write::Job>> = Mutex::new(None);
static RESULT: Mutex<Option<Result<write::Written, write::WriteError>>> = Mutex::new(None);
/// This checkpoint writes from a forked child (set per order), and that child's pid.
static FORK_THIS: AtomicBool = AtomicBool::new(false);
static WRITER_PID: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(0);
/// A checkpoint directory given to `dmtcp_restart --ckptdir`, which wins afterwards.
static DIR_OVERRIDE: Mutex<Option<String>> = Mutex::new(None);

/// Prepares checkpointing in a new process (library constructor, after joining): reserves the
/// restorer hole, installs the checkpoint signal's handler and learns glibc's layout.
/// Without it checkpoints fail with a clear reason and the program runs on.
pub fn init(ckpt_signal: i32) {
    CKPT_SIGNAL.store(ckpt_signal as usize, Ordering::Release);
    if let Some(t) = std::env::var("DMTCP_FREEZE_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        FREEZE_TIMEOUT.store(t, Ordering::Relaxed);
    }
    sigwrap::set_hidden_signal(ckpt_signal);
    if !layout::reserve_hole() {
        crate::warn!(
            "the address range {:#x}+{:#x} is taken; checkpoints are disabled",
            dmtcp_restorer::abi::HOLE_START,
            dmtcp_restorer::abi::HOLE_LEN
        );
        return;
    }
    learn_glibc_layout();
    // SAFETY: installing our handler for the reserved signal with every signal blocked
    // while it runs; SA_RESTART keeps the program's interrupted system calls going.
    let ok = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = threads::on_signal as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigfillset(&mut sa.sa_mask);
        sigwrap::real_sigaction(ckpt_signal, &sa, std::ptr::null_mut()) == 0
    };
    if !ok {
        crate::warn!(
            "cannot install the handler of signal {ckpt_signal}; checkpoints are disabled"
        );
        return;
    }
    threads::ON_CKPT_FRAME.store(write_from_handler as *const () as usize, Ordering::Release);
    // SAFETY: registering a plain extern "C" function.
    unsafe { libc::atexit(finish_checkpoint_before_exit) };
    forked::init();
    READY.store(true, Ordering::Release);
}

/// The checkpoint thread takes none of the program's signals (a process-directed signal that
/// every program thread blocks must wait for the program, not run its handler here). It
/// keeps the checkpoint signal (its own self-signal) and glibc's internal SIGCANCEL and
/// SIGSETXID, without which `setuid` in a threaded program would hang.
pub fn mask_checkpoint_thread() {
    let sig = CKPT_SIGNAL.load(Ordering::Acquire) as i32;
    // SAFETY: building a sigset and setting this thread's mask with a raw rt_sigprocmask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for keep in [sig, 32, 33] {
            if keep > 0 {
                libc::sigdelset(&mut set, keep);
            }
        }
        sys::syscall4(
            sys::SYS_RT_SIGPROCMASK,
            libc::SIG_SETMASK as usize,
            &set as *const _ as usize,
            0,
            8,
        );
    }
}

unsafe extern "C" {
    static __rseq_offset: isize;
    static __rseq_size: u32;
}

fn learn_glibc_layout() {
    // SAFETY: glibc >= 2.35 exports both as constants set at start-up.
    let (off, size) = unsafe { (__rseq_offset, __rseq_size) };
    threads::RSEQ_OFFSET.store(off as i64, Ordering::Relaxed);
    threads::RSEQ_SIZE.store(size, Ordering::Relaxed);
    let fs = sys::get_fs();
    let word = (fs + threads::PTHREAD_TID_OFFSET) as *const i32;
    // SAFETY: the thread descriptor is at least that large on every glibc we run on; the value
    // is only trusted if it equals our tid.
    let ok = fs != 0 && unsafe { word.read_volatile() } == sys::gettid();
    threads::TID_OFFSET_OK.store(ok, Ordering::Relaxed);
    if !ok {
        crate::warn!("unknown glibc thread layout; after restart pthread_join may hang");
    }
}

#[derive(Debug, thiserror::Error)]
enum CkptError {
    #[error("checkpointing is not available in this process (see the warning at start-up)")]
    NotReady,
    #[error("{0}")]
    Freeze(#[from] threads::FreezeError),
    #[error("{0}")]
    Write(#[from] write::WriteError),
    #[error("the image writer did not run")]
    NoResult,
    #[error("{0}")]
    Fds(String),
    #[error("{0}")]
    Forked(String),
    #[error("cannot rename the image into place: {0}")]
    Commit(String),
    #[error(
        "{0} other process(es) of the computation could not write their image; this one is discarded so the previous checkpoint stays whole"
    )]
    Others(u64),
}

pub fn run(order: &CheckpointOrder) -> Result<(), SessionError> {
    crate::debug!("checkpoint generation {} requested", order.generation);
    IN_CHECKPOINT.store(1, Ordering::Release);
    plugin::dispatch_checkpoint(Event::PreSuspend, order.generation);
    ckpt_lock::acquire_exclusive();
    let r = checkpoint(order);
    ckpt_lock::release_exclusive();
    IN_CHECKPOINT.store(0, Ordering::Release);
    sys::futex_wake_all(&IN_CHECKPOINT);
    // The program runs and the image is reported: now wait for the writer's exit.
    forked::reap_writer();
    r
}

/// `exit` while a forked child still writes this process's image: wait (up to a minute) for
/// the checkpoint to complete, or the generation would lose this process.
extern "C" fn finish_checkpoint_before_exit() {
    if !runtime::is_original_pid() {
        return;
    }
    for _ in 0..600 {
        if IN_CHECKPOINT.load(Ordering::Acquire) == 0 {
            return;
        }
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        // SAFETY: a timed futex wait on a static word.
        unsafe {
            sys::syscall4(
                sys::SYS_FUTEX,
                IN_CHECKPOINT.as_ptr() as usize,
                sys::FUTEX_WAIT_PRIVATE,
                1,
                &ts as *const libc::timespec as usize,
            )
        };
    }
}

fn checkpoint(order: &CheckpointOrder) -> Result<(), SessionError> {
    // Pages a lazy restart has not loaded yet would be saved as holes.
    lazy_wait::wait_loaded();
    session::send(&WorkerMsg::State(WorkerState::Checkpointing))?;
    if !READY.load(Ordering::Acquire) {
        shared_fds::elect_absent()?;
        sockets::absent()?;
        return vote_and_report(order, CkptError::NotReady);
    }
    let sig = CKPT_SIGNAL.load(Ordering::Acquire) as i32;
    *JOB.lock().unwrap_or_else(|e| e.into_inner()) = Some(prepare(order));
    let t_start = write::now_ns();
    if let Err(e) = threads::freeze_all(sig, FREEZE_TIMEOUT.load(Ordering::Relaxed) as u64) {
        sockets::resume();
        threads::release_all();
        shared_fds::elect_absent()?;
        sockets::absent()?;
        return vote_and_report(order, e.into());
    }
    // From here until release, no allocation through the program's malloc, no dlsym, no stdio.
    let t_frozen = write::now_ns();
    plugin::dispatch_checkpoint(Event::PreCheckpoint, order.generation);
    if let Some(job) = JOB.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        job.sections = plugin::sections_to_save();
        job.sections.extend(crate::vids::sync::image_section());
        job.sections.push((
            dmtcp_restorer::abi::ZOMBIES_SECTION.to_string(),
            zombies::capture(),
        ));
    }
    let outcome = frozen_window(order, sig);
    if restart::RESTARTED.load(Ordering::Acquire) {
        return after_restart();
    }
    let written = match outcome {
        Ok(Outcome::Written(w)) => match settle(order, Ok(w)) {
            Ok(Ok(w)) => w,
            Ok(Err(e)) => {
                plugin::dispatch_checkpoint(Event::Resume, order.generation);
                sockets::resume();
                threads::release_all();
                return report_failure(e);
            }
            Err(e) => {
                sockets::resume();
                threads::release_all();
                return Err(e);
            }
        },
        Ok(Outcome::Forked(pid)) => {
            // The child has its snapshot: the program runs on while it writes, once every
            // process has its own (shared memory would change under the slower ones).
            if let Err(e) = snapshot_barrier(order) {
                plugin::dispatch_checkpoint(Event::Resume, order.generation);
                sockets::resume();
                threads::release_all();
                // The coordinator is gone: delete what the writer wrote once it is done (it
                // only reports the file's name when it has written it).
                if let Ok(w) = forked::wait(pid, |_, _| {}) {
                    write::discard(&w);
                }
                return Err(e);
            }
            let t_resume = write::now_ns();
            plugin::dispatch_checkpoint(Event::Resume, order.generation);
            sockets::resume();
            threads::release_all();
            let resumed = write::now_ns() - t_resume;
            // The coordinator sums every process's progress for `dmtcp_command -bc`.
            let progress = |done, total| {
                let _ = session::send(&WorkerMsg::CkptProgress { done, total });
            };
            let waited = forked::wait(pid, progress).map_err(CkptError::Forked);
            let written = settle(order, waited)?;
            return match written {
                Ok(w) => {
                    let p = phases(t_start, t_frozen, &w, resumed);
                    session::send(&WorkerMsg::CkptPhases(p))?;
                    session::send(&WorkerMsg::CkptWritten {
                        image: w.path.clone(),
                        bytes: w.bytes,
                    })?;
                    api::note_checkpoint_done(order.generation, &w.path);
                    session::send(&WorkerMsg::State(WorkerState::Running))?;
                    Ok(())
                }
                Err(e) => report_failure(e),
            };
        }
        Err(e) => {
            // Take part in the vote anyway, so the others do not wait for us.
            let e = match settle(order, Err(e)) {
                Ok(Err(e)) => e,
                Ok(Ok(_)) => CkptError::NoResult,
                Err(s) => {
                    sockets::resume();
                    threads::release_all();
                    return Err(s);
                }
            };
            plugin::dispatch_checkpoint(Event::Resume, order.generation);
            sockets::resume();
            threads::release_all();
            return report_failure(e);
        }
    };
    // In-process: the threads are still frozen, so the resume time is not known yet (0).
    let p = phases(t_start, t_frozen, &written, 0);
    let sent = session::send(&WorkerMsg::CkptPhases(p)).and_then(|()| {
        session::send(&WorkerMsg::CkptWritten {
            image: written.path.clone(),
            bytes: written.bytes,
        })
    });
    if sent.is_ok() && order.kill_after {
        // The computation ends after this checkpoint: do not let the program run past it.
        wait_for_kill();
    }
    plugin::dispatch_checkpoint(Event::Resume, order.generation);
    sockets::resume();
    threads::release_all();
    sent?;
    api::note_checkpoint_done(order.generation, &written.path);
    session::send(&WorkerMsg::State(WorkerState::Running))?;
    Ok(())
}

/// All or nothing: every process reports whether its image is written (failures counted in
/// the coordinator's key-value store), then all meet at a barrier; images are renamed into
/// place only when nobody failed, so the previous generation stays whole otherwise.
fn settle(
    order: &CheckpointOrder,
    mine: Result<write::Written, CkptError>,
) -> Result<Result<write::Written, CkptError>, SessionError> {
    let failed = match vote(order, mine.is_err()) {
        Ok(n) => n,
        Err(e) => {
            // No generation completes without the coordinator: the image would stay a
            // `.part` of the checkpoint's size next to the previous, complete one.
            if let Ok(w) = &mine {
                write::discard(w);
            }
            return Err(e);
        }
    };
    Ok(match mine {
        Ok(w) if failed == 0 => match write::commit(&w) {
            Ok(()) => Ok(w),
            Err(e) => Err(CkptError::Commit(e.to_string())),
        },
        Ok(w) => {
            write::discard(&w);
            Err(CkptError::Others(failed))
        }
        Err(e) => Err(e),
    })
}

/// This process's part of the all-or-nothing vote: how many processes failed to write.
fn vote(order: &CheckpointOrder, failed_here: bool) -> Result<u64, SessionError> {
    snapshot_barrier(order)?;
    let key = format!("failed:{}", order.generation);
    if failed_here {
        session::kv("dmtcp:ckpt", key.as_bytes(), KvOp::IncrBy(1))?;
    }
    session::barrier("DMT:WRITTEN")?;
    Ok(
        session::kv_number(session::kv("dmtcp:ckpt", key.as_bytes(), KvOp::Get)?).unwrap_or(0)
            as u64,
    )
}

/// Every process has its snapshot (a forked writer holds it, or the image is written): no
/// one resumes before, so shared memory is saved as it was at the freeze. Met once per
/// checkpoint on every path, before `DMT:WRITTEN`.
fn snapshot_barrier(order: &CheckpointOrder) -> Result<(), SessionError> {
    static MET: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    if MET.swap(order.generation, Ordering::AcqRel) == order.generation {
        return Ok(());
    }
    session::barrier("DMT:SNAPSHOT").map(drop)
}

/// When the writer started (the end of the drain phase), set in our signal handler.
static DRAINED_NS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// This process's checkpoint phases (see `dmtcp_protocol::CkptPhases`); `resumed` in ns.
fn phases(start: u64, frozen: u64, w: &write::Written, resumed: u64) -> CkptPhases {
    let drained = DRAINED_NS.load(Ordering::Acquire).max(frozen);
    CkptPhases {
        suspend_us: frozen.saturating_sub(start) / 1000,
        drain_us: (drained - frozen) / 1000,
        write_us: w.write_ns / 1000,
        sync_us: w.sync_ns / 1000,
        resume_us: resumed / 1000,
    }
}

enum Outcome {
    Written(write::Written),
    /// A forked child is writing the image.
    Forked(i32),
}

/// Captures the frozen process and writes its image (through our own signal frame).
fn frozen_window(order: &CheckpointOrder, sig: i32) -> Result<Outcome, CkptError> {
    process::capture();
    // Before the fd election's barrier: an mq_notify owner takes its queue's election.
    posix_mq::claim_notified(order.generation);
    fds::capture(order.generation).map_err(|e| CkptError::Fds(e.to_string()))?;
    // Pending signals only after the fd election's barrier: by then every process is frozen,
    // so a signal a peer sent just before it froze is already queued here (read earlier, it
    // would be missing from the image and lost at restart).
    pending_info::capture(sig);
    process::capture_shared_pending(sig);
    capture_thread_pending(sig);
    // After the fd election's barrier every process is frozen: IPC objects hold still.
    capture_ipc(order.generation)?;
    // With --kcheckpoint the program must not run past its image: write in-process.
    FORK_THIS.store(
        !order.kill_after && forked_writes_enabled(),
        Ordering::Release,
    );
    WRITER_PID.store(0, Ordering::Release);
    *RESULT.lock().unwrap_or_else(|e| e.into_inner()) = None;
    threads::tgkill(sys::gettid(), sig);
    // After a restart we arrive here again, from the restored signal frame.
    if restart::RESTARTED.load(Ordering::Acquire) {
        return Err(CkptError::NoResult);
    }
    let pid = WRITER_PID.load(Ordering::Acquire);
    if pid > 0 {
        return Ok(Outcome::Forked(pid));
    }
    RESULT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or(CkptError::NoResult)?
        .map(Outcome::Written)
        .map_err(Into::into)
}

/// POSIX timers and message queues (kept in memory) and SysV IPC objects (an image section of
/// their own).
fn capture_ipc(generation: u32) -> Result<(), CkptError> {
    posix_timers::capture();
    posix_mq::capture(generation).map_err(|e| CkptError::Fds(e.to_string()))?;
    let maps = maps::read_self().unwrap_or_default();
    if let Some(bytes) = sysv::capture(&maps)
        && let Some(job) = JOB.lock().unwrap_or_else(|e| e.into_inner()).as_mut()
    {
        job.sections
            .push((dmtcp_image::sysv_ipc::SYSV_IPC_SECTION.to_string(), bytes));
    }
    Ok(())
}

/// `DMTCP_FORKED_CHECKPOINT=0` writes images in-process (the program waits for the write).
fn forked_writes_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("DMTCP_FORKED_CHECKPOINT").map_or(true, |v| v != "0"))
}

/// Runs inside our own checkpoint-signal handler, after it recorded our frame.
fn write_from_handler() {
    let job = JOB.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(job) = job else { return };
    if FORK_THIS.load(Ordering::Acquire)
        && let Some(pid) = forked::spawn(&job)
    {
        // The clone (the page-table copy) counts as drain: the program is still frozen.
        DRAINED_NS.store(write::now_ns(), Ordering::Release);
        WRITER_PID.store(pid, Ordering::Release);
        return;
    }
    DRAINED_NS.store(write::now_ns(), Ordering::Release);
    crate::HEAP.defer_unmaps(true);
    let result = write::write_image(&job, None);
    *RESULT.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
    crate::HEAP.defer_unmaps(false);
}

/// Per-thread pending signals, which the handler cannot see without consuming them.
fn capture_thread_pending(sig: i32) {
    for i in 0..threads::COUNT.load(Ordering::Acquire) {
        // SAFETY: the program is frozen; the slots are ours to update.
        let r = unsafe { threads::slot(i) };
        if !r.frozen {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/self/task/{}/status", r.tid))
            .unwrap_or_default();
        r.pending = process::pending_from_status(&status, "SigPnd:") & !(1u64 << (sig - 1));
    }
}

fn prepare(order: &CheckpointOrder) -> write::Job {
    let settings = runtime::settings();
    let identity_lock = session::IDENTITY.lock().unwrap_or_else(|e| e.into_inner());
    let assignment: Option<Assignment> = identity_lock.clone();
    drop(identity_lock);
    let dir = DIR_OVERRIDE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .or_else(|| order.ckpt_dir.clone())
        .or_else(|| assignment.as_ref().and_then(|a| a.ckpt_dir.clone()))
        .or_else(|| settings.map(|s| s.ckpt_dir.clone()))
        .unwrap_or_else(|| ".".into());
    let program = std::fs::read_to_string("/proc/self/comm")
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default();
    let upid = assignment
        .as_ref()
        .map(|a| a.upid.to_string())
        .unwrap_or_default();
    // SAFETY: plain queries of this process's ids.
    let (pid, ppid, pgid, sid, uid, gid) = unsafe {
        (
            libc::getpid(),
            libc::getppid(),
            libc::getpgrp(),
            libc::getsid(0),
            libc::getuid(),
            libc::getgid(),
        )
    };
    crate::vids::sync::note_own_pid(pid);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let identity = dmtcp_image::ProcessIdentity {
        program: program.clone(),
        pid,
        ppid,
        pgid,
        sid,
        virtual_pid: assignment.as_ref().map_or(pid, |a| a.virtual_pid),
        upid: upid.clone(),
        comp_id: assignment
            .as_ref()
            .map(|a| a.comp_id.to_string())
            .unwrap_or_default(),
        generation: order.generation as u64,
        hostname: dmtcp_protocol::ids::hostname(),
        uid,
        gid,
        ckpt_time_ns: now,
    };
    let assignment = assignment
        .map(|mut a| {
            a.generation = order.generation;
            postcard::to_stdvec(&a).unwrap_or_default()
        })
        .unwrap_or_default();
    write::Job {
        dir,
        file_name: format!("ckpt_{}_{}.dmtcp", sanitize(&program), upid),
        compress: settings.is_none_or(|s| s.gzip),
        tuning: compress::Tuning::from_env(),
        identity,
        assignment,
        entry: restart::dmtcp_restart_entry as *const () as u64,
        sections: Vec::new(),
        pid_namespace: std::env::var("DMTCP_PID_NAMESPACE").is_ok_and(|v| v == "1"),
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A failure before anything was written: still take part in the vote (the other processes
/// wait for everyone at `DMT:WRITTEN`), then report.
fn vote_and_report(order: &CheckpointOrder, e: CkptError) -> Result<(), SessionError> {
    let e = match settle(order, Err(e))? {
        Err(e) => e,
        Ok(_) => CkptError::NoResult,
    };
    report_failure(e)
}

fn report_failure(e: CkptError) -> Result<(), SessionError> {
    crate::warn!("checkpoint failed: {e}");
    api::note_checkpoint_failed();
    session::send(&WorkerMsg::CkptFailed {
        error: e.to_string(),
    })?;
    session::send(&WorkerMsg::State(WorkerState::Running))?;
    Ok(())
}

/// `--kcheckpoint`: wait (frozen) for the coordinator's kill. The coordinator says nothing when
/// another process's image fails, so after a long silence the program resumes instead.
fn wait_for_kill() {
    const SILENCE_MS: i32 = 300_000;
    loop {
        let mut pfd = libc::pollfd {
            fd: crate::settings::COORD_FD,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, SILENCE_MS) };
        if n == 0 {
            crate::warn!("no kill after the checkpoint; the program resumes");
            return;
        }
        match session::recv() {
            Ok(CoordMsg::Kill) => {
                // SAFETY: _exit ends the process without running the program's atexit handlers.
                unsafe { libc::_exit(0) }
            }
            Ok(other) => crate::debug!("ignoring {other:?} while waiting to be killed"),
            Err(_) => return,
        }
    }
}

/// The checkpoint thread, back from the dead: finish the restart with the coordinator.
fn after_restart() -> Result<(), SessionError> {
    restart::RESTARTED.store(false, Ordering::Release);
    let n = restart::thread_count();
    loop {
        let up = restart::UP.load(Ordering::Acquire);
        if up >= n {
            break;
        }
        sys::futex_wait(&restart::UP, up);
    }
    loop {
        let v = restart::LEADER_ON_HOLE.load(Ordering::Acquire);
        if v == 0 {
            break;
        }
        // The kernel's wake at task exit is a shared (not private) futex wake.
        // SAFETY: FUTEX_WAIT on a static word.
        unsafe {
            sys::syscall4(
                sys::SYS_FUTEX,
                restart::LEADER_ON_HOLE.as_ptr() as usize,
                0,
                v as usize,
                0,
            )
        };
    }
    // Every thread has left the hole's stack: make it a reservation again.
    layout::rereserve_hole();
    lazy_wait::note_restart();
    // The report page came back as private memory.
    forked::init();
    // The dirty tracker's descriptor was not restored: start it over at the next checkpoint.
    dirty::after_restart();
    let data = restart::take_data();
    let mut generation = 0;
    if let Some(d) = &data {
        if let Ok(a) = postcard::from_bytes::<Assignment>(&d.assignment) {
            generation = a.generation;
            *session::IDENTITY.lock().unwrap_or_else(|e| e.into_inner()) = Some(a);
        }
        if let Some((host, port)) = &d.coordinator {
            runtime::set_coordinator(host.clone(), *port);
        }
        if let Some(dir) = &d.ckpt_dir {
            *DIR_OVERRIDE.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.clone());
        }
        crate::debug!("restarted from {}", d.image);
    }
    if let Err(e) = fds::restore() {
        // The program would run with wrong or missing files: better not run at all.
        crate::error!("cannot restart: {e}");
        // SAFETY: ends the restarted process; nothing of it has run yet.
        unsafe { libc::_exit(1) };
    }
    if let Err(e) = sysv::reattach() {
        crate::error!("cannot restart: {e}");
        // SAFETY: as above.
        unsafe { libc::_exit(1) };
    }
    if let Err(e) = posix_mq::restore_leading() {
        crate::error!("cannot restart: {e}");
        // SAFETY: as above.
        unsafe { libc::_exit(1) };
    }
    // Resource limits last: a lowered RLIMIT_NOFILE would stop the fd restore from using
    // numbers above it.
    process::apply_rlimits();
    // Virtual ids: publish ours before the barrier, read everyone's after it.
    let r = crate::vids::sync::publish().and_then(|_| session::barrier("DMT:RESTART"));
    let r = r.and_then(|n| crate::vids::sync::collect().map(|_| n));
    if r.is_ok() {
        sysv::remove_again();
        if let Err(e) = posix_mq::restore_following() {
            crate::error!("cannot restart: {e}");
            // SAFETY: ends the restarted process before the program runs again.
            unsafe { libc::_exit(1) };
        }
        // After the virtual ids are known: a thread-directed timer names its thread.
        if let Err(e) = posix_timers::restore() {
            crate::error!("cannot restart: {e}");
            // SAFETY: as above.
            unsafe { libc::_exit(1) };
        }
        // Every process is back: plugins may use barriers and the key-value store.
        plugin::dispatch_checkpoint(Event::Restart, generation);
    }
    process::raise_shared_pending();
    // Counted before the threads run again: a handler of a re-raised signal may ask.
    api::note_restart(generation);
    threads::release_all();
    r?;
    session::send(&WorkerMsg::State(WorkerState::Running))?;
    Ok(())
}
