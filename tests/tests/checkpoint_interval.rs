//! Checkpoints that nobody waits for: the interval timer (`dmtcp_launch -i`) and the
//! asynchronous `dmtcp_command --checkpoint`. The program is killed after them and restarted
//! from the newest image; it must continue from that image's point, not from the start.

use dmtcp_tests::engine_support::{assert_consecutive, images, numbers, restart, wait_lines};
use dmtcp_tests::{Env, LONG, QUICK, wait_for};
use std::path::Path;

fn generation(env: &Env, image: &Path) -> u64 {
    let out = env.run(&env.tool("dmtcp_inspect").arg("--json").arg(image), QUICK);
    if out.code() != Some(0) {
        // Renamed into place while we looked: try again later.
        return 0;
    }
    let j: serde_json::Value = serde_json::from_str(&out.stdout_str()).unwrap_or_default();
    j["process"]["generation"].as_u64().unwrap_or(0)
}

/// Kills the computation and checks the restarted counter carries on from the image.
fn kill_restart_and_check(env: &Env, port: u16, printed: &str, image: &Path) {
    let out = env.command(["--coord-port", &port.to_string(), "--kill"]);
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let before = numbers(printed, "tick");
    let last = *before.last().expect("ticks before the kill");
    let mut r = restart(env, port, image);
    wait_lines(env, &mut r, "tick", 3);
    let after = numbers(&r.stdout_so_far(), "tick");
    let first = after[0];
    // The image was taken before the kill: the counter resumes at or before where it was
    // killed, never from the beginning.
    assert!(
        first > 1 && first <= last + 1,
        "restarted at tick {first}, killed at {last}\n{}",
        env.diagnostics()
    );
    assert_consecutive(&after, first, "the restarted counter");
    let out = env.command(["--coord-port", &port.to_string(), "--kill"]);
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let _ = r.wait(LONG);
}

#[test]
fn interval_checkpoints_are_taken_and_restartable() {
    let env = Env::new("ckpt_interval");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_counter");
    let mut run = env.spawn(&env.launch_joined(port, ["--interval", "1", prog.to_str().unwrap()]));
    env.wait_peers_of(port, 1, &mut run);
    // Two interval checkpoints, with no command from anyone.
    let image = wait_for(
        "a second interval checkpoint",
        LONG,
        || {
            images(env.dir.path(), "ckpt_counter")
                .into_iter()
                .find(|i| generation(&env, i) >= 2)
        },
        || env.diagnostics(),
    );
    wait_lines(&env, &mut run, "tick", 3);
    let printed = run.stdout_so_far();
    kill_restart_and_check(&env, port, &printed, &image);
}

#[test]
fn asynchronous_checkpoint_command_writes_an_image() {
    let env = Env::new("ckpt_async");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_counter");
    let mut run = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap()]));
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 3);
    let out = env.command(["--coord-port", &port.to_string(), "--checkpoint"]);
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let image = wait_for(
        "the image of the asynchronous checkpoint",
        LONG,
        || {
            images(env.dir.path(), "ckpt_counter")
                .into_iter()
                .find(|i| generation(&env, i) >= 1)
        },
        || env.diagnostics(),
    );
    wait_lines(&env, &mut run, "tick", 3);
    let printed = run.stdout_so_far();
    kill_restart_and_check(&env, port, &printed, &image);
}
