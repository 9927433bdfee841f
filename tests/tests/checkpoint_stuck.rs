//! A thread that cannot be frozen (it blocks every signal behind the runtime's back): the
//! checkpoint fails within the freeze timeout with a message naming the thread, the other
//! process of the computation is not left waiting, nobody's previous image is replaced, and
//! the program runs on unharmed (tests/programs/ckpt_blocker.c).

use dmtcp_tests::engine_support::{assert_consecutive, bcheckpoint, images, numbers, wait_lines};
use dmtcp_tests::{Env, LONG};

#[test]
fn unfreezable_thread_fails_the_checkpoint_cleanly() {
    let env = Env::new("ckpt_stuck");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let blocker = env.program("ckpt_blocker");
    let counter = env.program("ckpt_counter");
    let launch = |args: &[&str]| {
        env.launch(["--join-coordinator", "--coord-port", &port.to_string()])
            .env("DMTCP_FREEZE_TIMEOUT", "2")
            .args(args)
    };
    // The blocker lets signals through again after tick 150 (about 3 s).
    let mut b = env.spawn(&launch(&[
        blocker.to_str().unwrap(),
        "100000",
        "unblock",
        "150",
    ]));
    let mut c = env.spawn(&launch(&[counter.to_str().unwrap()]));
    env.wait_peers(port, 2, true, LONG);
    wait_lines(&env, &mut b, "tick", 3);
    wait_lines(&env, &mut c, "tick", 3);

    let out = env.command(["--coord-port", &port.to_string(), "--bcheckpoint"]);
    assert_ne!(out.code(), Some(0), "{}", out.describe());
    let err = out.stderr_str();
    assert!(err.contains("did not stop within 2 seconds"), "{err}");
    assert!(
        images(env.dir.path(), "ckpt_counter").is_empty(),
        "a half generation was kept"
    );
    assert!(images(env.dir.path(), "ckpt_blocker").is_empty());

    // Both run on; once the thread unblocks, checkpoints work again.
    let st = env.wait_peers(port, 2, true, LONG);
    assert_eq!(st.peers(), 2);
    let have = numbers(&b.stdout_so_far(), "tick").len();
    wait_lines(&env, &mut b, "tick", have.max(160));
    bcheckpoint(&env, port);
    assert_eq!(images(env.dir.path(), "ckpt_counter").len(), 1);
    assert_eq!(images(env.dir.path(), "ckpt_blocker").len(), 1);
    let have = numbers(&c.stdout_so_far(), "tick").len();
    wait_lines(&env, &mut c, "tick", have + 3);
    assert_consecutive(&numbers(&c.stdout_so_far(), "tick"), 1, "the counter");
    assert_consecutive(&numbers(&b.stdout_so_far(), "tick"), 1, "the blocker");
}
