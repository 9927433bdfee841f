//! Interpreters over two checkpoint/kill/restart cycles: a bash loop
//! (tests/programs/cov_loop.sh: `for i in $(seq ...)`, arithmetic, an array) and a perl loop
//! (tests/programs/cov_loop.pl: a hash, a growing string) end with exactly the output of an
//! uncheckpointed run.

use dmtcp_tests::Env;
use dmtcp_tests::coverage_support::{run_cycles, s, script, uncheckpointed};

fn interpreter_loop(test: &str, interp: &str, file: &str) {
    let env = Env::new(test);
    let path = script(&env, file);
    let plain = uncheckpointed(&env, env.cmd(interp).args([s(&path), "60"]));
    let coord = env.coordinator(&[]);
    let launch = env.launch_joined(coord.port, [interp, s(&path), "60"]);
    let c = run_cycles(&env, coord.port, launch, interp, "tick", 5, 2);
    let out = c.finished_stdout(&env);
    let first = c.checkpoints.last().unwrap() + 1;
    let from = plain
        .find(&format!("tick {first} "))
        .expect("the plain run printed the tick");
    assert_eq!(
        out,
        &plain[from..],
        "{interp}: output differs from an uncheckpointed run"
    );
}

#[test]
fn bash_loop_survives_two_restarts() {
    interpreter_loop("cov_bash", "bash", "cov_loop.sh");
}

#[test]
fn perl_loop_survives_two_restarts() {
    interpreter_loop("cov_perl", "perl", "cov_loop.pl");
}
