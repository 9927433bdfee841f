//! Helper processes of the image writer (compressors, hashers): raw clones of the writer
//! without `CLONE_VM`, so each shares the writer's copy-on-write snapshot for free and owns
//! private copies of whatever the writer prepared before cloning. No thread is created and
//! nothing of glibc's (whose locks frozen threads may hold) runs in them. They talk to the
//! writer through a [`SharedMap`] made before the clone.

use dmtcp_restorer::sys;
use std::io;

/// A `MAP_SHARED | MAP_ANONYMOUS` mapping, zero-filled, unmapped when dropped.
pub struct SharedMap {
    pub base: *mut u8,
    pub len: usize,
}

impl SharedMap {
    pub fn new(len: usize) -> io::Result<SharedMap> {
        // SAFETY: a new shared anonymous mapping, owned by the returned value.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedMap {
            base: p.cast(),
            len,
        })
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in `new`; its users (the workers) are gone.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// Clones a worker that runs `work` and exits with its status; returns the worker's pid to
/// the writer. The worker dies with the writer (`PR_SET_PDEATHSIG`).
pub fn spawn(work: impl FnOnce() -> i32) -> io::Result<i32> {
    // Raw system calls here: libc's entry points are the virtual-id wrappers.
    let parent = sys::getpid();
    // SAFETY: clone without CLONE_VM and without exit signal: a copy of this (single-threaded
    // here) process continuing on a copy of this stack, like fork without glibc's handlers.
    let pid = unsafe { sys::syscall5(sys::SYS_CLONE, 0, 0, 0, 0, 0) };
    if pid == 0 {
        // SAFETY: end this worker with the writer; a worker whose writer is already gone
        // (re-parented before the prctl) does nothing.
        let code = unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if sys::getppid() == parent { work() } else { 1 }
        };
        // Ends the worker at once (no atexit handlers, no stdio flush).
        sys::exit_group(code);
    }
    if sys::is_err(pid) {
        return Err(io::Error::from_raw_os_error(-pid as i32));
    }
    Ok(pid as i32)
}

/// `waitid` for one clone child of this process (a worker, or the forked writer: no exit
/// signal, so `__WCLONE`), by raw system call: the libc and `syscall()` entry points are the
/// virtual-id wrappers, which would translate a kernel pid that happens to equal a virtual one.
/// How the child ended (`si_code`, `si_status`) once it has, `None` before (with `WNOHANG`);
/// the errno on failure.
pub fn wait_clone(pid: i32, flags: i32) -> Result<Option<(i32, i32)>, i32> {
    // SAFETY: an all-zero siginfo is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid into a local siginfo, for our own clone child.
    let r = unsafe {
        sys::syscall5(
            sys::SYS_WAITID,
            libc::P_PID as usize,
            pid as usize,
            &mut info as *mut libc::siginfo_t as usize,
            (flags | libc::__WCLONE) as u32 as usize,
            0,
        )
    };
    if sys::is_err(r) {
        return Err(-r as i32);
    }
    // SAFETY: reading the union fields the kernel filled for a child state change (si_pid is
    // 0 when no child had changed state).
    let (got, status) = unsafe { (info.si_pid(), info.si_status()) };
    Ok((got == pid).then_some((info.si_code, status)))
}

/// How the worker ended (`si_code`, `si_status`) if it has, without reaping it.
pub fn ended(pid: i32) -> Option<(i32, i32)> {
    wait_clone(pid, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT)
        .ok()
        .flatten()
}

/// Waits for every worker (killing them first when `kill`).
pub fn reap(pids: &[i32], kill: bool) {
    for &pid in pids {
        if kill {
            // SAFETY: signalling a worker process this writer created, by its kernel pid.
            unsafe { sys::syscall2(sys::SYS_KILL, pid as usize, libc::SIGKILL as usize) };
        }
        while wait_clone(pid, libc::WEXITED) == Err(libc::EINTR) {}
    }
}
