//! Running programs as the test user: a clean, known environment, its own process group,
//! output captured to files, and a timeout on every wait.

use crate::reaper;
use crate::user::TestUser;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// What a finished program produced.
#[derive(Debug, Clone)]
pub struct Output {
    pub name: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The exit code, or None when killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// Everything about the run, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "{} exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.name,
            self.status,
            self.stdout_str(),
            self.stderr_str()
        )
    }

    /// Panics (with the whole output) unless the program exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "{}", self.describe());
        self
    }

    /// Panics unless stderr is at most one line, without a panic message or backtrace.
    #[track_caller]
    pub fn assert_one_line_error(&self) -> &Self {
        let err = self.stderr_str();
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            lines.len() <= 1,
            "expected a one-line error:\n{}",
            self.describe()
        );
        assert!(
            !err.contains("panicked")
                && !err.contains("RUST_BACKTRACE")
                && !err.contains("stack backtrace"),
            "panic output instead of an error message:\n{}",
            self.describe()
        );
        self
    }
}

/// A command to run, built like `std::process::Command` but with the harness's defaults:
/// a cleared environment (PATH, HOME, USER, LOGNAME, LANG, plus what the test adds), the
/// test user's identity, stdin from bytes or /dev/null, and its own process group.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: BTreeMap<OsString, Option<OsString>>,
    cwd: Option<PathBuf>,
    user: Option<TestUser>,
    stdin: Option<Vec<u8>>,
    capture_dir: PathBuf,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            user: None,
            stdin: None,
            capture_dir: std::env::temp_dir(),
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        self.args.push(a.as_ref().into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, it: I) -> Cmd {
        self.args.extend(it.into_iter().map(|a| a.as_ref().into()));
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Cmd {
        self.env.insert(k.as_ref().into(), Some(v.as_ref().into()));
        self
    }

    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Cmd {
        self.env.insert(k.as_ref().into(), None);
        self
    }

    pub fn cwd(mut self, d: impl AsRef<Path>) -> Cmd {
        self.cwd = Some(d.as_ref().into());
        self
    }

    /// Runs as `user` (uid, gid and groups switched between fork and exec when needed).
    pub fn user(mut self, user: &TestUser) -> Cmd {
        self.user = Some(user.clone());
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// Where captured output files go (the work dir's `.harness`).
    pub fn capture_in(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.capture_dir = dir.as_ref().into();
        self
    }

    /// A short name for messages: the program's file name and first arguments.
    pub fn name(&self) -> String {
        let prog = Path::new(&self.program)
            .file_name()
            .unwrap_or(&self.program)
            .to_string_lossy();
        let args: Vec<_> = self
            .args
            .iter()
            .take(6)
            .map(|a| a.to_string_lossy())
            .collect();
        format!("`{} {}`", prog, args.join(" "))
    }

    fn build(&self, out: File, err: File, stdin: Stdio) -> std::process::Command {
        let mut c = std::process::Command::new(&self.program);
        c.args(&self.args)
            .env_clear()
            .stdin(stdin)
            .stdout(out)
            .stderr(err);
        c.env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8");
        if let Some(u) = &self.user {
            c.env("USER", &u.name)
                .env("LOGNAME", &u.name)
                .env("HOME", &u.home);
        }
        // Let a developer see the tools' debug logs through the whole stack.
        if let Some(v) = std::env::var_os("DMTCP_LOG") {
            c.env("DMTCP_LOG", v);
        }
        // Run the whole suite under one id strategy: DMTCP_PID_MODE=virtual (or namespace).
        if let Some(v) = std::env::var_os("DMTCP_PID_MODE") {
            c.env("DMTCP_PID_MODE", v);
        }
        // Run every restart lazily: DMTCP_LAZY_RESTART=1.
        if let Some(v) = std::env::var_os("DMTCP_LAZY_RESTART") {
            c.env("DMTCP_LAZY_RESTART", v);
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        c.process_group(0);
        if let Some(u) = self.user.clone().filter(TestUser::needs_switch) {
            let groups: Vec<libc::gid_t> = u.groups.clone();
            // SAFETY: the closure runs in the child between fork and exec and only makes
            // async-signal-safe syscalls on data prepared before the fork.
            unsafe {
                c.pre_exec(move || {
                    if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                        || libc::setgid(u.gid) != 0
                        || libc::setuid(u.uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        c
    }

    /// Starts the program; its output goes to files read when it is waited for.
    pub fn spawn(&self) -> Spawned {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let base = self
            .capture_dir
            .join(format!("out-{}-{n}", std::process::id()));
        let out_path = base.with_extension("stdout");
        let err_path = base.with_extension("stderr");
        let out = File::create(&out_path).unwrap_or_else(|e| panic!("{}: {e}", out_path.display()));
        let err = File::create(&err_path).unwrap_or_else(|e| panic!("{}: {e}", err_path.display()));
        let stdin = if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut cmd = self.build(out, err, stdin);
        let mut guard = reaper::lock();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name()));
        guard.own(child.id());
        drop(guard);
        if let Some(bytes) = self.stdin.clone() {
            let mut pipe = child.stdin.take().expect("piped stdin");
            // A writer thread, so a program that does not read stdin cannot block us.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        Spawned {
            name: self.name(),
            pgid: child.id() as i32,
            child: Some(child),
            out_path,
            err_path,
        }
    }

    /// Runs to completion within `timeout`; on timeout the process group is killed and the
    /// test fails with what the program printed so far.
    #[track_caller]
    pub fn run(&self, timeout: Duration) -> Output {
        self.spawn().wait(timeout)
    }
}

/// A started program, in its own process group. Dropping it kills the group.
#[derive(Debug)]
pub struct Spawned {
    pub name: String,
    pgid: i32,
    child: Option<Child>,
    out_path: PathBuf,
    err_path: PathBuf,
}

impl Spawned {
    pub fn pid(&self) -> i32 {
        self.pgid
    }

    /// The process group (equal to the pid: each program leads its own group).
    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    /// Output so far (the files keep growing while the program runs).
    pub fn stdout_so_far(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.out_path).unwrap_or_default()).into_owned()
    }

    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.err_path).unwrap_or_default()).into_owned()
    }

    pub fn output_paths(&self) -> (PathBuf, PathBuf) {
        (self.out_path.clone(), self.err_path.clone())
    }

    /// Sends `sig` to the program's process group.
    pub fn signal_group(&self, sig: i32) {
        // SAFETY: kill() on the process group this handle created; it has not been reaped
        // while the handle holds the child, so the pgid cannot have been reused.
        unsafe { libc::kill(-self.pgid, sig) };
    }

    /// Sends `sig` to the program itself.
    pub fn signal(&self, sig: i32) {
        if self.child.is_some() {
            // SAFETY: kill() on our own unreaped child.
            unsafe { libc::kill(self.pgid, sig) };
        }
    }

    /// Has it exited? (Reaps it if so.)
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits for the exit within `timeout`, else kills the group and fails the test.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> Output {
        match self.wait_timeout(timeout) {
            Some(o) => o,
            None => {
                self.signal_group(libc::SIGKILL);
                let out = self.wait_timeout(Duration::from_secs(5));
                panic!(
                    "{} did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}{}",
                    self.name,
                    self.stdout_so_far(),
                    self.stderr_so_far(),
                    if out.is_none() {
                        "\n(and did not die after SIGKILL)"
                    } else {
                        ""
                    }
                )
            }
        }
    }

    /// Waits for the exit within `timeout`; None when still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<Output> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                reaper::disown(child.id());
                self.child = None;
                return Some(Output {
                    name: self.name.clone(),
                    status,
                    stdout: std::fs::read(&self.out_path).unwrap_or_default(),
                    stderr: std::fs::read(&self.err_path).unwrap_or_default(),
                });
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Spawned {
    /// Kills what is left of the process group (background children of a shell, say).
    fn drop(&mut self) {
        // SAFETY: kill() on the group this handle created. A group id stays allocated while any
        // member lives, so it cannot name a stranger's group unless every member is gone (then
        // this is ESRCH) and the pid was recycled meanwhile, which the short gap rules out.
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
            reaper::disown(child.id());
        }
    }
}

/// The children of process `pid` (any kind: forked, or cloned without an exit signal) with
/// their state letter from /proc (`R`, `S`, `Z`...).
pub fn children(pid: i32) -> Vec<(i32, char)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| {
            // Fields after the command (which may hold spaces) start past its last ')'.
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
            let state = rest.next()?.chars().next()?;
            let ppid: i32 = rest.next()?.parse().ok()?;
            (ppid == pid).then_some((p, state))
        })
        .collect()
}

/// The children of process `pid` that have exited and wait to be reaped (zombies).
pub fn zombie_children(pid: i32) -> Vec<i32> {
    children(pid)
        .into_iter()
        .filter(|&(_, state)| state == 'Z')
        .map(|(p, _)| p)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_stderr(err: &str) -> Output {
        Output {
            name: "t".into(),
            status: ExitStatus::from_raw(1 << 8),
            stdout: Vec::new(),
            stderr: err.as_bytes().to_vec(),
        }
    }

    #[test]
    fn one_line_error_accepts_one_line() {
        with_stderr("dmtcp_launch: no coordinator at 127.0.0.1:1\n").assert_one_line_error();
    }

    #[test]
    #[should_panic(expected = "one-line error")]
    fn one_line_error_rejects_two_lines() {
        with_stderr("error: x\n\nUsage: y\n").assert_one_line_error();
    }

    #[test]
    #[should_panic(expected = "panic output")]
    fn one_line_error_rejects_a_panic() {
        with_stderr("thread 'main' panicked at src/main.rs:1:1\n").assert_one_line_error();
    }

    /// A scratch dir for captured output, removed by the caller.
    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dmtcp-harness-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn runs_with_a_clean_environment_and_stdin() {
        let dir = scratch("env");
        let out = Cmd::new("sh")
            .args(["-c", "cat; echo \"[$FOO][$CARGO]\"; exit 3"])
            .env("FOO", "bar")
            .stdin(b"in\n".to_vec())
            .capture_in(&dir)
            .run(Duration::from_secs(10));
        assert_eq!(out.code(), Some(3));
        assert_eq!(out.stdout_str(), "in\n[bar][]\n");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_timeout_kills_the_group_and_fails() {
        let dir = scratch("timeout");
        let mut s = Cmd::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .capture_in(&dir)
            .spawn();
        assert!(s.wait_timeout(Duration::from_millis(200)).is_none());
        s.signal_group(libc::SIGKILL);
        let out = s.wait_timeout(Duration::from_secs(5)).expect("killed");
        assert_eq!(out.signal(), Some(libc::SIGKILL));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
