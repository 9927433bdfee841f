//! Repeated restarts: one image restarted twice, one after the other (each continues from the
//! checkpoint and runs to the same end), and ten checkpoint/kill/restart cycles in a row of
//! tests/programs/ckpt_counter.c (which checks its heap and stack against its counter).

use dmtcp_tests::Env;
use dmtcp_tests::coverage_support::{build, newest_image, s};
use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_and_kill, numbers, restart, wait_lines,
};

#[test]
fn one_image_restarts_twice_independently() {
    let env = Env::new("cov_twice");
    let prog = build(&env, "cov_omp", &["-fopenmp"]);
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let mut run = env.spawn(&env.launch_joined(port, [s(&prog), "30"]));
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 5);
    let t = numbers(&checkpoint_and_kill(&env, port, run), "tick");
    let last = *t.last().unwrap();
    let img = newest_image(&env, "cov_omp");
    let saved = std::fs::read(&img).unwrap();
    let mut outs = Vec::new();
    for i in 1..=2 {
        let r = restart(&env, port, &img);
        let out = r.wait(LONG);
        assert_eq!(
            out.code(),
            Some(0),
            "restart {i}: {}\n{}",
            out.describe(),
            env.diagnostics()
        );
        let stdout = out.stdout_str();
        assert_consecutive(&numbers(&stdout, "tick"), last + 1, &format!("restart {i}"));
        assert!(stdout.ends_with("done\n"), "restart {i}:\n{stdout}");
        outs.push(stdout);
        assert_eq!(
            std::fs::read(&img).unwrap(),
            saved,
            "restart {i} changed the image"
        );
    }
    assert_eq!(
        outs[0], outs[1],
        "the two restarts computed different results"
    );
}

#[test]
fn counter_survives_ten_cycles() {
    let env = Env::new("cov_ten");
    let prog = env.program("ckpt_counter");
    let coord = env.coordinator(&[]);
    let launch = env.launch_joined(coord.port, [s(&prog)]);
    // The counter never ends: stop after the tenth restart once it printed more lines.
    let mut run = env.spawn(&launch);
    env.wait_peers_of(coord.port, 1, &mut run);
    let mut next = 1;
    for cycle in 1..=10 {
        wait_lines(&env, &mut run, "tick", 3);
        let t = numbers(&checkpoint_and_kill(&env, coord.port, run), "tick");
        assert_consecutive(&t, next, &format!("before checkpoint {cycle}"));
        next = t.last().unwrap() + 1;
        run = restart(&env, coord.port, &newest_image(&env, "ckpt_counter"));
    }
    wait_lines(&env, &mut run, "tick", 3);
    let t = numbers(&run.stdout_so_far(), "tick");
    assert_consecutive(&t, next, "after the tenth restart");
}
