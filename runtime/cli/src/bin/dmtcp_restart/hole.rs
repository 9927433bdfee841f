//! Loading the freestanding restorer into the hole, writing its argument block, and the jump.

use dmtcp_restorer::abi::{
    ARGS_MAX, ARGS_OFFSET, CODE_MAX, HOLE_LEN, HOLE_START, KernelArea, MmMap, RESTART_MAGIC,
    RESTORER_MAGIC, Range, RegionMove, RestartInfo, RestorerArgs, STACK_LEN, STACK_OFFSET,
};
use std::io;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum HoleError {
    #[error("cannot read the restorer {path}: {err}")]
    Read { path: String, err: io::Error },
    #[error("{path} is not a valid restorer binary ({what}); reinstall dmtcp")]
    BadElf { path: String, what: &'static str },
    #[error(
        "the restorer's address range {:#x}+{:#x} is in use in this process",
        HOLE_START,
        HOLE_LEN
    )]
    Busy,
    #[error("the restart tables do not fit in the restorer's argument area ({0} regions)")]
    TooBig(usize),
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]))
}

/// Maps the whole hole read-write, copies the restorer's PT_LOAD segments to their linked
/// addresses, and returns its entry point.
pub fn load_restorer(path: &Path) -> Result<u64, HoleError> {
    let p = path.display().to_string();
    let elf = std::fs::read(path).map_err(|err| HoleError::Read {
        path: p.clone(),
        err,
    })?;
    let bad = |what| HoleError::BadElf {
        path: p.clone(),
        what,
    };
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || u16_at(&elf, 18) != 62 {
        return Err(bad("not an x86-64 ELF64 file"));
    }
    if u16_at(&elf, 16) != 2 {
        return Err(bad("not a static executable"));
    }
    let entry = u64_at(&elf, 24);
    let phoff = u64_at(&elf, 32) as usize;
    let phentsize = u16_at(&elf, 54) as usize;
    let phnum = u16_at(&elf, 56) as usize;
    // SAFETY: a new mapping at a fixed address that must be free.
    let m = unsafe {
        libc::mmap(
            HOLE_START as *mut _,
            HOLE_LEN as usize,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            libc::MAP_PRIVATE
                | libc::MAP_ANONYMOUS
                | libc::MAP_NORESERVE
                | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if m as u64 != HOLE_START {
        return Err(HoleError::Busy);
    }
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if ph + 56 > elf.len() {
            return Err(bad("truncated program headers"));
        }
        if u32_at(&elf, ph) != 1 {
            continue; // not PT_LOAD
        }
        let off = u64_at(&elf, ph + 8) as usize;
        let vaddr = u64_at(&elf, ph + 16);
        let filesz = u64_at(&elf, ph + 32) as usize;
        let memsz = u64_at(&elf, ph + 40);
        if vaddr < HOLE_START || vaddr + memsz > HOLE_START + CODE_MAX || off + filesz > elf.len() {
            return Err(bad("a segment lies outside the restorer's code area"));
        }
        // SAFETY: the destination is inside the hole mapped above; the source is in `elf`.
        unsafe { std::ptr::copy_nonoverlapping(elf.as_ptr().add(off), vaddr as *mut u8, filesz) };
    }
    if !(HOLE_START..HOLE_START + CODE_MAX).contains(&entry) {
        return Err(bad("the entry point lies outside the code area"));
    }
    Ok(entry)
}

/// Bump allocator over the argument area of the hole.
struct ArgArea {
    next: u64,
    end: u64,
}

impl ArgArea {
    fn put_bytes(&mut self, b: &[u8]) -> Option<u64> {
        let at = (self.next + 15) & !15;
        if at + b.len() as u64 > self.end {
            return None;
        }
        // SAFETY: inside the argument area of the mapped hole.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), at as *mut u8, b.len()) };
        self.next = at + b.len() as u64;
        Some(at)
    }

    fn put<T: Copy>(&mut self, items: &[T]) -> Option<u64> {
        // SAFETY: viewing plain-old-data repr(C) values as bytes.
        let b = unsafe {
            std::slice::from_raw_parts(items.as_ptr().cast::<u8>(), std::mem::size_of_val(items))
        };
        self.put_bytes(b)
    }
}

pub struct Plan<'a> {
    pub keep: Vec<Range>,
    pub moves: &'a [RegionMove],
    pub kernel: [KernelArea; 3],
    pub mm: Option<MmMap>,
    pub auxv: &'a [u8],
    pub entry: u64,
    pub flags: u64,
    pub assignment: &'a [u8],
    pub ckpt_dir: &'a [u8],
    pub image: &'a [u8],
    pub coord_host: &'a [u8],
    pub coord_port: u16,
    pub log_fd: i32,
}

/// Writes the argument block; returns its address.
pub fn write_args(plan: &Plan) -> Result<u64, HoleError> {
    let mut a = ArgArea {
        next: HOLE_START + ARGS_OFFSET + 4096,
        end: HOLE_START + ARGS_OFFSET + ARGS_MAX,
    };
    let too_big = || HoleError::TooBig(plan.moves.len());
    let keep = a.put(&plan.keep).ok_or_else(too_big)?;
    let moves = a.put(plan.moves).ok_or_else(too_big)?;
    let auxv = a.put_bytes(plan.auxv).ok_or_else(too_big)?;
    let assignment = a.put_bytes(plan.assignment).ok_or_else(too_big)?;
    let ckpt_dir = a.put_bytes(plan.ckpt_dir).ok_or_else(too_big)?;
    let image = a.put_bytes(plan.image).ok_or_else(too_big)?;
    let coord_host = a.put_bytes(plan.coord_host).ok_or_else(too_big)?;
    let info = RestartInfo {
        magic: RESTART_MAGIC,
        flags: plan.flags,
        assignment,
        assignment_len: plan.assignment.len() as u64,
        ckpt_dir,
        ckpt_dir_len: plan.ckpt_dir.len() as u64,
        image,
        image_len: plan.image.len() as u64,
        coord_host,
        coord_host_len: plan.coord_host.len() as u64,
        coord_port: plan.coord_port as u64,
    };
    let info = a.put(&[info]).ok_or_else(too_big)?;
    let mut mm = plan.mm.unwrap_or_default();
    mm.auxv = auxv;
    mm.auxv_size = plan.auxv.len() as u32;
    mm.exe_fd = u32::MAX;
    let args = RestorerArgs {
        magic: RESTORER_MAGIC,
        log_fd: plan.log_fd as i64,
        keep,
        n_keep: plan.keep.len() as u64,
        moves,
        n_moves: plan.moves.len() as u64,
        kernel: plan.kernel,
        set_mm: plan.mm.is_some() as u64,
        mm,
        entry: plan.entry,
        entry_arg: info,
    };
    let at = HOLE_START + ARGS_OFFSET;
    // SAFETY: the first page of the argument area is reserved for this block.
    unsafe { std::ptr::write(at as *mut RestorerArgs, args) };
    Ok(at)
}

unsafe extern "C" {
    static __rseq_offset: isize;
    static __rseq_size: u32;
}

/// The number of tasks of this process (`Threads:` of /proc/self/status), if readable.
fn task_count() -> Option<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// Waits (up to 2 s) until this thread is the process's only task. `std::thread::scope` (the
/// image reader's and the stager's workers) returns once the workers' closures are done, not
/// once their tasks have exited; a task still exiting when the restorer unmaps this program's
/// memory faults, and its SIGSEGV kills the restored process (seen about once in 100
/// restarts).
fn wait_single_threaded() {
    for _ in 0..2000 {
        if task_count().is_none_or(|n| n <= 1) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    tracing::warn!("other threads of dmtcp_restart are still running before the restorer");
}

/// The point of no return: block every signal, leave glibc's rseq registration (its area is
/// about to be unmapped), and enter the restorer on the hole's stack.
///
/// # Safety
/// The hole holds the restorer and a valid argument block; this process is single-threaded
/// (worker tasks still exiting are waited for here).
pub unsafe fn jump(entry: u64, args: u64) -> ! {
    wait_single_threaded();
    // SAFETY: a full mask, then rseq unregistration with glibc's own parameters.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        if __rseq_size > 0 {
            let fs: u64;
            std::arch::asm!("mov {}, fs:0", out(reg) fs);
            let area = (fs as i64 + __rseq_offset as i64) as u64;
            libc::syscall(libc::SYS_rseq, area, 32u32, 1i32, 0x5305_3053u32);
        }
    }
    let stack_top = HOLE_START + STACK_OFFSET + STACK_LEN - 64;
    // SAFETY: switching to the hole's stack and calling the restorer, which never returns.
    unsafe {
        std::arch::asm!("mov rsp, {sp}", "xor ebp, ebp", "call {f}", "ud2",
                        sp = in(reg) stack_top, f = in(reg) entry, in("rdi") args,
                        options(noreturn));
    }
}
