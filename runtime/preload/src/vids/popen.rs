//! `pclose` waits, inside glibc, for the pid `popen` stored in its `FILE` (struct
//! `_IO_proc_file`: the `FILE`, its vtable pointer, then the pid). After a restart with
//! virtual ids that pid is the child's virtual one; glibc's internal `waitpid` would not
//! find it. Before the real `pclose`, a stored pid that the table maps to one of our
//! children is replaced by the real one. The stored value is only rewritten when it is such a
//! virtual id, so a different layout (a value that is no pid of ours) is left alone.

use super::real::real;
use super::table;
use libc::{FILE, c_int};

/// Offset of `pid` in glibc's `_IO_proc_file` (x86-64): `sizeof(struct _IO_FILE)` (216) plus
/// the vtable pointer (`libc::FILE` is opaque, so the size is spelled out).
const PID_OFFSET: usize = 216 + 8;

/// Is `pid` a child of this process (exited or not)?
fn is_our_child(pid: i32) -> bool {
    // SAFETY: a zeroed siginfo_t is a valid out-parameter.
    let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
    // SAFETY: WNOWAIT|WNOHANG neither reaps nor blocks; raw syscall (no translation).
    let r = unsafe {
        dmtcp_restorer::sys::syscall5(
            247, // waitid
            libc::P_PID as usize,
            pid as usize,
            &mut info as *mut libc::siginfo_t as usize,
            (libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) as usize,
            0,
        )
    };
    r == 0
}

/// # Safety
/// As `pclose(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pclose(fp: *mut FILE) -> c_int {
    let f: unsafe extern "C" fn(*mut FILE) -> c_int = real!(pclose);
    if table::active() && !fp.is_null() {
        // SAFETY: a FILE from popen is an _IO_proc_file, which holds the pid at PID_OFFSET.
        let slot = unsafe { fp.cast::<u8>().add(PID_OFFSET).cast::<i32>() };
        // SAFETY: as above.
        let stored = unsafe { slot.read_unaligned() };
        let real_pid = table::to_real(stored);
        if real_pid != stored && is_our_child(real_pid) {
            // SAFETY: as above; the same field, now naming the child by its real pid.
            unsafe { slot.write_unaligned(real_pid) };
        }
    }
    // SAFETY: forwarding.
    unsafe { f(fp) }
}
