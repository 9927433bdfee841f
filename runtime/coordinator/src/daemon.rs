//! `--daemon`: detach from the terminal, but let the parent exit only once the coordinator
//! listens and its port file exists, so a script can use the port right after it returns.

use nix::unistd::{ForkResult, fork, setsid};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

/// Held by the detached child; tells the waiting parent how startup went.
pub struct Readiness {
    pipe: File,
}

impl Readiness {
    /// Startup succeeded; the parent prints `line` (if not empty) and exits 0.
    pub fn ready(mut self, line: &str) {
        let _ = write!(self.pipe, "ok {line}");
    }

    /// Startup failed; the parent prints `message` and exits 1.
    pub fn failed(mut self, message: &str) {
        let _ = write!(self.pipe, "error {message}");
    }
}

/// Forks. The parent never returns: it waits for the child's [`Readiness`] and exits. The child
/// becomes a session leader and gets its standard streams from `/dev/null` (or the log file).
/// Must be called before any thread is started.
pub fn detach(log_file: Option<&Path>) -> std::io::Result<Readiness> {
    let (rd, wr): (OwnedFd, OwnedFd) = nix::unistd::pipe()?;
    // SAFETY: called before the async runtime or any other thread exists, so the child starts
    // with a consistent copy of the only thread.
    match unsafe { fork() }? {
        ForkResult::Parent { .. } => {
            drop(wr);
            let mut text = String::new();
            let _ = File::from(rd).read_to_string(&mut text);
            match text.split_once(' ') {
                Some(("ok", line)) => {
                    if !line.is_empty() {
                        println!("{line}");
                    }
                    std::process::exit(0)
                }
                Some(("error", msg)) => {
                    eprintln!("dmtcp_coordinator: {msg}");
                    std::process::exit(1)
                }
                _ => {
                    eprintln!("dmtcp_coordinator: the daemon exited before it was ready");
                    std::process::exit(1)
                }
            }
        }
        ForkResult::Child => {
            drop(rd);
            let _ = setsid();
            let null = File::options().read(true).write(true).open("/dev/null")?;
            let out = match log_file {
                Some(p) => File::options().create(true).append(true).open(p)?,
                None => null.try_clone()?,
            };
            nix::unistd::dup2_stdin(&null)?;
            nix::unistd::dup2_stdout(&out)?;
            nix::unistd::dup2_stderr(&out)?;
            Ok(Readiness {
                pipe: File::from(wr),
            })
        }
    }
}
