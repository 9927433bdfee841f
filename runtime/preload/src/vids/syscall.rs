//! `syscall(2)`: programs reach the kernel's id calls directly too (`syscall(SYS_gettid)` is
//! the classic way to get a tid). The id-taking or id-returning numbers are translated like
//! their libc wrappers; every other number passes straight to the kernel.
//!
//! `syscall` is variadic; on x86-64 a variadic call passes integer arguments exactly like a
//! call with six fixed ones, so reading six (some of them unused garbage) is the ABI's own
//! behaviour for a raw system call.

use super::table::{signed_to_real, to_real, to_virtual};
use super::wrappers::{self, ret};
use dmtcp_restorer::sys;
use libc::c_long;

const GETPID: c_long = 39;
const KILL: c_long = 62;
const WAIT4: c_long = 61;
const GETPPID: c_long = 110;
const SETPGID: c_long = 109;
const GETPGID: c_long = 121;
const GETSID: c_long = 124;
const RT_SIGQUEUEINFO: c_long = 129;
const GETTID: c_long = 186;
const TKILL: c_long = 200;
const SCHED_SETAFFINITY: c_long = 203;
const SCHED_GETAFFINITY: c_long = 204;
const TGKILL: c_long = 234;
const WAITID: c_long = 247;
const RT_TGSIGQUEUEINFO: c_long = 297;
const KCMP: c_long = 312;
const PIDFD_OPEN: c_long = 434;

fn raw(n: c_long, a: [c_long; 6]) -> c_long {
    // SAFETY: the caller's own system call with its own arguments.
    ret(unsafe {
        sys::syscall6(
            n as usize,
            a[0] as usize,
            a[1] as usize,
            a[2] as usize,
            a[3] as usize,
            a[4] as usize,
            a[5] as usize,
        )
    })
}

fn real(v: c_long) -> c_long {
    to_real(v as i32) as c_long
}

/// # Safety
/// As `syscall(2)` with the given number.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn syscall(
    n: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    if !super::table::active() {
        return raw(n, [a1, a2, a3, a4, a5, a6]);
    }
    match n {
        GETPID | GETTID | GETPPID => {
            let r = raw(n, [0; 6]);
            to_virtual(r as i32) as c_long
        }
        KILL => raw(n, [signed_to_real(a1 as i32) as c_long, a2, 0, 0, 0, 0]),
        TKILL | GETPGID | GETSID | SCHED_SETAFFINITY | SCHED_GETAFFINITY | RT_SIGQUEUEINFO
        | PIDFD_OPEN => {
            let r = raw(n, [real(a1), a2, a3, a4, a5, a6]);
            if n == GETPGID || n == GETSID {
                to_virtual(r as i32) as c_long
            } else {
                r
            }
        }
        SETPGID => raw(n, [real(a1), real(a2), 0, 0, 0, 0]),
        TGKILL | RT_TGSIGQUEUEINFO => raw(n, [real(a1), real(a2), a3, a4, 0, 0]),
        KCMP => raw(n, [real(a1), real(a2), a3, a4, a5, 0]),
        WAIT4 => {
            let r = raw(n, [signed_to_real(a1 as i32) as c_long, a2, a3, a4, 0, 0]);
            to_virtual(r as i32) as c_long
        }
        WAITID => {
            let id = if a1 == libc::P_PID as c_long || a1 == libc::P_PGID as c_long {
                real(a2)
            } else {
                a2
            };
            let r = raw(n, [a1, id, a3, a4, a5, 0]);
            if r == 0 {
                // SAFETY: the kernel filled the caller's siginfo_t.
                unsafe { wrappers::virtualize_siginfo(a3 as *mut libc::siginfo_t) };
            }
            r
        }
        _ => raw(n, [a1, a2, a3, a4, a5, a6]),
    }
}
