//! Helper processes of the image writer (compressors, hashers): raw clones of the writer
//! without `CLONE_VM`, so each shares the writer's copy-on-write snapshot for free and owns
//! private copies of whatever the writer prepared before cloning. No thread is created and
//! nothing of glibc's (whose locks frozen threads may hold) runs in them. They talk to the
//! writer through a [`SharedMap`] made before the clone.

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
    // The kernel's pid: libc's getpid/getppid are the virtual-id wrappers.
    // SAFETY: plain system call.
    let parent = unsafe { libc::syscall(libc::SYS_getpid) };
    // SAFETY: clone without CLONE_VM and without exit signal: a copy of this (single-threaded
    // here) process continuing on a copy of this stack, like fork without glibc's handlers.
    let pid = unsafe { libc::syscall(libc::SYS_clone, 0, 0, 0, 0, 0) };
    if pid == 0 {
        // SAFETY: end this worker with the writer; a worker whose writer is already gone
        // (re-parented before the prctl) does nothing.
        let code = unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::syscall(libc::SYS_getppid) == parent {
                work()
            } else {
                1
            }
        };
        exit_now(code);
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid as i32)
}

/// Ends this worker at once (no atexit handlers, no stdio flush).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: exit_group ends the process.
    unsafe { libc::syscall(libc::SYS_exit_group, code) };
    unreachable!("exit_group returned")
}

/// `waitid` for one worker (a clone child: `__WCLONE`); the call's result and the siginfo.
fn wait_worker(pid: i32, flags: i32) -> (i32, libc::siginfo_t) {
    // SAFETY: an all-zero siginfo is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid into a local siginfo, for our own clone child.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            flags | libc::__WCLONE,
        )
    };
    (r, info)
}

/// How the worker ended (`si_code`, `si_status`) if it has, without reaping it.
pub fn ended(pid: i32) -> Option<(i32, i32)> {
    let (r, info) = wait_worker(pid, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT);
    // SAFETY: reading the union fields the kernel filled for a child state change.
    let (got, status) = unsafe { (info.si_pid(), info.si_status()) };
    (r == 0 && got == pid).then_some((info.si_code, status))
}

/// Waits for every worker (killing them first when `kill`).
pub fn reap(pids: &[i32], kill: bool) {
    for &pid in pids {
        if kill {
            // SAFETY: signalling a worker process this writer created (its kernel pid, so no
            // virtual-id translation).
            unsafe { libc::syscall(libc::SYS_kill, pid, libc::SIGKILL) };
        }
        while wait_worker(pid, libc::WEXITED).0 != 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
    }
}
