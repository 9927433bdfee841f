//! POSIX timers over two checkpoint/kill/restart cycles (tests/programs/ipc_timers.c): a
//! periodic process-directed timer, a periodic thread-directed one and a SIGEV_NONE one-shot
//! keep their ids (the program's `timer_t` values work after restart), intervals, signal values
//! and remaining time, and the periodic ones keep firing; a deleted timer stays deleted.

use dmtcp_tests::Env;
use dmtcp_tests::coverage_support::{assert_checkpoints_before, build, run_cycles, s};

#[test]
fn posix_timers_keep_ids_and_keep_firing() {
    let env = Env::new("ipc_timers");
    let prog = build(&env, "ipc_timers", &[]);
    let coord = env.coordinator(&[]);
    let launch = env.launch_joined(coord.port, [s(&prog), "120"]);
    let c = run_cycles(&env, coord.port, launch, "ipc_timers", "tick", 5, 2);
    assert_checkpoints_before(&c, 110, &env);
    let out = c.finished_stdout(&env);
    assert!(out.contains("tick 120\n"), "{out}");
}
