//! glibc's definitions of the functions these modules wrap, resolved all at once at start-up:
//! the runtime itself reaches some of them (`open`, `readlink`, `opendir`, `waitpid`) while
//! the program's threads are frozen, where a first `dlsym` could wait forever on a loader lock
//! a frozen thread holds.

use core::ffi::CStr;
use core::sync::atomic::{AtomicUsize, Ordering};

macro_rules! symbols {
    ($($id:ident = $name:literal),* $(,)?) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy)]
        #[repr(usize)]
        pub enum Sym { $($id),* }
        const NAMES: &[&CStr] = &[$($name),*];
    };
}

symbols! {
    open = c"open", open64 = c"open64", __open_2 = c"__open_2", __open64_2 = c"__open64_2",
    openat = c"openat", openat64 = c"openat64", fopen = c"fopen", fopen64 = c"fopen64",
    opendir = c"opendir", stat = c"stat", stat64 = c"stat64", lstat = c"lstat",
    lstat64 = c"lstat64", access = c"access", faccessat = c"faccessat", fstatat = c"fstatat",
    fstatat64 = c"fstatat64", readlink = c"readlink", waitpid = c"waitpid", wait4 = c"wait4",
    waitid = c"waitid", tcgetpgrp = c"tcgetpgrp", tcsetpgrp = c"tcsetpgrp",
    sigqueue = c"sigqueue", sched_getaffinity = c"sched_getaffinity",
    sched_setaffinity = c"sched_setaffinity", fork = c"fork", getpriority = c"getpriority",
    setpriority = c"setpriority", prlimit = c"prlimit", prlimit64 = c"prlimit64",
    sched_getparam = c"sched_getparam", sched_setparam = c"sched_setparam",
    sched_getscheduler = c"sched_getscheduler", sched_setscheduler = c"sched_setscheduler",
    sigwaitinfo = c"sigwaitinfo", sigtimedwait = c"sigtimedwait", pclose = c"pclose",
    pthread_mutex_lock = c"pthread_mutex_lock", pthread_mutex_trylock = c"pthread_mutex_trylock",
    pthread_mutex_unlock = c"pthread_mutex_unlock",
    pthread_mutex_consistent = c"pthread_mutex_consistent",
    pthread_mutex_timedlock = c"pthread_mutex_timedlock",
    pthread_mutex_clocklock = c"pthread_mutex_clocklock",
    pthread_rwlock_rdlock = c"pthread_rwlock_rdlock",
    pthread_rwlock_tryrdlock = c"pthread_rwlock_tryrdlock",
    pthread_rwlock_timedrdlock = c"pthread_rwlock_timedrdlock",
    pthread_rwlock_clockrdlock = c"pthread_rwlock_clockrdlock",
    pthread_rwlock_wrlock = c"pthread_rwlock_wrlock",
    pthread_rwlock_trywrlock = c"pthread_rwlock_trywrlock",
    pthread_rwlock_timedwrlock = c"pthread_rwlock_timedwrlock",
    pthread_rwlock_clockwrlock = c"pthread_rwlock_clockwrlock",
    pthread_rwlock_unlock = c"pthread_rwlock_unlock",
    pthread_cond_wait = c"pthread_cond_wait", pthread_cond_timedwait = c"pthread_cond_timedwait",
    pthread_cond_clockwait = c"pthread_cond_clockwait", clone = c"clone",
}

/// Symbols glibc defines in two versions with different code: the wrappers must reach the
/// current one (the 2.2.5 condition variables are another structure).
const VERSIONED: &[(&CStr, &CStr)] = &[
    (c"pthread_cond_wait", c"GLIBC_2.3.2"),
    (c"pthread_cond_timedwait", c"GLIBC_2.3.2"),
];

#[allow(clippy::declare_interior_mutable_const)]
const UNRESOLVED: AtomicUsize = AtomicUsize::new(0);
static ADDRS: [AtomicUsize; NAMES.len()] = [UNRESOLVED; NAMES.len()];

#[cold]
fn resolve(i: usize) -> usize {
    let version = VERSIONED
        .iter()
        .find(|(n, _)| *n == NAMES[i])
        .map(|(_, v)| v);
    // SAFETY: dlsym/dlvsym with static NUL-terminated names.
    let p = unsafe {
        match version {
            Some(v) => libc::dlvsym(libc::RTLD_NEXT, NAMES[i].as_ptr(), v.as_ptr()),
            None => libc::dlsym(libc::RTLD_NEXT, NAMES[i].as_ptr()),
        }
    } as usize;
    if p == 0 {
        crate::error!("cannot resolve {:?}", NAMES[i]);
        // SAFETY: nothing sensible can continue without the real function.
        unsafe { libc::abort() };
    }
    ADDRS[i].store(p, Ordering::Relaxed);
    p
}

/// The address of glibc's `sym`.
#[inline(always)]
pub fn addr(sym: Sym) -> usize {
    let i = sym as usize;
    let p = ADDRS[i].load(Ordering::Relaxed);
    if p != 0 { p } else { resolve(i) }
}

/// From the library constructor, before the checkpoint thread exists.
pub fn resolve_all() {
    for i in 0..NAMES.len() {
        resolve(i);
    }
}

/// glibc's `$sym` as a function pointer of the type the caller names.
macro_rules! real {
    ($sym:ident) => {{
        let p = $crate::vids::real::addr($crate::vids::real::Sym::$sym);
        // SAFETY: the symbol has the C signature the caller names.
        unsafe { ::core::mem::transmute::<usize, _>(p) }
    }};
}
pub(crate) use real;
