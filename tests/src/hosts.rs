//! Fake hosts on this machine for the multi-host tests: network namespaces `dmtcp-h<i>` with
//! addresses `10.201.0.<10+i>`, their own host names and an sshd each, on the bridge `dmtcpbr0`
//! whose address 10.201.0.1 is the "head" (the root namespace, where the coordinator runs).
//! The filesystem is shared, like a parallel file system. `tests/hosts/up.sh` and `down.sh` do
//! the work (they can be run by hand); this module serializes their users with a lock, since
//! the names are fixed, and tears everything down on drop, also when the test fails.

use crate::env::Env;
use crate::process::Cmd;
use crate::user::is_root;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The coordinator's address as the hosts see it.
pub const HEAD: &str = "10.201.0.1";

pub struct Hosts {
    pub n: usize,
    dir: PathBuf,
    /// Held while the hosts exist: one user of the fixed names at a time, across processes.
    _lock: File,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("hosts")
        .join(name)
}

impl Hosts {
    /// Sets up `n` hosts whose sshd lets the test user of `env` in. `None` (after printing
    /// SKIP and the reason) when this process is not root or sshd is not installed.
    pub fn up(test: &str, n: usize, env: &Env) -> Option<Hosts> {
        if !is_root() {
            eprintln!("SKIP {test}: fake hosts need root (network namespaces, sshd)");
            return None;
        }
        if !Path::new("/usr/sbin/sshd").exists() {
            eprintln!("SKIP {test}: /usr/sbin/sshd missing (apt-get install openssh-server)");
            return None;
        }
        let root = Path::new(crate::workdir::ROOT);
        std::fs::create_dir_all(root).expect("create the tests' root dir");
        let lock_path = root.join("hosts.lock");
        let lock =
            File::create(&lock_path).unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
        // SAFETY: flock on a descriptor we own; blocks until the previous user is done.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", lock_path.display());
        let hosts = Hosts {
            n,
            dir: root.join("hosts"),
            _lock: lock,
        };
        let out = Command::new("bash")
            .arg(script("up.sh"))
            .arg(n.to_string())
            .arg(&hosts.dir)
            .arg(&env.user.name)
            .output()
            .expect("run tests/hosts/up.sh");
        assert!(
            out.status.success(),
            "tests/hosts/up.sh failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(hosts)
    }

    /// Host name of host `i` (1-based); what its processes report and what ssh connects to.
    pub fn name(i: usize) -> String {
        format!("dmtcp-h{i}")
    }

    pub fn addr(i: usize) -> String {
        format!("10.201.0.{}", 10 + i)
    }

    /// The ssh client configuration (owned by the test user) that knows every host.
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("client/ssh_config")
    }

    /// The remote shell for restart scripts (`DMTCP_REMOTE_SHELL`).
    pub fn rsh(&self) -> String {
        format!("ssh -F {}", self.ssh_config().display())
    }

    /// `ssh <host i> <shell command>` as the test user. The command runs in the work dir with
    /// the test's HOME (so the coordinator's secret is found and `Env` can reap it).
    pub fn ssh(&self, env: &Env, i: usize, command: &str) -> Cmd {
        let home = env.user.home.display().to_string();
        let remote = format!(
            "cd {} && HOME={} && export HOME && {command}",
            quote(&env.dir.path().display().to_string()),
            quote(&home),
        );
        env.cmd("ssh")
            .arg("-F")
            .arg(self.ssh_config())
            .arg(Hosts::name(i))
            .arg(remote)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let st = Command::new("bash")
            .arg(script("down.sh"))
            .arg(self.n.to_string())
            .arg(&self.dir)
            .status();
        if !matches!(st, Ok(s) if s.success()) {
            eprintln!("tests/hosts/down.sh failed: {st:?}");
        }
    }
}

/// This machine's host name (the head's, in the root namespace).
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Quotes a word for a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
