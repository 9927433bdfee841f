//! Following `exec`: the new program stays a member with the same identity and connection.
//!
//! The wrappers make sure the new program is preloaded and configured (some programs exec with
//! an environment of their own), keep the coordinator fd open across the exec and tell the new
//! image who it is. A vfork child (same memory, other pid) must not hand over the parent's
//! connection: it execs as a fresh process that will join on its own.

use crate::ckpt_thread::GATE;
use crate::settings::{COORD_FD, EXEC_HANDOFF_ENV, IDENTITY_ENV};
use crate::{ckpt_lock, real_fn, runtime, session};
use libc::{c_char, c_int};
use std::ffi::{CStr, CString};

type ExecveFn =
    unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
type FexecveFn = unsafe extern "C" fn(c_int, *const *const c_char, *const *const c_char) -> c_int;

unsafe extern "C" {
    static environ: *const *const c_char;
}

/// The environment for the new program: the caller's, plus our preload and settings.
///
/// # Safety
/// `envp` is null or a null-terminated array of C strings.
unsafe fn build_env(envp: *const *const c_char, handoff: bool) -> Vec<CString> {
    let mut out: Vec<CString> = Vec::new();
    let mut i = 0;
    while !envp.is_null() {
        // SAFETY: the caller guarantees a null-terminated array.
        let p = unsafe { *envp.add(i) };
        if p.is_null() {
            break;
        }
        // SAFETY: each entry is a C string.
        out.push(unsafe { CStr::from_ptr(p) }.to_owned());
        i += 1;
    }
    let key_of = |e: &CString| -> Vec<u8> {
        let b = e.as_bytes();
        b[..b.iter().position(|&c| c == b'=').unwrap_or(b.len())].to_vec()
    };
    out.retain(|e| {
        let k = key_of(e);
        k != EXEC_HANDOFF_ENV.as_bytes()
            && k != IDENTITY_ENV.as_bytes()
            && k != crate::vids::TABLE_ENV.as_bytes()
    });
    // Virtual ids after a restart: the new program translates like this one.
    if let Some(t) = crate::vids::export() {
        out.push(kv(crate::vids::TABLE_ENV.as_bytes(), t.as_bytes()));
    }
    let Some(settings) = runtime::settings() else {
        return out;
    };
    // After a restart the coordinator may be elsewhere than the environment says.
    if let Some((host, port)) = runtime::coordinator() {
        for (k, v) in [
            ("DMTCP_COORD_HOST", host),
            ("DMTCP_COORD_PORT", port.to_string()),
        ] {
            out.retain(|e| key_of(e) != k.as_bytes());
            out.push(kv(k.as_bytes(), v.as_bytes()));
        }
    }
    for (k, v) in &settings.inherited_env {
        let k = k.as_encoded_bytes();
        let v = v.as_encoded_bytes();
        if k == b"LD_PRELOAD" {
            ensure_preload(&mut out, v);
        } else if !out.iter().any(|e| key_of(e) == k) {
            out.push(kv(k, v));
        }
    }
    // SEM_UNDO adjustments stay with the process over exec, as in the kernel (tagged with
    // its pid: a program started by posix_spawn, which gets this too, ignores them).
    let undo = crate::checkpoint::sysv::UNDO_ENV.as_bytes();
    out.retain(|e| key_of(e) != undo);
    if let Some(v) = crate::checkpoint::sysv::export_undo() {
        out.push(kv(undo, v.as_bytes()));
    }
    if handoff {
        // SAFETY: getpid cannot fail.
        let pid = unsafe { libc::getpid() };
        out.push(kv(EXEC_HANDOFF_ENV.as_bytes(), pid.to_string().as_bytes()));
        if let Ok(guard) = session::IDENTITY.lock()
            && let Some(a) = guard.as_ref()
            && let Ok(bytes) = postcard::to_stdvec(a)
        {
            out.push(kv(IDENTITY_ENV.as_bytes(), hex::encode(bytes).as_bytes()));
        }
    }
    out
}

/// The environment for a new program started by a member without `exec` of itself
/// (`posix_spawn`): the caller's, plus our preload and settings, with no identity hand-over.
///
/// # Safety
/// `envp` is null or a null-terminated array of C strings.
pub(crate) unsafe fn member_env(envp: *const *const c_char) -> Vec<CString> {
    // SAFETY: forwarded from the caller.
    unsafe { build_env(envp, false) }
}

fn kv(k: &[u8], v: &[u8]) -> CString {
    let mut b = k.to_vec();
    b.push(b'=');
    b.extend_from_slice(v);
    CString::new(b).unwrap_or_default()
}

/// Puts every library of the launch-time `LD_PRELOAD` back in front of the program's own.
fn ensure_preload(env: &mut Vec<CString>, ours: &[u8]) {
    let pos = env
        .iter()
        .position(|e| e.as_bytes().starts_with(b"LD_PRELOAD="));
    let current: Vec<u8> = pos
        .map(|i| env[i].as_bytes()[11..].to_vec())
        .unwrap_or_default();
    let has = |lib: &[u8]| current.split(|&c| c == b':' || c == b' ').any(|x| x == lib);
    let mut missing: Vec<&[u8]> = ours
        .split(|&c| c == b':' || c == b' ')
        .filter(|l| !l.is_empty() && !has(l))
        .collect();
    if missing.is_empty() {
        return;
    }
    let mut value = missing.join(&b':');
    if !current.is_empty() {
        value.push(b':');
        value.extend_from_slice(&current);
    }
    missing.clear();
    let entry = kv(b"LD_PRELOAD", &value);
    match pos {
        Some(i) => env[i] = entry,
        None => env.push(entry),
    }
}

fn set_cloexec(on: bool) {
    let flag = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: changes a flag of our own protected fd.
    unsafe { libc::fcntl(COORD_FD, libc::F_SETFD, flag) };
}

/// Runs `call` with the adjusted environment; keeps our connection open only for a real
/// exec of this process.
///
/// # Safety
/// `envp` is null or a valid environment array.
unsafe fn exec_with(
    envp: *const *const c_char,
    call: impl FnOnce(*const *const c_char) -> c_int,
) -> c_int {
    if runtime::settings().is_none() {
        return call(envp);
    }
    let handoff = runtime::is_original_pid() && session::coord_fd_is_open();
    // SAFETY: forwarded from the caller.
    let env = unsafe { build_env(envp, handoff) };
    let mut ptrs: Vec<*const c_char> = env.iter().map(|e| e.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    if !handoff {
        return call(ptrs.as_ptr());
    }
    ckpt_lock::enter();
    GATE.lock();
    set_cloexec(false);
    let r = call(ptrs.as_ptr());
    // Still here: the exec failed. Keep errno for the caller.
    let err = std::io::Error::last_os_error();
    set_cloexec(true);
    GATE.unlock();
    ckpt_lock::leave();
    // SAFETY: restoring errno in this thread's errno slot.
    unsafe { *libc::__errno_location() = err.raw_os_error().unwrap_or(0) };
    r
}

/// # Safety
/// Same contract as execve(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let real: ExecveFn = real_fn!("execve");
    crate::plugin::dispatch_pre_exec(path);
    // SAFETY: forwarding the caller's arguments.
    unsafe { exec_with(envp, |e| real(path, argv, e)) }
}

/// # Safety
/// Same contract as execv(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: environ is the process environment.
    unsafe { execve(path, argv, environ) }
}

/// # Safety
/// Same contract as execvpe(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let real: ExecveFn = real_fn!("execvpe");
    crate::plugin::dispatch_pre_exec(file);
    // SAFETY: forwarding the caller's arguments.
    unsafe { exec_with(envp, |e| real(file, argv, e)) }
}

/// # Safety
/// Same contract as execvp(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: environ is the process environment.
    unsafe { execvpe(file, argv, environ) }
}

/// # Safety
/// Same contract as fexecve(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fexecve(
    fd: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let real: FexecveFn = real_fn!("fexecve");
    crate::plugin::dispatch_pre_exec(core::ptr::null());
    // SAFETY: forwarding the caller's arguments.
    unsafe { exec_with(envp, |e| real(fd, argv, e)) }
}
