//! Freezing the program's threads: the checkpoint signal's handler records where each thread's
//! signal frame is (the kernel saved every register, FP state and the signal mask there) plus
//! the per-thread kernel state a new task would lack, then waits until released.
//!
//! Everything here runs in signal handlers or while other threads are frozen: raw system calls,
//! atomics and the static table only; no allocation, no locks, no libc beyond `errno`.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};
use dmtcp_restorer::sys;

pub const MAX_THREADS: usize = 1024;

/// What is needed to bring one thread back.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ThreadRecord {
    pub tid: i32,
    pub is_main: bool,
    pub is_ckpt: bool,
    /// Set by the handler once the fields below are valid.
    pub frozen: bool,
    /// The thread exited before it could be frozen.
    pub gone: bool,
    /// Address of the `ucontext` in the thread's signal frame (its stack pointer for
    /// `rt_sigreturn`).
    pub uc: u64,
    pub fs: u64,
    pub errno: i32,
    /// The release generation the thread waits to see change.
    pub release_gen: u32,
    pub robust_head: u64,
    pub robust_len: u64,
    /// `stack_t`: ss_sp, ss_flags, ss_size.
    pub altstack: [u64; 3],
    pub name: [u8; 16],
    pub affinity: [u64; 16],
    pub affinity_len: u64,
    /// Signals pending for this thread only (bit n-1 for signal n), filled by the checkpoint
    /// thread from /proc.
    pub pending: u64,
}

impl ThreadRecord {
    const EMPTY: ThreadRecord = ThreadRecord {
        tid: 0,
        is_main: false,
        is_ckpt: false,
        frozen: false,
        gone: false,
        uc: 0,
        fs: 0,
        errno: 0,
        release_gen: 0,
        robust_head: 0,
        robust_len: 0,
        altstack: [0; 3],
        name: [0; 16],
        affinity: [0; 16],
        affinity_len: 0,
        pending: 0,
    };
}

/// The table of threads of the current checkpoint. It lives in the library's memory, so it is
/// saved with the image and read back by the restart entry as is.
pub struct Table(UnsafeCell<[ThreadRecord; MAX_THREADS]>);

// SAFETY: slot `i` is written by the checkpoint thread before the thread with that tid is
// signalled, then only by that thread's handler until it publishes `FROZEN`; readers wait for it.
unsafe impl Sync for Table {}

pub static TABLE: Table = Table(UnsafeCell::new([ThreadRecord::EMPTY; MAX_THREADS]));
/// Number of slots in use.
pub static COUNT: AtomicUsize = AtomicUsize::new(0);
/// Number of threads that have published their record.
pub static FROZEN: AtomicU32 = AtomicU32::new(0);
/// Frozen threads wait for this to change.
pub static RELEASE: AtomicU32 = AtomicU32::new(0);
/// True from the start of a freeze until the release: a checkpoint signal that arrives
/// outside (one a thread had blocked during a failed freeze) is stale and ignored.
pub static FREEZING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
/// The checkpoint thread's tid (its handler writes the image instead of waiting).
pub static CKPT_TID: AtomicI32 = AtomicI32::new(0);
/// Called by the checkpoint thread's own handler, with its signal frame recorded.
pub static ON_CKPT_FRAME: AtomicUsize = AtomicUsize::new(0);

/// The record of slot `i`.
///
/// # Safety
/// `i < COUNT` and the caller respects the table's ownership protocol.
pub unsafe fn slot(i: usize) -> &'static mut ThreadRecord {
    // SAFETY: in bounds; exclusive access is the caller's promise.
    unsafe { &mut (*TABLE.0.get())[i] }
}

pub fn slots() -> &'static [ThreadRecord] {
    let n = COUNT.load(Ordering::Acquire).min(MAX_THREADS);
    // SAFETY: shared reading of published slots.
    unsafe { &(&*TABLE.0.get())[..n] }
}

/// glibc's thread descriptor keeps the kernel tid at this offset from the thread pointer
/// (x86-64, glibc 2.26 and later); checked against `gettid()` before it is ever written.
pub const PTHREAD_TID_OFFSET: u64 = 720;
/// Set at start-up when the main thread's descriptor holds its tid at that offset.
pub static TID_OFFSET_OK: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

/// glibc's `__rseq_offset` and `__rseq_size`, resolved at start-up (0 size: not registered).
pub static RSEQ_OFFSET: core::sync::atomic::AtomicI64 = core::sync::atomic::AtomicI64::new(0);
pub static RSEQ_SIZE: AtomicU32 = AtomicU32::new(0);

fn errno_ptr() -> *mut i32 {
    // SAFETY: __errno_location is async-signal-safe and returns this thread's errno.
    unsafe { libc::__errno_location() }
}

/// Records the calling thread's per-thread kernel state into `r`.
fn record_self(r: &mut ThreadRecord, uc: u64) {
    r.uc = uc;
    r.fs = sys::get_fs();
    // SAFETY: each call writes into fields of `r` of the sizes the kernel expects.
    unsafe {
        let mut head: u64 = 0;
        let mut len: u64 = 0;
        sys::syscall3(
            sys::SYS_GET_ROBUST_LIST,
            0,
            &mut head as *mut u64 as usize,
            &mut len as *mut u64 as usize,
        );
        r.robust_head = head;
        r.robust_len = len;
        sys::syscall2(sys::SYS_SIGALTSTACK, 0, r.altstack.as_mut_ptr() as usize);
        sys::syscall2(
            sys::SYS_PRCTL,
            sys::PR_GET_NAME,
            r.name.as_mut_ptr() as usize,
        );
        let n = sys::syscall3(
            204, // sched_getaffinity
            0,
            core::mem::size_of_val(&r.affinity),
            r.affinity.as_mut_ptr() as usize,
        );
        r.affinity_len = if n > 0 { n as u64 } else { 0 };
    }
}

/// The checkpoint signal's handler (installed with every signal blocked while it runs).
pub extern "C" fn on_signal(sig: i32, _info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    let errno = errno_ptr();
    // SAFETY: our own errno.
    let saved_errno = unsafe { *errno };
    let tid = sys::gettid();
    let n = COUNT.load(Ordering::Acquire).min(MAX_THREADS);
    // SAFETY: reading published tids of the table.
    let idx = (0..n).find(|&i| unsafe { (*TABLE.0.get())[i].tid } == tid);
    let Some(idx) = idx else {
        // Not sent by the checkpoint thread (a stray copy of our signal): nothing to do.
        return;
    };
    if !FREEZING.load(Ordering::Acquire) {
        return; // Left over from a freeze that gave up.
    }
    // SAFETY: `uc` is the kernel's ucontext for this delivery.
    unsafe { crate::vids::siginfo::settle_interrupted(uc.cast()) };
    // SAFETY: slot `idx` belongs to this thread until it is published below.
    let r = unsafe { slot(idx) };
    record_self(r, uc as u64);
    r.errno = saved_errno;
    if r.is_ckpt {
        r.frozen = true;
        let f = ON_CKPT_FRAME.load(Ordering::Acquire);
        if f != 0 {
            // SAFETY: set by the checkpoint code to a `fn()`.
            let f: fn() = unsafe { core::mem::transmute(f) };
            f();
        }
        // SAFETY: our own errno.
        unsafe { *errno = saved_errno };
        return;
    }
    let g = RELEASE.load(Ordering::Acquire);
    // Our private pending signals, with their senders, before we report frozen.
    super::pending_info::take_thread_pending(idx, g, sig);
    r.release_gen = g;
    r.frozen = true;
    FROZEN.fetch_add(1, Ordering::Release);
    sys::futex_wake_all(&FROZEN);
    while RELEASE.load(Ordering::Acquire) == g {
        sys::futex_wait(&RELEASE, g);
    }
    super::pending_info::requeue_thread(idx, g, false);
    if r.is_main {
        super::pending_info::requeue(false);
    }
    crate::plugin::dispatch_thread_resume();
    // SAFETY: our own errno.
    unsafe { *errno = saved_errno };
}

/// Lists the tids of this process into `out`; returns how many (raw getdents64, no malloc).
pub fn list_tids(out: &mut [i32]) -> Result<usize, i32> {
    // SAFETY: opening a constant NUL-terminated path.
    let fd = unsafe {
        sys::syscall3(
            sys::SYS_OPEN,
            c"/proc/self/task".as_ptr() as usize,
            (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) as usize,
            0,
        )
    };
    if sys::is_err(fd) {
        return Err(-(fd as i32));
    }
    let mut buf = [0u8; 4096];
    let mut n = 0;
    loop {
        // SAFETY: getdents64 into a local buffer.
        let got = unsafe {
            sys::syscall3(
                sys::SYS_GETDENTS64,
                fd as usize,
                buf.as_mut_ptr() as usize,
                buf.len(),
            )
        };
        if got <= 0 {
            break;
        }
        let mut off = 0usize;
        while off < got as usize {
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = &buf[off + 19..off + reclen];
            let mut v: i32 = 0;
            let mut digits = false;
            for &c in name {
                if c.is_ascii_digit() {
                    v = v * 10 + (c - b'0') as i32;
                    digits = true;
                } else {
                    break;
                }
            }
            if digits && n < out.len() {
                out[n] = v;
                n += 1;
            }
            off += reclen;
        }
    }
    // SAFETY: closing our own descriptor.
    unsafe { sys::syscall1(sys::SYS_CLOSE, fd as usize) };
    Ok(n)
}

pub fn tgkill(tid: i32, sig: i32) -> isize {
    // SAFETY: signalling a thread of our own process.
    unsafe {
        sys::syscall3(
            sys::SYS_TGKILL,
            sys::getpid() as usize,
            tid as usize,
            sig as usize,
        )
    }
}

/// Why the program could not be frozen.
#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    #[error("the program has more than {MAX_THREADS} threads")]
    TooManyThreads,
    #[error("cannot list the program's threads (errno {0})")]
    List(i32),
    #[error("thread {0} did not stop within {1} seconds (does it block signal {2}?)")]
    Stuck(i32, u64, i32),
}

/// Freezes every thread but the caller; returns the number of frozen threads.
pub fn freeze_all(sig: i32, timeout_s: u64) -> Result<usize, FreezeError> {
    let me = sys::gettid();
    let pid = sys::getpid();
    FREEZING.store(true, Ordering::Release);
    super::pending_info::begin_freeze();
    COUNT.store(0, Ordering::Release);
    FROZEN.store(0, Ordering::Release);
    CKPT_TID.store(me, Ordering::Release);
    let mut tids = [0i32; MAX_THREADS];
    let mut signalled = 0u32;
    let start = now_s();
    loop {
        let n = list_tids(&mut tids).map_err(FreezeError::List)?;
        let mut added = false;
        for &t in &tids[..n] {
            if t == me || slots().iter().any(|r| r.tid == t) || is_zombie(t) {
                continue;
            }
            let i = COUNT.load(Ordering::Acquire);
            if i >= MAX_THREADS - 1 {
                return Err(FreezeError::TooManyThreads);
            }
            // SAFETY: slot `i` is not published yet; only we write it.
            let r = unsafe { slot(i) };
            *r = ThreadRecord::EMPTY;
            r.tid = t;
            r.is_main = t == pid;
            COUNT.store(i + 1, Ordering::Release);
            if sys::is_err(tgkill(t, sig)) {
                r.gone = true;
            } else {
                signalled += 1;
            }
            added = true;
        }
        // Wait for everyone signalled so far; a thread may have created another before it
        // froze, so list again afterwards until nothing new appears.
        loop {
            let f = FROZEN.load(Ordering::Acquire);
            if f >= signalled {
                break;
            }
            wait_a_little(&FROZEN, f);
            // A thread that exited after being signalled never answers.
            for i in 0..COUNT.load(Ordering::Acquire) {
                // SAFETY: reading flags of published slots; `gone` is ours to write.
                let r = unsafe { slot(i) };
                if !r.frozen && !r.gone && sys::is_err(tgkill(r.tid, 0)) {
                    r.gone = true;
                    signalled -= 1;
                }
            }
            if now_s() > start + timeout_s {
                let stuck = slots()
                    .iter()
                    .find(|r| !r.frozen && !r.gone)
                    .map_or(0, |r| r.tid);
                return Err(FreezeError::Stuck(stuck, timeout_s, sig));
            }
        }
        if !added {
            break;
        }
    }
    // Our own slot, last: the handler of our self-signal fills it.
    let i = COUNT.load(Ordering::Acquire);
    // SAFETY: unpublished slot.
    let r = unsafe { slot(i) };
    *r = ThreadRecord::EMPTY;
    r.tid = me;
    r.is_main = me == pid;
    r.is_ckpt = true;
    COUNT.store(i + 1, Ordering::Release);
    Ok(signalled as usize)
}

/// A main thread that called `pthread_exit` stays listed as a zombie until the process ends;
/// it never answers a signal.
fn is_zombie(tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .and_then(|i| s[i + 1..].trim_start().chars().next())
        })
        .is_some_and(|c| c == 'Z' || c == 'X')
}

/// Lets every frozen thread return from its handler.
pub fn release_all() {
    FREEZING.store(false, Ordering::Release);
    RELEASE.fetch_add(1, Ordering::AcqRel);
    sys::futex_wake_all(&RELEASE);
}

fn now_s() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into a local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64
}

fn wait_a_little(word: &AtomicU32, expected: u32) {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 10_000_000,
    };
    // SAFETY: futex wait with a timeout on a static word.
    unsafe {
        sys::syscall4(
            sys::SYS_FUTEX,
            word.as_ptr() as usize,
            sys::FUTEX_WAIT_PRIVATE,
            expected as usize,
            &ts as *const libc::timespec as usize,
        )
    };
}
