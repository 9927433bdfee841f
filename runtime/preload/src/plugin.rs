//! The plugin layer: user plugins (shared libraries named in `DMTCP_PLUGIN`) and built-in
//! subsystems receive the runtime's events through one ordered registry, and use the services
//! of `plugin::services` (C ABI in `include/dmtcp.h`, safe Rust in the `dmtcp-plugin` crate).
//!
//! Where the runtime dispatches (see docs/plugins.md for the full contract):
//! - `Init` in the library constructor after joining, before the checkpoint thread starts;
//!   `PostExec` right after it in an exec'd program; `Exit` from an `atexit` handler;
//! - `AtforkPrepare/Parent/Child` in `fork.rs`, `PreExec` in `exec.rs`;
//! - `ThreadStart/ThreadExit` in the `pthread_create` wrapper (`plugin/threads.rs`);
//! - the checkpoint engine: `PreSuspend` before `ckpt_lock::acquire_exclusive`,
//!   `PreCheckpoint` once every thread is frozen and before the image is written (then it
//!   stores [`sections_to_save`]), `Resume` after the image is written, `Restart` after a
//!   restore (after [`set_restored_sections`]), and `ThreadResume` in every resumed thread.

// Parts of this interface are called by the checkpoint engine and the built-in subsystems as
// they land; until then some are unused in this crate.
#![allow(dead_code, unused_imports)]

mod event;
mod fds;
mod registry;
mod sections;
pub mod services;
mod threads;
mod vid;

pub use event::{Event, EventData};
pub use fds::{protect, protected_fds, unprotect};
pub use registry::{API_VERSION, dispatch, has_plugins, names, register_builtin};
pub use sections::{sections_to_save, set_restored_sections};

/// The environment variable naming the plugin libraries (set by `dmtcp_launch`).
pub const PLUGIN_ENV: &str = "DMTCP_PLUGIN";

/// At start-up, after joining: registers the plugins of `DMTCP_PLUGIN` and dispatches `Init`
/// (and `PostExec` in a program that replaced a member by `exec`).
pub fn start(after_exec: bool) {
    if let Ok(list) = std::env::var(PLUGIN_ENV) {
        for r in registry::load_user_plugins(&list) {
            if let Err(e) = r {
                crate::warn!("{e}; it is ignored");
            }
        }
    }
    if !has_plugins() {
        return;
    }
    crate::debug!("plugins in order: {}", names().join(", "));
    // SAFETY: registering a plain extern "C" function with atexit.
    unsafe { libc::atexit(at_exit) };
    dispatch(Event::Init, &EventData::empty());
    if after_exec {
        dispatch(Event::PostExec, &EventData::empty());
    }
}

extern "C" fn at_exit() {
    dispatch(Event::Exit, &EventData::empty());
}

/// Dispatches an event that carries nothing.
pub fn dispatch_simple(event: Event) {
    dispatch(event, &EventData::empty());
}

/// Dispatches a checkpoint-cycle event for `generation`; a new `PreSuspend` also forgets the
/// previous checkpoint's plugin sections.
pub fn dispatch_checkpoint(event: Event, generation: u32) {
    if event == Event::PreSuspend {
        sections::begin_checkpoint();
    }
    dispatch(event, &EventData::with_generation(generation));
}

/// In each program thread as it resumes (resume or restart).
pub fn dispatch_thread_resume() {
    // SAFETY: gettid cannot fail.
    dispatch(
        Event::ThreadResume,
        &EventData::with_tid(unsafe { libc::gettid() }),
    );
}

/// `PreExec` for the program at `path` (may be null).
pub fn dispatch_pre_exec(path: *const libc::c_char) {
    dispatch(
        Event::PreExec,
        &EventData {
            path,
            ..EventData::empty()
        },
    );
}
