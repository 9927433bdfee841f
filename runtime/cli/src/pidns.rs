//! Exact process and thread ids at restart (DESIGN.md §5, namespace strategy).
//!
//! A restarted process must see the pids and tids it had before: glibc caches tids, and the
//! program may have stored its pid. In a fresh user+pid namespace every id is free, so
//! `clone3` with `set_tid` can recreate each one exactly. The creator of a user namespace holds
//! CAP_SYS_ADMIN inside it, which `set_tid` needs; no privilege on the host is required.
//!
//! Layout: the process that calls [`enter`] stays outside and relays the exit status; its child
//! is pid 1 of the new namespace (a tiny init that reaps orphans and forwards signals) and
//! creates the restored processes with [`spawn_with_pid`].

use dmtcp_restorer::abi::CloneArgs;
use std::io;
use std::sync::atomic::{AtomicI32, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error(
        "cannot create a user+pid namespace ({0}); unprivileged user namespaces may be disabled here (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)"
    )]
    Unshare(io::Error),
    #[error("cannot write the namespace id maps: {0}")]
    Map(io::Error),
    #[error("cannot mount a private /proc in the new namespace: {0}")]
    Mount(io::Error),
    #[error("cannot create process {pid} in the namespace: {source}")]
    Clone { pid: i32, source: io::Error },
    #[error("fork failed: {0}")]
    Fork(io::Error),
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn write_map(file: &str, line: &str) -> io::Result<()> {
    std::fs::write(format!("/proc/self/{file}"), line)
}

/// The signals an init passes on to the process it serves.
const FORWARDED: [libc::c_int; 7] = [
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGCONT,
];

static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = FORWARD_TO.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

fn forward_signals_to(pid: i32) {
    FORWARD_TO.store(pid, Ordering::Relaxed);
    for sig in FORWARDED {
        // SAFETY: installing an async-signal-safe handler.
        unsafe { libc::signal(sig, forward as *const () as libc::sighandler_t) };
    }
}

/// Waits for `child` (reaping any other process that ends meanwhile) and returns its wait status.
fn wait_for(child: i32) -> libc::c_int {
    loop {
        let mut status = 0;
        // SAFETY: waitpid into a local status word.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r == child {
            return status;
        }
        if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
            return 0;
        }
    }
}

/// Ends this process the way `status` says the child ended (same code, or same signal).
fn exit_like(status: libc::c_int) -> ! {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // SAFETY: restore the default action and die of the same signal, like a shell would see.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::kill(libc::getpid(), sig);
        }
        std::process::exit(128 + sig);
    }
    std::process::exit(libc::WEXITSTATUS(status))
}

/// Can this user create a user+pid namespace here? Probed in a short-lived child, so the
/// caller is unchanged whatever the answer.
pub fn available() -> bool {
    // SAFETY: the child only calls unshare and _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above; the child never returns into Rust code.
        unsafe {
            let ok =
                libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS) == 0;
            libc::_exit(if ok { 0 } else { 1 });
        }
    }
    if pid < 0 {
        return false;
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// Enters a fresh user+pid+mount namespace. Returns in pid 1 of that namespace, with a private
/// `/proc` mounted; the calling process stays outside, waits and exits like pid 1 does.
pub fn enter() -> Result<(), NsError> {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    // SAFETY: unshare affects only this (single-threaded) process.
    check(unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS) })
        .map_err(NsError::Unshare)?;
    write_map("setgroups", "deny").map_err(NsError::Map)?;
    write_map("uid_map", &format!("{uid} {uid} 1")).map_err(NsError::Map)?;
    write_map("gid_map", &format!("{gid} {gid} 1")).map_err(NsError::Map)?;
    // SAFETY: fork of a single-threaded process.
    let pid = check(unsafe { libc::fork() }).map_err(NsError::Fork)?;
    if pid > 0 {
        forward_signals_to(pid);
        exit_like(wait_for(pid));
    }
    // SAFETY: plain prctl/mount calls; if the outside parent dies, the whole namespace goes.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        check(libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))
        .map_err(NsError::Mount)?;
        check(libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        ))
        .map_err(NsError::Mount)?;
    }
    Ok(())
}

/// Forks a child whose pid in the current pid namespace is exactly `pid` (needs the caller to
/// hold CAP_SYS_ADMIN in the namespace's owner, as the init from [`enter`] does).
/// Returns 0 in the child and the child's pid in the parent, like fork.
pub fn fork_with_pid(pid: i32) -> Result<i32, NsError> {
    let set_tid: libc::pid_t = pid;
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: &set_tid as *const libc::pid_t as u64,
        set_tid_size: 1,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM behaves like fork; `args` outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r < 0 {
        return Err(NsError::Clone {
            pid,
            source: io::Error::last_os_error(),
        });
    }
    Ok(r as i32)
}

/// In the namespace's init: runs `f` in a child with exactly `pid`, then serves as init
/// (reaping, forwarding signals) until it ends, and exits the same way.
pub fn spawn_with_pid(
    pid: i32,
    f: impl FnOnce() -> i32,
) -> Result<std::convert::Infallible, NsError> {
    let child = fork_with_pid(pid)?;
    if child == 0 {
        std::process::exit(f());
    }
    forward_signals_to(child);
    exit_like(wait_for(child))
}

/// How a restart gives processes their ids back (DESIGN.md §5): `namespace` recreates the
/// exact pids and tids in a fresh user+pid namespace, `virtual` lets them take new ones and
/// the runtime translates; `auto` is `namespace` where unprivileged namespaces work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PidMode {
    Auto,
    Namespace,
    Virtual,
}

/// The environment variable carrying the mode from `dmtcp_launch` to the runtime (which
/// records it in each image).
pub const PID_MODE_ENV: &str = "DMTCP_PID_MODE";

impl PidMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PidMode::Auto => "auto",
            PidMode::Namespace => "namespace",
            PidMode::Virtual => "virtual",
        }
    }

    pub fn parse(s: &str) -> Option<PidMode> {
        match s {
            "auto" => Some(PidMode::Auto),
            "namespace" => Some(PidMode::Namespace),
            "virtual" => Some(PidMode::Virtual),
            _ => None,
        }
    }

    /// The mode the environment asks for: `DMTCP_PID_MODE`, else `virtual` when
    /// `DMTCP_PID_NAMESPACE=0` (its older spelling).
    pub fn from_env() -> Option<PidMode> {
        if let Some(m) = std::env::var(PID_MODE_ENV)
            .ok()
            .and_then(|v| PidMode::parse(&v))
        {
            return Some(m);
        }
        (std::env::var("DMTCP_PID_NAMESPACE").as_deref() == Ok("0")).then_some(PidMode::Virtual)
    }

    /// `auto` decided on this machine; the others as they are.
    pub fn resolve(self) -> PidMode {
        match self {
            PidMode::Auto if available() => PidMode::Namespace,
            PidMode::Auto => PidMode::Virtual,
            m => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole dance in a forked child: enter a namespace, create pid 4242 there, check that
    /// it sees exactly that pid and a private /proc.
    #[test]
    fn pid_modes_parse_and_resolve() {
        for m in [PidMode::Auto, PidMode::Namespace, PidMode::Virtual] {
            assert_eq!(PidMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(PidMode::parse("exact"), None);
        assert_eq!(PidMode::Virtual.resolve(), PidMode::Virtual);
        assert_eq!(PidMode::Namespace.resolve(), PidMode::Namespace);
        let auto = PidMode::Auto.resolve();
        assert_eq!(
            auto,
            if available() {
                PidMode::Namespace
            } else {
                PidMode::Virtual
            }
        );
    }

    #[test]
    fn exact_pid_in_fresh_namespace() {
        // SAFETY: fork in a test; the child only runs the code below and exits.
        let outer = unsafe { libc::fork() };
        if outer == 0 {
            if enter().is_err() {
                // Namespaces unavailable here: report "skipped" through a distinct code.
                std::process::exit(77);
            }
            let _ = spawn_with_pid(4242, || {
                // SAFETY: getpid cannot fail.
                let me = unsafe { libc::getpid() };
                let proc_self = std::fs::read_link("/proc/self").ok();
                let ok = me == 4242 && proc_self.as_deref() == Some(std::path::Path::new("4242"));
                if ok { 0 } else { 1 }
            });
            std::process::exit(2);
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(outer, &mut status, 0) };
        let code = libc::WEXITSTATUS(status);
        if code == 77 {
            eprintln!("skipped: user namespaces are not available");
            return;
        }
        assert_eq!(code, 0, "child in namespace did not get pid 4242");
    }
}
