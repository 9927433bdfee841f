//! Wrappers of the libc calls that take or return a process, thread or group id: the program
//! sees virtual ids, the kernel gets real ones (see `table.rs`). Without a restart in virtual
//! mode each wrapper is its plain call plus one branch.
//!
//! Calls that cannot block are raw system calls (no `dlsym` on first use, so they are safe in
//! signal handlers); the waits go through glibc's functions, which are cancellation points.

use super::real::real;
use super::table::{NewId, classify_new, signed_to_real, to_real, to_virtual};
use dmtcp_restorer::sys;
use libc::{c_int, c_long, idtype_t, pid_t, siginfo_t};

const SYS_GETPPID: usize = 110;
const SYS_KILL: usize = 62;
const SYS_GETPGID: usize = 121;
const SYS_GETSID: usize = 124;
const SYS_SETPGID: usize = 109;
const SYS_PIDFD_OPEN: usize = 434;
const SYS_WAIT4: usize = 61;

/// A raw system call's result in libc's convention: -1 with errno set on failure.
pub(super) fn ret(r: isize) -> c_long {
    if sys::is_err(r) {
        // SAFETY: this thread's errno.
        unsafe { *libc::__errno_location() = -r as c_int };
        -1
    } else {
        r as c_long
    }
}

fn real_getppid() -> i32 {
    // SAFETY: getppid has no arguments and cannot fail.
    unsafe { sys::syscall0(SYS_GETPPID) as i32 }
}

/// The pid of `si_pid` in a `siginfo_t` (x86-64 layout: after signo, errno, code, padding).
const SI_PID_OFFSET: usize = 16;

/// Rewrites the sender/child pid of a `siginfo_t` to its virtual id.
///
/// # Safety
/// `info` is null or points to a writable `siginfo_t`.
pub unsafe fn virtualize_siginfo(info: *mut siginfo_t) {
    if info.is_null() || !super::table::active() {
        return;
    }
    // SAFETY: si_pid lies inside the caller's siginfo_t.
    unsafe {
        let p = info.cast::<u8>().add(SI_PID_OFFSET).cast::<i32>();
        *p = to_virtual(*p);
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn getpid() -> pid_t {
    to_virtual(sys::getpid())
}

#[unsafe(no_mangle)]
pub extern "C" fn getppid() -> pid_t {
    to_virtual(real_getppid())
}

#[unsafe(no_mangle)]
pub extern "C" fn gettid() -> pid_t {
    to_virtual(sys::gettid())
}

#[unsafe(no_mangle)]
pub extern "C" fn kill(pid: pid_t, sig: c_int) -> c_int {
    // SAFETY: kill takes integers only.
    ret(unsafe { sys::syscall2(SYS_KILL, signed_to_real(pid) as usize, sig as usize) }) as c_int
}

#[unsafe(no_mangle)]
pub extern "C" fn killpg(pgrp: pid_t, sig: c_int) -> c_int {
    if pgrp < 0 {
        return ret(-(libc::EINVAL as isize)) as c_int;
    }
    // SAFETY: as kill; killpg(p) is kill(-p).
    ret(unsafe { sys::syscall2(SYS_KILL, (-to_real(pgrp)) as usize, sig as usize) }) as c_int
}

#[unsafe(no_mangle)]
pub extern "C" fn tgkill(tgid: pid_t, tid: pid_t, sig: c_int) -> c_int {
    // SAFETY: tgkill takes integers only.
    ret(unsafe {
        sys::syscall3(
            sys::SYS_TGKILL,
            to_real(tgid) as usize,
            to_real(tid) as usize,
            sig as usize,
        )
    }) as c_int
}

#[unsafe(no_mangle)]
pub extern "C" fn getpgid(pid: pid_t) -> pid_t {
    // SAFETY: integers only.
    let r = ret(unsafe { sys::syscall1(SYS_GETPGID, to_real(pid) as usize) }) as pid_t;
    to_virtual(r)
}

#[unsafe(no_mangle)]
pub extern "C" fn getpgrp() -> pid_t {
    getpgid(0)
}

#[unsafe(no_mangle)]
pub extern "C" fn getsid(pid: pid_t) -> pid_t {
    // SAFETY: integers only.
    let r = ret(unsafe { sys::syscall1(SYS_GETSID, to_real(pid) as usize) }) as pid_t;
    to_virtual(r)
}

#[unsafe(no_mangle)]
pub extern "C" fn setpgid(pid: pid_t, pgid: pid_t) -> c_int {
    // SAFETY: integers only.
    ret(unsafe { sys::syscall2(SYS_SETPGID, to_real(pid) as usize, to_real(pgid) as usize) })
        as c_int
}

#[unsafe(no_mangle)]
pub extern "C" fn pidfd_open(pid: pid_t, flags: libc::c_uint) -> c_int {
    // SAFETY: integers only.
    ret(unsafe { sys::syscall2(SYS_PIDFD_OPEN, to_real(pid) as usize, flags as usize) }) as c_int
}

/// # Safety
/// As `tcgetpgrp(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tcgetpgrp(fd: c_int) -> pid_t {
    let f: unsafe extern "C" fn(c_int) -> pid_t = real!(tcgetpgrp);
    // SAFETY: forwarding.
    to_virtual(unsafe { f(fd) })
}

/// Group 0 in `tcsetpgrp`: what `tcgetpgrp` and `getpgrp` read, inside a pid namespace, for a
/// group outside it (the shell, `dmtcp_launch` or `dmtcp_restart` whose session owns the
/// terminal). An interactive shell saves it when it starts job control and gives the terminal
/// back to it when it exits (dash then fails with "Cannot set tty process group" and exits 2).
/// No call from inside the namespace can name that group, and it takes the terminal back itself
/// once its child ends, so the hand-back is left to it and reported done. Only when `fd` is our
/// controlling terminal and its session leader is outside our pid namespace (reads as 0).
fn session_outside_pid_namespace(fd: c_int) -> bool {
    let mut sid: pid_t = -1;
    // SAFETY: TIOCGSID writes one pid_t; it fails unless `fd` is our controlling terminal.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGSID, &mut sid) };
    r == 0 && sid == 0
}

/// glibc asks the kernel directly (TIOCGSID), not through `getsid`.
#[unsafe(no_mangle)]
pub extern "C" fn tcgetsid(fd: c_int) -> pid_t {
    const SYS_IOCTL: usize = 16;
    let mut sid: pid_t = 0;
    // SAFETY: TIOCGSID writes one pid_t.
    let r = unsafe {
        sys::syscall3(
            SYS_IOCTL,
            fd as usize,
            libc::TIOCGSID as usize,
            &mut sid as *mut pid_t as usize,
        )
    };
    if ret(r) < 0 {
        return -1;
    }
    to_virtual(sid)
}

/// # Safety
/// As `tcsetpgrp(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tcsetpgrp(fd: c_int, pgrp: pid_t) -> c_int {
    if pgrp == 0 && session_outside_pid_namespace(fd) {
        return 0;
    }
    let f: unsafe extern "C" fn(c_int, pid_t) -> c_int = real!(tcsetpgrp);
    // SAFETY: forwarding.
    unsafe { f(fd, to_real(pgrp)) }
}

/// # Safety
/// As `sigqueue(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigqueue(pid: pid_t, sig: c_int, value: libc::sigval) -> c_int {
    let f: unsafe extern "C" fn(pid_t, c_int, libc::sigval) -> c_int = real!(sigqueue);
    // SAFETY: forwarding.
    unsafe { f(to_real(pid), sig, value) }
}

/// # Safety
/// As `sched_getaffinity(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sched_getaffinity(
    pid: pid_t,
    size: libc::size_t,
    set: *mut libc::cpu_set_t,
) -> c_int {
    let f: unsafe extern "C" fn(pid_t, libc::size_t, *mut libc::cpu_set_t) -> c_int =
        real!(sched_getaffinity);
    // SAFETY: forwarding.
    unsafe { f(to_real(pid), size, set) }
}

/// # Safety
/// As `sched_setaffinity(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sched_setaffinity(
    pid: pid_t,
    size: libc::size_t,
    set: *const libc::cpu_set_t,
) -> c_int {
    let f: unsafe extern "C" fn(pid_t, libc::size_t, *const libc::cpu_set_t) -> c_int =
        real!(sched_setaffinity);
    // SAFETY: forwarding.
    unsafe { f(to_real(pid), size, set) }
}

/// # Safety
/// As `waitpid(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    let f: unsafe extern "C" fn(pid_t, *mut c_int, c_int) -> pid_t = real!(waitpid);
    // SAFETY: forwarding.
    to_virtual(unsafe { f(signed_to_real(pid), status, options) })
}

/// # Safety
/// As `wait4(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wait4(
    pid: pid_t,
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> pid_t {
    let f: unsafe extern "C" fn(pid_t, *mut c_int, c_int, *mut libc::rusage) -> pid_t =
        real!(wait4);
    // SAFETY: forwarding.
    to_virtual(unsafe { f(signed_to_real(pid), status, options, usage) })
}

/// # Safety
/// As `wait3(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wait3(
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> pid_t {
    // SAFETY: wait3 is wait4 for any child.
    unsafe { wait4(-1, status, options, usage) }
}

/// # Safety
/// As `wait(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wait(status: *mut c_int) -> pid_t {
    // SAFETY: wait is waitpid for any child.
    unsafe { waitpid(-1, status, 0) }
}

/// # Safety
/// As `waitid(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waitid(
    idtype: idtype_t,
    id: libc::id_t,
    info: *mut siginfo_t,
    options: c_int,
) -> c_int {
    let f: unsafe extern "C" fn(idtype_t, libc::id_t, *mut siginfo_t, c_int) -> c_int =
        real!(waitid);
    let id = if idtype == libc::P_PID || idtype == libc::P_PGID {
        to_real(id as i32) as libc::id_t
    } else {
        id
    };
    // SAFETY: forwarding; on success the kernel filled `info`.
    unsafe {
        let r = f(idtype, id, info, options);
        if r == 0 {
            virtualize_siginfo(info);
        }
        r
    }
}

/// Reaps a child that was created only to be thrown away (its pid was taken).
fn reap(pid: i32) {
    // SAFETY: waiting for our own child, any kind (__WALL), without status.
    unsafe { sys::syscall4(SYS_WAIT4, pid as usize, 0, libc::__WALL as usize, 0) };
}

/// The pid of a new child must not be a virtual id of the computation: such a child exits at
/// once (see [`super::on_fork_child`]) and the parent forks again.
///
/// # Safety
/// As `fork(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fork() -> pid_t {
    let f: unsafe extern "C" fn() -> pid_t = real!(fork);
    for _ in 0..100 {
        // SAFETY: forwarding.
        let pid = unsafe { f() };
        if pid <= 0 {
            return pid;
        }
        if classify_new(pid) == NewId::Free {
            return pid;
        }
        crate::debug!("pid {pid} of a new child is a virtual pid in use; forking again");
        reap(pid);
    }
    ret(-(libc::EAGAIN as isize)) as pid_t
}

/// `who` of `getpriority`/`setpriority`: a pid or a process group for those kinds.
fn priority_who(which: libc::__priority_which_t, who: libc::id_t) -> libc::id_t {
    if which == libc::PRIO_PROCESS || which == libc::PRIO_PGRP {
        to_real(who as i32) as libc::id_t
    } else {
        who
    }
}

/// # Safety
/// As `getpriority(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getpriority(which: libc::__priority_which_t, who: libc::id_t) -> c_int {
    let f: unsafe extern "C" fn(libc::__priority_which_t, libc::id_t) -> c_int = real!(getpriority);
    // SAFETY: forwarding.
    unsafe { f(which, priority_who(which, who)) }
}

/// # Safety
/// As `setpriority(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn setpriority(
    which: libc::__priority_which_t,
    who: libc::id_t,
    prio: c_int,
) -> c_int {
    let f: unsafe extern "C" fn(libc::__priority_which_t, libc::id_t, c_int) -> c_int =
        real!(setpriority);
    // SAFETY: forwarding.
    unsafe { f(which, priority_who(which, who), prio) }
}

macro_rules! pid_first {
    ($name:ident, ($($arg:ident: $ty:ty),*), $ret:ty) => {
        /// # Safety
        /// As the libc function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(pid: pid_t $(, $arg: $ty)*) -> $ret {
            let f: unsafe extern "C" fn(pid_t $(, $ty)*) -> $ret = real!($name);
            // SAFETY: forwarding with the real pid.
            unsafe { f(to_real(pid) $(, $arg)*) }
        }
    };
}

pid_first!(prlimit, (res: c_int, new: *const libc::rlimit, old: *mut libc::rlimit), c_int);
pid_first!(prlimit64, (res: c_int, new: *const libc::rlimit64, old: *mut libc::rlimit64), c_int);
pid_first!(sched_getparam, (p: *mut libc::sched_param), c_int);
pid_first!(sched_setparam, (p: *const libc::sched_param), c_int);
pid_first!(sched_getscheduler, (), c_int);
pid_first!(sched_setscheduler, (policy: c_int, p: *const libc::sched_param), c_int);
