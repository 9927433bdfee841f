//! Helpers for the checkpoint/restart tests (tests/tests/checkpoint_*.rs): reading the numbered
//! progress lines the ckpt_* programs print, checkpointing, and restarting their images.

use crate::{Cmd, Env, QUICK, Spawned, wait_for};
use std::ops::RangeInclusive;
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
#[track_caller]
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

/// The first cycle of most tests: waits until `run` printed `n` lines `"<prefix> N"`, then
/// checkpoints and kills it. Returns its output and those numbers, checked to run from 1
/// without a gap.
#[track_caller]
pub fn checkpoint_after(
    env: &Env,
    port: u16,
    mut run: Spawned,
    prefix: &str,
    n: usize,
) -> (String, Vec<u64>) {
    wait_lines(env, &mut run, prefix, n);
    let out = checkpoint_and_kill(env, port, run);
    let t = numbers(&out, prefix);
    assert_consecutive(&t, 1, "before the first checkpoint");
    (out, t)
}

/// The generation recorded in `image`, which must be whole (`dmtcp_inspect --json --verify`).
#[track_caller]
pub fn image_generation(env: &Env, image: &Path) -> u64 {
    let out = env.run(
        &env.tool("dmtcp_inspect")
            .args(["--json", "--verify"])
            .arg(image),
        QUICK,
    );
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let j: serde_json::Value = serde_json::from_str(&out.stdout_str()).unwrap();
    j["process"]["generation"].as_u64().unwrap()
}

/// Images being written or left half-written (`*.part`) in `dir`.
pub fn partial_images(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".part"))
                .collect()
        })
        .unwrap_or_default()
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
#[track_caller]
pub fn checkpoint_and_kill(env: &Env, port: u16, prog: Spawned) -> String {
    command_ok(env, port, "--kcheckpoint");
    prog.wait(LONG).stdout_str()
}

/// `dmtcp_command --bcheckpoint`: a checkpoint the program survives; fails the test with the
/// diagnostics if it does not succeed.
#[track_caller]
pub fn bcheckpoint(env: &Env, port: u16) {
    command_ok(env, port, "--bcheckpoint");
}

/// A checkpoint command that must succeed.
#[track_caller]
fn command_ok(env: &Env, port: u16, flag: &str) {
    let out = env.command(["--coord-port", &port.to_string(), flag]);
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

/// `dmtcp_restart --join-coordinator -p <port> <images...>`, spawned (not waited for).
pub fn restart_images(env: &Env, port: u16, images: &[PathBuf]) -> Spawned {
    let cmd = env
        .tool("dmtcp_restart")
        .args(["--join-coordinator", "--coord-port", &port.to_string()])
        .args(images);
    env.spawn(&cmd)
}

/// The checkpoint/kill/restart cycles of a test, for [`cycles`].
pub struct Cycles<'a> {
    /// Whose images the restarts take (`ckpt_<program>_*.dmtcp`).
    pub program: &'a str,
    /// How many images every checkpoint must write.
    pub images: RangeInclusive<usize>,
    /// Before each checkpoint, wait until the run printed this many lines of each prefix.
    pub ready: &'a [(&'a str, usize)],
    /// Progress lines `"<prefix> N"` that every run prints, counting up by one from 1 across
    /// all runs: a restart continues exactly where its checkpoint stopped.
    pub counters: &'a [&'a str],
    /// Restarts; the last one runs to the end.
    pub restarts: usize,
}

/// The "N cycles" test shape: the launched `run` and each restart but the last wait for
/// `plan.ready` and are checkpointed and killed; the last restart must run to exit code 0.
/// Each restart takes the images out of the work dir first (into `cycle<N>/`), so the next
/// checkpoint's images never mix with them. Checks `plan.counters`; returns the stdout of
/// every run (launch first, the finished one last) for the test's own checks.
#[track_caller]
pub fn cycles(env: &Env, port: u16, mut run: Spawned, plan: &Cycles) -> Vec<String> {
    let mut counters = Counters::new(plan.counters);
    let mut outs = Vec::with_capacity(plan.restarts + 1);
    for cycle in 1..=plan.restarts {
        for (prefix, n) in plan.ready {
            wait_lines(env, &mut run, prefix, *n);
        }
        let out = checkpoint_and_kill(env, port, run);
        counters.check(&out, cycle - 1);
        outs.push(out);
        run = restart_images(env, port, &move_images(env, plan, cycle));
    }
    let out = finished_ok(env, run, LONG * 2);
    counters.check(&out, plan.restarts);
    outs.push(out);
    outs
}

/// The next number expected on each counter's lines.
struct Counters<'a>(Vec<(&'a str, u64)>);

impl<'a> Counters<'a> {
    fn new(prefixes: &[&'a str]) -> Self {
        Counters(prefixes.iter().map(|p| (*p, 1)).collect())
    }

    /// Checks that the output of the run after `restarts` restarts continues every counter.
    #[track_caller]
    fn check(&mut self, out: &str, restarts: usize) {
        let what = match restarts {
            0 => "before the first checkpoint".to_string(),
            r => format!("after restart {r}"),
        };
        for (prefix, next) in &mut self.0 {
            let t = numbers(out, prefix);
            assert_consecutive(&t, *next, &format!("{what} ({prefix})"));
            *next = t.last().unwrap() + 1;
        }
    }
}

/// The images of the last checkpoint, checked against `plan.images` and moved to `cycle<N>/`.
#[track_caller]
fn move_images(env: &Env, plan: &Cycles, cycle: usize) -> Vec<PathBuf> {
    let imgs = images(env.dir.path(), plan.program);
    assert!(
        plan.images.contains(&imgs.len()),
        "{} images, want {:?}: {imgs:?}\n{}",
        imgs.len(),
        plan.images,
        env.diagnostics()
    );
    let dir = env.dir.join(format!("cycle{cycle}"));
    std::fs::create_dir(&dir).unwrap();
    imgs.iter()
        .map(|i| {
            let to = dir.join(i.file_name().unwrap());
            std::fs::rename(i, &to).unwrap();
            to
        })
        .collect()
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
    env.cmd("unshare")
        .args(pid_namespace_args(env, port, program_and_args))
}

/// The arguments of `unshare` for [`launch_in_pid_namespace`] (e.g. for a program on a pty).
pub fn pid_namespace_args(env: &Env, port: u16, program_and_args: &str) -> Vec<String> {
    let script = format!(
        "DMTCP_PID_NAMESPACE=1 {} --join-coordinator --coord-port {port} {program_and_args}; true",
        env.tools.path("dmtcp_launch").display(),
    );
    let opts = [
        "--user",
        "--pid",
        "--fork",
        "--map-current-user",
        "--mount-proc",
    ];
    let sh = ["sh", "-c", &script];
    opts.iter().chain(&sh).map(|s| s.to_string()).collect()
}
