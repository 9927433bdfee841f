//! The program's own API (`include/dmtcp.h`): request a checkpoint, delay checkpoints, ask
//! about status. The checkpoint path reports its outcomes here through `note_*`.

use crate::{ckpt_lock, runtime, session};
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use dmtcp_protocol::{Command, Connection, WorkerMsg};
use libc::{c_char, c_int};
use std::ffi::CString;
use std::sync::Mutex;
use std::time::Duration;

pub const AFTER_CHECKPOINT: c_int = 1;
pub const AFTER_RESTART: c_int = 2;

static NUM_CHECKPOINTS: AtomicU32 = AtomicU32::new(0);
static NUM_RESTARTS: AtomicU32 = AtomicU32::new(0);
static NUM_FAILURES: AtomicU32 = AtomicU32::new(0);
static GENERATION: AtomicI32 = AtomicI32::new(0);
/// Bumped on every outcome; waiters sleep on it.
static EPOCH: AtomicU32 = AtomicU32::new(0);
static CKPT_FILENAME: Mutex<Option<CString>> = Mutex::new(None);

fn bump() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
    // SAFETY: futex wake on a static word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            EPOCH.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

/// This process wrote its image for `generation` and resumes.
pub fn note_checkpoint_done(generation: u32, image: &str) {
    GENERATION.store(generation as i32, Ordering::Relaxed);
    if let Ok(mut f) = CKPT_FILENAME.lock() {
        *f = CString::new(image).ok();
    }
    NUM_CHECKPOINTS.fetch_add(1, Ordering::AcqRel);
    bump();
}

/// This process was restarted from an image of `generation`.
pub fn note_restart(generation: u32) {
    GENERATION.store(generation as i32, Ordering::Relaxed);
    NUM_RESTARTS.fetch_add(1, Ordering::AcqRel);
    bump();
}

/// The checkpoint this process took part in failed.
pub fn note_checkpoint_failed() {
    NUM_FAILURES.fetch_add(1, Ordering::AcqRel);
    bump();
}

#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_is_enabled() -> c_int {
    runtime::settings().is_some() as c_int
}

#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_checkpoint() -> c_int {
    if runtime::settings().is_none() {
        return 3;
    }
    if ckpt_lock::held_by_me() {
        // The checkpoint would wait for this very section to end: refuse instead of hanging.
        crate::warn!("dmtcp_checkpoint() called inside a dmtcp_disable_ckpt() section");
        return -1;
    }
    let (c, r, f) = (
        NUM_CHECKPOINTS.load(Ordering::Acquire),
        NUM_RESTARTS.load(Ordering::Acquire),
        NUM_FAILURES.load(Ordering::Acquire),
    );
    let epoch = EPOCH.load(Ordering::Acquire);
    if session::send(&WorkerMsg::RequestCheckpoint).is_err() {
        return -1;
    }
    let mut seen = epoch;
    loop {
        if NUM_RESTARTS.load(Ordering::Acquire) != r {
            return AFTER_RESTART;
        }
        if NUM_CHECKPOINTS.load(Ordering::Acquire) != c {
            return AFTER_CHECKPOINT;
        }
        if NUM_FAILURES.load(Ordering::Acquire) != f {
            return -1;
        }
        // SAFETY: futex wait on a static word; returns when it no longer equals `seen`.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                EPOCH.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                seen,
                core::ptr::null::<libc::timespec>(),
            );
        }
        seen = EPOCH.load(Ordering::Acquire);
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_disable_ckpt() -> c_int {
    if runtime::settings().is_none() {
        return 0;
    }
    ckpt_lock::enter();
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_enable_ckpt() -> c_int {
    if runtime::settings().is_none() {
        return 0;
    }
    ckpt_lock::leave();
    1
}

/// # Safety
/// The pointers are null or point to writable ints.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_get_coordinator_status(
    num_peers: *mut c_int,
    running: *mut c_int,
) -> c_int {
    let Some((host, port)) = runtime::coordinator() else {
        return 0;
    };
    let Ok(reply) =
        Connection::command(&host, port, Command::Status, Some(Duration::from_secs(10)))
    else {
        return 0;
    };
    // SAFETY: the caller passes valid pointers or null.
    unsafe {
        if !num_peers.is_null() {
            *num_peers = reply.num_peers as c_int;
        }
        if !running.is_null() {
            *running = reply.running as c_int;
        }
    }
    1
}

/// # Safety
/// The pointers are null or point to writable ints.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_get_local_status(
    num_checkpoints: *mut c_int,
    num_restarts: *mut c_int,
) -> c_int {
    if runtime::settings().is_none() {
        return 0;
    }
    // SAFETY: the caller passes valid pointers or null.
    unsafe {
        if !num_checkpoints.is_null() {
            *num_checkpoints = NUM_CHECKPOINTS.load(Ordering::Acquire) as c_int;
        }
        if !num_restarts.is_null() {
            *num_restarts = NUM_RESTARTS.load(Ordering::Acquire) as c_int;
        }
    }
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_get_generation() -> c_int {
    GENERATION.load(Ordering::Relaxed)
}

#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_get_ckpt_signal() -> c_int {
    runtime::settings().map_or(-1, |s| s.ckpt_signal)
}

/// Returns a C string kept in `slot`; it stays valid until the value changes.
fn cached(slot: &Mutex<Option<CString>>, value: Option<String>) -> *const c_char {
    let Some(value) = value else {
        return core::ptr::null();
    };
    let Ok(mut slot) = slot.lock() else {
        return core::ptr::null();
    };
    if slot
        .as_ref()
        .is_none_or(|c| c.as_bytes() != value.as_bytes())
    {
        *slot = CString::new(value).ok();
    }
    slot.as_ref().map_or(core::ptr::null(), |c| c.as_ptr())
}

#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_get_ckpt_filename() -> *const c_char {
    CKPT_FILENAME
        .lock()
        .ok()
        .and_then(|f| f.as_ref().map(|c| c.as_ptr()))
        .unwrap_or(core::ptr::null())
}

#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_get_ckpt_dir() -> *const c_char {
    static SLOT: Mutex<Option<CString>> = Mutex::new(None);
    cached(&SLOT, runtime::settings().map(|s| s.ckpt_dir.clone()))
}

fn identity(f: impl Fn(&dmtcp_protocol::Assignment) -> String) -> Option<String> {
    session::IDENTITY
        .lock()
        .ok()
        .and_then(|a| a.as_ref().map(&f))
}

#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_get_uniquepid_str() -> *const c_char {
    static SLOT: Mutex<Option<CString>> = Mutex::new(None);
    cached(&SLOT, identity(|a| a.upid.to_string()))
}

#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_get_computation_id_str() -> *const c_char {
    static SLOT: Mutex<Option<CString>> = Mutex::new(None);
    cached(&SLOT, identity(|a| a.comp_id.to_string()))
}
