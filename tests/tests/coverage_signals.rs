//! Signals and process-wide kernel state over two checkpoint/kill/restart cycles
//! (tests/programs/cov_signals.c): handlers, blocked pending signals (thread- and
//! process-directed) delivered exactly once after the restarts, sigaltstack, alarm() remaining
//! time, an invisible checkpoint signal the program tried to take over and block, umask and a
//! lowered RLIMIT_NOFILE.

use dmtcp_tests::Env;
use dmtcp_tests::both_pid_modes;
use dmtcp_tests::coverage_support::{assert_checkpoints_before, build, run_cycles, s};
use dmtcp_tests::pid_modes::PidMode;

fn signals_and_limits_survive_two_restarts(mode: PidMode) {
    let env = Env::new(&format!("cov_signals_{}", mode.name()));
    let prog = build(&env, "cov_signals", &[]);
    let coord = env.coordinator(&[]);
    // Pending signals are unblocked at tick 40, after both restarts.
    let launch = env.launch_joined(coord.port, [mode.flag().as_str(), s(&prog), "60", "40"]);
    let c = run_cycles(&env, coord.port, launch, "cov_signals", "tick", 5, 2);
    assert_checkpoints_before(&c, 40, &env);
    let out = c.finished_stdout(&env);
    assert!(out.contains("tick 60\n"), "{out}");
}

fn lowered_nofile_limit_survives_two_restarts(mode: PidMode) {
    let env = Env::new(&format!("cov_signals_nofile_{}", mode.name()));
    let prog = build(&env, "cov_signals", &[]);
    let coord = env.coordinator(&[]);
    let launch = env.launch_joined(
        coord.port,
        [mode.flag().as_str(), s(&prog), "60", "40", "lowfd"],
    );
    let c = run_cycles(&env, coord.port, launch, "cov_signals", "tick", 5, 2);
    let out = c.finished_stdout(&env);
    assert!(out.contains("tick 60\n"), "{out}");
}

fn blocked_process_directed_signal_waits_for_the_program(mode: PidMode) {
    let env = Env::new(&format!("cov_signals_proc_{}", mode.name()));
    let prog = build(&env, "cov_signals", &[]);
    let coord = env.coordinator(&[]);
    // SIGHUP is sent to the process at tick 3, pending over both checkpoints.
    let launch = env.launch_joined(
        coord.port,
        [mode.flag().as_str(), s(&prog), "60", "40", "procsig"],
    );
    let c = run_cycles(&env, coord.port, launch, "cov_signals", "tick", 5, 2);
    assert_checkpoints_before(&c, 40, &env);
    let out = c.finished_stdout(&env);
    assert!(out.contains("tick 60\n"), "{out}");
}

fn process_directed_signal_at_start_waits_for_the_program(mode: PidMode) {
    let env = Env::new(&format!("cov_signals_proc0_{}", mode.name()));
    let prog = build(&env, "cov_signals", &[]);
    let coord = env.coordinator(&[]);
    let launch = env.launch_joined(
        coord.port,
        [mode.flag().as_str(), s(&prog), "60", "40", "procsig0"],
    );
    let c = run_cycles(&env, coord.port, launch, "cov_signals", "tick", 5, 2);
    assert_checkpoints_before(&c, 40, &env);
    let out = c.finished_stdout(&env);
    assert!(out.contains("tick 60\n"), "{out}");
}

/// A periodic ITIMER_REAL whose SIGALRM is blocked (so the expired timer waits, value 0) over
/// both checkpoints: after unblocking, the pending SIGALRM arrives once and the timer ticks on
/// (tests/programs/cov_itimer.c).
fn expired_periodic_timer_ticks_on_after_restart(mode: PidMode) {
    let env = Env::new(&format!("cov_itimer_{}", mode.name()));
    let prog = build(&env, "cov_itimer", &[]);
    let coord = env.coordinator(&[]);
    let launch = env.launch_joined(coord.port, [mode.flag().as_str(), s(&prog), "70", "40"]);
    let c = run_cycles(&env, coord.port, launch, "cov_itimer", "tick", 5, 2);
    assert_checkpoints_before(&c, 40, &env);
    let out = c.finished_stdout(&env);
    assert!(out.contains("tick 70 "), "{out}");
}

// Each case under both id strategies (DESIGN.md §5): `<case>::namespace`, `<case>::virtual_ids`.
both_pid_modes!(signals_and_limits_survive_two_restarts);
both_pid_modes!(lowered_nofile_limit_survives_two_restarts);
both_pid_modes!(blocked_process_directed_signal_waits_for_the_program);
both_pid_modes!(process_directed_signal_at_start_waits_for_the_program);
both_pid_modes!(expired_periodic_timer_ticks_on_after_restart);
