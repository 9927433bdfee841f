//! The first promise of the engine: a program checkpointed, killed and restarted continues
//! exactly where it stopped, cycle after cycle (tests/programs/ckpt_counter.c checks its own
//! heap and stack against its counter on every tick).

use dmtcp_tests::Env;
use dmtcp_tests::engine_support::{
    assert_consecutive, checkpoint_and_kill, images, numbers, restart, wait_lines,
};

#[test]
fn counter_continues_exactly_over_two_restarts() {
    let env = Env::new("ckpt_counter");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_counter");
    let mut run = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap()]));
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 5);
    let out = checkpoint_and_kill(&env, port, run);
    let t = numbers(&out, "tick");
    assert_consecutive(&t, 1, "the launched program");
    let mut last = *t.last().unwrap();
    let imgs = images(env.dir.path(), "ckpt_counter");
    assert_eq!(
        imgs.len(),
        1,
        "one image expected: {imgs:?}\n{}",
        env.diagnostics()
    );

    for cycle in 1..=2 {
        let mut r = restart(&env, port, &imgs[0]);
        wait_lines(&env, &mut r, "tick", 5);
        let out = checkpoint_and_kill(&env, port, r);
        let t = numbers(&out, "tick");
        assert_consecutive(&t, last + 1, &format!("restart {cycle}"));
        assert!(t.len() >= 5, "restart {cycle} did not run on: {t:?}");
        last = *t.last().unwrap();
    }
}
