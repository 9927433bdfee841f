//! A pipe shared by a parent and its child (tests/programs/ckpt_pipe.c): the parent writes a
//! numbered sequence faster than the child reads it, so the pipe is full at every checkpoint.
//! After two checkpoint/kill/restart cycles the child has still read every number exactly
//! once, in order, and saw EOF when the parent closed its end (one pipe again, not two).
//! The same for a shell pipeline `writer | reader` of two bash subshells, where the pipe is
//! the writer's stdout and the reader's stdin (fds the restart would otherwise take from the
//! restart command), and all three shells also share a FIFO.

use dmtcp_tests::Env;
use dmtcp_tests::both_pid_modes;
use dmtcp_tests::engine_support::{Cycles, cycles, numbers};
use dmtcp_tests::pid_modes::{PidMode, launch_tree};

/// More than a full pipe (64 KiB holds 7281 records) beyond what the child reads before the
/// second checkpoint, so the parent is still writing at both checkpoints.
const RECORDS: u64 = 12000;

/// The last "recv" number of `out`.
fn last_recv(out: &str) -> u64 {
    *numbers(out, "recv").last().unwrap()
}

fn pipe_between_parent_and_child_survives_two_cycles(mode: PidMode) {
    let env = Env::new(&format!("ckpt_pipe_{}", mode.name()));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_pipe");
    // Launched in a new user and pid namespace for exact ids, the restart rebuilds the
    // process tree with the same pids.
    let run = launch_tree(
        &env,
        port,
        mode,
        &format!("{} {RECORDS}", prog.display()),
        2,
    );
    let plan = Cycles {
        program: "ckpt_pipe",
        images: 2..=2,
        ready: &[("recv", 5)],
        counters: &["recv"],
        restarts: 2,
    };
    let outs = cycles(&env, port, run, &plan);
    // The parent still held the write end with a full pipe at the second checkpoint.
    assert!(
        (last_recv(&outs[1]) + 1) * 100 + 7300 < RECORDS,
        "the reader went too fast: {}",
        outs[1]
    );
    assert!(
        outs[2].ends_with(&format!("child done {RECORDS}\ndone\n")),
        "{}",
        outs[2]
    );
}

/// The pipeline: a writer subshell echoes 1..LIMIT as fast as the pipe takes it, a reader
/// subshell checks every line and waits 1 ms per line on a FIFO nobody writes (`read -t`).
const PIPELINE: &str = r#"
limit=$1
exec 9<>"$2"
i=0
while [ "$i" -lt "$limit" ]; do i=$((i + 1)); echo "$i"; done | {
  n=0
  while read -r x; do
    n=$((n + 1))
    if [ "$x" != "$n" ]; then echo "CORRUPT got '$x', expected $n"; exit 3; fi
    if [ $((n % 100)) = 0 ]; then echo "recv $((n / 100))"; fi
    read -r -t 0.001 -u 9 _
  done
  if [ "$n" != "$limit" ]; then echo "FAIL EOF after $n lines of $limit"; exit 3; fi
  echo "child done $n"
}
echo "status $?"
"#;

/// Lines of the pipeline: a full pipe (~11,000 lines of 6 bytes) stays ahead of the reader.
const LINES: u64 = 16000;

fn shell_pipeline_survives_two_cycles(mode: PidMode) {
    let env = Env::new(&format!("ckpt_pipe_shell_{}", mode.name()));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let script = env.dir.path().join("pipeline.sh");
    std::fs::write(&script, PIPELINE).unwrap();
    let fifo = env.dir.path().join("slow.fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    make_usable(&fifo);
    make_usable(&script);
    let prog = format!("bash {} {LINES} {}", script.display(), fifo.display());
    // The launched shell and its two subshells.
    let run = launch_tree(&env, port, mode, &prog, 3);
    let plan = Cycles {
        program: "bash",
        images: 3..=3,
        ready: &[("recv", 5)],
        counters: &["recv"],
        restarts: 2,
    };
    let outs = cycles(&env, port, run, &plan);
    assert!(
        (last_recv(&outs[1]) + 1) * 100 + 11500 < LINES,
        "the reader went too fast: {}",
        outs[1]
    );
    assert!(
        outs[2].ends_with(&format!("child done {LINES}\nstatus 0\n")),
        "{}",
        outs[2]
    );
}

/// The test user (not root in CI) must open the FIFO and read the script.
fn make_usable(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o666)).unwrap();
}

// Each case under both id strategies (DESIGN.md §5): `<case>::namespace`, `<case>::virtual_ids`.
both_pid_modes!(pipe_between_parent_and_child_survives_two_cycles);
both_pid_modes!(shell_pipeline_survives_two_cycles);
