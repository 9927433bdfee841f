//! The freestanding restorer: a static program with no libc, loaded by `dmtcp_restart` into
//! the hole and entered on the hole's stack with a pointer to its [`RestorerArgs`].
#![no_std]
#![no_main]

use dmtcp_restorer::abi::{RESTORER_MAGIC, RestorerArgs};
use dmtcp_restorer::sys;

/// # Safety
/// Entered only by `dmtcp_restart`, on the hole's stack, with its argument block.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start(args: *const RestorerArgs) -> ! {
    // SAFETY: dmtcp_restart passes a valid argument block in the hole.
    let args = unsafe { &*args };
    if args.magic != RESTORER_MAGIC {
        sys::write_all(2, b"dmtcp_restorer: run by dmtcp_restart only\n");
        sys::exit_group(2);
    }
    // SAFETY: we run on the hole's stack and the argument block lives in the hole.
    unsafe { dmtcp_restorer::restore::run(args) }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    sys::write_all(2, b"dmtcp_restorer: internal error\n");
    sys::exit_group(dmtcp_restorer::abi::EXIT_RESTORE_FAILED)
}

// The compiler may emit calls to these; there is no libc to provide them.

/// # Safety
/// C semantics.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: C memcpy contract.
    unsafe { dmtcp_restorer::restore::copy_bytes(dst as u64, src as u64, n as u64) };
    dst
}

/// # Safety
/// C semantics.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize) + n {
        // SAFETY: forward copy is correct when dst does not start inside src.
        unsafe { dmtcp_restorer::restore::copy_bytes(dst as u64, src as u64, n as u64) };
    } else {
        let mut i = n;
        while i > 0 {
            i -= 1;
            // SAFETY: within both ranges; volatile keeps this from becoming a memmove call.
            unsafe { core::ptr::write_volatile(dst.add(i), core::ptr::read_volatile(src.add(i))) };
        }
    }
    dst
}

/// # Safety
/// C semantics.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: C memset contract.
    unsafe {
        core::arch::asm!("rep stosb", inout("rdi") dst => _, inout("rcx") n => _, in("al") c as u8,
                         options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// C semantics.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: within both ranges.
        let (x, y) = unsafe {
            (
                core::ptr::read_volatile(a.add(i)),
                core::ptr::read_volatile(b.add(i)),
            )
        };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

/// # Safety
/// C semantics.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// core is built for unwinding and names this symbol; with panic=abort it is never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}
