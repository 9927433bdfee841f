//! Threads over two checkpoint/kill/restart cycles (tests/programs/cov_threads.c): recursive and
//! error-checking mutexes held across the checkpoints, robust mutexes whose owners die after
//! the restart, __thread counters, continuous thread creation, a user-supplied stack, a
//! deferred cancellation after restart, pthread_kill/raise, CPU affinity and rseq. The pid and
//! tids must be exact after restart both when the program was launched normally (dmtcp_restart
//! recreates them in a fresh pid namespace) and when launched with DMTCP_PID_NAMESPACE=1.

use dmtcp_tests::Env;
use dmtcp_tests::coverage_support::{
    assert_checkpoints_before, build, live_checkpoint_kill_restart, run_cycles, s,
};
use dmtcp_tests::engine_support::launch_in_pid_namespace;

const LIMIT: &str = "60";

#[test]
fn threads_and_ids_survive_two_restarts_launched_without_pid_namespace() {
    let env = Env::new("cov_threads");
    let prog = build(&env, "cov_threads", &[]);
    let coord = env.coordinator(&[]);
    let launch = env.launch_joined(coord.port, [s(&prog), LIMIT, "exact"]);
    let c = run_cycles(&env, coord.port, launch, "cov_threads", "tick", 5, 2);
    assert_checkpoints_before(&c, 60, &env);
    let out = c.finished_stdout(&env);
    assert!(out.contains("tick 60\n"), "{out}");
}

#[test]
fn threads_and_ids_survive_two_restarts_in_a_pid_namespace() {
    let env = Env::new("cov_threads_ns");
    let prog = build(&env, "cov_threads", &[]);
    let coord = env.coordinator(&[]);
    let cmd = launch_in_pid_namespace(
        &env,
        coord.port,
        &format!("{} {LIMIT} exact", prog.display()),
    );
    let c = run_cycles(&env, coord.port, cmd, "cov_threads", "tick", 5, 2);
    assert_checkpoints_before(&c, 60, &env);
    let out = c.finished_stdout(&env);
    assert!(out.contains("tick 60\n"), "{out}");
}

/// A live checkpoint (`--bcheckpoint`, written by a forked copy while the threads run on) of
/// the same program: the running program is undisturbed, and its image, restarted after the
/// program is killed, continues from the checkpoint and passes every check to the end.
#[test]
fn live_checkpoint_of_busy_threads_restarts() {
    let env = Env::new("cov_threads_live");
    let prog = build(&env, "cov_threads", &[]);
    let coord = env.coordinator(&[]);
    let launch = env.launch_joined(coord.port, [s(&prog), LIMIT]);
    let out = live_checkpoint_kill_restart(&env, coord.port, launch, "cov_threads", "tick");
    assert!(out.contains("tick 60\n"), "{out}");
}
