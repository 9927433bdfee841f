//! Open file descriptions shared by several processes come back shared
//! (tests/programs/shared_append.c): a parent and its child take turns writing records through
//! one inherited fd opened without O_APPEND, and both count in one inherited eventfd. After
//! two checkpoint/kill/restart cycles the file holds every record once, in turn order (a
//! per-process offset would make them overwrite each other), the parent's offset is the sum
//! of both processes' writes, and the eventfd counted both processes' increments. The child
//! also opened the file itself (read-only): that description stays its own, and its offset
//! keeps following the records.

use dmtcp_tests::both_pid_modes;
use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_and_kill, images, numbers, wait_lines,
};
use dmtcp_tests::pid_modes::{PidMode, launch_in_mode};
use dmtcp_tests::{Env, Spawned};

const TURNS: u64 = 1500;

fn restart_all(env: &Env, port: u16, n: usize) -> Spawned {
    let imgs = images(env.dir.path(), "shared_append");
    assert_eq!(imgs.len(), n, "{imgs:?}");
    let restart = env
        .tool("dmtcp_restart")
        .args(["--join-coordinator", "--coord-port", &port.to_string()])
        .args(&imgs);
    env.spawn(&restart)
}

/// Under both id strategies: with virtual ids the second checkpoint runs with real pids that
/// differ from the virtual ones (kcmp needs the real ones).
fn file_offset_and_eventfd_stay_shared_over_two_cycles(mode: PidMode) {
    let env = Env::new(&format!("shared_fds_{}", mode.name()));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("shared_append");
    let out = env.dir.path().join("records.txt");
    let cmd = launch_in_mode(
        &env,
        port,
        mode,
        &format!("{} {} {TURNS}", prog.display(), out.display()),
    );
    let mut run = env.spawn(&cmd);
    env.wait_peers(port, 2, true, LONG);
    wait_lines(&env, &mut run, "step", 3);
    let t = numbers(&checkpoint_and_kill(&env, port, run), "step");
    assert_consecutive(&t, 1, "before the first checkpoint");
    let mut next = t.last().unwrap() + 1;

    let mut r = restart_all(&env, port, 2);
    wait_lines(&env, &mut r, "step", 3);
    let t = numbers(&checkpoint_and_kill(&env, port, r), "step");
    assert_consecutive(&t, next, "after the first restart");
    next = t.last().unwrap() + 1;
    assert!(next * 50 < TURNS, "the program went too fast: {t:?}");

    let done = restart_all(&env, port, 2).wait(LONG * 2);
    assert_eq!(
        done.code(),
        Some(0),
        "{}\n{}",
        done.describe(),
        env.diagnostics()
    );
    let stdout = done.stdout_str();
    assert_consecutive(&numbers(&stdout, "step"), next, "after the second restart");
    assert!(
        stdout.ends_with(&format!(
            "file ok {}\neventfd {}\ndone\n",
            2 * TURNS,
            2 * TURNS
        )),
        "{stdout}"
    );
    // The file as the test reads it: every record once, alternating, nothing overwritten.
    let text = std::fs::read_to_string(&out).unwrap();
    let want: String = (1..=TURNS).map(|i| format!("P{i:05}\nC{i:05}\n")).collect();
    assert!(text == want, "{} bytes, want {}", text.len(), want.len());
}

both_pid_modes!(file_offset_and_eventfd_stay_shared_over_two_cycles);
