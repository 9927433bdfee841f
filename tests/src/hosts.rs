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
use std::time::Duration;

/// The coordinator's address as the hosts see it.
pub const HEAD: &str = "10.201.0.1";

pub struct Hosts {
    pub n: usize,
    dir: PathBuf,
    /// Held while the hosts exist: one user of the fixed names at a time, across processes.
    lock: Option<File>,
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
            lock: Some(lock),
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

impl Hosts {
    /// Tears the hosts down now and returns the lock, so the caller can look at the machine
    /// before another test sets hosts up again.
    pub fn down(mut self) -> File {
        self.teardown();
        self.lock.take().expect("held until dropped")
    }

    fn teardown(&mut self) {
        if self.lock.is_none() {
            return;
        }
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

impl Drop for Hosts {
    fn drop(&mut self) {
        self.teardown();
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

/// One line of a multi-host test program's output file: `N [VALUES...] HOST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub n: u64,
    pub values: Vec<String>,
    pub host: String,
}

/// The records of an output file; fails on a line the program wrote about damage.
pub fn records(path: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let words: Vec<&str> = l.split(' ').collect();
            let n = words[0]
                .parse()
                .ok()
                .filter(|_| words.len() >= 2)
                .unwrap_or_else(|| panic!("{}: the program reported: {l}", path.display()));
            Record {
                n,
                values: words[1..words.len() - 1]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                host: words[words.len() - 1].to_string(),
            }
        })
        .collect()
}

/// A computation spread over the hosts, taken through checkpoint, kill and restart cycles:
/// it keeps each output file's line count at every checkpoint and the host each process was
/// meant to run on in each stretch, so [`Spread::check_hosts`] can prove the placement.
pub struct Spread<'a> {
    pub env: &'a Env,
    pub hosts: &'a Hosts,
    pub port: u16,
    /// One output file per process, in launch order.
    pub files: Vec<PathBuf>,
    /// Line counts of the files at the start and after every checkpoint.
    pub bounds: Vec<Vec<usize>>,
    /// Per stretch, the host of each process.
    pub placed: Vec<Vec<String>>,
}

impl<'a> Spread<'a> {
    pub fn new(env: &'a Env, hosts: &'a Hosts, port: u16, files: Vec<PathBuf>) -> Spread<'a> {
        let n = files.len();
        Spread {
            env,
            hosts,
            port,
            files,
            bounds: vec![vec![0; n]],
            placed: Vec::new(),
        }
    }

    /// Launches `program_and_args` (quoted shell words) on host `host` through ssh with
    /// `dmtcp_launch --join-coordinator --coord-host HEAD`; output to `log` in the work dir.
    pub fn launch(&self, host: usize, program_and_args: &str, log: &str) -> crate::Spawned {
        let launch = self.env.tools.path("dmtcp_launch");
        let command = format!(
            "exec {} --join-coordinator --coord-host {HEAD} --coord-port {} {program_and_args} \
             </dev/null >{} 2>&1",
            quote(&launch.display().to_string()),
            self.port,
            quote(&self.env.dir.join(log).display().to_string()),
        );
        self.env.spawn(&self.hosts.ssh(self.env, host, &command))
    }

    /// Records where the processes run in the stretch that starts now.
    pub fn placed_on(&mut self, hosts: Vec<String>) {
        assert_eq!(hosts.len(), self.files.len());
        self.placed.push(hosts);
    }

    /// Waits until every process wrote `more` lines in the current stretch.
    pub fn wait_growth(&self, more: usize) {
        let from = self.bounds.last().expect("bounds start with zeros").clone();
        crate::wait_for(
            &format!("{more} new lines from every process"),
            Duration::from_secs(30),
            || {
                self.files
                    .iter()
                    .zip(&from)
                    .all(|(f, &n)| records(f).len() >= n + more)
                    .then_some(())
            },
            || {
                let tails: Vec<String> = self
                    .files
                    .iter()
                    .map(|f| format!("{}: {:?}", f.display(), records(f).last()))
                    .collect();
                format!("{}\n{}", tails.join("\n"), self.env.diagnostics())
            },
        );
    }

    /// `dmtcp_command --kcheckpoint`, then waits for `waiting` (ssh sessions or the restart
    /// script) to end, and records the line counts.
    pub fn checkpoint_and_kill(&mut self, waiting: Vec<crate::Spawned>) {
        let out = self
            .env
            .command(["--coord-port", &self.port.to_string(), "--kcheckpoint"]);
        assert_eq!(
            out.code(),
            Some(0),
            "checkpoint failed: {}\n{}",
            out.describe(),
            self.env.diagnostics()
        );
        for w in waiting {
            w.wait(Duration::from_secs(30));
        }
        self.bounds
            .push(self.files.iter().map(|f| records(f).len()).collect());
    }

    /// Runs the restart script with `args` on the head as the test user (remote shell: the
    /// hosts' ssh) and waits until every process runs again on `hosts`.
    pub fn restart(&mut self, args: &[&str], hosts: Vec<String>) -> crate::Spawned {
        let script = self.env.dir.join("dmtcp_restart_script.sh");
        let cmd = self.env.cmd("sh").arg(&script).args(args);
        self.run_script(cmd, hosts)
    }

    /// Like [`Spread::restart`], but the script runs on host `from` (logged in through ssh),
    /// as in a batch job whose script runs on its first node.
    pub fn restart_from(
        &mut self,
        from: usize,
        args: &[&str],
        hosts: Vec<String>,
    ) -> crate::Spawned {
        let script = self.env.dir.join("dmtcp_restart_script.sh");
        let mut words = vec![quote(&script.display().to_string())];
        words.extend(args.iter().map(|a| quote(a)));
        let cmd = self
            .hosts
            .ssh(self.env, from, &format!("exec sh {}", words.join(" ")));
        self.run_script(cmd, hosts)
    }

    fn run_script(&mut self, cmd: Cmd, hosts: Vec<String>) -> crate::Spawned {
        let cmd = cmd
            .env("DMTCP_REMOTE_SHELL", self.hosts.rsh())
            // Both reach the other hosts through ssh's SendEnv DMTCP_*.
            .env(
                "DMTCP_SECRET_DIR",
                self.env.user.home.join(".dmtcp/coordinators"),
            );
        let mut s = self.env.spawn(&cmd);
        self.env
            .wait_peers_of(self.port, self.files.len() as u32, &mut s);
        self.placed_on(hosts);
        s
    }

    /// Restarts with a `--hostfile` that puts process `i` on `hosts[i]`: the file's line N is
    /// for saved host N, saved hosts numbered in name order (see the restart script's --help).
    pub fn restart_on(&mut self, hosts: Vec<String>) -> crate::Spawned {
        let saved = self
            .placed
            .last()
            .expect("a placement was recorded")
            .clone();
        let mut names = saved.clone();
        names.sort();
        names.dedup();
        let lines: Vec<String> = names
            .iter()
            .map(|name| {
                let p = saved.iter().position(|h| h == name).expect("a saved host");
                hosts[p].clone()
            })
            .collect();
        for (p, h) in saved.iter().enumerate() {
            let line = names.iter().position(|n| n == h).expect("named");
            assert_eq!(
                lines[line], hosts[p],
                "processes of one saved host restart on one host"
            );
        }
        let hostfile = self.env.dir.join("hostfile");
        std::fs::write(&hostfile, lines.join("\n") + "\n").expect("write the host file");
        let hf = hostfile.display().to_string();
        self.restart(&["--hostfile", &hf], hosts)
    }

    /// Every line of every stretch was written on the host that stretch's placement names.
    pub fn check_hosts(&self) {
        for (p, file) in self.files.iter().enumerate() {
            let r = records(file);
            for (stretch, w) in self.bounds.windows(2).enumerate() {
                for rec in &r[w[0][p]..w[1][p]] {
                    assert_eq!(
                        rec.host,
                        self.placed[stretch][p],
                        "{}: line {} (stretch {stretch}) ran on the wrong host",
                        file.display(),
                        rec.n
                    );
                }
            }
        }
    }
}
