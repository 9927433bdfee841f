//! Following `posix_spawn`: glibc creates the child with `clone(CLONE_VM|CLONE_VFORK)` and calls
//! its internal `execve`, so the exec wrapper never sees it. The child still joins the
//! computation on its own (its parent is found by pid), provided it is preloaded: a program that
//! passes its own environment (`envp` without `LD_PRELOAD`, as `env -i`-style launchers do) would
//! otherwise start a child outside the computation. `popen` and `system` use the same path.

use crate::{exec, vids};
use libc::{c_char, c_int, pid_t, posix_spawn_file_actions_t, posix_spawnattr_t};

type SpawnFn = unsafe extern "C" fn(
    *mut pid_t,
    *const c_char,
    *const posix_spawn_file_actions_t,
    *const posix_spawnattr_t,
    *const *mut c_char,
    *const *mut c_char,
) -> c_int;

/// Calls `real` with the member environment built from `envp`. After a virtual restart a
/// child whose pid is a virtual id in use is discarded and spawned again (`vids::children`).
///
/// # Safety
/// `envp` is null or a null-terminated array of C strings; `call` forwards to a posix_spawn
/// that stores the child's pid in `pid`.
unsafe fn with_member_env(
    pid: *mut pid_t,
    envp: *const *mut c_char,
    mut call: impl FnMut(*const *mut c_char) -> c_int,
) -> c_int {
    if crate::runtime::settings().is_none() {
        return call(envp);
    }
    // SAFETY: forwarded from the caller.
    let env = unsafe { exec::member_env(envp.cast()) };
    let mut ptrs: Vec<*mut c_char> = env.iter().map(|e| e.as_ptr().cast_mut()).collect();
    if let Some(e) = vids::children::spawned_env() {
        ptrs.push(e.as_ptr().cast_mut());
    }
    ptrs.push(std::ptr::null_mut());
    // SAFETY: `pid` is the caller's out-pointer, filled by `call`.
    unsafe { vids::children::spawn_checked(pid, || call(ptrs.as_ptr())) }
}

/// # Safety
/// Same contract as posix_spawn(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut pid_t,
    path: *const c_char,
    actions: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    let real: SpawnFn = crate::real_fn!("posix_spawn");
    // SAFETY: forwarding the caller's arguments.
    unsafe { with_member_env(pid, envp, |e| real(pid, path, actions, attr, argv, e)) }
}

/// # Safety
/// Same contract as posix_spawnp(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut pid_t,
    file: *const c_char,
    actions: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    let real: SpawnFn = crate::real_fn!("posix_spawnp");
    // SAFETY: forwarding the caller's arguments.
    unsafe { with_member_env(pid, envp, |e| real(pid, file, actions, attr, argv, e)) }
}
