//! Programs driven through a pseudo-terminal the test creates: the program runs in a new
//! session with the pty slave as its controlling terminal and stdio (`setsid` + `TIOCSCTTY`),
//! the test types into the master and reads what the program writes to its terminal.

use crate::{Env, reaper};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A pty pair; the master stays with the test.
pub struct Pty {
    pub master: OwnedFd,
    slave: Option<OwnedFd>,
    /// Everything read from the master so far.
    seen: Vec<u8>,
}

fn cvt(r: libc::c_int, what: &str) -> libc::c_int {
    assert!(r >= 0, "{what}: {}", std::io::Error::last_os_error());
    r
}

impl Pty {
    /// A new pty with the given window size, its slave owned by the test user.
    pub fn open(env: &Env, rows: u16, cols: u16) -> Pty {
        let (mut m, mut s) = (-1, -1);
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two fds; termios NULL, winsize points to a valid struct.
        cvt(
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) },
            "openpty",
        );
        // SAFETY: both fds were just returned by openpty and are owned here.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        // SAFETY: fcntl/fchown on fds we own.
        unsafe {
            libc::fcntl(m, libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(s, libc::F_SETFD, libc::FD_CLOEXEC);
            let fl = libc::fcntl(m, libc::F_GETFL);
            libc::fcntl(m, libc::F_SETFL, fl | libc::O_NONBLOCK);
            // The program may reopen its terminal by name.
            libc::fchown(s, env.user.uid, env.user.gid);
        }
        Pty {
            master,
            slave: Some(slave),
            seen: Vec::new(),
        }
    }

    /// Starts `program args` as the test user in the work dir, in a new session whose
    /// controlling terminal is this pty (stdin, stdout and stderr too).
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(
        &mut self,
        env: &Env,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[S],
        vars: &[(&str, &str)],
    ) -> OnTerminal {
        let slave = self.slave.take().expect("one program per pty");
        let fd = slave.as_raw_fd();
        let name = program.as_ref().to_string_lossy().into_owned();
        let mut c = Command::new(program);
        c.args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("TERM", "xterm")
            .env("USER", &env.user.name)
            .env("LOGNAME", &env.user.name)
            .env("HOME", &env.user.home)
            .current_dir(env.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(v) = std::env::var_os("DMTCP_LOG") {
            c.env("DMTCP_LOG", v);
        }
        for (k, v) in vars {
            c.env(k, v);
        }
        let u = env.user.clone();
        let switch = u.needs_switch();
        // SAFETY: runs between fork and exec; only async-signal-safe syscalls on data
        // prepared before the fork.
        unsafe {
            c.pre_exec(move || {
                if libc::setsid() < 0
                    || libc::ioctl(fd, libc::TIOCSCTTY, 0) < 0
                    || libc::dup2(fd, 0) < 0
                    || libc::dup2(fd, 1) < 0
                    || libc::dup2(fd, 2) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                if switch
                    && (libc::setgroups(u.groups.len(), u.groups.as_ptr()) != 0
                        || libc::setgid(u.gid) != 0
                        || libc::setuid(u.uid) != 0)
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut guard = reaper::lock();
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} on a pty: {e}"));
        guard.own(child.id());
        drop(guard);
        drop(slave);
        OnTerminal { child: Some(child) }
    }

    /// Types `s` (as if from a keyboard).
    pub fn send(&self, s: &str) {
        let mut b = s.as_bytes();
        while !b.is_empty() {
            // SAFETY: writes from a live buffer to our master fd.
            let n = unsafe { libc::write(self.master.as_raw_fd(), b.as_ptr().cast(), b.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                assert_eq!(
                    e.raw_os_error(),
                    Some(libc::EAGAIN),
                    "write to the pty: {e}"
                );
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            b = &b[n as usize..];
        }
    }

    /// Reads what is available from the master.
    pub fn pump(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reads into a live buffer from our master fd.
            let n =
                unsafe { libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return;
            }
            self.seen.extend_from_slice(&buf[..n as usize]);
        }
    }

    /// Everything the program wrote so far (lossy UTF-8).
    pub fn text(&mut self) -> String {
        self.pump();
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Waits until the output, after what was seen when `mark` was taken, contains `what`.
    #[track_caller]
    pub fn expect(&mut self, mark: usize, what: &str, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            self.pump();
            let t = String::from_utf8_lossy(&self.seen[mark.min(self.seen.len())..]);
            if t.contains(what) {
                return;
            }
            if std::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what:?} on the terminal; it shows:\n{}",
                    String::from_utf8_lossy(&self.seen)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A position in the output: later [`Pty::expect`] calls look only after it.
    pub fn mark(&mut self) -> usize {
        self.pump();
        self.seen.len()
    }

    /// The output after `mark`.
    pub fn since(&mut self, mark: usize) -> String {
        self.pump();
        String::from_utf8_lossy(&self.seen[mark.min(self.seen.len())..]).into_owned()
    }

    pub fn raw_fd(&self) -> RawFd {
        self.master.as_raw_fd()
    }
}

/// A program started on a pty; killed (its process group) when dropped.
pub struct OnTerminal {
    child: Option<Child>,
}

impl OnTerminal {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Waits for the exit; `None` on timeout.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let c = self.child.as_mut()?;
            if let Ok(Some(st)) = c.try_wait() {
                reaper::disown(c.id());
                self.child = None;
                return Some(st);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signals our own child's process group (it leads its session).
            unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
            let _ = c.wait();
            reaper::disown(c.id());
        }
    }
}

/// The argv of `dmtcp_launch --join-coordinator` of `program args` in a fresh user+pid
/// namespace (as `engine_support::launch_in_pid_namespace`), for [`Pty::spawn`].
pub fn launch_argv(env: &Env, port: u16, program_and_args: &str) -> Vec<String> {
    // sh stays pid 1 of the namespace (`; true`), so the program gets an ordinary pid.
    let script = format!(
        "DMTCP_PID_NAMESPACE=1 {} --join-coordinator --coord-port {port} {program_and_args}; true",
        env.tools.path("dmtcp_launch").display(),
    );
    [
        "--user",
        "--pid",
        "--fork",
        "--map-current-user",
        "--mount-proc",
        "sh",
        "-c",
        &script,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `dmtcp_command --kcheckpoint`, then waits until the program on the terminal is gone.
pub fn checkpoint_and_kill(env: &Env, port: u16, mut run: OnTerminal) {
    let out = env.command(["--coord-port", &port.to_string(), "--kcheckpoint"]);
    assert_eq!(out.code(), Some(0), "checkpoint failed: {}", out.describe());
    assert!(
        run.wait(crate::LONG).is_some(),
        "the program was not killed"
    );
}

/// `dmtcp_restart` of the `n` images in the work dir, running on `pty`; waits for the `n`
/// processes, then removes the images so the next checkpoint's are the only ones. With
/// `under_shell`, `dmtcp_restart` is a child of `sh`, which leads the terminal's session (as
/// when a user types the command); otherwise it leads the session itself.
pub fn restart_on(env: &Env, port: u16, pty: &mut Pty, n: usize, under_shell: bool) -> OnTerminal {
    let mut imgs: Vec<std::path::PathBuf> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("ckpt_") && name.ends_with(".dmtcp")
        })
        .collect();
    imgs.sort();
    assert_eq!(imgs.len(), n, "{imgs:?}");
    let mut args = vec![
        "--join-coordinator".to_string(),
        "--coord-port".into(),
        port.to_string(),
    ];
    args.extend(imgs.iter().map(|p| p.to_string_lossy().into_owned()));
    let tool = env.tools.path("dmtcp_restart");
    let run = if under_shell {
        // `; true`: sh must not exec the command (it would lead the session itself).
        let line = format!("{} {}; true", tool.display(), args.join(" "));
        pty.spawn(env, "sh", &["-c".to_string(), line], &[])
    } else {
        pty.spawn(env, tool, &args, &[])
    };
    env.wait_peers(port, n as u32, true, crate::engine_support::LONG);
    for p in imgs {
        std::fs::remove_file(p).unwrap();
    }
    run
}
