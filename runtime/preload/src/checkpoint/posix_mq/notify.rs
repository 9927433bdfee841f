//! `mq_notify` registrations across checkpoint and restart.
//!
//! The `mq_notify` wrapper below remembers each registration of this process (one per queue,
//! as the kernel allows): `SIGEV_NONE`, `SIGEV_SIGNAL` with its signal and value, or
//! `SIGEV_THREAD` with its function and value.
//!
//! `SIGEV_THREAD` is not left to glibc: glibc's helper thread blocks every signal, the
//! checkpoint signal included, so such a process could not be frozen. The wrapper registers
//! instead with the kernel's own `SIGEV_THREAD` form, a netlink socket of ours and a cookie,
//! and a helper thread of ours (an ordinary thread of the program, frozen like the others)
//! receives the kernel's messages and calls the program's function with its value, one call
//! after the other on that thread (`sigev_notify_attributes` is ignored).
//!
//! The kernel keeps a registration until it fires (once) or the owner unregisters or closes a
//! descriptor of the queue, so at checkpoint [`claim`] first asks the queue (its status line,
//! `NOTIFY_PID`) whether this process is still the owner; stale records are dropped. The owner
//! of a registration is then made the queue's leader (it takes the election before the fd
//! barrier, the others take theirs after it), because the leader drains the queue and sends
//! the messages back, and a message arriving in an empty queue fires the notification: the
//! owner unregisters around its own drain and registers again after it ([`suspend`],
//! [`resume`]), so the checkpoint neither fires a notification nor loses the registration.
//! At restart the owner (the queue's leader) registers again once it has recreated the queue
//! and placed its descriptors ([`restore`]).

use crate::session;
use dmtcp_protocol::KvOp;
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    None,
    Signal { signo: i32, value: usize },
    Thread { function: usize, value: usize },
}

#[derive(Debug, Clone, Copy)]
struct Reg {
    ino: u64,
    fd: i32,
    how: How,
    /// Serial number, in the `SIGEV_THREAD` cookie (a late message of an old registration is
    /// not taken for the current one).
    serial: u64,
    /// Kernel pid of the process that registered (a fork child inherits the list, not the
    /// registrations).
    pid: i32,
    /// Owned at checkpoint: to register again at restart.
    live: bool,
    /// A `SIGEV_THREAD` registration that fired, whose message the helper has not taken yet
    /// (a restart loses the message: the helper then calls the function itself).
    pending: bool,
}

static REGS: Mutex<Vec<Reg>> = Mutex::new(Vec::new());
static SERIAL: AtomicU64 = AtomicU64::new(1);
/// Queues whose election this process took before the fd barrier (generation, inode).
static CLAIMED: Mutex<Vec<(u32, u64)>> = Mutex::new(Vec::new());

const NOTIFY_COOKIE_LEN: usize = 32;
const NOTIFY_WOKENUP: u8 = 1;

fn kernel_pid() -> i32 {
    dmtcp_restorer::sys::getpid()
}

fn ino_of(fd: i32) -> Option<u64> {
    // SAFETY: fstat into a zeroed local.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some(st.st_ino)
    }
}

/// glibc's `struct sigevent` with the `SIGEV_THREAD` members.
#[repr(C)]
struct UserSigevent {
    value: usize,
    signo: i32,
    notify: i32,
    function: usize,
    attributes: usize,
}

/// The kernel's `struct sigevent` (64 bytes).
#[repr(C)]
struct KernelSigevent {
    value: usize,
    signo: i32,
    notify: i32,
    _pad: [i32; 12],
}

fn sys_mq_notify(fd: i32, ev: Option<&KernelSigevent>) -> std::io::Result<()> {
    let p = ev.map_or(std::ptr::null(), |e| e as *const KernelSigevent);
    // SAFETY: mq_notify reads a sigevent (or none); raw, so our wrapper is not involved.
    if unsafe { libc::syscall(libc::SYS_mq_notify, fd, p) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Registers `how` on `fd` with the kernel; `serial` goes into a `SIGEV_THREAD` cookie.
fn register(fd: i32, ino: u64, how: How, serial: u64) -> std::io::Result<()> {
    let mut ev = KernelSigevent {
        value: 0,
        signo: 0,
        notify: libc::SIGEV_NONE,
        _pad: [0; 12],
    };
    let mut cookie = [0u8; NOTIFY_COOKIE_LEN];
    match how {
        How::None => {}
        How::Signal { signo, value } => {
            ev.notify = libc::SIGEV_SIGNAL;
            ev.signo = signo;
            ev.value = value;
        }
        How::Thread { .. } => {
            cookie[..8].copy_from_slice(&ino.to_ne_bytes());
            cookie[8..16].copy_from_slice(&serial.to_ne_bytes());
            ev.notify = libc::SIGEV_THREAD;
            ev.signo = helper_socket()?;
            ev.value = cookie.as_ptr() as usize;
        }
    }
    sys_mq_notify(fd, Some(&ev))
}

/// # Safety
/// Same contract as mq_notify(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mq_notify(mqd: libc::mqd_t, sevp: *const libc::sigevent) -> libc::c_int {
    let Some(ino) = ino_of(mqd) else {
        // Not a descriptor: let the kernel say so.
        return match sys_mq_notify(mqd, None) {
            Ok(()) => 0,
            Err(_) => -1,
        };
    };
    // SAFETY: the caller passes a valid sigevent or null.
    let ev = unsafe { sevp.cast::<UserSigevent>().as_ref() };
    let how = match ev {
        None => None,
        Some(e) if e.notify == libc::SIGEV_NONE => Some(How::None),
        Some(e) if e.notify == libc::SIGEV_SIGNAL => Some(How::Signal {
            signo: e.signo,
            value: e.value,
        }),
        Some(e) if e.notify == libc::SIGEV_THREAD => Some(How::Thread {
            function: e.function,
            value: e.value,
        }),
        Some(_) => {
            // SAFETY: errno is this thread's own variable.
            unsafe { *libc::__errno_location() = libc::EINVAL };
            return -1;
        }
    };
    // No freeze while the list is locked: the checkpoint thread reads it.
    crate::ckpt_lock::enter();
    let r = update(mqd, ino, how);
    crate::ckpt_lock::leave();
    if let Err(e) = r {
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = e.raw_os_error().unwrap_or(libc::EINVAL) };
        return -1;
    }
    0
}

/// Registers (or unregisters, `how` = None) with the kernel, then records it.
fn update(mqd: i32, ino: u64, how: Option<How>) -> std::io::Result<()> {
    let mut regs = REGS.lock().unwrap_or_else(|e| e.into_inner());
    let serial = SERIAL.fetch_add(1, Ordering::AcqRel);
    let r = match how {
        None => sys_mq_notify(mqd, None),
        Some(how) => register(mqd, ino, how, serial),
    };
    r?;
    let pid = kernel_pid();
    // The kernel accepted a new registration, so the previous one is gone: fired (a thread
    // registration's message may still be on its way to the helper, which then calls it) or
    // removed. Unregistering drops them all.
    regs.retain(|r| {
        r.ino != ino || r.pid != pid || (how.is_some() && matches!(r.how, How::Thread { .. }))
    });
    for r in regs.iter_mut().filter(|r| r.ino == ino && r.pid == pid) {
        r.pending = true;
        r.live = false;
    }
    if let Some(how) = how {
        regs.push(Reg {
            ino,
            fd: mqd,
            how,
            serial,
            pid,
            live: false,
            pending: false,
        });
    }
    Ok(())
}

/// `NOTIFY_PID` from a queue's status line, read through `fd` (or a read-only reopening of
/// it when `fd` is write-only: closing that copy ends the registration, which the caller
/// replaces anyway).
fn notify_pid(fd: i32) -> Option<i32> {
    let mut buf = [0u8; 128];
    // SAFETY: F_GETFL query.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    let n = if fl >= 0 && fl & libc::O_ACCMODE != libc::O_WRONLY {
        // SAFETY: pread at 0 into our buffer leaves the descriptor's position alone.
        unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) }
    } else {
        let f = std::fs::File::open(format!("/proc/self/fd/{fd}")).ok()?;
        // SAFETY: as above, on our own descriptor.
        unsafe { libc::pread(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) }
    };
    if n <= 0 {
        return None;
    }
    parse_notify_pid(std::str::from_utf8(&buf[..n as usize]).ok()?)
}

fn parse_notify_pid(status: &str) -> Option<i32> {
    let rest = status.split("NOTIFY_PID:").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Checkpoint, before the fd election's barrier (program frozen): keeps the registrations this
/// process still owns and takes the election of their queues, so the owner drains them.
pub fn claim(generation: u32) {
    // Errors only warn: the caller goes on to the fd barrier, which every process must meet.
    if let Err(e) = try_claim(generation) {
        crate::warn!("mq_notify: cannot take the queues' election: {e}");
    }
}

/// Is `fd` open for reading (its status can be read without a temporary descriptor)?
fn readable(fd: i32) -> bool {
    // SAFETY: F_GETFL query.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    fl >= 0 && fl & libc::O_ACCMODE != libc::O_WRONLY
}

/// Does this process still own the registration made through `r`? Through a write-only
/// descriptor this ends the registration (see [`notify_pid`]): only once frozen for good.
fn still_owned(r: &Reg, pid: i32) -> bool {
    notify_pid(r.fd) == Some(pid)
}

fn try_claim(generation: u32) -> Result<(), session::SessionError> {
    let pid = kernel_pid();
    let mut regs = REGS.lock().unwrap_or_else(|e| e.into_inner());
    regs.retain(|r| r.pid == pid && ino_of(r.fd) == Some(r.ino));
    for r in regs.iter_mut() {
        // Other processes still run until the fd barrier: this is a first look (through a
        // write-only descriptor, none: it would end the registration); `suspend` decides.
        r.live = !r.pending && (!readable(r.fd) || still_owned(r, pid));
        r.pending |= !r.live && matches!(r.how, How::Thread { .. });
    }
    regs.retain(|r| r.live || r.pending);
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    claimed.clear();
    for r in regs.iter_mut().filter(|r| r.live) {
        let key = format!("mq:{generation}:{}", r.ino);
        let first = session::kv("dmtcp:ipc", key.as_bytes(), KvOp::IncrBy(1))?
            .and_then(|v| String::from_utf8(v).ok())
            .is_some_and(|v| v == "1");
        if first {
            claimed.push((generation, r.ino));
        } else {
            crate::warn!(
                "POSIX message queue (inode {}): another process took its election first; its notification may fire at checkpoint",
                r.ino
            );
        }
    }
    Ok(())
}

/// Did [`claim`] take the election of queue `ino` in this generation?
pub fn claimed(generation: u32, ino: u64) -> bool {
    CLAIMED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&(generation, ino))
}

/// Before the owner drains queue `ino` (everyone frozen, after the fd barrier): a
/// registration that fired since [`claim`] (a process sent before it froze) is left fired;
/// the others are unregistered, so the refill fires nothing.
pub fn suspend(ino: u64) {
    let pid = kernel_pid();
    let mut regs = REGS.lock().unwrap_or_else(|e| e.into_inner());
    for r in regs.iter_mut().filter(|r| r.ino == ino && r.live) {
        if !still_owned(r, pid) {
            r.live = false;
            r.pending = matches!(r.how, How::Thread { .. });
            continue;
        }
        if let Err(e) = sys_mq_notify(r.fd, None) {
            crate::warn!(
                "mq_notify: cannot unregister fd {} for the checkpoint: {e}",
                r.fd
            );
        }
    }
}

/// After the drain (checkpoint) or the queue's recreation (restart): registers again.
pub fn resume(ino: u64) {
    let pid = kernel_pid();
    let mut regs = REGS.lock().unwrap_or_else(|e| e.into_inner());
    for r in regs.iter_mut().filter(|r| r.ino == ino && r.live) {
        r.pid = pid;
        // A new cookie: the "removed" message of the old registration must not match it.
        r.serial = SERIAL.fetch_add(1, Ordering::AcqRel);
        match register(r.fd, r.ino, r.how, r.serial) {
            Ok(()) => crate::debug!("mq_notify on fd {} registered again ({:?})", r.fd, r.how),
            Err(e) => crate::warn!("mq_notify: cannot register fd {} again: {e}", r.fd),
        }
    }
}

/// Restart: queue `old_ino` came back (with a new inode) and its descriptors are in place:
/// registers again on it.
pub fn restore(old_ino: u64) {
    let mut regs = REGS.lock().unwrap_or_else(|e| e.into_inner());
    let mut new = None;
    for r in regs
        .iter_mut()
        .filter(|r| r.ino == old_ino && (r.live || r.pending))
    {
        r.ino = ino_of(r.fd).unwrap_or(old_ino);
        new = Some(r.ino).filter(|_| r.live).or(new);
    }
    drop(regs);
    if let Some(ino) = new {
        resume(ino);
    }
}

/// The netlink socket and helper thread of this process for `SIGEV_THREAD`.
static HELPER_FD: AtomicI32 = AtomicI32::new(-1);
static HELPER_PID: AtomicI32 = AtomicI32::new(0);
static HELPER_LOCK: Mutex<()> = Mutex::new(());
/// Set at restart: the helper calls the functions of the pending registrations itself.
static DELIVER: AtomicBool = AtomicBool::new(false);

fn new_netlink_socket() -> std::io::Result<i32> {
    // SAFETY: a plain socket call.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The helper wakes up now and then to see whether a restart left it calls to make.
    let t = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: sets a receive timeout from a local timeval.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&t as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    Ok(fd)
}

/// The socket the kernel sends `SIGEV_THREAD` notifications to; starts the helper on first use
/// (again in a forked child, which inherits neither).
fn helper_socket() -> std::io::Result<i32> {
    let pid = kernel_pid();
    let _g = HELPER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if HELPER_PID.load(Ordering::Acquire) == pid {
        return Ok(HELPER_FD.load(Ordering::Acquire));
    }
    let fd = new_netlink_socket()?;
    // The checkpoint leaves it alone; restart makes a new one at the same number.
    crate::plugin::services::dmtcp_protect_fd(fd);
    HELPER_FD.store(fd, Ordering::Release);
    let mut th: libc::pthread_t = 0;
    // SAFETY: a detached helper thread running `helper_main`.
    unsafe {
        if libc::pthread_create(&mut th, std::ptr::null(), helper_main, std::ptr::null_mut()) != 0 {
            libc::close(fd);
            return Err(std::io::Error::other(
                "cannot start the mq_notify helper thread",
            ));
        }
        libc::pthread_detach(th);
    }
    HELPER_PID.store(pid, Ordering::Release);
    Ok(fd)
}

/// Restart, before the program's threads run: a new netlink socket at the old number (the
/// helper thread, restored in its `recv`, reads from that number).
pub fn restore_helper() {
    let fd = HELPER_FD.load(Ordering::Acquire);
    if fd < 0 || HELPER_PID.load(Ordering::Acquire) == 0 {
        return;
    }
    match new_netlink_socket() {
        Ok(s) => {
            // SAFETY: moves our new socket onto the helper's number.
            if s != fd && unsafe { libc::dup3(s, fd, libc::O_CLOEXEC) } < 0 {
                crate::warn!(
                    "mq_notify helper: cannot place its socket: {}",
                    std::io::Error::last_os_error()
                );
            }
            if s != fd {
                // SAFETY: closing the temporary.
                unsafe { libc::close(s) };
            }
            HELPER_PID.store(kernel_pid(), Ordering::Release);
        }
        Err(e) => crate::warn!("mq_notify helper: cannot create its socket: {e}"),
    }
    // The messages of the registrations that fired before the checkpoint were in the old
    // socket: the helper makes those calls itself.
    DELIVER.store(true, Ordering::Release);
}

/// The pending registrations' functions, taken out of the list (restart only).
fn take_pending() -> Vec<How> {
    crate::ckpt_lock::enter();
    let mut regs = REGS.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    regs.retain(|r| {
        let take = r.pending && !r.live;
        if take {
            out.push(r.how);
        }
        !take
    });
    drop(regs);
    crate::ckpt_lock::leave();
    out
}

fn call(how: How) {
    if let How::Thread { function, value } = how {
        // SAFETY: the program gave this function for this registration; glibc passes the
        // `union sigval` by value.
        let f: extern "C" fn(usize) = unsafe { std::mem::transmute(function) };
        f(value);
    }
}

extern "C" fn helper_main(_: *mut libc::c_void) -> *mut libc::c_void {
    loop {
        let fd = HELPER_FD.load(Ordering::Acquire);
        let mut cookie = [0u8; NOTIFY_COOKIE_LEN];
        // SAFETY: receives one cookie into our buffer.
        let n = unsafe {
            libc::recv(
                fd,
                cookie.as_mut_ptr().cast(),
                cookie.len(),
                libc::MSG_NOSIGNAL | libc::MSG_WAITALL,
            )
        };
        let err = std::io::Error::last_os_error().raw_os_error();
        if DELIVER.swap(false, Ordering::AcqRel) {
            take_pending().into_iter().for_each(call);
        }
        if n != NOTIFY_COOKIE_LEN as isize {
            if n < 0 && !matches!(err, Some(libc::EINTR | libc::EAGAIN)) {
                // The socket is being replaced (restart): try again shortly.
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            continue;
        }
        let ino = u64::from_ne_bytes(cookie[..8].try_into().unwrap_or_default());
        let serial = u64::from_ne_bytes(cookie[8..16].try_into().unwrap_or_default());
        // Fired (call it) or removed: either way the kernel has dropped the registration.
        crate::ckpt_lock::enter();
        let how = {
            let mut regs = REGS.lock().unwrap_or_else(|e| e.into_inner());
            let i = regs.iter().position(|r| r.ino == ino && r.serial == serial);
            i.map(|i| regs.remove(i).how)
        };
        crate::ckpt_lock::leave();
        if cookie[NOTIFY_COOKIE_LEN - 1] == NOTIFY_WOKENUP
            && let Some(how) = how
        {
            call(how);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_queue_status_line() {
        let s = "QSIZE:5          NOTIFY:0     SIGNO:34    NOTIFY_PID:4321  \n";
        assert_eq!(parse_notify_pid(s), Some(4321));
        assert_eq!(
            parse_notify_pid("QSIZE:0 NOTIFY:0 SIGNO:0 NOTIFY_PID:0\n"),
            Some(0)
        );
        assert_eq!(parse_notify_pid("garbage"), None);
    }

    #[test]
    fn sigevent_layouts_match_the_kernel_and_glibc() {
        assert_eq!(std::mem::size_of::<KernelSigevent>(), 64);
        assert_eq!(std::mem::size_of::<libc::sigevent>(), 64);
        // glibc's SIGEV_THREAD members follow value, signo and notify.
        assert_eq!(std::mem::offset_of!(UserSigevent, function), 16);
    }
}
