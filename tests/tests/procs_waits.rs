//! `poll`, `ppoll`, `select` and `epoll_wait` with a timeout are not cut short by a
//! checkpoint or a restart: each still times out after its full time, never with EINTR
//! (tests/programs/procs_waits.c checks the return values and durations itself).

use dmtcp_tests::Env;
use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_and_kill, images, numbers, restart, wait_lines,
};

#[test]
fn timed_waits_survive_checkpoints_and_restart() {
    let env = Env::new("procs_waits");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("procs_waits");
    let mut run = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap(), "6"]));
    // Two live checkpoints, each while the four threads are in the middle of their waits.
    for round in [1, 2] {
        wait_lines(&env, &mut run, "start", round);
        std::thread::sleep(std::time::Duration::from_millis(400));
        let out = env.command(["--coord-port", &port.to_string(), "--bcheckpoint"]);
        assert_eq!(
            out.code(),
            Some(0),
            "{}\n{}",
            out.describe(),
            env.diagnostics()
        );
    }
    wait_lines(&env, &mut run, "start", 3);
    std::thread::sleep(std::time::Duration::from_millis(400));
    let out = checkpoint_and_kill(&env, port, run);
    let done = numbers(&out, "round");
    assert_consecutive(&done, 1, "rounds before the restart");
    let imgs = images(env.dir.path(), "procs_waits");
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    // Restarted mid-wait: the waits go on for what was left and the rounds carry on.
    let r = restart(&env, port, &imgs[0]);
    let out = r.wait(LONG);
    let stdout = out.stdout_str();
    assert_consecutive(
        &numbers(&stdout, "round"),
        done.last().unwrap() + 1,
        "rounds after the restart",
    );
    assert!(stdout.ends_with("round 6 ok\ndone\n"), "{}", out.describe());
}
