//! Ways to checkpoint and restart that users' scripts rely on: uncompressed images
//! (`--no-gzip`), `dmtcp_restart --restartdir`, the generated `dmtcp_restart_script.sh`, and a
//! process checkpointed several times while it keeps running.

use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_and_kill, images, numbers, restart, wait_lines,
};
use dmtcp_tests::process::zombie_children;
use dmtcp_tests::{Env, QUICK, wait_for};

#[test]
fn uncompressed_image_and_restartdir() {
    let env = Env::new("ckpt_nogzip");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_counter");
    let cmd = env
        .launch([
            "--join-coordinator",
            "--coord-port",
            &port.to_string(),
            "--no-gzip",
        ])
        .arg(&prog);
    let mut run = env.spawn(&cmd);
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 3);
    let t = numbers(&checkpoint_and_kill(&env, port, run), "tick");
    let last = *t.last().unwrap();
    let img = images(env.dir.path(), "ckpt_counter")
        .pop()
        .expect("an image");
    // Stored raw: the library text alone is over a megabyte, and it is not compressed.
    let inspect = env.run(&env.tool("dmtcp_inspect").arg("--json").arg(&img), QUICK);
    assert_eq!(inspect.code(), Some(0), "{}", inspect.describe());
    let j: serde_json::Value = serde_json::from_str(&inspect.stdout_str()).expect("inspect JSON");
    let totals = &j["totals"];
    assert_eq!(
        totals["zstd_frames"], 0,
        "compressed frames in a --no-gzip image: {totals}"
    );
    assert_eq!(totals["raw_bytes"], totals["stored_bytes"], "{totals}");

    let restart = env
        .tool("dmtcp_restart")
        .args([
            "--join-coordinator",
            "--coord-port",
            &port.to_string(),
            "--restartdir",
        ])
        .arg(env.dir.path());
    let mut r = env.spawn(&restart);
    env.wait_peers_of(port, 1, &mut r);
    wait_lines(&env, &mut r, "tick", 3);
    let t = numbers(&checkpoint_and_kill(&env, port, r), "tick");
    assert_consecutive(&t, last + 1, "restart from --restartdir");
}

#[test]
fn repeated_checkpoints_then_restart_script() {
    let env = Env::new("ckpt_script");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_counter");
    let mut run = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap()]));
    env.wait_peers_of(port, 1, &mut run);
    // Two blocking checkpoints while it runs on (written by a forked copy while the program
    // continues): it must keep counting correctly.
    let mut window = (0, 0);
    for _ in 0..2 {
        let have = numbers(&run.stdout_so_far(), "tick").len();
        wait_lines(&env, &mut run, "tick", have + 3);
        let before = numbers(&run.stdout_so_far(), "tick").len() as u64;
        let out = env.command(["--coord-port", &port.to_string(), "--bcheckpoint"]);
        assert_eq!(
            out.code(),
            Some(0),
            "{}\n{}",
            out.describe(),
            env.diagnostics()
        );
        window = (before, numbers(&run.stdout_so_far(), "tick").len() as u64);
    }
    // The processes that wrote those images while it ran are reaped (a checkpoint completes
    // when its writer reports, and the writer is waited for after): no zombie stays behind.
    wait_for(
        "the image writers to be reaped",
        LONG,
        || zombie_children(run.pid()).is_empty().then_some(()),
        || format!("zombies: {:?}", zombie_children(run.pid())),
    );
    let live_image = env.dir.join("live-checkpoint.dmtcp");
    let img = images(env.dir.path(), "ckpt_counter")
        .pop()
        .expect("an image");
    // Copied as the test user, who owns the images.
    let cp = env.run(&env.cmd("cp").arg(&img).arg(&live_image), QUICK);
    assert_eq!(cp.code(), Some(0), "{}", cp.describe());
    let have = numbers(&run.stdout_so_far(), "tick").len();
    wait_lines(&env, &mut run, "tick", have + 3);
    assert_consecutive(
        &numbers(&run.stdout_so_far(), "tick"),
        1,
        "running through checkpoints",
    );
    let t = numbers(&checkpoint_and_kill(&env, port, run), "tick");
    let last = *t.last().unwrap();

    let script = env.dir.join("dmtcp_restart_script.sh");
    assert!(script.exists(), "no restart script\n{}", env.diagnostics());
    let mut r = env.spawn(&env.cmd("sh").arg(&script));
    env.wait_peers_of(port, 1, &mut r);
    wait_lines(&env, &mut r, "tick", 3);
    let t = numbers(&checkpoint_and_kill(&env, port, r), "tick");
    assert_consecutive(&t, last + 1, "restart through dmtcp_restart_script.sh");

    // The image of the second live checkpoint continues from where that checkpoint was taken.
    let mut r = restart(&env, port, &live_image);
    wait_lines(&env, &mut r, "tick", 3);
    let t = numbers(&checkpoint_and_kill(&env, port, r), "tick");
    assert!(
        window.0 < t[0] && t[0] <= window.1 + 1,
        "restart of a live checkpoint taken between ticks {window:?} began at {}",
        t[0]
    );
    assert_consecutive(&t, t[0], "restart of a live checkpoint");
}
