//! Helpers for the coverage tests (tests/tests/coverage_*.rs): building a program with extra
//! compiler flags, and running a program through several checkpoint/kill/restart cycles while
//! checking that its numbered lines continue exactly.

use crate::engine_support::{
    LONG, assert_consecutive, checkpoint_and_kill, images, numbers, restart, wait_lines,
};
use crate::process::{Cmd, Output};
use crate::{Env, programs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Compiles `tests/programs/<name>.c` into the work dir with `-pthread` and `extra` flags
/// (libraries after the source, e.g. `-ldl`, `-fopenmp`).
#[track_caller]
pub fn build(env: &Env, name: &str, extra: &[&str]) -> PathBuf {
    let bin = env.dir.join("bin");
    if !bin.exists() {
        std::fs::create_dir(&bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let src = programs::source_dir().join(format!("{name}.c"));
    let exe = bin.join(name);
    let out = Cmd::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-O1", "-g", "-Wall", "-pthread", "-o"])
        .arg(&exe)
        .arg(&src)
        .args(extra)
        .capture_in(&bin)
        .run(Duration::from_secs(60));
    assert_eq!(
        out.code(),
        Some(0),
        "compiling {name}.c failed:\n{}",
        out.describe()
    );
    exe
}

/// Copies `tests/programs/<name>` (a script) into the work dir, readable by the test user.
pub fn script(env: &Env, name: &str) -> PathBuf {
    let dst = env.dir.join(name);
    std::fs::copy(programs::source_dir().join(name), &dst).unwrap();
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    dst
}

/// The newest complete image of `program` in the work dir.
pub fn newest_image(env: &Env, program: &str) -> PathBuf {
    let mut v = images(env.dir.path(), program);
    v.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    v.pop()
        .unwrap_or_else(|| panic!("no image of {program}\n{}", env.diagnostics()))
}

/// What a run through the cycles saw.
pub struct Cycles {
    /// The last progress number printed before each checkpoint (one per checkpoint).
    pub checkpoints: Vec<u64>,
    /// The final run, restarted after the last checkpoint and waited to its end.
    pub last: Output,
}

impl Cycles {
    /// The final run's stdout, after checking it exited 0 with "done" as its last line.
    pub fn finished_stdout(&self, env: &Env) -> String {
        assert_eq!(
            self.last.code(),
            Some(0),
            "the last restarted run failed: {}\n{}",
            self.last.describe(),
            env.diagnostics()
        );
        let out = self.last.stdout_str();
        assert!(out.ends_with("done\n"), "no final 'done':\n{out}");
        out
    }
}

/// Launches `argv` joined to `port`, then `cycles` times: waits for `lines` more "`prefix` N"
/// lines, checkpoints with `--kcheckpoint` and restarts the newest image of `image_name`. The
/// numbers must continue by one across every restart. Then waits for the final run to end.
/// `launch` lets the caller wrap the launch command (e.g. environment variables).
pub fn run_cycles(
    env: &Env,
    port: u16,
    launch: Cmd,
    image_name: &str,
    prefix: &str,
    lines: usize,
    cycles: usize,
) -> Cycles {
    let mut run = env.spawn(&launch);
    env.wait_peers_of(port, 1, &mut run);
    let mut next = 1;
    let mut checkpoints = Vec::new();
    for cycle in 0..cycles {
        wait_lines(env, &mut run, prefix, lines);
        let out = checkpoint_and_kill(env, port, run);
        let t = numbers(&out, prefix);
        assert_consecutive(
            &t,
            next,
            &format!("run {cycle} (before checkpoint {})", cycle + 1),
        );
        let last = *t.last().unwrap();
        checkpoints.push(last);
        next = last + 1;
        run = restart(env, port, &newest_image(env, image_name));
    }
    let last = run.wait(LONG);
    let t = numbers(&last.stdout_str(), prefix);
    if last.code() == Some(0) {
        assert_consecutive(&t, next, "the last restarted run");
    }
    Cycles { checkpoints, last }
}

/// Launches `launch`, waits for 5 "`prefix` N" lines, takes a live checkpoint
/// (`--bcheckpoint`: the program runs on), waits for 5 more lines (the live run must stay
/// consecutive), kills the program, restarts the image and waits for the end. The restarted run
/// must start right after a line printed before the checkpoint returned, stay consecutive, and
/// end with "done"; returns its stdout.
pub fn live_checkpoint_kill_restart(
    env: &Env,
    port: u16,
    launch: Cmd,
    image_name: &str,
    prefix: &str,
) -> String {
    let mut run = env.spawn(&launch);
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(env, &mut run, prefix, 5);
    let ok = env.command(["--coord-port", &port.to_string(), "--bcheckpoint"]);
    assert_eq!(
        ok.code(),
        Some(0),
        "live checkpoint: {}\n{}",
        ok.describe(),
        env.diagnostics()
    );
    let at = *numbers(&run.stdout_so_far(), prefix).last().unwrap();
    wait_lines(env, &mut run, prefix, at as usize + 5);
    run.signal_group(libc::SIGKILL);
    let before = numbers(&run.wait(LONG).stdout_str(), prefix);
    assert_consecutive(&before, 1, "the run that was checkpointed live");

    let out = restart(env, port, &newest_image(env, image_name)).wait(LONG);
    assert_eq!(
        out.code(),
        Some(0),
        "restart of a live checkpoint: {}\n{}",
        out.describe(),
        env.diagnostics()
    );
    let stdout = out.stdout_str();
    let after = numbers(&stdout, prefix);
    assert!(
        !after.is_empty() && after[0] >= 6 && after[0] <= at + 1,
        "the restart does not continue from the checkpoint (taken after line 5, before line \
         {}): {after:?}",
        at + 1
    );
    assert_consecutive(&after, after[0], "after restart of a live checkpoint");
    assert!(stdout.ends_with("done\n"), "{stdout}");
    stdout
}

/// Asserts every checkpoint happened before progress number `before` (the program does some
/// checks only after that number, which must come after the last restart).
pub fn assert_checkpoints_before(c: &Cycles, before: u64, env: &Env) {
    let last = *c.checkpoints.last().unwrap();
    assert!(
        last < before,
        "the last checkpoint came too late ({last} >= {before}); the machine is too slow\n{}",
        env.diagnostics()
    );
}

/// Runs a program once without checkpointing (as the test user), returning its stdout.
pub fn uncheckpointed(env: &Env, cmd: Cmd) -> String {
    let out = env.run(&cmd, LONG);
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    out.stdout_str()
}

/// `path` as a str (test paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}
