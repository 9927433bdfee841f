//! A pty pair created by the program (tests/programs/tty_pair.c: master in the parent, slave
//! as the child's controlling terminal and stdio, like `script`) comes back as a NEW pty pair
//! connecting the same processes, over two checkpoint/kill/restart cycles: the window size
//! and termios (echo off) are those of the checkpoint, the slave is again the child's
//! controlling terminal, and the lines in flight both ways (the parent keeps two lines ahead
//! of a slow child) are delivered exactly once, in order.

use dmtcp_tests::both_pid_modes;
use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_after, checkpoint_and_kill, images, numbers, wait_lines,
};
use dmtcp_tests::pid_modes::{PidMode, launch_tree};
use dmtcp_tests::{Env, Spawned};

const ANSWERS: u64 = 400;

fn restart_all(env: &Env, port: u16) -> Spawned {
    let imgs = images(env.dir.path(), "tty_pair");
    assert_eq!(imgs.len(), 2, "{imgs:?}");
    let restart = env
        .tool("dmtcp_restart")
        .args(["--join-coordinator", "--coord-port", &port.to_string()])
        .args(&imgs);
    env.spawn(&restart)
}

/// Under both id strategies: with virtual ids the second checkpoint runs with real pids that
/// differ from the virtual ones (kcmp needs the real ones).
fn pty_pair_between_parent_and_child_survives_two_cycles(mode: PidMode) {
    let env = Env::new(&format!("tty_pair_{}", mode.name()));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("tty_pair");
    let run = launch_tree(
        &env,
        port,
        mode,
        &format!("{} {ANSWERS}", prog.display()),
        2,
    );
    let (_, t) = checkpoint_after(&env, port, run, "step", 3);
    let mut next = t.last().unwrap() + 1;

    let mut r = restart_all(&env, port);
    wait_lines(&env, &mut r, "step", 3);
    let t = numbers(&checkpoint_and_kill(&env, port, r), "step");
    assert_consecutive(&t, next, "after the first restart");
    next = t.last().unwrap() + 1;
    assert!(next * 10 < ANSWERS, "the program went too fast: {t:?}");

    let done = restart_all(&env, port).wait(LONG * 2);
    assert_eq!(
        done.code(),
        Some(0),
        "{}\n{}",
        done.describe(),
        env.diagnostics()
    );
    let stdout = done.stdout_str();
    assert_consecutive(&numbers(&stdout, "step"), next, "after the second restart");
    assert!(stdout.ends_with(&format!("done {ANSWERS}\n")), "{stdout}");
}

both_pid_modes!(pty_pair_between_parent_and_child_survives_two_cycles);
