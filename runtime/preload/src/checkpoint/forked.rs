//! Writing the image from a forked copy of the process: the child holds a copy-on-write
//! snapshot of the frozen memory and writes it, while the program resumes at once. The pause
//! becomes freeze + fork instead of freeze + the whole write.
//!
//! The child is created with a raw `clone` and no exit signal: glibc's fork handlers do not
//! run (ours would join the coordinator) and the program's SIGCHLD handler and `waitpid(-1)`
//! never see it. It reports through a shared page made at start-up (and again after restart).

use super::compress::Progress;
use super::worker_clones::{reap, wait_clone};
use super::write::{self, Job, Written};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use dmtcp_restorer::sys;

const PAGE: usize = 4096;
const PATH_MAX: usize = 1024;
const ERR_MAX: usize = 2048;

#[repr(C)]
struct Report {
    /// 0: nothing yet, 1: written, 2: failed (a futex word: the child wakes the parent).
    status: AtomicU32,
    path_len: u32,
    err_len: u32,
    bytes: u64,
    path: [u8; PATH_MAX],
    err: [u8; ERR_MAX],
    write_ns: u64,
    sync_ns: u64,
    progress: Progress,
}

const _: () = assert!(core::mem::size_of::<Report>() <= PAGE);

static REPORT: AtomicUsize = AtomicUsize::new(0);
/// The process that mapped the page: a child of the program's `fork` inherits the mapping
/// shared with its parent, and must map its own before its first forked write.
static OWNER: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(0);

/// Maps the shared report page (at start-up, and after a restart, where the restored copy is
/// private memory).
pub fn init() {
    // SAFETY: a plain query of our pid.
    OWNER.store(unsafe { libc::getpid() }, Ordering::Release);
    // A writer named here is our parent's (after fork) or the checkpointed process's (after
    // restart), not our child.
    UNREAPED.store(0, Ordering::Release);
    // SAFETY: a new shared anonymous page.
    let p = unsafe {
        sys::syscall6(
            sys::SYS_MMAP,
            0,
            PAGE,
            sys::PROT_READ | sys::PROT_WRITE,
            0x01 | sys::MAP_ANONYMOUS, // MAP_SHARED
            usize::MAX,
            0,
        )
    };
    if !sys::is_err(p) {
        let old = REPORT.swap(p as usize, Ordering::AcqRel);
        if old != 0 {
            // SAFETY: the previous page is ours and no child uses it any more.
            unsafe { sys::syscall2(sys::SYS_MUNMAP, old, PAGE) };
        }
    }
}

/// Forks the writer; returns its pid, or None when the image must be written in-process.
pub fn spawn(job: &Job) -> Option<i32> {
    // SAFETY: a plain query of our pid.
    if OWNER.load(Ordering::Acquire) != unsafe { libc::getpid() } {
        init();
    }
    reap_writer();
    let report = REPORT.load(Ordering::Acquire);
    if report == 0 {
        return None;
    }
    // SAFETY: the report page is ours; nobody else writes it while no child runs.
    unsafe {
        (*(report as *mut Report))
            .status
            .store(0, Ordering::Release)
    };
    // Shared writable memory is not copy-on-write: the child saves private copies of it.
    let maps = super::maps::read_self().ok()?;
    if !super::shared_snapshot::capture(&maps, report as u64) {
        return None;
    }
    *PART.lock().unwrap_or_else(|e| e.into_inner()) = format!("{}/{}.part", job.dir, job.file_name);
    // The pages written since the previous checkpoint: the last thing before the clone.
    super::dirty::before_clone(job.identity.generation);
    // SAFETY: clone without CLONE_VM and without exit signal: a child process that continues
    // here on a copy of this stack. It only writes the image and exits.
    let pid = unsafe { sys::syscall5(sys::SYS_CLONE, 0, 0, 0, 0, 0) };
    if pid == 0 {
        // The child's own heap must not unmap what its memory map lists (see `defer_unmaps`).
        crate::HEAP.defer_unmaps(true);
        // SAFETY: the shared page, written by this child only (the parent only reads it).
        let rep = unsafe { &mut *(report as *mut Report) };
        let r = write::write_image(job, Some(&rep.progress));
        match r {
            Ok(w) => {
                let n = w.path.len().min(PATH_MAX);
                rep.path[..n].copy_from_slice(&w.path.as_bytes()[..n]);
                rep.path_len = n as u32;
                rep.bytes = w.bytes;
                rep.write_ns = w.write_ns;
                rep.sync_ns = w.sync_ns;
                rep.status.store(1, Ordering::Release);
            }
            Err(e) => {
                let msg = e.to_string();
                let n = msg.len().min(ERR_MAX);
                rep.err[..n].copy_from_slice(&msg.as_bytes()[..n]);
                rep.err_len = n as u32;
                rep.status.store(2, Ordering::Release);
            }
        }
        // SAFETY: waking the parent waiting on the shared status word.
        unsafe { sys::syscall3(sys::SYS_FUTEX, rep.status.as_ptr() as usize, FUTEX_WAKE, 1) };
        sys::exit_group(0);
    }
    super::shared_snapshot::release();
    if pid > 0 {
        // The child holds the snapshot: changes from now on are the next increment's.
        super::incremental::after_fork(job.identity.generation);
        super::dirty::log_scan();
    }
    (pid > 0).then_some(pid as i32)
}

/// Shared (not private) futex operations: the word is in memory shared with the child.
const FUTEX_WAIT: usize = 0;
const FUTEX_WAKE: usize = 1;

/// The file the current writer writes (`<dir>/<file>.part`): removed here if the writer dies
/// without reporting (killed, out of memory), since it cannot remove it itself.
static PART: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// A writer that reported but may still be exiting: reaped by `reap_writer`.
static UNREAPED: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(0);

/// Waits for the writer `pid` and returns what it reported, as soon as it reports: its exit
/// (unmapping its copy of the address space, tens of ms at 2 GiB) is left to `reap_writer`.
/// Meanwhile calls `progress` with the raw bytes saved so far and in all, about four times a
/// second while they change.
pub fn wait(pid: i32, mut progress: impl FnMut(u64, u64)) -> Result<Written, String> {
    let report = REPORT.load(Ordering::Acquire);
    // SAFETY: the shared page; the child writes it, we only read.
    let rep = unsafe { &*(report as *const Report) };
    let mut last = u64::MAX;
    // How the writer ended (`si_code`, `si_status`) if it exited without reporting.
    let mut died = (0, 0);
    loop {
        if rep.status.load(Ordering::Acquire) != 0 {
            UNREAPED.store(pid, Ordering::Release);
            break;
        }
        match wait_clone(pid, libc::WEXITED | libc::WNOHANG) {
            Ok(Some(how)) => {
                died = how;
                break;
            }
            Ok(None) | Err(libc::EINTR) => {}
            Err(e) => return Err(format!("lost the image writer process (errno {e})")),
        }
        let done = rep.progress.done.load(Ordering::Relaxed);
        if done != last {
            last = done;
            progress(done, rep.progress.total.load(Ordering::Relaxed));
        }
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 250_000_000,
        };
        // SAFETY: a timed wait on the shared status word while it is 0 (nothing reported).
        unsafe {
            sys::syscall4(
                sys::SYS_FUTEX,
                rep.status.as_ptr() as usize,
                FUTEX_WAIT,
                0,
                &ts as *const libc::timespec as usize,
            )
        };
    }
    match rep.status.load(Ordering::Acquire) {
        1 => Ok(Written {
            path: String::from_utf8_lossy(&rep.path[..rep.path_len as usize]).into_owned(),
            bytes: rep.bytes,
            write_ns: rep.write_ns,
            sync_ns: rep.sync_ns,
        }),
        2 => Err(String::from_utf8_lossy(&rep.err[..rep.err_len as usize]).into_owned()),
        _ => {
            let part = std::mem::take(&mut *PART.lock().unwrap_or_else(|e| e.into_inner()));
            let _ = std::fs::remove_file(&part);
            let how = match died {
                (libc::CLD_EXITED, status) => format!("exited with status {status}"),
                (_, signal) => format!("was killed by signal {signal}"),
            };
            Err(format!(
                "the image writer process {how} before finishing ({part} removed)"
            ))
        }
    }
}

/// Reaps the writer `wait` returned early for (blocking until it has exited), so no zombie is
/// left and its pid cannot be reused while we still name it.
pub fn reap_writer() {
    let pid = UNREAPED.swap(0, Ordering::AcqRel);
    // SAFETY: a plain query of our pid. A fork child of the program inherits the parent's
    // writer pid, which is not its child.
    if pid > 0 && OWNER.load(Ordering::Acquire) == unsafe { libc::getpid() } {
        reap(&[pid], false);
    }
}
