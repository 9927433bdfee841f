//! Memory layout and kernel state across a restart (tests/programs/ckpt_state.c checks them on
//! every tick): a sparse 4 GiB mapping, holes, mremap, brk, signal handlers, a blocked pending
//! signal delivered exactly once after restart, an interval timer, umask, cwd and rseq.

use dmtcp_tests::Env;
use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_and_kill, finished_ok, images, numbers, restart,
    wait_lines,
};

#[test]
fn memory_and_kernel_state_survive_restart() {
    let env = Env::new("ckpt_state");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_state");
    // The program unblocks its pending SIGUSR2 at tick 60, after the restart.
    let mut run = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap(), "90"]));
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 5);
    let out = checkpoint_and_kill(&env, port, run);
    let t = numbers(&out, "tick");
    assert_consecutive(&t, 1, "the launched program");
    let last = *t.last().unwrap();
    assert!(
        last < 60,
        "checkpoint came too late for the pending-signal check ({last})"
    );
    let img = images(env.dir.path(), "ckpt_state")
        .pop()
        .expect("an image");
    let size = std::fs::metadata(&img).unwrap().len();
    assert!(
        size < 64 << 20,
        "the sparse 4 GiB mapping was saved densely: {size} bytes"
    );

    let r = restart(&env, port, &img);
    let stdout = finished_ok(&env, r, LONG);
    let t = numbers(&stdout, "tick");
    assert_consecutive(&t, last + 1, "after restart");
    assert_eq!(t.last(), Some(&90));
    assert!(stdout.contains("tick 90 usr1 90 usr2 1 "), "{stdout}");
    assert!(stdout.ends_with("done\n"), "{stdout}");
}
