//! Where the kernel put things in this process: the restorer hole, the vdso/vvar pages and the
//! memory descriptor's layout fields (brk, argv/env bounds, auxv).

use super::maps::Mapping;
use dmtcp_restorer::abi::{AUXV_MAX, HOLE_LEN, HOLE_START, KernelArea, MmMap, Range, SavedLayout};
use dmtcp_restorer::sys;
use std::sync::atomic::{AtomicBool, Ordering};

static HOLE_RESERVED: AtomicBool = AtomicBool::new(false);

/// Reserves the restorer hole (PROT_NONE, never saved). Failure only disables checkpoints.
pub fn reserve_hole() -> bool {
    if HOLE_RESERVED.load(Ordering::Acquire) {
        return true;
    }
    // SAFETY: a new inaccessible mapping at a fixed address that must be free.
    let r = unsafe {
        sys::syscall6(
            sys::SYS_MMAP,
            HOLE_START as usize,
            HOLE_LEN as usize,
            0,
            sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_NORESERVE | sys::MAP_FIXED_NOREPLACE,
            usize::MAX,
            0,
        )
    };
    let ok = r == HOLE_START as isize;
    HOLE_RESERVED.store(ok, Ordering::Release);
    ok
}

/// After a restart the hole holds the restorer and its stack: make it a plain reservation
/// again (MAP_FIXED replaces the pages atomically).
pub fn rereserve_hole() {
    // SAFETY: the hole is ours and no thread runs on it any more.
    unsafe {
        sys::syscall6(
            sys::SYS_MMAP,
            HOLE_START as usize,
            HOLE_LEN as usize,
            0,
            sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_NORESERVE | sys::MAP_FIXED,
            usize::MAX,
            0,
        )
    };
    HOLE_RESERVED.store(true, Ordering::Release);
}

pub fn in_hole(m: &Mapping) -> bool {
    m.start < HOLE_START + HOLE_LEN && m.end > HOLE_START
}

/// [vvar], [vvar_vclock], [vdso] from the maps, in that order (len 0 when absent).
pub fn kernel_areas(maps: &[Mapping]) -> [KernelArea; 3] {
    let mut out = [KernelArea::default(); 3];
    for m in maps {
        let i = match m.path.as_str() {
            "[vvar]" => 0,
            "[vvar_vclock]" => 1,
            "[vdso]" => 2,
            _ => continue,
        };
        out[i] = KernelArea {
            current: m.start,
            target: m.start,
            len: m.len(),
        };
    }
    out
}

/// The memory descriptor's fields from /proc/self/stat (and the current break).
pub fn mm_map() -> Option<MmMap> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<u64> = rest
        .split(' ')
        .map(|x| x.trim().parse().unwrap_or(0))
        .collect();
    // Field n of proc(5) is f[n - 3].
    let at = |n: usize| f.get(n - 3).copied().unwrap_or(0);
    // SAFETY: brk(0) only reports the current break.
    let brk = unsafe { sys::syscall1(12, 0) } as u64;
    Some(MmMap {
        start_code: at(26),
        end_code: at(27),
        start_stack: at(28),
        start_data: at(45),
        end_data: at(46),
        start_brk: at(47),
        brk,
        arg_start: at(48),
        arg_end: at(49),
        env_start: at(50),
        env_end: at(51),
        auxv: 0,
        auxv_size: 0,
        exe_fd: u32::MAX,
    })
}

/// The layout to store in the image header.
pub fn capture(maps: &[Mapping]) -> SavedLayout {
    let mut s = SavedLayout {
        hole: Range {
            start: HOLE_START,
            end: HOLE_START + HOLE_LEN,
        },
        kernel: kernel_areas(maps),
        ..SavedLayout::default()
    };
    if let Some(mm) = mm_map() {
        s.has_mm = true;
        s.mm = mm;
    }
    let auxv = std::fs::read("/proc/thread-self/auxv").unwrap_or_default();
    if auxv.len() <= AUXV_MAX {
        s.auxv[..auxv.len()].copy_from_slice(&auxv);
        s.auxv_len = auxv.len();
    }
    s
}

pub fn encode(s: &SavedLayout) -> Vec<u8> {
    let mut out = vec![0u8; s.encoded_len()];
    s.encode(&mut out);
    out
}
