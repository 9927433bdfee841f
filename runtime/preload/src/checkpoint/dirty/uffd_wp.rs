//! A userfaultfd in asynchronous write-protect mode: the kernel resolves a write to a
//! protected page itself (it only clears the page's uffd-wp bit, no message is queued), so the
//! descriptor needs no reader and the bit tells `PAGEMAP_SCAN` whether the page was written.

use std::io;

const UFFD_API: u64 = 0xaa;
/// Unprivileged: only faults of user code go to a handler (irrelevant in async mode).
const UFFD_USER_MODE_ONLY: libc::c_long = 1;
const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
/// Holes get markers, so a page populated later counts as written (and `PAGEMAP_SCAN` may
/// write-protect anonymous memory at all).
const FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const FEATURE_WP_ASYNC: u64 = 1 << 15;
/// Bit of UFFDIO_REGISTER in `ioctls` (`_UFFDIO_REGISTER` is 0x00).
const IOCTL_REGISTER: u64 = 1;

#[repr(C)]
struct ApiArg {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
struct RegisterArg {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

/// The lowest fd number the descriptor is moved to, clear of the program's fds (the
/// runtime's other fds are 821 and 822).
const FD_MIN: libc::c_int = 830;

fn last_err() -> io::Error {
    io::Error::last_os_error()
}

/// Creates the descriptor (close-on-exec, moved to a high number). Fails when the kernel
/// lacks userfaultfd, asynchronous write-protection or write-protection of holes.
pub fn open() -> io::Result<i32> {
    let flags = (libc::O_CLOEXEC | libc::O_NONBLOCK) as libc::c_long;
    // SAFETY: plain system calls creating a descriptor that we own.
    let mut fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY) };
    if fd < 0 {
        // SAFETY: as above (privileged, or vm.unprivileged_userfaultfd=1).
        fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
    }
    if fd < 0 {
        return Err(last_err());
    }
    let fd = fd as libc::c_int;
    let wanted = FEATURE_WP_ASYNC | FEATURE_WP_UNPOPULATED;
    let mut api = ApiArg {
        api: UFFD_API,
        features: wanted,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_API reads and writes one ApiArg.
    let r = unsafe { libc::ioctl(fd, UFFDIO_API, &mut api) };
    let err = if r != 0 {
        Some(last_err())
    } else if api.features & wanted != wanted || api.ioctls & IOCTL_REGISTER == 0 {
        Some(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
    } else {
        None
    };
    if let Some(e) = err {
        // SAFETY: closing the descriptor made above.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    // SAFETY: duplicating our descriptor above the program's range, then closing the original.
    let high = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, FD_MIN) };
    let e = last_err();
    // SAFETY: as above.
    unsafe { libc::close(fd) };
    if high < 0 {
        return Err(e);
    }
    Ok(high)
}

/// Registers `[start, end)` (page-aligned, private anonymous) for asynchronous
/// write-protection. Registering a range again with the same descriptor is harmless.
pub fn register(fd: i32, start: u64, end: u64) -> io::Result<()> {
    let mut arg = RegisterArg {
        start,
        len: end - start,
        mode: UFFDIO_REGISTER_MODE_WP,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_REGISTER reads and writes one RegisterArg.
    if unsafe { libc::ioctl(fd, UFFDIO_REGISTER, &mut arg) } != 0 {
        return Err(last_err());
    }
    Ok(())
}

/// Whether `fd` is a userfaultfd (a descriptor inherited through fork may have been closed
/// and its number reused by the program).
pub fn is_uffd(fd: i32) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|p| p.as_os_str() == "anon_inode:[userfaultfd]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<ApiArg>(), 24);
        assert_eq!(std::mem::size_of::<RegisterArg>(), 32);
        // _IOWR(0xAA, nr, size): direction 3, size, type, number.
        let iowr =
            |nr: libc::c_ulong, size: libc::c_ulong| (3 << 30) | (size << 16) | (0xaa << 8) | nr;
        assert_eq!(UFFDIO_API, iowr(0x3f, 24));
        assert_eq!(UFFDIO_REGISTER, iowr(0x00, 32));
    }
}
