//! The restoring steps, run by the freestanding restorer with nothing else mapped that could
//! get in the way: unmap everything but the hole and the staged content, put the kernel's
//! vvar/vdso pages where the program expects them, move every region into place, restore the
//! memory descriptor's layout fields, and enter the restored runtime.

use crate::abi::{HOLE_START, KernelArea, PARK_MAX, PARK_OFFSET, Range, RegionMove, RestorerArgs};
use crate::sys::{self, LineBuf};

/// Lowest and highest addresses a user mapping can have (47-bit address space).
const USER_BOTTOM: u64 = 0x1000;
const USER_TOP: u64 = 0x7fff_ffff_f000;

fn fail(log_fd: i64, what: &[u8], addr: u64, len: u64, err: isize) -> ! {
    let mut l = LineBuf::new();
    l.push(b"dmtcp_restart: cannot restore the address space: ")
        .push(what)
        .push(b" at ")
        .hex(addr)
        .push(b" (length ")
        .hex(len)
        .push(b", errno ")
        .dec(-(err as i64))
        .push(b")\n");
    sys::write_all(log_fd as i32, l.as_bytes());
    if err == -17 {
        // EEXIST: something already sits there; say what.
        crate::collision::report(log_fd as i32, addr, len);
    }
    sys::exit_group(crate::abi::EXIT_RESTORE_FAILED)
}

/// Copies `len` bytes without calling `memcpy` (there is none here).
///
/// # Safety
/// Both ranges are valid and do not overlap.
pub unsafe fn copy_bytes(dst: u64, src: u64, len: u64) {
    // SAFETY: the caller guarantees the ranges; `rep movsb` copies forwards.
    unsafe {
        core::arch::asm!("rep movsb", inout("rdi") dst => _, inout("rsi") src => _,
                         inout("rcx") len => _, options(nostack, preserves_flags));
    }
}

/// Rebuilds the address space described by `args` and enters the restored runtime.
///
/// # Safety
/// `args` and its tables live in the hole, and the caller runs on the hole's stack: everything
/// outside the `keep` ranges is unmapped here.
pub unsafe fn run(args: &RestorerArgs) -> ! {
    let log = args.log_fd;
    // SAFETY: dmtcp_restart wrote the tables in the hole with these lengths.
    let keep =
        unsafe { core::slice::from_raw_parts(args.keep as *const Range, args.n_keep as usize) };
    // SAFETY: as above.
    let moves = unsafe {
        core::slice::from_raw_parts(args.moves as *const RegionMove, args.n_moves as usize)
    };

    // 1. Unmap every gap between the ranges we keep: dmtcp_restart's code, heap, stack and
    //    libraries all go.
    let mut cursor = USER_BOTTOM;
    for r in keep {
        if r.start > cursor {
            // SAFETY: nothing between the kept ranges is used from here on.
            unsafe {
                sys::syscall2(
                    sys::SYS_MUNMAP,
                    cursor as usize,
                    (r.start - cursor) as usize,
                )
            };
        }
        cursor = cursor.max(r.end);
    }
    if cursor < USER_TOP {
        // SAFETY: as above.
        unsafe {
            sys::syscall2(
                sys::SYS_MUNMAP,
                cursor as usize,
                (USER_TOP - cursor) as usize,
            )
        };
    }

    // 2. The kernel's pages: park them in the hole (keeping their relative offsets, since the
    //    vdso reaches vvar RIP-relatively), then move them to the saved addresses.
    // SAFETY: the kernel areas are live mappings that only the program will use.
    unsafe { move_kernel_areas(log, &args.kernel) };

    // 3. Every region to its address.
    for m in moves {
        // SAFETY: targets are free (everything else is unmapped) and staging ranges are ours.
        unsafe { place_region(log, m) };
    }
    for m in moves.iter().filter(|m| m.fd >= 0) {
        // SAFETY: dmtcp_restart opened these descriptors for us only (closing twice is EBADF).
        unsafe { sys::syscall1(sys::SYS_CLOSE, m.fd as usize) };
    }

    // 4. brk, argv/env and auxv bounds, so the program's heap grows where it used to and
    //    /proc/self/cmdline shows the program again. Failure is not fatal: only a later brk
    //    growth would suffer.
    if args.set_mm != 0 {
        let mm = &args.mm as *const _ as usize;
        // SAFETY: PR_SET_MM_MAP reads one struct prctl_mm_map of the given size.
        let r = unsafe {
            sys::syscall5(
                sys::SYS_PRCTL,
                sys::PR_SET_MM,
                sys::PR_SET_MM_MAP,
                mm,
                core::mem::size_of_val(&args.mm),
                0,
            )
        };
        if sys::is_err(r) {
            let mut l = LineBuf::new();
            l.push(b"dmtcp_restart: warning: cannot restore the brk and argument bounds (errno ")
                .dec(-(r as i64))
                .push(b")\n");
            sys::write_all(log as i32, l.as_bytes());
        }
    }

    // 5. Into the restored runtime.
    // SAFETY: the entry is `extern "C" fn(u64) -> !` in the library just restored.
    let entry: extern "C" fn(u64) -> ! = unsafe { core::mem::transmute(args.entry as usize) };
    entry(args.entry_arg)
}

unsafe fn move_kernel_areas(log: i64, areas: &[KernelArea; 3]) {
    let present = || areas.iter().filter(|a| a.len != 0);
    let Some(cur_min) = present().map(|a| a.current).min() else {
        return;
    };
    let Some(tgt_min) = present().map(|a| a.target).min() else {
        return;
    };
    let park = HOLE_START + PARK_OFFSET;
    for a in present() {
        let off = a.current - cur_min;
        if off + a.len > PARK_MAX {
            fail(
                log,
                b"the vdso/vvar pages are spread too widely to move",
                a.current,
                a.len,
                0,
            );
        }
        let to = park + off;
        // SAFETY: moving a kernel special mapping into our parking range.
        let r = unsafe { remap(a.current, a.len, to) };
        if r != to as isize {
            fail(log, b"cannot park a vdso/vvar mapping", a.current, a.len, r);
        }
    }
    for a in present() {
        let from = park + (a.current - cur_min);
        let to = tgt_min + (a.current - cur_min);
        if to != a.target {
            fail(
                log,
                b"the vdso/vvar layout differs from the image's",
                a.target,
                a.len,
                0,
            );
        }
        // SAFETY: the target is free: everything there was unmapped.
        let r = unsafe { remap(from, a.len, to) };
        if r != to as isize {
            fail(log, b"cannot move a vdso/vvar mapping", to, a.len, r);
        }
    }
}

unsafe fn remap(from: u64, len: u64, to: u64) -> isize {
    // SAFETY: the caller owns both ranges.
    unsafe {
        sys::syscall5(
            sys::SYS_MREMAP,
            from as usize,
            len as usize,
            len as usize,
            sys::MREMAP_MAYMOVE | sys::MREMAP_FIXED,
            to as usize,
        )
    }
}

/// Maps the region from its file, then copies over the saved pages that differ from it.
unsafe fn place_file_region(log: i64, m: &RegionMove) {
    let flags = if m.shared != 0 {
        0x01
    } else {
        sys::MAP_PRIVATE
    } | sys::MAP_FIXED_NOREPLACE;
    let writable = m.shared == 0 || m.prot & sys::PROT_WRITE as u64 != 0;
    let prot = if writable {
        sys::PROT_READ | sys::PROT_WRITE
    } else {
        sys::PROT_READ
    };
    // SAFETY: a file mapping at a free address.
    let r = unsafe {
        sys::syscall6(
            sys::SYS_MMAP,
            m.target as usize,
            m.len as usize,
            prot,
            flags,
            m.fd as usize,
            m.file_offset as usize,
        )
    };
    if r != m.target as isize {
        fail(log, b"cannot map a region's file", m.target, m.len, r);
    }
    if m.staging != 0 {
        if writable {
            let page = 4096u64;
            let mut off = 0;
            while off < m.len {
                let (dst, src) = (m.target + off, m.staging + off);
                // SAFETY: both ranges are mapped and readable; the file covers the region
                // (dmtcp_restart checked its size).
                if unsafe { !same_page(dst, src) } {
                    // SAFETY: as above, and the target is writable.
                    unsafe { copy_bytes(dst, src, page) };
                }
                off += page;
            }
        }
        // SAFETY: our own staging mapping.
        unsafe { sys::syscall2(sys::SYS_MUNMAP, m.staging as usize, m.len as usize) };
    }
    // SAFETY: our own fresh mapping.
    let r = unsafe {
        sys::syscall3(
            sys::SYS_MPROTECT,
            m.target as usize,
            m.len as usize,
            m.prot as usize,
        )
    };
    if sys::is_err(r) {
        fail(log, b"cannot set a region's protection", m.target, m.len, r);
    }
}

/// Compares two pages word by word.
///
/// # Safety
/// Both pages are mapped and readable.
unsafe fn same_page(a: u64, b: u64) -> bool {
    let (a, b) = (a as *const u64, b as *const u64);
    for i in 0..512 {
        // SAFETY: within the two pages.
        if unsafe { a.add(i).read_volatile() != b.add(i).read_volatile() } {
            return false;
        }
    }
    true
}

unsafe fn place_region(log: i64, m: &RegionMove) {
    if m.fd >= 0 {
        // SAFETY: as for the other kinds.
        return unsafe { place_file_region(log, m) };
    }
    let fresh = |prot: u64| {
        // SAFETY: a new anonymous mapping at a free address.
        unsafe {
            sys::syscall6(
                sys::SYS_MMAP,
                m.target as usize,
                m.len as usize,
                prot as usize,
                sys::MAP_PRIVATE
                    | sys::MAP_ANONYMOUS
                    | sys::MAP_FIXED_NOREPLACE
                    | m.map_flags as usize,
                usize::MAX,
                0,
            )
        }
    };
    if m.staging == 0 {
        let r = fresh(m.prot);
        if r != m.target as isize {
            fail(log, b"cannot map a region", m.target, m.len, r);
        }
        return;
    }
    if m.map_flags & sys::MAP_GROWSDOWN as u64 != 0 {
        // A growable stack must be a fresh MAP_GROWSDOWN mapping: copy its (small) content.
        let r = fresh((sys::PROT_READ | sys::PROT_WRITE) as u64);
        if r != m.target as isize {
            fail(log, b"cannot map a stack region", m.target, m.len, r);
        }
        // SAFETY: both mappings are ours and `len` long.
        unsafe {
            copy_bytes(m.target, m.staging, m.len);
            sys::syscall2(sys::SYS_MUNMAP, m.staging as usize, m.len as usize);
        }
    } else {
        // SAFETY: the staging mapping is ours; the target is free.
        let r = unsafe { remap(m.staging, m.len, m.target) };
        if r != m.target as isize {
            fail(log, b"cannot move a region into place", m.target, m.len, r);
        }
    }
    // SAFETY: our own fresh mapping.
    let r = unsafe {
        sys::syscall3(
            sys::SYS_MPROTECT,
            m.target as usize,
            m.len as usize,
            m.prot as usize,
        )
    };
    if sys::is_err(r) {
        fail(log, b"cannot set a region's protection", m.target, m.len, r);
    }
}
