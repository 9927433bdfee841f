//! Threads: 8 workers pass a token around a ring under one mutex and condition variable
//! (tests/programs/ckpt_threads.c); every thread must come back with its registers, TLS and
//! stack, the invariants must hold after each restart, and pthread_join must work at the end.

use dmtcp_tests::Env;
use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_and_kill, images, numbers, restart, wait_lines,
};

#[test]
fn threads_resume_and_join_after_restarts() {
    let env = Env::new("ckpt_threads");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_threads");
    // Enough rounds to outlive two checkpoints, few enough to finish after the last restart.
    let mut run = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap(), "60"]));
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "round", 5);
    let t = numbers(&checkpoint_and_kill(&env, port, run), "round");
    assert_consecutive(&t, 1, "the launched program");
    let mut last = *t.last().unwrap();
    let img = images(env.dir.path(), "ckpt_threads")
        .pop()
        .expect("an image");

    let mut r = restart(&env, port, &img);
    wait_lines(&env, &mut r, "round", 3);
    let t = numbers(&checkpoint_and_kill(&env, port, r), "round");
    assert_consecutive(&t, last + 1, "restart 1");
    last = *t.last().unwrap();
    assert!(
        last < 60,
        "the program must still be running at the second checkpoint"
    );

    // The last restart runs to the end: "done" comes only after joining all 8 workers.
    let r = restart(&env, port, &img);
    let out = r.wait(LONG);
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let t = numbers(&out.stdout_str(), "round");
    assert_consecutive(&t, last + 1, "restart 2");
    assert_eq!(t.last(), Some(&60));
    assert!(out.stdout_str().ends_with("done\n"), "{}", out.describe());
}

/// The main thread ended with pthread_exit (a zombie leader); the worker is restarted and the
/// process ends normally (tests/programs/ckpt_main_exits.c).
#[test]
fn process_whose_main_thread_exited_restarts() {
    let env = Env::new("ckpt_main_exits");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_main_exits");
    let mut run = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap(), "40"]));
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 5);
    let t = numbers(&checkpoint_and_kill(&env, port, run), "tick");
    assert_consecutive(&t, 1, "the launched program");
    let last = *t.last().unwrap();
    let img = images(env.dir.path(), "ckpt_main_exits")
        .pop()
        .expect("an image");
    let out = restart(&env, port, &img).wait(LONG);
    assert_eq!(
        out.code(),
        Some(0),
        "{}\n{}",
        out.describe(),
        env.diagnostics()
    );
    assert_consecutive(
        &numbers(&out.stdout_str(), "tick"),
        last + 1,
        "after restart",
    );
    assert!(
        out.stdout_str().ends_with("tick 40\ndone\n"),
        "{}",
        out.describe()
    );
}
