//! Shared anonymous memory stays shared: a parent and its forked child communicate through a
//! `MAP_SHARED|MAP_ANONYMOUS` page; after restart the parent must still see the child's
//! increments (it fails after 2 s without them) and reap it (tests/programs/ckpt_shm.c).
//! And it is saved as it was when the computation froze, although forked writers save it
//! while the processes run on (tests/programs/shm_frozen.c).

use dmtcp_tests::Env;
use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, bcheckpoint, checkpoint_and_kill, images, numbers, restart_images,
    wait_lines,
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

#[test]
fn shared_memory_is_saved_as_it_was_at_the_freeze() {
    let env = Env::new("shm_frozen");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("shm_frozen");
    let mut run = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap(), "100", "96"]));
    env.wait_peers(port, 2, true, LONG);
    for cycle in 0..2 {
        wait_lines(&env, &mut run, "tick", 3);
        // A checkpoint the program runs on from (forked writers), then a kill.
        bcheckpoint(&env, port);
        wait_lines(&env, &mut run, "tick", 6);
        env.command(["--coord-port", &port.to_string(), "--kill"])
            .assert_code(0);
        let out = run.wait(LONG).stdout_str();
        assert!(!out.contains("INCONSISTENT"), "cycle {cycle}: {out}");
        let dir = env.dir.path().join(format!("cycle{cycle}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut moved = Vec::new();
        for img in images(env.dir.path(), "shm_frozen") {
            let to = dir.join(img.file_name().unwrap());
            std::fs::rename(&img, &to).unwrap();
            moved.push(to);
        }
        assert_eq!(moved.len(), 2, "{moved:?}");
        run = restart_images(&env, port, &moved);
        env.wait_peers(port, 2, true, LONG);
    }
    let out = run.wait(LONG);
    let stdout = out.stdout_str();
    assert_eq!(out.code(), Some(0), "{stdout}\n{}", out.describe());
    assert!(stdout.contains("tick 100\ndone "), "{stdout}");
}
