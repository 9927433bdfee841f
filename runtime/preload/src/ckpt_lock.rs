//! The checkpoint lock: program threads hold it shared while they must not be frozen (inside
//! `fork`/`exec` wrappers, or between `dmtcp_disable_ckpt` and `dmtcp_enable_ckpt`); the
//! checkpoint thread takes it exclusively before it freezes anyone.
//!
//! Writer-preferring, so a stream of critical sections cannot starve a checkpoint; recursive per
//! thread, so a thread already inside may enter again even while a checkpoint waits.

use core::cell::Cell;
use core::sync::atomic::{AtomicU32, Ordering};

const WRITER: u32 = 1 << 31;
const WAITING: u32 = 1 << 30;
const READERS: u32 = WAITING - 1;

static STATE: AtomicU32 = AtomicU32::new(0);

/// How many times the checkpoint thread took the lock: a sleeping thread that sees it change
/// knows its `EINTR` came from being frozen, not from the program's own signals.
static FREEZES: AtomicU32 = AtomicU32::new(0);

pub fn freezes() -> u32 {
    FREEZES.load(Ordering::Acquire)
}

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The checkpoint thread between `acquire_exclusive` and `release_exclusive`: wrappers it
    /// calls from there (a plugin's restart hook calling `semctl`) must not wait for itself.
    static EXCLUSIVE: Cell<bool> = const { Cell::new(false) };
}

fn futex_wait(expected: u32) {
    // SAFETY: futex on a static, aligned u32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            STATE.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            core::ptr::null::<libc::timespec>(),
        );
    }
}

fn futex_wake_all() {
    // SAFETY: as above.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            STATE.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

/// Enters a section during which this thread will not be frozen.
pub fn enter() {
    if EXCLUSIVE.get() {
        return;
    }
    let depth = DEPTH.get();
    if depth > 0 {
        DEPTH.set(depth + 1);
        return;
    }
    loop {
        let s = STATE.load(Ordering::Acquire);
        if s & (WRITER | WAITING) == 0 {
            if STATE
                .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
        } else {
            futex_wait(s);
        }
    }
    DEPTH.set(1);
}

/// Leaves the section entered by the matching [`enter`].
pub fn leave() {
    if EXCLUSIVE.get() {
        return;
    }
    let depth = DEPTH.get();
    if depth == 0 {
        return;
    }
    DEPTH.set(depth - 1);
    if depth == 1 {
        let prev = STATE.fetch_sub(1, Ordering::Release);
        if prev & READERS == 1 && prev & WAITING != 0 {
            futex_wake_all();
        }
    }
}

/// Is this thread inside a section (e.g. `dmtcp_disable_ckpt` without its `enable`)?
pub fn held_by_me() -> bool {
    DEPTH.get() > 0
}

/// Checkpoint thread: waits until no thread is inside a section and keeps new ones out.
pub fn acquire_exclusive() {
    STATE.fetch_or(WAITING, Ordering::AcqRel);
    loop {
        let s = STATE.load(Ordering::Acquire);
        if s & READERS == 0 && s & WRITER == 0 {
            if STATE
                .compare_exchange_weak(s, WRITER, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                FREEZES.fetch_add(1, Ordering::AcqRel);
                EXCLUSIVE.set(true);
                return;
            }
        } else {
            futex_wait(s);
        }
    }
}

/// Checkpoint thread: lets sections start again.
pub fn release_exclusive() {
    EXCLUSIVE.set(false);
    STATE.store(0, Ordering::Release);
    futex_wake_all();
}

/// In the child of `fork`: only the forking thread exists, and it is in its fork section.
pub fn reset_in_child() {
    STATE.store(DEPTH.get().min(1), Ordering::Release);
}
