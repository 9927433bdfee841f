//! A futex lock without a guard object, so it can be held across `fork` handlers and reset in
//! the child. It never allocates and never calls into libc's locking.

use core::sync::atomic::{AtomicU32, Ordering};

pub struct RawLock(AtomicU32);

impl RawLock {
    pub const fn new() -> Self {
        RawLock(AtomicU32::new(0))
    }

    pub fn lock(&self) {
        // 0 = free, 1 = held, 2 = held with waiters.
        if self
            .0
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        while self.0.swap(2, Ordering::Acquire) != 0 {
            futex_wait(&self.0, 2);
        }
    }

    pub fn unlock(&self) {
        if self.0.swap(0, Ordering::Release) == 2 {
            futex_wake(&self.0);
        }
    }

    /// Only for the child of `fork`, where the holder no longer exists.
    pub fn force_unlock(&self) {
        self.0.store(0, Ordering::Release);
    }
}

fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: futex on a valid, aligned u32 that lives as long as the lock.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            core::ptr::null::<libc::timespec>(),
        );
    }
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: as above.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}
