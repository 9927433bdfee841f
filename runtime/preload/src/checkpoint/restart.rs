//! The way back in: the restorer jumps to [`dmtcp_restart_entry`] in this (restored) library.
//! The entry re-applies process-wide state, recreates every saved thread with `clone3` on its
//! own stack with its own TLS, and each thread re-registers its per-thread kernel state and
//! returns through its saved signal frame with `rt_sigreturn`.
//!
//! Until the thread pointer is set, nothing here may touch TLS; until threads are released,
//! nothing may take a lock another thread could hold.

use super::process;
use super::threads::{self, PTHREAD_TID_OFFSET, RELEASE, RSEQ_OFFSET, RSEQ_SIZE, TID_OFFSET_OK};
use core::arch::asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use dmtcp_restorer::abi::{
    CloneArgs, EXIT_RESTORE_FAILED, RESTART_EXACT_TIDS, RESTART_LAZY, RESTART_MAGIC, RestartInfo,
};
use dmtcp_restorer::sys::{self, LineBuf};

/// Set by the entry; the checkpoint thread sees it when its signal frame returns.
pub static RESTARTED: AtomicBool = AtomicBool::new(false);
/// Threads that have re-registered their state and wait for release.
pub static UP: AtomicU32 = AtomicU32::new(0);

/// What `dmtcp_restart` told us, copied out of the hole.
pub struct RestartData {
    pub assignment: Vec<u8>,
    pub coordinator: Option<(String, u16)>,
    pub ckpt_dir: Option<String>,
    pub image: String,
}

struct DataCell(UnsafeCell<Option<RestartData>>);
// SAFETY: written by the entry before any other thread exists, taken once by the checkpoint
// thread after every thread is up.
unsafe impl Sync for DataCell {}
static DATA: DataCell = DataCell(UnsafeCell::new(None));

pub fn take_data() -> Option<RestartData> {
    // SAFETY: see DataCell.
    unsafe { (*DATA.0.get()).take() }
}

/// Number of threads the restart brings back (all frozen slots).
pub fn thread_count() -> u32 {
    threads::slots().iter().filter(|r| r.frozen).count() as u32
}

/// Blocks every signal, glibc's SIGCANCEL (32) and SIGSETXID (33) included, in the restart
/// entry and so in every thread it recreates, until each thread's `rt_sigreturn` puts its own
/// saved mask back. `dmtcp_restart` blocks with glibc's `sigprocmask`, which leaves 32 and 33
/// open: a `SIGEV_THREAD` timer (signal 32 to our helper thread, recreated before the timers
/// are armed again) that fired before the release killed the process or was lost.
fn block_every_signal() {
    let all: u64 = !0;
    // SAFETY: sets this thread's mask from a local kernel sigset.
    unsafe {
        sys::syscall4(
            sys::SYS_RT_SIGPROCMASK,
            libc::SIG_SETMASK as usize,
            &all as *const u64 as usize,
            0,
            8,
        )
    };
}

fn die(what: &[u8], err: isize) -> ! {
    let mut l = LineBuf::new();
    l.push(b"dmtcp_restart: ")
        .push(what)
        .push(b" (errno ")
        .dec(-(err as i64))
        .push(b")\n");
    sys::write_all(crate::settings::LOG_FD, l.as_bytes());
    sys::write_all(2, l.as_bytes());
    sys::exit_group(EXIT_RESTORE_FAILED)
}

/// The restored runtime's restart entry, called by the restorer on the hole's stack.
///
/// # Safety
/// Only the restorer calls this, with a valid [`RestartInfo`] and this library's memory
/// restored exactly as it was written.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_restart_entry(info: u64) -> ! {
    let slots = threads::slots();
    let main = slots.iter().position(|r| r.is_main && r.frozen);
    if let Some(i) = main {
        // The leader becomes the main thread: its TLS first, before any Rust code uses TLS.
        // SAFETY: the saved thread pointer of the main thread, whose memory is restored.
        unsafe { sys::syscall2(sys::SYS_ARCH_PRCTL, sys::ARCH_SET_FS, slots[i].fs as usize) };
    }
    // The heap's lists were saved mid-write and may point at memory that was never saved.
    crate::HEAP.forget_free_lists();
    // SAFETY: dmtcp_restart wrote the block; it stays mapped until we re-reserve the hole.
    let info = unsafe { &*(info as *const RestartInfo) };
    if info.magic != RESTART_MAGIC {
        die(b"the restart information block is damaged", 0);
    }
    let bytes = |p: u64, n: u64| -> Vec<u8> {
        if n == 0 {
            return Vec::new();
        }
        // SAFETY: a range inside the hole written by dmtcp_restart.
        unsafe { core::slice::from_raw_parts(p as *const u8, n as usize) }.to_vec()
    };
    let dir = bytes(info.ckpt_dir, info.ckpt_dir_len);
    let host = bytes(info.coord_host, info.coord_host_len);
    let data = RestartData {
        assignment: bytes(info.assignment, info.assignment_len),
        coordinator: (!host.is_empty() && info.coord_port != 0).then(|| {
            (
                String::from_utf8_lossy(&host).into_owned(),
                info.coord_port as u16,
            )
        }),
        ckpt_dir: (!dir.is_empty()).then(|| String::from_utf8_lossy(&dir).into_owned()),
        image: String::from_utf8_lossy(&bytes(info.image, info.image_len)).into_owned(),
    };
    // SAFETY: no other thread exists yet.
    unsafe { *DATA.0.get() = Some(data) };
    block_every_signal();
    RESTARTED.store(true, Ordering::Release);
    UP.store(0, Ordering::Release);
    LEADER_ON_HOLE.store(main.is_none() as u32, Ordering::Release);
    process::apply();

    let exact = info.flags & RESTART_EXACT_TIDS != 0;
    super::lazy_wait::note_pager(info.flags & RESTART_LAZY != 0);
    crate::vids::sync::note_restart_mode(exact);
    for (i, r) in slots.iter().enumerate() {
        if Some(i) == main || !r.frozen {
            continue;
        }
        // SAFETY: the record describes a thread whose stack and TLS are restored.
        let mut t = unsafe { spawn(i, r, exact) };
        // With exact tids, a short-lived task of a sibling being restored (its decompression
        // threads) may hold the number for a moment: wait for it (up to 60 s).
        let mut tries = 0;
        while exact && t == -17 && tries < 60_000 {
            let ts = [0i64, 1_000_000];
            // SAFETY: nanosleep with a local timespec.
            unsafe { sys::syscall2(35, ts.as_ptr() as usize, 0) };
            // SAFETY: as above.
            t = unsafe { spawn(i, r, exact) };
            tries += 1;
        }
        if sys::is_err(t) {
            die(b"cannot recreate a thread", t);
        }
    }
    match main {
        Some(i) => {
            let r = &slots[i];
            let top = (r.uc - 4096) & !15;
            // SAFETY: moving onto the main thread's own stack, below its signal frame, and
            // never coming back to the hole's stack.
            unsafe {
                asm!("mov rsp, {sp}", "xor ebp, ebp", "call {f}", "ud2",
                     sp = in(reg) top, f = in(reg) resume_thread as *const () as usize, in("rdi") i as u64,
                     options(noreturn));
            }
        }
        None => {
            // The main thread had exited (pthread_exit): the leader only had to bring the
            // others back, and leaves as the original did. The kernel clears LEADER_ON_HOLE
            // when this task is gone, so the hole is not re-reserved under its stack.
            // SAFETY: the word is a static that outlives the task.
            unsafe { sys::syscall1(sys::SYS_SET_TID_ADDRESS, LEADER_ON_HOLE.as_ptr() as usize) };
            loop {
                // SAFETY: ends this task only.
                unsafe { sys::syscall1(sys::SYS_EXIT, 0) };
            }
        }
    }
}

/// Non-zero while the leader task may still run on the hole's stack (main thread gone case).
pub static LEADER_ON_HOLE: AtomicU32 = AtomicU32::new(0);

unsafe fn spawn(idx: usize, r: &threads::ThreadRecord, exact: bool) -> isize {
    let tid_word = r.fs + PTHREAD_TID_OFFSET;
    let top = (r.uc - 4096) & !15;
    let mut flags = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS) as u64;
    if TID_OFFSET_OK.load(Ordering::Relaxed) {
        // The kernel writes the new tid into glibc's descriptor and clears it at exit, so
        // pthread_join and pthread_kill keep working.
        flags |= (libc::CLONE_PARENT_SETTID | libc::CLONE_CHILD_CLEARTID) as u64;
    }
    // The id the program knows (the same as the saved one unless it ran with virtual ids).
    let set_tid: i32 = crate::vids::table::to_virtual(r.tid);
    let args = CloneArgs {
        flags,
        child_tid: tid_word,
        parent_tid: tid_word,
        stack: top - 65536,
        stack_size: 65536,
        tls: r.fs,
        set_tid: if exact {
            &set_tid as *const i32 as u64
        } else {
            0
        },
        set_tid_size: exact as u64,
        ..CloneArgs::default()
    };
    let ret: isize;
    // SAFETY: clone3 with a stack inside the thread's own stack; the child calls
    // resume_thread(idx) and never returns here.
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") sys::SYS_CLONE3 as isize => ret,
            in("rdi") &args as *const CloneArgs as usize,
            in("rsi") core::mem::size_of::<CloneArgs>(),
            in("r12") idx as u64,
            in("r13") resume_thread as *const () as usize,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Runs in each recreated thread (the leader for the main thread) on its own stack with its
/// own TLS: restores per-thread kernel state, waits for release, returns through the frame.
extern "C" fn resume_thread(idx: u64) -> ! {
    let r = threads::slots()[idx as usize];
    // SAFETY: each call passes pointers into this thread's restored memory or a local.
    unsafe {
        let rseq_size = RSEQ_SIZE.load(Ordering::Relaxed);
        if rseq_size > 0 {
            let area = (r.fs as i64 + RSEQ_OFFSET.load(Ordering::Relaxed)) as usize;
            sys::syscall4(sys::SYS_RSEQ, area, 32, 0, sys::RSEQ_SIG);
        }
        if r.robust_len > 0 {
            sys::syscall2(
                sys::SYS_SET_ROBUST_LIST,
                r.robust_head as usize,
                r.robust_len as usize,
            );
        }
        let mut ss = r.altstack;
        ss[1] &= !1; // SS_ONSTACK is a state, not a setting.
        sys::syscall2(sys::SYS_SIGALTSTACK, ss.as_ptr() as usize, 0);
        sys::syscall2(sys::SYS_PRCTL, sys::PR_SET_NAME, r.name.as_ptr() as usize);
        if r.affinity_len > 0 {
            sys::syscall3(
                sys::SYS_SCHED_SETAFFINITY,
                0,
                r.affinity_len as usize,
                r.affinity.as_ptr() as usize,
            );
        }
        if r.is_main && TID_OFFSET_OK.load(Ordering::Relaxed) {
            let word = (r.fs + PTHREAD_TID_OFFSET) as *mut i32;
            *word = sys::gettid();
            sys::syscall1(sys::SYS_SET_TID_ADDRESS, word as usize);
        }
    }
    crate::vids::sync::note_thread(idx as usize, sys::gettid());
    UP.fetch_add(1, Ordering::AcqRel);
    sys::futex_wake_all(&UP);
    if !r.is_ckpt {
        while RELEASE.load(Ordering::Acquire) == r.release_gen {
            sys::futex_wait(&RELEASE, r.release_gen);
        }
    }
    if !r.is_ckpt && crate::plugin::has_plugins() {
        crate::plugin::dispatch_thread_resume();
    }
    super::pending_info::requeue_thread(idx as usize, r.release_gen, true);
    if r.is_main {
        super::pending_info::requeue(true);
    }
    for sig in 1..=64 {
        if r.pending & (1u64 << (sig - 1)) != 0 {
            threads::tgkill(sys::gettid(), sig);
        }
    }
    // SAFETY: this thread's errno, reachable now that its TLS is set.
    unsafe { *libc::__errno_location() = r.errno };
    // SAFETY: the saved frame is intact on this thread's stack; rt_sigreturn restores every
    // register, the FP state and the signal mask from it.
    unsafe {
        asm!("mov rsp, {uc}", "mov eax, 15", "syscall", "ud2", uc = in(reg) r.uc,
             options(noreturn));
    }
}
