//! Raw Linux x86-64 system calls: no libc, no errno, no TLS.
//!
//! Used by the freestanding restorer and by the parts of the runtime that run while the
//! thread pointer or the C library cannot be trusted (signal handlers of frozen threads, the
//! restart entry before the thread pointer is restored). Results are the kernel's: a value in
//! `-4095..0` is `-errno`.

use core::arch::asm;

pub const SYS_READ: usize = 0;
pub const SYS_WRITE: usize = 1;
pub const SYS_OPEN: usize = 2;
pub const SYS_CLOSE: usize = 3;
pub const SYS_MMAP: usize = 9;
pub const SYS_MPROTECT: usize = 10;
pub const SYS_MUNMAP: usize = 11;
pub const SYS_RT_SIGACTION: usize = 13;
pub const SYS_RT_SIGPROCMASK: usize = 14;
pub const SYS_RT_SIGRETURN: usize = 15;
pub const SYS_MREMAP: usize = 25;
pub const SYS_GETPID: usize = 39;
pub const SYS_CLONE: usize = 56;
pub const SYS_KILL: usize = 62;
pub const SYS_GETPPID: usize = 110;
pub const SYS_WAITID: usize = 247;
pub const SYS_EXIT: usize = 60;
pub const SYS_CHDIR: usize = 80;
pub const SYS_UMASK: usize = 95;
pub const SYS_SIGALTSTACK: usize = 131;
pub const SYS_PRCTL: usize = 157;
pub const SYS_ARCH_PRCTL: usize = 158;
pub const SYS_GETTID: usize = 186;
pub const SYS_TKILL: usize = 200;
pub const SYS_FUTEX: usize = 202;
pub const SYS_SCHED_SETAFFINITY: usize = 203;
pub const SYS_SET_TID_ADDRESS: usize = 218;
pub const SYS_EXIT_GROUP: usize = 231;
pub const SYS_TGKILL: usize = 234;
pub const SYS_SET_ROBUST_LIST: usize = 273;
pub const SYS_GET_ROBUST_LIST: usize = 274;
pub const SYS_GETDENTS64: usize = 217;
pub const SYS_RSEQ: usize = 334;
pub const SYS_CLONE3: usize = 435;
pub const SYS_SETITIMER: usize = 38;

pub const ARCH_SET_FS: usize = 0x1002;
pub const ARCH_GET_FS: usize = 0x1003;

pub const PROT_READ: usize = 1;
pub const PROT_WRITE: usize = 2;
pub const MAP_PRIVATE: usize = 0x02;
pub const MAP_FIXED: usize = 0x10;
pub const MAP_ANONYMOUS: usize = 0x20;
pub const MAP_GROWSDOWN: usize = 0x100;
pub const MAP_NORESERVE: usize = 0x4000;
pub const MAP_FIXED_NOREPLACE: usize = 0x100000;
pub const MREMAP_MAYMOVE: usize = 1;
pub const MREMAP_FIXED: usize = 2;

pub const PR_SET_NAME: usize = 15;
pub const PR_GET_NAME: usize = 16;
pub const PR_SET_MM: usize = 35;
pub const PR_SET_MM_MAP: usize = 14;

pub const FUTEX_WAIT_PRIVATE: usize = 128;
pub const FUTEX_WAKE_PRIVATE: usize = 129;

/// `rseq` flag to unregister and the signature glibc registers with.
pub const RSEQ_FLAG_UNREGISTER: usize = 1;
pub const RSEQ_SIG: usize = 0x5305_3053;

/// True for a raw result that is an error (`-4095..=-1`).
pub fn is_err(r: isize) -> bool {
    (-4095..0).contains(&r)
}

/// # Safety
/// The caller guarantees the system call and its arguments are valid for this process.
#[inline(always)]
pub unsafe fn syscall0(n: usize) -> isize {
    let r: isize;
    // SAFETY: the caller vouches for the call; rcx and r11 are clobbered by `syscall`.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => r, lateout("rcx") _, lateout("r11") _,
             options(nostack));
    }
    r
}

/// # Safety
/// As [`syscall0`].
#[inline(always)]
pub unsafe fn syscall1(n: usize, a1: usize) -> isize {
    let r: isize;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => r, in("rdi") a1,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    r
}

/// # Safety
/// As [`syscall0`].
#[inline(always)]
pub unsafe fn syscall2(n: usize, a1: usize, a2: usize) -> isize {
    let r: isize;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => r, in("rdi") a1, in("rsi") a2,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    r
}

/// # Safety
/// As [`syscall0`].
#[inline(always)]
pub unsafe fn syscall3(n: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let r: isize;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => r, in("rdi") a1, in("rsi") a2,
             in("rdx") a3, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    r
}

/// # Safety
/// As [`syscall0`].
#[inline(always)]
pub unsafe fn syscall4(n: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    let r: isize;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => r, in("rdi") a1, in("rsi") a2,
             in("rdx") a3, in("r10") a4, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    r
}

/// # Safety
/// As [`syscall0`].
#[inline(always)]
pub unsafe fn syscall5(n: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize) -> isize {
    let r: isize;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => r, in("rdi") a1, in("rsi") a2,
             in("rdx") a3, in("r10") a4, in("r8") a5, lateout("rcx") _, lateout("r11") _,
             options(nostack));
    }
    r
}

/// # Safety
/// As [`syscall0`].
#[inline(always)]
pub unsafe fn syscall6(
    n: usize,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> isize {
    let r: isize;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => r, in("rdi") a1, in("rsi") a2,
             in("rdx") a3, in("r10") a4, in("r8") a5, in("r9") a6,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    r
}

/// Writes all of `buf` to `fd`, ignoring errors (diagnostics only).
pub fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writing from a valid slice.
        let n = unsafe { syscall3(SYS_WRITE, fd as usize, buf.as_ptr() as usize, buf.len()) };
        if n <= 0 {
            return;
        }
        buf = &buf[n as usize..];
    }
}

pub fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { syscall0(SYS_GETTID) as i32 }
}

pub fn getpid() -> i32 {
    // SAFETY: getpid has no arguments and cannot fail.
    unsafe { syscall0(SYS_GETPID) as i32 }
}

pub fn getppid() -> i32 {
    // SAFETY: getppid has no arguments and cannot fail.
    unsafe { syscall0(SYS_GETPPID) as i32 }
}

/// The calling thread's FS base (its thread pointer).
pub fn get_fs() -> u64 {
    let mut fs: u64 = 0;
    // SAFETY: ARCH_GET_FS writes one u64 to a valid local.
    unsafe { syscall2(SYS_ARCH_PRCTL, ARCH_GET_FS, &mut fs as *mut u64 as usize) };
    fs
}

/// Waits while `*word == expected` (spurious wake-ups are the caller's loop's business).
pub fn futex_wait(word: &core::sync::atomic::AtomicU32, expected: u32) {
    // SAFETY: futex on a valid, aligned u32.
    unsafe {
        syscall4(
            SYS_FUTEX,
            word.as_ptr() as usize,
            FUTEX_WAIT_PRIVATE,
            expected as usize,
            0,
        )
    };
}

pub fn futex_wake_all(word: &core::sync::atomic::AtomicU32) {
    // SAFETY: futex on a valid, aligned u32.
    unsafe {
        syscall3(
            SYS_FUTEX,
            word.as_ptr() as usize,
            FUTEX_WAKE_PRIVATE,
            i32::MAX as usize,
        )
    };
}

/// Ends the whole process at once.
pub fn exit_group(code: i32) -> ! {
    loop {
        // SAFETY: exit_group does not return.
        unsafe { syscall1(SYS_EXIT_GROUP, code as usize) };
    }
}

/// Formats numbers into a fixed buffer, for diagnostics without allocation.
pub struct LineBuf {
    pub buf: [u8; 256],
    pub len: usize,
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuf {
    pub const fn new() -> Self {
        LineBuf {
            buf: [0; 256],
            len: 0,
        }
    }

    pub fn push(&mut self, s: &[u8]) -> &mut Self {
        for &b in s {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        self
    }

    pub fn hex(&mut self, v: u64) -> &mut Self {
        self.push(b"0x");
        let mut started = false;
        for i in (0..16).rev() {
            let d = ((v >> (i * 4)) & 0xf) as u8;
            if d != 0 || started || i == 0 {
                started = true;
                self.push(&[if d < 10 { b'0' + d } else { b'a' + d - 10 }]);
            }
        }
        self
    }

    pub fn dec(&mut self, v: i64) -> &mut Self {
        if v < 0 {
            self.push(b"-");
        }
        let mut u = v.unsigned_abs();
        let mut tmp = [0u8; 20];
        let mut n = 0;
        loop {
            tmp[n] = b'0' + (u % 10) as u8;
            n += 1;
            u /= 10;
            if u == 0 {
                break;
            }
        }
        while n > 0 {
            n -= 1;
            self.push(&[tmp[n]]);
        }
        self
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}
