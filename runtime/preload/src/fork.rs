//! Following `fork`: the child becomes a new member of the computation.

use crate::ckpt_thread;
use crate::plugin::{self, Event, EventData};
use crate::{HEAP, ckpt_lock, runtime, session};

pub fn install() {
    // SAFETY: registering plain extern "C" handlers with glibc.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}

extern "C" fn prepare() {
    // A child forked while a lazy restart still loads memory would see zeros for the rest.
    crate::checkpoint::lazy_wait::wait_loaded();
    // First, while the program's state is whole and nothing of ours is locked.
    plugin::dispatch_simple(Event::AtforkPrepare);
    ckpt_lock::enter();
    HEAP.lock();
}

extern "C" fn parent() {
    HEAP.unlock();
    ckpt_lock::leave();
    plugin::dispatch_simple(Event::AtforkParent);
}

extern "C" fn child() {
    // First: a child whose pid is a virtual pid in use leaves at once (vids/mod.rs).
    crate::vids::on_fork_child();
    // SAFETY: getppid cannot fail.
    let parent_pid = unsafe { libc::getppid() };
    HEAP.reset_lock_in_child();
    ckpt_lock::reset_in_child();
    ckpt_thread::GATE.force_unlock();
    session::reset_locks_in_child();
    // The inherited connection is the parent's: the child joins on its own.
    session::close_coord_fd();
    let Some(settings) = runtime::settings() else {
        ckpt_lock::leave();
        return;
    };
    // try_lock: another thread of the parent may have held it when we forked.
    let parent = session::IDENTITY
        .try_lock()
        .ok()
        .and_then(|a| a.as_ref().map(|a| a.upid));
    runtime::note_pid();
    match session::join(settings, parent) {
        Ok(a) => {
            crate::debug!(
                "forked child joined as {} (virtual pid {})",
                a.upid,
                a.virtual_pid
            );
            ckpt_thread::spawn();
        }
        Err(e) => crate::warn!("forked child cannot join the coordinator: {e}"),
    }
    ckpt_lock::leave();
    plugin::dispatch(
        Event::AtforkChild,
        &EventData {
            pid: parent_pid,
            ..EventData::empty()
        },
    );
}
