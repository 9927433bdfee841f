//! OpenMP (gcc -fopenmp) over two checkpoint/kill/restart cycles: the parallel reductions of
//! tests/programs/cov_omp.c after the restarts equal those of an uncheckpointed run.

use dmtcp_tests::Env;
use dmtcp_tests::coverage_support::{build, run_cycles, s, uncheckpointed};

#[test]
fn openmp_reduction_survives_two_restarts() {
    let env = Env::new("cov_omp");
    let prog = build(&env, "cov_omp", &["-fopenmp"]);
    let plain = uncheckpointed(&env, env.cmd(&prog).arg("40"));
    let coord = env.coordinator(&[]);
    let launch = env.launch_joined(coord.port, [s(&prog), "40"]);
    let c = run_cycles(&env, coord.port, launch, "cov_omp", "tick", 5, 2);
    let out = c.finished_stdout(&env);
    // The lines printed after the last restart are exactly those of the plain run.
    let first = c.checkpoints.last().unwrap() + 1;
    let from = plain
        .find(&format!("tick {first} "))
        .expect("the plain run printed the tick");
    assert_eq!(
        out,
        &plain[from..],
        "results differ from an uncheckpointed run"
    );
}
