//! Kernel objects behind file descriptors over two checkpoint/kill/restart cycles
//! (tests/programs/ipc_fdkinds.c), under both pid strategies: a periodic timerfd paces the
//! program, an eventfd carries the previous tick's number, an epoll set must report the eventfd
//! with its data, an inotify watch must report each created file with its original watch
//! descriptor, and two blocked signals (process- and thread-directed) stay pending and are read
//! from a signalfd at the end.

use dmtcp_tests::Env;
use dmtcp_tests::both_pid_modes;
use dmtcp_tests::coverage_support::{assert_checkpoints_before, build, run_cycles};
use dmtcp_tests::pid_modes::{PidMode, launch_in_mode};

fn fd_objects_survive_two_restarts(mode: PidMode) {
    let env = Env::new(&format!("ipc_fdkinds_{}", mode.name()));
    let prog = build(&env, "ipc_fdkinds", &[]);
    let coord = env.coordinator(&[]);
    let args = format!("{} 120", prog.display());
    let launch = launch_in_mode(&env, coord.port, mode, &args);
    let c = run_cycles(&env, coord.port, launch, "ipc_fdkinds", "tick", 5, 2);
    assert_checkpoints_before(&c, 120, &env);
    let out = c.finished_stdout(&env);
    assert!(out.contains("tick 120\n"), "{out}");
    let expirations = out
        .lines()
        .find_map(|l| l.strip_prefix("expirations "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    // The last run alone read at least its own ticks' worth of expirations.
    assert!(
        expirations >= 120,
        "timerfd expirations {expirations}:\n{out}"
    );
}
both_pid_modes!(fd_objects_survive_two_restarts);
