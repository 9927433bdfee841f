//! `THREAD_START` / `THREAD_EXIT`: a `pthread_create` wrapper that runs the program's start
//! routine inside a trampoline. Without plugins, or for the runtime's own threads, it is a
//! plain call of the real `pthread_create`.

use super::event::{Event, EventData};
use super::registry;
use crate::real_fn;
use core::sync::atomic::{AtomicUsize, Ordering};
use libc::{c_int, c_void, pthread_attr_t, pthread_t};

type StartFn = extern "C" fn(*mut c_void) -> *mut c_void;
type CreateFn =
    unsafe extern "C" fn(*mut pthread_t, *const pthread_attr_t, StartFn, *mut c_void) -> c_int;

struct Start {
    routine: StartFn,
    arg: *mut c_void,
}

/// Dispatches `ThreadExit` when the thread ends, by return or by `pthread_exit` (thread-local
/// destructors run in both cases).
struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        registry::dispatch(Event::ThreadExit, &EventData::with_tid(gettid()));
    }
}

thread_local! {
    static EXIT_GUARD: core::cell::RefCell<Option<ExitGuard>> = const { core::cell::RefCell::new(None) };
}

fn gettid() -> i32 {
    // SAFETY: gettid cannot fail.
    unsafe { libc::gettid() }
}

extern "C" fn trampoline(p: *mut c_void) -> *mut c_void {
    // SAFETY: `p` is the Box leaked by `pthread_create` below, handed to exactly this thread.
    let start = unsafe { Box::from_raw(p.cast::<Start>()) };
    crate::vids::on_new_thread();
    registry::dispatch(Event::ThreadStart, &EventData::with_tid(gettid()));
    EXIT_GUARD.with(|g| *g.borrow_mut() = Some(ExitGuard));
    (start.routine)(start.arg)
}

/// The load address of this library, to tell the runtime's own threads apart.
fn own_base() -> usize {
    static BASE: AtomicUsize = AtomicUsize::new(0);
    let b = BASE.load(Ordering::Relaxed);
    if b != 0 {
        return b;
    }
    let b = base_of(own_base as *const () as usize);
    BASE.store(b, Ordering::Relaxed);
    b
}

fn base_of(addr: usize) -> usize {
    // SAFETY: dladdr fills a local struct; a zeroed Dl_info is a valid initial value.
    unsafe {
        let mut info: libc::Dl_info = core::mem::zeroed();
        if libc::dladdr(addr as *const c_void, &mut info) == 0 {
            return 0;
        }
        info.dli_fbase as usize
    }
}

/// # Safety
/// Same contract as pthread_create(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_create(
    thread: *mut pthread_t,
    attr: *const pthread_attr_t,
    routine: StartFn,
    arg: *mut c_void,
) -> c_int {
    let real: CreateFn = real_fn!("pthread_create");
    // Also after a restart with virtual ids: a new thread checks its tid first (vids/mod.rs).
    let wrap = (registry::has_plugins() || crate::vids::table::active())
        && base_of(routine as usize) != own_base();
    if !wrap {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { real(thread, attr, routine, arg) };
    }
    let start = Box::into_raw(Box::new(Start { routine, arg }));
    // SAFETY: the trampoline takes ownership of `start` in the new thread.
    let r = unsafe { real(thread, attr, trampoline, start.cast()) };
    if r != 0 {
        // SAFETY: no thread was created; the box is still ours.
        drop(unsafe { Box::from_raw(start) });
    }
    r
}
