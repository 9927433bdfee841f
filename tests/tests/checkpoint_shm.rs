//! Shared anonymous memory stays shared: a parent and its forked child communicate through a
//! `MAP_SHARED|MAP_ANONYMOUS` page; after restart the parent must still see the child's
//! increments (it fails after 2 s without them) and reap it (tests/programs/ckpt_shm.c).

use dmtcp_tests::Env;
use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_and_kill, images, numbers, wait_lines,
};

#[test]
fn shared_anonymous_memory_is_shared_after_restart() {
    let env = Env::new("ckpt_shm");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_shm");
    let mut run = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap(), "150"]));
    env.wait_peers(port, 2, true, LONG);
    wait_lines(&env, &mut run, "tick", 5);
    let t = numbers(&checkpoint_and_kill(&env, port, run), "tick");
    let last = *t.last().unwrap();
    assert!(
        last < 40,
        "checkpoint too late to leave 110 ticks after restart ({last})"
    );
    let imgs = images(env.dir.path(), "ckpt_shm");
    assert_eq!(imgs.len(), 2, "{imgs:?}");
    let restart = env
        .tool("dmtcp_restart")
        .args(["--join-coordinator", "--coord-port", &port.to_string()])
        .args(&imgs);
    let out = env.spawn(&restart).wait(LONG);
    assert_eq!(
        out.code(),
        Some(0),
        "{}\n{}",
        out.describe(),
        env.diagnostics()
    );
    let stdout = out.stdout_str();
    assert_consecutive(&numbers(&stdout, "tick"), last + 1, "after restart");
    assert!(stdout.ends_with("tick 150\ndone\n"), "{stdout}");
}
