//! A program that keeps one of its own /proc files open (tests/programs/proc_self_fd.c) reads
//! it through the same fd after two restarts. With virtual ids (the suite's second pass) the
//! restarted process has another real pid: the fd is saved as /proc/self/..., not by pid.

use dmtcp_tests::Env;
use dmtcp_tests::coverage_support::{build, run_cycles, s};

#[test]
fn own_proc_file_stays_readable_over_two_restarts() {
    let env = Env::new("cov_proc_fds");
    let prog = build(&env, "proc_self_fd", &[]);
    let coord = env.coordinator(&[]);
    let launch = env.launch_joined(coord.port, [s(&prog), "60"]);
    let c = run_cycles(&env, coord.port, launch, "proc_self_fd", "tick", 5, 2);
    let out = c.finished_stdout(&env);
    assert!(out.contains("tick 60\ndone\n"), "{out}");
}
