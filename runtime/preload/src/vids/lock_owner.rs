//! Lock owners after a restart with new real ids (virtual-id mode).
//!
//! glibc records the owner of error-checking, recursive, robust and PI mutexes, and the writer
//! of a rwlock, as the owner's kernel tid (its thread descriptor's `tid`, which must stay the
//! real tid for `pthread_kill`). After a virtual-mode restart every thread has a new real tid,
//! so a lock held across the checkpoint names a tid nobody has: unlocking it fails with EPERM,
//! relocking a recursive mutex deadlocks, a rwlock write-unlock is taken for a read-unlock.
//!
//! The restart notes, per process, which real tid each thread had at checkpoint and which it
//! has now ([`note_restart`]). The wrappers below rewrite an owner field that holds such a
//! stale tid to the new one (a CAS, so a concurrent owner change wins) before calling glibc.
//! Without a virtual restart the table is empty and each wrapper costs one relaxed load.
//!
//! The table is kept for the life of the process and composed across restarts: a lock can stay
//! untouched through several checkpoints, and a thread blocked inside glibc's lock at a
//! checkpoint stores the tid it read before blocking once it gets the lock. A stale tid that
//! becomes some thread's real tid of this process again (the kernel reuses free ids) is
//! dropped, since a lock naming it may then be that thread's: see [`forget`].
//!
//! Layouts are x86-64 glibc's (`bits/struct_mutex.h`, `bits/struct_rwlock.h`, 2.36):
//! `pthread_mutex_t` { int __lock @0; unsigned __count @4; int __owner @8; unsigned __nusers
//! @12; int __kind @16; ... } (40 bytes), `pthread_rwlock_t` { ... int __cur_writer @24 ... }
//! (56 bytes).

use super::real::real;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use libc::{c_int, clockid_t, pthread_cond_t, pthread_mutex_t, pthread_rwlock_t, timespec};

const _: () = assert!(core::mem::size_of::<pthread_mutex_t>() == 40);
const _: () = assert!(core::mem::size_of::<pthread_rwlock_t>() == 56);

const MUTEX_LOCK_OFFSET: usize = 0;
const MUTEX_OWNER_OFFSET: usize = 8;
const MUTEX_KIND_OFFSET: usize = 16;
const RWLOCK_CUR_WRITER_OFFSET: usize = 24;

/// `__kind` flags whose futex word carries the owner's tid (glibc's
/// PTHREAD_MUTEX_ROBUST_NORMAL_NP and PTHREAD_MUTEX_PRIO_INHERIT_NP).
const KIND_ROBUST: i32 = 16;
const KIND_PI: i32 = 32;
/// The tid bits of a robust or PI futex word (the others are FUTEX_WAITERS, FUTEX_OWNER_DIED).
const FUTEX_TID_MASK: i32 = 0x3fff_ffff;

/// Stale (checkpoint-time) real tids this table can hold.
pub const CAPACITY: usize = 1024;

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicI32 = AtomicI32::new(0);
static OLD: [AtomicI32; CAPACITY] = [ZERO; CAPACITY];
static NEW: [AtomicI32; CAPACITY] = [ZERO; CAPACITY];
static LEN: AtomicUsize = AtomicUsize::new(0);
/// The fast path's only load: is any stale tid known?
static ON: AtomicBool = AtomicBool::new(false);

/// The current real tid for `tid` if `tid` is a stale one.
#[inline]
fn renewed(tid: i32) -> Option<i32> {
    if tid <= 0 {
        return None;
    }
    let n = LEN.load(Ordering::Acquire).min(CAPACITY);
    (0..n)
        .find(|&i| OLD[i].load(Ordering::Relaxed) == tid)
        .map(|i| NEW[i].load(Ordering::Relaxed))
        .filter(|&t| t > 0)
}

/// After a virtual-mode restart, on the checkpoint thread with the program's threads frozen:
/// `moved` holds (real tid at checkpoint, real tid now) for each thread of this process.
/// Returns how many stale tids did not fit.
pub fn note_restart(moved: &[(i32, i32)]) -> usize {
    let now = |t: i32| moved.iter().find(|m| m.0 == t).map(|m| m.1);
    let mut pairs: Vec<(i32, i32)> = Vec::new();
    // Earlier restarts' stale tids follow their thread to its newest tid.
    for i in 0..LEN.load(Ordering::Acquire).min(CAPACITY) {
        let (o, n) = (
            OLD[i].load(Ordering::Relaxed),
            NEW[i].load(Ordering::Relaxed),
        );
        if o > 0 {
            pairs.push((o, now(n).unwrap_or(n)));
        }
    }
    pairs.extend(moved.iter().copied());
    // A stale tid that is a live thread's tid again is ambiguous: that thread's locks win.
    pairs.retain(|&(o, n)| o != n && o > 0 && n > 0 && !moved.iter().any(|m| m.1 == o));
    let mut dropped = 0;
    let mut len = 0;
    for (o, n) in pairs {
        if (0..len).any(|i| OLD[i].load(Ordering::Relaxed) == o) {
            continue;
        }
        if len == CAPACITY {
            dropped += 1;
            continue;
        }
        OLD[len].store(o, Ordering::Relaxed);
        NEW[len].store(n, Ordering::Relaxed);
        len += 1;
    }
    LEN.store(len, Ordering::Release);
    ON.store(len > 0, Ordering::Release);
    crate::debug!("lock owners: {len} stale tids");
    dropped
}

/// The kernel's `struct robust_list_head` (set_robust_list(2)).
#[repr(C)]
struct RobustListHead {
    next: u64,
    futex_offset: i64,
    list_op_pending: u64,
}

/// The kernel's limit on a robust list's length (ROBUST_LIST_LIMIT).
const ROBUST_LIST_LIMIT: usize = 2048;

/// At restart, with the program's threads frozen: the robust mutexes a thread holds (linked in
/// its robust list) get its new tid at once. The kernel marks `FUTEX_OWNER_DIED` when a thread
/// dies only in the futex words holding that thread's tid, so a holder that dies before it
/// touches the mutex again would leave the waiters without `EOWNERDEAD`.
///
/// # Safety
/// `head` is 0 or the address of the thread's registered `robust_list_head`, whose list glibc
/// maintains (each entry at `futex_offset` from a pthread mutex's `__lock`).
pub unsafe fn fix_robust_list(head: u64, old: i32, new: i32) {
    if head == 0 || old <= 0 || new <= 0 {
        return;
    }
    // SAFETY: the caller's promise; glibc keeps the list well formed between operations and
    // every thread is frozen outside them (a pending operation is `list_op_pending`, left
    // alone).
    unsafe {
        let h = &*(head as *const RobustListHead);
        let mut entry = h.next;
        let mut n = 0;
        while entry != 0 && entry != head && n < ROBUST_LIST_LIMIT {
            let lock = (entry as i64 + h.futex_offset) as *mut pthread_mutex_t;
            let word = field(lock, MUTEX_LOCK_OFFSET);
            let cur = word.load(Ordering::Relaxed);
            if cur & FUTEX_TID_MASK == old {
                let next = (cur & !FUTEX_TID_MASK) | new;
                let _ = word.compare_exchange(cur, next, Ordering::Relaxed, Ordering::Relaxed);
            }
            let owner = field(lock, MUTEX_OWNER_OFFSET);
            let _ = owner.compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed);
            entry = *(entry as *const u64);
            n += 1;
        }
    }
}

/// A new task of this process got real tid `tid` (a thread created after the restart, or a
/// fork child's thread): from now on a lock naming `tid` is its own.
pub fn forget(tid: i32) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    for old in &OLD[..LEN.load(Ordering::Acquire).min(CAPACITY)] {
        if old.load(Ordering::Relaxed) == tid {
            // Never matches a tid again (tids are > 0); the slot stays, readers need no lock.
            old.store(-1, Ordering::Relaxed);
        }
    }
}

/// The `i32` at `offset` bytes into the object at `p`, as an atomic.
///
/// # Safety
/// `p` points to a live object of at least `offset + 4` bytes, 4-byte aligned at `offset`.
unsafe fn field<T>(p: *mut T, offset: usize) -> &'static AtomicI32 {
    // SAFETY: the caller's promise; glibc itself updates these words atomically.
    unsafe { AtomicI32::from_ptr(p.cast::<u8>().add(offset).cast::<i32>()) }
}

/// Replaces a stale tid in the whole word `w`.
fn fix_word(w: &AtomicI32) {
    let cur = w.load(Ordering::Relaxed);
    if let Some(new) = renewed(cur) {
        let _ = w.compare_exchange(cur, new, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// Replaces a stale tid in the tid bits of futex word `w`, keeping its flag bits.
fn fix_futex_word(w: &AtomicI32) {
    let cur = w.load(Ordering::Relaxed);
    if let Some(new) = renewed(cur & FUTEX_TID_MASK) {
        let next = (cur & !FUTEX_TID_MASK) | new;
        let _ = w.compare_exchange(cur, next, Ordering::Relaxed, Ordering::Relaxed);
    }
}

#[cold]
fn fix_mutex_slow(m: *mut pthread_mutex_t) {
    // SAFETY: the program passes a mutex it initialised (glibc's own contract); the
    // offsets are inside its 40 bytes (see the module comment and the size assertion).
    unsafe {
        fix_word(field(m, MUTEX_OWNER_OFFSET));
        if field(m, MUTEX_KIND_OFFSET).load(Ordering::Relaxed) & (KIND_ROBUST | KIND_PI) != 0 {
            fix_futex_word(field(m, MUTEX_LOCK_OFFSET));
        }
    }
}

#[inline(always)]
fn fix_mutex(m: *mut pthread_mutex_t) {
    if ON.load(Ordering::Relaxed) && !m.is_null() {
        fix_mutex_slow(m);
    }
}

#[cold]
fn fix_rwlock_slow(l: *mut pthread_rwlock_t) {
    // SAFETY: as fix_mutex_slow; the offset is inside the rwlock's 56 bytes.
    unsafe { fix_word(field(l, RWLOCK_CUR_WRITER_OFFSET)) }
}

#[inline(always)]
fn fix_rwlock(l: *mut pthread_rwlock_t) {
    if ON.load(Ordering::Relaxed) && !l.is_null() {
        fix_rwlock_slow(l);
    }
}

/// A wrapper that fixes its first argument's owner and calls glibc's function of the same name.
macro_rules! owner_fixing {
    ($fix:ident, $name:ident, $lock:ty $(, $arg:ident: $ty:ty)*) => {
        /// # Safety
        /// As the pthread function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(l: *mut $lock $(, $arg: $ty)*) -> c_int {
            $fix(l);
            let f: unsafe extern "C" fn(*mut $lock $(, $ty)*) -> c_int = real!($name);
            // SAFETY: forwarding the caller's arguments.
            unsafe { f(l $(, $arg)*) }
        }
    };
}

owner_fixing!(fix_mutex, pthread_mutex_lock, pthread_mutex_t);
owner_fixing!(fix_mutex, pthread_mutex_trylock, pthread_mutex_t);
owner_fixing!(fix_mutex, pthread_mutex_unlock, pthread_mutex_t);
owner_fixing!(fix_mutex, pthread_mutex_consistent, pthread_mutex_t);
owner_fixing!(fix_mutex, pthread_mutex_timedlock, pthread_mutex_t, t: *const timespec);
owner_fixing!(fix_mutex, pthread_mutex_clocklock, pthread_mutex_t, c: clockid_t, t: *const timespec);
owner_fixing!(fix_rwlock, pthread_rwlock_rdlock, pthread_rwlock_t);
owner_fixing!(fix_rwlock, pthread_rwlock_tryrdlock, pthread_rwlock_t);
owner_fixing!(fix_rwlock, pthread_rwlock_timedrdlock, pthread_rwlock_t, t: *const timespec);
owner_fixing!(fix_rwlock, pthread_rwlock_clockrdlock, pthread_rwlock_t, c: clockid_t, t: *const timespec);
owner_fixing!(fix_rwlock, pthread_rwlock_wrlock, pthread_rwlock_t);
owner_fixing!(fix_rwlock, pthread_rwlock_trywrlock, pthread_rwlock_t);
owner_fixing!(fix_rwlock, pthread_rwlock_timedwrlock, pthread_rwlock_t, t: *const timespec);
owner_fixing!(fix_rwlock, pthread_rwlock_clockwrlock, pthread_rwlock_t, c: clockid_t, t: *const timespec);
owner_fixing!(fix_rwlock, pthread_rwlock_unlock, pthread_rwlock_t);

/// A condition wait unlocks its mutex inside glibc (no wrapper sees it): fix the mutex first.
macro_rules! cond_wait {
    ($name:ident $(, $arg:ident: $ty:ty)*) => {
        /// # Safety
        /// As the pthread function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            c: *mut pthread_cond_t,
            m: *mut pthread_mutex_t
            $(, $arg: $ty)*
        ) -> c_int {
            fix_mutex(m);
            let f: unsafe extern "C" fn(*mut pthread_cond_t, *mut pthread_mutex_t $(, $ty)*)
                -> c_int = real!($name);
            // SAFETY: forwarding the caller's arguments.
            unsafe { f(c, m $(, $arg)*) }
        }
    };
}

cond_wait!(pthread_cond_wait);
cond_wait!(pthread_cond_timedwait, t: *const timespec);
cond_wait!(pthread_cond_clockwait, cl: clockid_t, t: *const timespec);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_owner_is_renewed_across_two_restarts_and_flags_kept() {
        note_restart(&[(100, 200), (101, 201)]);
        assert_eq!(renewed(100), Some(200));
        assert_eq!(renewed(200), None);
        // Second restart: 200 -> 300; a lock still naming 100 must now go to 300.
        note_restart(&[(200, 300), (201, 100)]);
        assert_eq!(renewed(200), Some(300));
        assert_eq!(renewed(100), None, "100 is a live thread's tid again");
        assert_eq!(renewed(201), Some(100));
        let w = AtomicI32::new(200 | i32::MIN);
        fix_futex_word(&w);
        assert_eq!(w.load(Ordering::Relaxed), 300 | i32::MIN);
        forget(201);
        assert_eq!(renewed(201), None);
        let w = AtomicI32::new(201);
        fix_word(&w);
        assert_eq!(w.load(Ordering::Relaxed), 201);
    }
}
