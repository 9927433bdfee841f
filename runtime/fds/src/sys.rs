//! Thin safe wrappers over the raw syscalls this crate needs; the only module with `unsafe`.
//!
//! The fds handled here are numbers owned by the program, not by us, so most wrappers take a
//! plain `RawFd`. Every object we create comes back as an `OwnedFd`, closed on drop.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_long(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned(ret: libc::c_int) -> io::Result<OwnedFd> {
    let fd = check(ret)?;
    // SAFETY: the kernel just returned this fd to us and nothing else refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `fcntl` with an integer (or no) argument.
pub fn fcntl(fd: RawFd, cmd: libc::c_int, arg: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: every command we pass takes an int argument or ignores it; no memory is shared.
    check(unsafe { libc::fcntl(fd, cmd, arg) })
}

/// Whether `fd` is open in this process.
pub fn is_open(fd: RawFd) -> bool {
    fcntl(fd, libc::F_GETFD, 0).is_ok()
}

pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `st` is a valid out-pointer of the right type for the duration of the call.
    check(unsafe { libc::fstat(fd, st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded and filled the struct (it was zeroed anyway).
    Ok(unsafe { st.assume_init() })
}

pub fn stat_path(path: &str) -> io::Result<libc::stat> {
    let c = cstring(path)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: valid NUL-terminated path and out-pointer.
    check(unsafe { libc::stat(c.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: stat succeeded (and the struct was zeroed).
    Ok(unsafe { st.assume_init() })
}

pub fn lseek(fd: RawFd, off: i64, whence: libc::c_int) -> io::Result<i64> {
    // SAFETY: plain syscall on an integer fd.
    let r = unsafe { libc::lseek(fd, off, whence) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub fn open(path: &str, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let c = cstring(path)?;
    // SAFETY: valid NUL-terminated path; the mode argument is read only with O_CREAT/O_TMPFILE.
    owned(unsafe { libc::open(c.as_ptr(), flags, mode as libc::c_uint) })
}

pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

pub fn pread(fd: RawFd, buf: &mut [u8], off: i64) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let r = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), off) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    let r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

pub fn pwrite(fd: RawFd, buf: &[u8], off: i64) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    let r = unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), off) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

pub fn ftruncate(fd: RawFd, len: i64) -> io::Result<()> {
    // SAFETY: plain syscall on an integer fd.
    check(unsafe { libc::ftruncate(fd, len) }).map(drop)
}

pub fn unlink(path: &str) -> io::Result<()> {
    let c = cstring(path)?;
    // SAFETY: valid NUL-terminated path.
    check(unsafe { libc::unlink(c.as_ptr()) }).map(drop)
}

/// `dup3(old, new, flags)`: puts `old`'s open file description at number `new`.
pub fn dup3(old: RawFd, new: RawFd, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: dup3 only changes the fd table; `new` is a number the caller means to replace.
    check(unsafe { libc::dup3(old, new, flags) }).map(drop)
}

/// Duplicates `fd` to the lowest free number >= `min`, close-on-exec.
pub fn dup_above(fd: RawFd, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd that only we know about.
    owned(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })
}

pub fn pipe2(flags: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) })?;
    // SAFETY: both fds are fresh from the kernel and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn eventfd(init: u32, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall creating a new fd.
    owned(unsafe { libc::eventfd(init, flags) })
}

pub fn timerfd_create(clock: libc::c_int, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall creating a new fd.
    owned(unsafe { libc::timerfd_create(clock, flags) })
}

pub fn timerfd_gettime(fd: RawFd) -> io::Result<libc::itimerspec> {
    let mut v = std::mem::MaybeUninit::<libc::itimerspec>::zeroed();
    // SAFETY: valid out-pointer of the right type.
    check(unsafe { libc::timerfd_gettime(fd, v.as_mut_ptr()) })?;
    // SAFETY: the call succeeded and filled the struct.
    Ok(unsafe { v.assume_init() })
}

pub fn timerfd_settime(fd: RawFd, flags: libc::c_int, v: &libc::itimerspec) -> io::Result<()> {
    // SAFETY: `v` is a valid itimerspec; the old-value pointer may be null.
    check(unsafe { libc::timerfd_settime(fd, flags, v, std::ptr::null_mut()) }).map(drop)
}

pub fn clock_gettime(clock: libc::clockid_t) -> io::Result<libc::timespec> {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    check(unsafe { libc::clock_gettime(clock, &mut t) })?;
    Ok(t)
}

/// `TFD_IOC_SET_TICKS` (`_IOW('T', 0, u64)`): sets the expirations a timerfd reports as unread.
const TFD_IOC_SET_TICKS: libc::Ioctl = 0x4008_5400;

pub fn timerfd_set_ticks(fd: RawFd, ticks: u64) -> io::Result<()> {
    // SAFETY: the ioctl reads one u64 from the pointer, which is valid for the call.
    check(unsafe { libc::ioctl(fd, TFD_IOC_SET_TICKS, &ticks as *const u64) }).map(drop)
}

/// Signal mask as the kernel's 64-bit word (bit n-1 = signal n).
pub fn signalfd(mask: u64, flags: libc::c_int) -> io::Result<OwnedFd> {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: `set` is a valid sigset_t out-pointer.
    unsafe { libc::sigemptyset(set.as_mut_ptr()) };
    for sig in 1..=64 {
        if mask & (1u64 << (sig - 1)) != 0 {
            // SAFETY: `set` was initialised by sigemptyset; invalid numbers just fail.
            unsafe { libc::sigaddset(set.as_mut_ptr(), sig) };
        }
    }
    // SAFETY: `set` is initialised; -1 asks for a new signalfd.
    owned(unsafe { libc::signalfd(-1, set.as_ptr(), flags) })
}

pub fn epoll_create1(flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall creating a new fd.
    owned(unsafe { libc::epoll_create1(flags) })
}

pub fn epoll_add(epfd: RawFd, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call.
    check(unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
}

pub fn inotify_init1(flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall creating a new fd.
    owned(unsafe { libc::inotify_init1(flags) })
}

pub fn inotify_add_watch(fd: RawFd, path: &str, mask: u32) -> io::Result<i32> {
    let c = cstring(path)?;
    // SAFETY: valid NUL-terminated path.
    check(unsafe { libc::inotify_add_watch(fd, c.as_ptr(), mask) })
}

pub fn inotify_rm_watch(fd: RawFd, wd: i32) -> io::Result<()> {
    // SAFETY: plain syscall on integers.
    check(unsafe { libc::inotify_rm_watch(fd, wd) }).map(drop)
}

pub fn memfd_create(name: &str, flags: libc::c_uint) -> io::Result<OwnedFd> {
    let c = cstring(name)?;
    // SAFETY: valid NUL-terminated name.
    owned(unsafe { libc::memfd_create(c.as_ptr(), flags) })
}

pub fn posix_openpt(flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain call creating a new fd.
    let fd = owned(unsafe { libc::posix_openpt(flags) })?;
    Ok(fd)
}

/// Unlocks (or locks) the slave side of a pty master (`TIOCSPTLCK`).
pub fn set_pty_lock(fd: RawFd, locked: bool) -> io::Result<()> {
    let v: libc::c_int = locked.into();
    // SAFETY: TIOCSPTLCK reads one int from the pointer, valid for the call.
    check(unsafe { libc::ioctl(fd, libc::TIOCSPTLCK, &v as *const libc::c_int) }).map(drop)
}

/// Reads an int-valued ioctl (`TIOCGPTN`, `TIOCGPTLCK`).
pub fn ioctl_get_int(fd: RawFd, req: libc::Ioctl) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    // SAFETY: the requests used here write one int into the pointer, valid for the call.
    check(unsafe { libc::ioctl(fd, req, &mut v as *mut libc::c_int) })?;
    Ok(v)
}

pub fn get_winsize(fd: RawFd) -> io::Result<libc::winsize> {
    let mut w = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the pointer, valid for the call.
    check(unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut w as *mut libc::winsize) })?;
    Ok(w)
}

pub fn set_winsize(fd: RawFd, w: &libc::winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, valid for the call.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, w as *const libc::winsize) }).map(drop)
}

pub fn tcgetattr(fd: RawFd) -> io::Result<libc::termios> {
    let mut t = std::mem::MaybeUninit::<libc::termios>::zeroed();
    // SAFETY: valid out-pointer of the right type.
    check(unsafe { libc::tcgetattr(fd, t.as_mut_ptr()) })?;
    // SAFETY: the call succeeded and filled the struct.
    Ok(unsafe { t.assume_init() })
}

pub fn tcsetattr(fd: RawFd, t: &libc::termios) -> io::Result<()> {
    // SAFETY: `t` is a valid termios for the call.
    check(unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) }).map(drop)
}

pub fn getsockopt_int(fd: RawFd, level: libc::c_int, opt: libc::c_int) -> io::Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid out-pointers sized for an int option.
    check(unsafe {
        libc::getsockopt(
            fd,
            level,
            opt,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(v)
}

const KCMP_FILE: libc::c_long = 0;

/// Whether two fds of this process share one open file description.
/// `Ok(None)` when kcmp is unavailable (not built in, or refused by a seccomp or LSM policy).
pub fn same_file_description(a: RawFd, b: RawFd) -> io::Result<Option<bool>> {
    // SAFETY: kcmp takes only integers; our own pid is always a valid target.
    let pid = unsafe { libc::getpid() } as libc::c_long;
    // SAFETY: as above.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid,
            pid,
            KCMP_FILE,
            a as libc::c_long,
            b as libc::c_long,
        )
    };
    match check_long(r) {
        Ok(v) => Ok(Some(v == 0)),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM | libc::EACCES)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Names in a directory (without "." and ".."), read with getdents64 so that no libc
/// allocation happens (opendir would call the program's malloc, which a frozen thread may hold).
pub fn list_dir(path: &str) -> io::Result<Vec<String>> {
    let dir = open(
        path,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )?;
    let mut buf = vec![0u8; 32 * 1024];
    let mut names = Vec::new();
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes of dirents into `buf`.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        let n = check_long(n)? as usize;
        if n == 0 {
            return Ok(names);
        }
        parse_dirents(&buf[..n], &mut names);
    }
}

/// Parses `struct linux_dirent64` records: ino u64, off i64, reclen u16, type u8, name.
fn parse_dirents(mut buf: &[u8], names: &mut Vec<String>) {
    while buf.len() >= 19 {
        let reclen = u16::from_ne_bytes([buf[16], buf[17]]) as usize;
        if reclen < 19 || reclen > buf.len() {
            return;
        }
        let raw = &buf[19..reclen];
        let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        if name != b"." && name != b".." {
            names.push(String::from_utf8_lossy(name).into_owned());
        }
        buf = &buf[reclen..];
    }
}

pub fn readlink(path: &str) -> io::Result<String> {
    let target = std::fs::read_link(path)?;
    target
        .into_os_string()
        .into_string()
        .map_err(|_| io::Error::from_raw_os_error(libc::EILSEQ))
}

/// Name of the pts slave for a master (`ptsname_r`).
pub fn ptsname(fd: RawFd) -> io::Result<String> {
    let mut buf = [0 as libc::c_char; 128];
    // SAFETY: `buf` is valid for `buf.len()` bytes; ptsname_r NUL-terminates on success.
    let r = unsafe { libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    // SAFETY: ptsname_r wrote a NUL-terminated string into `buf`.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Ok(s.to_string_lossy().into_owned())
}

/// Raw syscalls used only by the tests (forking, creating unsupported kinds, ...).
#[cfg(test)]
pub mod testonly {
    use super::*;

    /// A syscall that returns an fd (io_uring_setup, userfaultfd, bpf, perf_event_open...).
    pub fn syscall_fd(nr: libc::c_long, args: [libc::c_long; 5]) -> io::Result<OwnedFd> {
        // SAFETY: callers pass integer arguments or pointers to live, correctly sized buffers.
        let r = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4]) };
        let fd = check_long(r)?;
        // SAFETY: the syscall returned a fresh fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }

    /// Closes an fd number the caller manages.
    pub fn close(fd: RawFd) -> io::Result<()> {
        // SAFETY: closing a number never touches memory; callers only close fds they manage.
        check(unsafe { libc::close(fd) }).map(drop)
    }

    /// Closes every fd in `first..=last`.
    pub fn close_range(first: u32, last: u32) -> io::Result<()> {
        // SAFETY: only integers; callers own every fd of the range.
        check(unsafe { libc::close_range(first, last, 0) }).map(drop)
    }

    /// fork(); the child must only call `exit_now` to leave.
    pub fn fork() -> io::Result<libc::pid_t> {
        // SAFETY: the child runs test code and leaves with _exit, never returning into the
        // test harness; glibc's atfork handlers keep malloc usable in the child.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(pid)
        }
    }

    pub fn exit_now(code: i32) -> ! {
        // SAFETY: _exit ends the process without running the parent's atexit handlers.
        unsafe { libc::_exit(code) }
    }

    /// Waits for a child; returns its raw wait status.
    pub fn wait_pid(pid: libc::pid_t) -> io::Result<i32> {
        let mut status = 0;
        loop {
            // SAFETY: `status` is a valid out-pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            if r >= 0 {
                return Ok(status);
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }

    pub fn mkfifo(path: &str) -> io::Result<()> {
        let c = cstring(path)?;
        // SAFETY: valid NUL-terminated path.
        check(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }).map(drop)
    }

    /// Blocks `signals` in this thread (so they stay pending for a signalfd) and raises `raise`.
    pub fn block_and_raise(signals: &[i32], raise: i32) -> io::Result<()> {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
        // SAFETY: `set` is a valid sigset_t out-pointer; sigaddset only reads the number.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            for &s in signals {
                libc::sigaddset(set.as_mut_ptr(), s);
            }
        }
        // SAFETY: `set` is initialised; the old mask pointer may be null.
        check(unsafe {
            libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut())
        })?;
        // SAFETY: raising a blocked signal only marks it pending.
        check(unsafe { libc::raise(raise) }).map(drop)
    }

    /// epoll_wait with a zero timeout: (events, data) pairs ready now.
    pub fn epoll_poll(epfd: RawFd) -> io::Result<Vec<(u32, u64)>> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 16];
        // SAFETY: `evs` has room for the 16 events we allow the kernel to write.
        let n = check(unsafe { libc::epoll_wait(epfd, evs.as_mut_ptr(), 16, 0) })?;
        Ok(evs[..n as usize]
            .iter()
            .map(|e| (e.events, e.u64))
            .collect())
    }

    pub fn fanotify_init(flags: libc::c_uint, event_flags: libc::c_uint) -> io::Result<OwnedFd> {
        // SAFETY: plain syscall creating a new fd.
        owned(unsafe { libc::fanotify_init(flags, event_flags) })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_a_directory_without_dot_entries() {
        let dir = format!("/tmp/dmtcp-fds-listdir-{}", std::process::id());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut want: Vec<String> = (0..300)
            .map(|i| format!("entry-{i:04}-{}", "x".repeat(i % 40)))
            .collect();
        for n in &want {
            std::fs::write(format!("{dir}/{n}"), b"").unwrap();
        }
        let mut got = super::list_dir(&dir).unwrap();
        got.sort();
        want.sort();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got, want);
    }
}
