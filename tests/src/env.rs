//! One test's world: the user, its work dir (also its HOME), the tools, and what it started.

use crate::coordinator::Coordinator;
use crate::process::{Cmd, Output, Spawned};
use crate::programs;
use crate::reaper;
use crate::status::Status;
use crate::tools::{Tools, tools};
use crate::user::TestUser;
use crate::wait::wait_for;
use crate::workdir::WorkDir;
use std::cell::RefCell;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Env {
    /// The user programs run as; `home` is the per-test HOME inside the work dir.
    pub user: TestUser,
    pub dir: WorkDir,
    pub tools: &'static Tools,
    /// Output files of everything started, for failure messages.
    seen: RefCell<Vec<(String, PathBuf, PathBuf)>>,
}

impl Env {
    /// A test environment for the primary test user (`dmtcptest` under root).
    pub fn new(test: &str) -> Env {
        Env::for_user(test, TestUser::primary())
    }

    /// A test environment for another user (see [`TestUser::other`]).
    pub fn for_user(test: &str, user: TestUser) -> Env {
        reaper::init();
        let dir = WorkDir::new(test, &user);
        let user = TestUser {
            home: dir.home(),
            ..user
        };
        Env {
            user,
            dir,
            tools: tools(),
            seen: RefCell::new(Vec::new()),
        }
    }

    /// A command run as the test user in the work dir with HOME = the per-test home.
    pub fn cmd(&self, program: impl AsRef<OsStr>) -> Cmd {
        Cmd::new(program)
            .user(&self.user)
            .cwd(self.dir.path())
            .capture_in(self.dir.harness())
    }

    /// A shipped tool (`dmtcp_launch`, ...) as a command.
    pub fn tool(&self, name: &str) -> Cmd {
        self.cmd(self.tools.path(name))
    }

    /// `dmtcp_launch <args>`.
    pub fn launch<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> Cmd {
        self.tool("dmtcp_launch").args(args)
    }

    /// `dmtcp_launch --join-coordinator -p <port> <args>`.
    pub fn launch_joined<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(
        &self,
        port: u16,
        args: I,
    ) -> Cmd {
        self.launch(["--join-coordinator", "--coord-port", &port.to_string()])
            .args(args)
    }

    /// Starts a command and remembers its output for failure messages.
    pub fn spawn(&self, cmd: &Cmd) -> Spawned {
        let s = cmd.spawn();
        let (o, e) = s.output_paths();
        self.seen.borrow_mut().push((s.name.clone(), o, e));
        s
    }

    /// Runs a command to completion within `timeout`.
    #[track_caller]
    pub fn run(&self, cmd: &Cmd, timeout: Duration) -> Output {
        let s = self.spawn(cmd);
        s.wait(timeout)
    }

    /// Starts `dmtcp_coordinator --coord-port 0 --port-file F <extra>` as the test user.
    #[track_caller]
    pub fn coordinator(&self, extra: &[&str]) -> Coordinator {
        self.coordinator_on_port(0, extra)
    }

    /// Starts `dmtcp_coordinator --coord-port <port> --port-file F <extra>` as the test user.
    #[track_caller]
    pub fn coordinator_on_port(&self, port: u16, extra: &[&str]) -> Coordinator {
        let n = self.seen.borrow().len();
        let port_file = self.dir.join(format!("coordinator-{n}.port"));
        let cmd = self
            .tool("dmtcp_coordinator")
            .args(["--coord-port", &port.to_string(), "--port-file"])
            .arg(&port_file)
            .args(extra);
        Coordinator::started(self.spawn(&cmd), port_file)
    }

    /// `dmtcp_command <args>` as the test user (not kept for [`Env::diagnostics`]: polling
    /// would drown the interesting output).
    #[track_caller]
    pub fn command<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> Output {
        self.tool("dmtcp_command").args(args).run(crate::QUICK)
    }

    /// `dmtcp_command --json -p <port> <args>`, parsed.
    #[track_caller]
    pub fn command_json(&self, port: u16, args: &[&str]) -> Status {
        let out = self.command(
            ["--json", "--coord-port", &port.to_string()]
                .iter()
                .chain(args),
        );
        Status::parse(&out)
    }

    /// `dmtcp_command --json -p <port> -s`, parsed.
    #[track_caller]
    pub fn status(&self, port: u16) -> Status {
        self.command_json(port, &["--status"])
    }

    /// Waits until the coordinator at `port` reports `peers` processes (and, when `running` is
    /// true, that they run). Fails with the last status, the logs and the programs' output.
    #[track_caller]
    pub fn wait_peers(&self, port: u16, peers: u32, running: bool, timeout: Duration) -> Status {
        let last = RefCell::new(None);
        wait_for(
            &format!(
                "{peers} peer(s){} at port {port}",
                if running { " running" } else { "" }
            ),
            timeout,
            || {
                let st = self.status(port);
                let ok = st.peers() == peers && (!running || st.is_running());
                *last.borrow_mut() = Some(st.json.to_string());
                ok.then_some(st)
            },
            || format!("last status: {:?}\n{}", last.borrow(), self.diagnostics()),
        )
    }

    /// Like [`Env::wait_peers`] (running), but fails at once if `prog` exits meanwhile.
    #[track_caller]
    pub fn wait_peers_of(&self, port: u16, peers: u32, prog: &mut Spawned) -> Status {
        let last = RefCell::new(None);
        wait_for(
            &format!("{peers} peer(s) running at port {port}"),
            crate::LONG,
            || {
                if let Some(st) = prog.try_status() {
                    panic!(
                        "{} exited with {st:?} too early\n{}",
                        prog.name,
                        self.diagnostics()
                    );
                }
                let st = self.status(port);
                let ok = st.peers() == peers && st.is_running();
                *last.borrow_mut() = Some(st.json.to_string());
                ok.then_some(st)
            },
            || format!("last status: {:?}\n{}", last.borrow(), self.diagnostics()),
        )
    }

    /// The coordinators' logs and every program's output so far.
    pub fn diagnostics(&self) -> String {
        let mut s = String::new();
        for (name, out, err) in self.seen.borrow().iter() {
            let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
            s.push_str(&format!(
                "=== {name}\n--- stdout ---\n{}\n--- stderr ---\n{}\n",
                read(out),
                read(err)
            ));
        }
        s
    }

    /// Compiles `tests/programs/<name>.c` into the work dir.
    #[track_caller]
    pub fn program(&self, name: &str) -> PathBuf {
        let bin = self.dir.join("bin");
        if !bin.exists() {
            std::fs::create_dir(&bin).unwrap();
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        programs::build_c(name, &bin)
    }

    /// Processes on this machine whose environment carries this test's HOME: everything the
    /// test started, including daemons and orphans that left its process groups.
    pub fn own_processes(&self) -> Vec<i32> {
        let needle = format!("HOME={}", self.user.home.display()).into_bytes();
        let me = std::process::id() as i32;
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        procs
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me)
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_slice()))
            })
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for pid in self.own_processes() {
            // SAFETY: kill() on a process whose environment names this test's private HOME,
            // so this test started it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        reaper::sweep();
    }
}

/// Serializes tests that need DMTCP's default port 7779 (across test processes: a file lock).
pub struct DefaultPortLock {
    /// The lock lives as long as the open file.
    _file: std::fs::File,
}

impl DefaultPortLock {
    pub fn acquire() -> DefaultPortLock {
        let _ = std::fs::create_dir_all(crate::workdir::ROOT);
        let path = Path::new(crate::workdir::ROOT).join("default-port.lock");
        // Created world-writable once; later runs as another user can still open it to lock.
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .inspect(|_| {
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666));
            })
            .or_else(|_| std::fs::File::open(&path))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own; blocks until the other holder is done.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", path.display());
        DefaultPortLock { _file: f }
    }
}

/// True when nothing listens on `port` on this machine (any user).
pub fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
}
