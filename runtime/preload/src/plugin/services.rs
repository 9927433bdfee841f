//! The services libdmtcp.so exports to plugins (C ABI, declared in `include/dmtcp.h`):
//! barriers, the coordinator's key-value store, image sections, virtual ids, protected fds
//! and logging. Every function returns a `DMTCP_*` status (0 or a negative error).
//!
//! Barriers and the key-value store talk over the process's coordinator connection, which
//! only one thread reads: the constructor before the checkpoint thread starts (`Init`), then
//! the checkpoint thread (`PreSuspend` .. `Restart`). From any other thread or event they are
//! refused with `DMTCP_ERR_WRONG_CONTEXT` and a warning, never a hang or a stolen reply.

use super::event::Event;
use super::{fds, registry, sections, vid};
use crate::{runtime, session};
use dmtcp_protocol::KvOp;
use libc::{c_char, c_int, c_void, size_t, ssize_t};
use std::ffi::CStr;

pub const OK: c_int = 0;
pub const ERR_NOT_ENABLED: c_int = -1;
pub const ERR_WRONG_CONTEXT: c_int = -2;
pub const ERR_COORDINATOR: c_int = -3;
pub const ERR_NOT_FOUND: c_int = -4;
pub const ERR_INVALID: c_int = -5;
pub const ERR_NOT_A_NUMBER: c_int = -6;
pub const ERR_TOO_LARGE: c_int = -7;

/// Log levels of `dmtcp_log`.
pub const LOG_ERROR: c_int = 0;
pub const LOG_WARNING: c_int = 1;
pub const LOG_INFO: c_int = 2;
pub const LOG_DEBUG: c_int = 3;

/// # Safety
/// `p` is null or a NUL-terminated string that outlives the call.
unsafe fn str_arg<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

/// # Safety
/// `p` is null (then `len` must be 0) or valid for `len` bytes.
unsafe fn bytes_arg<'a>(p: *const c_void, len: size_t) -> Option<&'a [u8]> {
    if p.is_null() {
        return (len == 0).then_some(&[]);
    }
    // SAFETY: guaranteed by the caller.
    Some(unsafe { core::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// May this thread use the coordinator connection now (for `what`)?
fn session_context(what: &str, barrier: bool) -> Result<(), c_int> {
    if runtime::settings().is_none() {
        return Err(ERR_NOT_ENABLED);
    }
    let ok = registry::current_event().is_some_and(|e| {
        if barrier {
            super::event::allows_barrier(e)
        } else {
            super::event::owns_session(e)
        }
    });
    if !ok {
        crate::warn!(
            "{what} refused: only from a plugin's {} hook (event now: {:?})",
            if barrier {
                "PRESUSPEND, PRECHECKPOINT, RESUME or RESTART"
            } else {
                "INIT, PRESUSPEND, PRECHECKPOINT, RESUME or RESTART"
            },
            registry::current_event()
        );
        return Err(ERR_WRONG_CONTEXT);
    }
    Ok(())
}

fn barrier(prefix: &str, name: *const c_char) -> c_int {
    // SAFETY: the ABI requires a string.
    let Some(name) = (unsafe { str_arg(name) }) else {
        return ERR_INVALID;
    };
    if let Err(e) = session_context("a barrier", true) {
        return e;
    }
    match session::barrier(&format!("{prefix}{name}")) {
        Ok(_) => OK,
        Err(e) => {
            crate::warn!("barrier {name}: {e}");
            ERR_COORDINATOR
        }
    }
}

/// Waits until every process of the computation reaches the barrier `name`.
#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_global_barrier(name: *const c_char) -> c_int {
    barrier("plugin:", name)
}

/// Waits until every process of the computation on this host reaches `name`. Every process
/// of the computation must call it (as with DMTCP); it is implemented as a global barrier of
/// its own name space, which is a correct (stronger) node-local barrier.
#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_local_barrier(name: *const c_char) -> c_int {
    barrier("plugin-local:", name)
}

fn kv(
    db: *const c_char,
    key: *const c_void,
    klen: size_t,
    op: KvOp,
) -> Result<Option<Vec<u8>>, c_int> {
    // SAFETY: the ABI requires a string and a buffer of `klen` bytes.
    let (Some(db), Some(key)) = (unsafe { str_arg(db) }, unsafe { bytes_arg(key, klen) }) else {
        return Err(ERR_INVALID);
    };
    session_context("a key-value request", false)?;
    session::kv(&format!("plugin:{db}"), key, op).map_err(|e| match e {
        session::SessionError::Fatal(m) if m.contains("not a number") => ERR_NOT_A_NUMBER,
        e => {
            crate::warn!("key-value request in {db}: {e}");
            ERR_COORDINATOR
        }
    })
}

/// Stores `value` under `key` in the database `db`.
///
/// # Safety
/// `db` is a string; `key` and `value` are valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_kvdb_set(
    db: *const c_char,
    key: *const c_void,
    klen: size_t,
    value: *const c_void,
    vlen: size_t,
) -> c_int {
    // SAFETY: guaranteed by the caller.
    let Some(value) = (unsafe { bytes_arg(value, vlen) }) else {
        return ERR_INVALID;
    };
    match kv(db, key, klen, KvOp::Set(value.to_vec())) {
        Ok(_) => OK,
        Err(e) => e,
    }
}

/// Copies the value of `key` into `buf` (at most `len` bytes) and returns its full length,
/// or `DMTCP_ERR_NOT_FOUND`.
///
/// # Safety
/// `db` is a string; `key` is valid for `klen` bytes, `buf` writable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_kvdb_get(
    db: *const c_char,
    key: *const c_void,
    klen: size_t,
    buf: *mut c_void,
    len: size_t,
) -> ssize_t {
    match kv(db, key, klen, KvOp::Get) {
        Ok(Some(v)) => {
            let n = v.len().min(len);
            if n > 0 && !buf.is_null() {
                // SAFETY: `buf` holds `len` >= `n` bytes; `v` is our own buffer.
                unsafe { core::ptr::copy_nonoverlapping(v.as_ptr(), buf.cast::<u8>(), n) };
            }
            v.len() as ssize_t
        }
        Ok(None) => ERR_NOT_FOUND as ssize_t,
        Err(e) => e as ssize_t,
    }
}

fn numeric(
    db: *const c_char,
    key: *const c_void,
    klen: size_t,
    op: KvOp,
    result: *mut i64,
) -> c_int {
    match kv(db, key, klen, op) {
        Ok(Some(v)) => {
            let Some(n) = std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
            else {
                return ERR_NOT_A_NUMBER;
            };
            if !result.is_null() {
                // SAFETY: the caller passes a writable i64 or null.
                unsafe { *result = n };
            }
            OK
        }
        Ok(None) => ERR_NOT_FOUND,
        Err(e) => e,
    }
}

/// Adds `delta` to the decimal number stored under `key` (absent = 0); `*result` = new value.
///
/// # Safety
/// `db` is a string, `key` valid for `klen` bytes, `result` null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_kvdb_incr(
    db: *const c_char,
    key: *const c_void,
    klen: size_t,
    delta: i64,
    result: *mut i64,
) -> c_int {
    numeric(db, key, klen, KvOp::IncrBy(delta), result)
}

/// Keeps the minimum of the stored number and `value`; `*result` = the stored minimum.
///
/// # Safety
/// As [`dmtcp_kvdb_incr`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_kvdb_min(
    db: *const c_char,
    key: *const c_void,
    klen: size_t,
    value: i64,
    result: *mut i64,
) -> c_int {
    numeric(db, key, klen, KvOp::Min(value), result)
}

/// Keeps the maximum of the stored number and `value`; `*result` = the stored maximum.
///
/// # Safety
/// As [`dmtcp_kvdb_incr`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_kvdb_max(
    db: *const c_char,
    key: *const c_void,
    klen: size_t,
    value: i64,
    result: *mut i64,
) -> c_int {
    numeric(db, key, klen, KvOp::Max(value), result)
}

/// Saves `len` bytes as this checkpoint's image section `plugin:<name>` (from a `PRESUSPEND`
/// or `PRECHECKPOINT` hook; a later save of the same name replaces it).
///
/// # Safety
/// `name` is a string, `data` valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_plugin_save(
    name: *const c_char,
    data: *const c_void,
    len: size_t,
) -> c_int {
    // SAFETY: guaranteed by the caller.
    let (Some(name), Some(data)) = (unsafe { str_arg(name) }, unsafe { bytes_arg(data, len) })
    else {
        return ERR_INVALID;
    };
    if runtime::settings().is_none() {
        return ERR_NOT_ENABLED;
    }
    if !matches!(
        registry::current_event(),
        Some(Event::PreSuspend | Event::PreCheckpoint)
    ) {
        crate::warn!(
            "dmtcp_plugin_save({name}) refused: only from a PRESUSPEND or PRECHECKPOINT hook"
        );
        return ERR_WRONG_CONTEXT;
    }
    if data.len() > sections::MAX_SECTION {
        return ERR_TOO_LARGE;
    }
    sections::save(name, data);
    OK
}

/// Copies the section `name` saved at the checkpoint this process resumed or restarted from
/// into `buf` (at most `len` bytes); returns its full length or `DMTCP_ERR_NOT_FOUND`.
///
/// # Safety
/// `name` is a string, `buf` writable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_plugin_load(
    name: *const c_char,
    buf: *mut c_void,
    len: size_t,
) -> ssize_t {
    // SAFETY: guaranteed by the caller.
    let Some(name) = (unsafe { str_arg(name) }) else {
        return ERR_INVALID as ssize_t;
    };
    let Some(data) = sections::load(name) else {
        return ERR_NOT_FOUND as ssize_t;
    };
    let n = data.len().min(len);
    if n > 0 && !buf.is_null() {
        // SAFETY: `buf` holds `len` >= `n` bytes.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), buf.cast::<u8>(), n) };
    }
    data.len() as ssize_t
}

/// Registers the real id `real` in `table`; returns its virtual id (>= 0).
///
/// # Safety
/// `table` is a string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_vid_register(table: *const c_char, real: i64) -> i64 {
    // SAFETY: guaranteed by the caller.
    let Some(table) = (unsafe { str_arg(table) }) else {
        return ERR_INVALID as i64;
    };
    if real < 0 {
        return ERR_INVALID as i64;
    }
    vid::register(table, real)
}

/// The real id behind the virtual id `virt`, or `DMTCP_ERR_NOT_FOUND`.
///
/// # Safety
/// `table` is a string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_vid_to_real(table: *const c_char, virt: i64) -> i64 {
    // SAFETY: guaranteed by the caller.
    let Some(table) = (unsafe { str_arg(table) }) else {
        return ERR_INVALID as i64;
    };
    vid::to_real(table, virt).unwrap_or(ERR_NOT_FOUND as i64)
}

/// The virtual id of the real id `real`, or `DMTCP_ERR_NOT_FOUND`.
///
/// # Safety
/// `table` is a string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_vid_to_virtual(table: *const c_char, real: i64) -> i64 {
    // SAFETY: guaranteed by the caller.
    let Some(table) = (unsafe { str_arg(table) }) else {
        return ERR_INVALID as i64;
    };
    vid::to_virtual(table, real).unwrap_or(ERR_NOT_FOUND as i64)
}

/// Points the virtual id `virt` at `new_real` (typically in a `RESTART` hook).
///
/// # Safety
/// `table` is a string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_vid_update(table: *const c_char, virt: i64, new_real: i64) -> c_int {
    // SAFETY: guaranteed by the caller.
    let Some(table) = (unsafe { str_arg(table) }) else {
        return ERR_INVALID;
    };
    if vid::update(table, virt, new_real) {
        OK
    } else {
        ERR_NOT_FOUND
    }
}

/// Forgets the virtual id `virt`.
///
/// # Safety
/// `table` is a string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_vid_unregister(table: *const c_char, virt: i64) -> c_int {
    // SAFETY: guaranteed by the caller.
    let Some(table) = (unsafe { str_arg(table) }) else {
        return ERR_INVALID;
    };
    if vid::unregister(table, virt) {
        OK
    } else {
        ERR_NOT_FOUND
    }
}

/// Marks `fd` as the plugin's own: checkpoint and restart leave it alone.
#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_protect_fd(fd: c_int) -> c_int {
    if fd < 0 {
        return ERR_INVALID;
    }
    fds::protect(fd);
    OK
}

#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_unprotect_fd(fd: c_int) -> c_int {
    if fds::unprotect(fd) {
        OK
    } else {
        ERR_NOT_FOUND
    }
}

/// 1 if `fd` is protected (the runtime's own fds included), else 0.
#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_is_protected_fd(fd: c_int) -> c_int {
    fds::is_protected(fd) as c_int
}

/// Writes one line to the runtime's log (its protected copy of stderr), as
/// `dmtcp[pid]: <level>: <msg>`. Debug lines appear only with `DMTCP_LOG=debug`; with
/// `--quiet` only errors appear. Safe in every hook: no allocation, one write(2).
///
/// # Safety
/// `msg` is null or a string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dmtcp_log(level: c_int, msg: *const c_char) {
    if msg.is_null() {
        return;
    }
    // SAFETY: guaranteed by the caller.
    let msg = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
    match level {
        LOG_ERROR => crate::log::emit("error", format_args!("{msg}")),
        LOG_WARNING => crate::log::emit("warning", format_args!("{msg}")),
        LOG_INFO => crate::log::emit("info", format_args!("{msg}")),
        _ => {
            if crate::log::debug_enabled() {
                crate::log::emit("debug", format_args!("{msg}"))
            }
        }
    }
}

/// The plugin ABI version this runtime implements (`DMTCP_PLUGIN_API_VERSION`).
#[unsafe(no_mangle)]
pub extern "C" fn dmtcp_plugin_api_version() -> c_int {
    registry::API_VERSION as c_int
}
