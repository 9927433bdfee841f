//! Helpers for the checkpoint/restart tests (tests/tests/checkpoint_*.rs): reading the numbered
//! progress lines the ckpt_* programs print, checkpointing, and restarting their images.

use crate::{Cmd, Env, Spawned, wait_for};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const LONG: Duration = Duration::from_secs(30);

/// Lines the test programs print when they detect damage.
const FAILURES: [&str; 4] = ["CORRUPT", "STUCK", "FAIL", "JOIN FAILED"];

/// The numbers N of lines `"<prefix> N ..."`; fails on a line reporting damage.
pub fn numbers(out: &str, prefix: &str) -> Vec<u64> {
    for l in out.lines() {
        assert!(
            !FAILURES.iter().any(|f| l.starts_with(f)),
            "the program reported: {l}"
        );
    }
    out.lines()
        .filter_map(|l| {
            l.strip_prefix(prefix)?
                .strip_prefix(' ')?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Checks that `t` counts up by one from `first`.
pub fn assert_consecutive(t: &[u64], first: u64, what: &str) {
    assert!(!t.is_empty(), "{what}: no output");
    assert_eq!(
        t[0], first,
        "{what}: does not continue from the checkpoint: {t:?}"
    );
    for w in t.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{what}: sequence broken: {t:?}");
    }
}

/// Waits until `prog` printed `n` progress lines; fails if it exits first.
pub fn wait_lines(env: &Env, prog: &mut Spawned, prefix: &str, n: usize) {
    wait_for(
        &format!("{n} '{prefix}' lines from {}", prog.name),
        LONG,
        || {
            if let Some(st) = prog.try_status() {
                panic!("{} exited with {st:?}\n{}", prog.name, env.diagnostics());
            }
            (numbers(&prog.stdout_so_far(), prefix).len() >= n).then_some(())
        },
        || env.diagnostics(),
    );
}

/// The complete images (`*.dmtcp`) in `dir` whose name starts with `ckpt_<program>_`.
pub fn images(dir: &Path, program: &str) -> Vec<PathBuf> {
    let want = format!("ckpt_{program}_");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        let n = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        n.starts_with(&want) && n.ends_with(".dmtcp")
    });
    v.sort();
    v
}

/// `dmtcp_command --kcheckpoint`, then waits for the program to be killed; returns its output.
pub fn checkpoint_and_kill(env: &Env, port: u16, prog: Spawned) -> String {
    let out = env.command(["--coord-port", &port.to_string(), "--kcheckpoint"]);
    assert_eq!(
        out.code(),
        Some(0),
        "checkpoint failed: {}\n{}",
        out.describe(),
        env.diagnostics()
    );
    prog.wait(LONG).stdout_str()
}

/// `dmtcp_command --bcheckpoint`: a checkpoint the program survives; fails the test with the
/// diagnostics if it does not succeed.
#[track_caller]
pub fn bcheckpoint(env: &Env, port: u16) {
    let out = env.command(["--coord-port", &port.to_string(), "--bcheckpoint"]);
    assert_eq!(
        out.code(),
        Some(0),
        "checkpoint failed: {}\n{}",
        out.describe(),
        env.diagnostics()
    );
}

/// Waits for `prog` to end with exit code 0; returns its stdout.
#[track_caller]
pub fn finished_ok(env: &Env, prog: Spawned, timeout: Duration) -> String {
    let out = prog.wait(timeout);
    assert_eq!(
        out.code(),
        Some(0),
        "{}\n{}",
        out.describe(),
        env.diagnostics()
    );
    out.stdout_str()
}

/// `dmtcp_restart --join-coordinator -p <port> <image>`, waited until it runs.
pub fn restart(env: &Env, port: u16, image: &Path) -> Spawned {
    let cmd = env
        .tool("dmtcp_restart")
        .args(["--join-coordinator", "--coord-port", &port.to_string()])
        .arg(image);
    let mut r = env.spawn(&cmd);
    env.wait_peers_of(port, 1, &mut r);
    r
}

/// `dmtcp_launch --join-coordinator` of `program_and_args` (a shell word list) inside a fresh
/// user+pid namespace with `DMTCP_PID_NAMESPACE=1`; sh stays pid 1 there, so the program gets
/// an ordinary pid.
pub fn launch_in_pid_namespace(env: &Env, port: u16, program_and_args: &str) -> Cmd {
    let script = format!(
        "DMTCP_PID_NAMESPACE=1 {} --join-coordinator --coord-port {port} {program_and_args}; true",
        env.tools.path("dmtcp_launch").display(),
    );
    env.cmd("unshare")
        .args([
            "--user",
            "--pid",
            "--fork",
            "--map-current-user",
            "--mount-proc",
            "sh",
            "-c",
        ])
        .arg(&script)
}
