//! New processes after a virtual restart made by `vfork`, `clone` and `posix_spawn`: like a
//! `fork` child (see `wrappers::fork`), one whose real pid is a virtual pid in use is thrown
//! away and the call is made again, so no two tasks of the computation answer to one id.
//! Before any virtual restart no real pid can be such an id, and each wrapper is its plain call
//! plus one load.

use super::real::real;
use super::table::{self, NewId, classify_new};
use core::sync::atomic::{AtomicBool, Ordering};
use dmtcp_restorer::sys;
use libc::{c_int, c_void, pid_t};

/// Attempts before giving up with EAGAIN (each one found a taken pid).
const ATTEMPTS: usize = 100;
const SYS_WAIT4: usize = 61;

/// Kills (if it still runs) and reaps a child that was created only to be thrown away.
fn discard(pid: pid_t) {
    // SAFETY: signalling and waiting for our own unreaped child (its pid cannot be reused).
    unsafe {
        sys::syscall2(62, pid as usize, libc::SIGKILL as usize);
        sys::syscall4(SYS_WAIT4, pid as usize, 0, libc::__WALL as usize, 0);
    }
}

/// `vfork` after a virtual restart is `fork` (whose wrapper checks the new pid; the child can
/// neither refuse its pid nor be retried while it borrows the parent's memory and stack).
/// Before that it is glibc's `vfork`, reached by a jump so the child returns from it to the
/// caller exactly as without us (a vfork child must not return through a frame of ours).
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vfork() -> pid_t {
    core::arch::naked_asm!(
        "cmp byte ptr [rip + {active}], 0",
        "jne 2f",
        "mov rax, qword ptr [rip + {real}]",
        "test rax, rax",
        "jz 2f",
        "jmp rax",
        "2:",
        "jmp {as_fork}",
        active = sym table::ACTIVE,
        real = sym REAL_VFORK,
        as_fork = sym vfork_as_fork,
    )
}

/// glibc's `vfork`, set at start-up (0 before: `vfork` then forks).
static REAL_VFORK: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Resolved in a constructor of its own: `vfork` must reach glibc's also in processes that
/// are not members (where the runtime's start-up returns early).
extern "C" fn resolve_vfork(_: i32, _: *const *const u8, _: *const *const u8) {
    // SAFETY: dlsym with a static name.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, c"vfork".as_ptr()) } as usize;
    REAL_VFORK.store(p, Ordering::Relaxed);
}

#[used]
#[unsafe(link_section = ".init_array")]
static RESOLVE_VFORK: extern "C" fn(i32, *const *const u8, *const *const u8) = resolve_vfork;

extern "C" fn vfork_as_fork() -> pid_t {
    // SAFETY: our fork wrapper, with fork's contract.
    unsafe { super::wrappers::fork() }
}

type CloneFn = extern "C" fn(*mut c_void) -> c_int;
type RealClone = unsafe extern "C" fn(
    CloneFn,
    *mut c_void,
    c_int,
    *mut c_void,
    *mut pid_t,
    *mut c_void,
    *mut pid_t,
) -> c_int;

/// What the child of a checked `clone` starts with.
struct Start {
    func: CloneFn,
    arg: *mut c_void,
    /// Set by the child once it copied the two fields above (the parent's stack holds them).
    read: AtomicBool,
}

/// First code of a checked `clone` child: leave at once when the pid is taken (the parent
/// sees the same table and calls `clone` again). Raw system calls only: with `CLONE_VM` this
/// runs on the caller's stack with the parent thread's TLS.
extern "C" fn clone_child(p: *mut c_void) -> c_int {
    // SAFETY: `p` is the parent's `Start`, alive until `read` is set.
    let s = unsafe { &*p.cast::<Start>() };
    let (func, arg) = (s.func, s.arg);
    s.read.store(true, Ordering::Release);
    if classify_new(sys::getpid()) == NewId::Taken {
        sys::exit_group(0);
    }
    func(arg)
}

/// `clone(fn, stack, flags, arg, ...)`: glibc's is variadic, but on x86-64 reading all seven
/// arguments is harmless (glibc itself reads the registers and the stack slot whatever the
/// flags) and they are passed on unchanged. Threads (`CLONE_THREAD`) are checked by the thread
/// start instead (`vids::on_new_thread`).
///
/// # Safety
/// As `clone(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clone(
    func: CloneFn,
    stack: *mut c_void,
    flags: c_int,
    arg: *mut c_void,
    ptid: *mut pid_t,
    tls: *mut c_void,
    ctid: *mut pid_t,
) -> c_int {
    let f: RealClone = real!(clone);
    if !table::active() || flags & libc::CLONE_THREAD != 0 {
        // SAFETY: forwarding.
        return unsafe { f(func, stack, flags, arg, ptid, tls, ctid) };
    }
    for _ in 0..ATTEMPTS {
        let start = Start {
            func,
            arg,
            read: AtomicBool::new(false),
        };
        let p = (&start as *const Start).cast_mut().cast::<c_void>();
        // SAFETY: forwarding, with our start routine in front of the caller's.
        let pid = unsafe { f(clone_child, stack, flags, p, ptid, tls, ctid) };
        if pid <= 0 {
            return pid;
        }
        // A child sharing our memory reads `start` from this frame: keep it until then.
        if flags & libc::CLONE_VM != 0 {
            while !start.read.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
        }
        if classify_new(pid) == NewId::Free {
            return pid;
        }
        crate::debug!("pid {pid} of a cloned child is a virtual pid in use; cloning again");
        discard(pid);
    }
    super::wrappers::ret(-(libc::EAGAIN as isize)) as c_int
}

/// Set in a `posix_spawn` child's environment after a virtual restart: the new program's
/// start-up checks its pid like a fork child (see [`exit_if_spawned_taken`]).
pub const SPAWNED_ENV: &str = "DMTCP_VIDS_SPAWNED";

/// The entry `SPAWNED_ENV=1` for a spawned child's environment, when ids are translated.
pub fn spawned_env() -> Option<&'static core::ffi::CStr> {
    table::active().then_some(c"DMTCP_VIDS_SPAWNED=1")
}

/// In the library constructor, after the table came in from the spawning parent: a child whose
/// pid is taken leaves before it joins (its parent spawns again).
pub fn exit_if_spawned_taken() {
    if std::env::var_os(SPAWNED_ENV).is_none() {
        return;
    }
    // SAFETY: the constructor runs before the program's main, with no other thread of ours.
    unsafe { std::env::remove_var(SPAWNED_ENV) };
    if classify_new(sys::getpid()) == NewId::Taken {
        sys::exit_group(0);
    }
}

/// After `posix_spawn` succeeded with child `*pid`: whether to spawn again (the pid was taken;
/// the child is gone).
///
/// # Safety
/// `pid` is the out-pointer the caller gave `posix_spawn`, or null.
pub unsafe fn spawned_taken(pid: *mut pid_t) -> bool {
    if !table::active() || pid.is_null() {
        return false;
    }
    // SAFETY: posix_spawn stored the child's pid there.
    let p = unsafe { *pid };
    if p <= 0 || classify_new(p) == NewId::Free {
        return false;
    }
    crate::debug!("pid {p} of a spawned child is a virtual pid in use; spawning again");
    discard(p);
    true
}

/// Tries `spawn` until the child's pid is free; `spawn` returns posix_spawn's answer.
///
/// # Safety
/// `pid` is null or the out-pointer `spawn` fills.
pub unsafe fn spawn_checked(pid: *mut pid_t, mut spawn: impl FnMut() -> c_int) -> c_int {
    for _ in 0..ATTEMPTS {
        let r = spawn();
        // SAFETY: forwarded from the caller.
        if r != 0 || !unsafe { spawned_taken(pid) } {
            return r;
        }
    }
    libc::EAGAIN
}
