//! Bad images give one clear line and a non-zero exit, never a panic or a hang: a missing
//! file, a truncated image, a flipped byte in the data, an unfinished `.part`, not an image;
//! and a restart that cannot have the image's memory says why.

use dmtcp_tests::engine_support::{checkpoint_and_kill, images, restart, wait_lines};
use dmtcp_tests::{Env, QUICK};
use std::path::{Path, PathBuf};

fn restart_fails(env: &Env, port: u16, image: &Path, expect: &str) {
    let cmd = env
        .tool("dmtcp_restart")
        .args(["--join-coordinator", "--coord-port", &port.to_string()])
        .arg(image);
    fails_clearly(env, &cmd, expect);
}

fn fails_clearly(env: &Env, cmd: &dmtcp_tests::Cmd, expect: &str) {
    let out = env.run(cmd, QUICK);
    assert_ne!(out.code(), Some(0), "{}", out.describe());
    assert!(
        out.code().is_some(),
        "killed by a signal: {}",
        out.describe()
    );
    out.assert_one_line_error();
    let err = out.stderr_str();
    assert!(err.contains(expect), "expected '{expect}' in: {err}");
    assert!(err.starts_with("dmtcp_restart: "), "{err}");
}

#[test]
fn damaged_or_missing_images_are_refused_clearly() {
    let env = Env::new("ckpt_errors");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_counter");
    let mut run = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap()]));
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 3);
    checkpoint_and_kill(&env, port, run);
    let good = images(env.dir.path(), "ckpt_counter")
        .pop()
        .expect("an image");
    let bytes = std::fs::read(&good).unwrap();
    let write = |name: &str, b: &[u8]| -> PathBuf {
        let p = env.dir.join(name);
        std::fs::write(&p, b).unwrap();
        p
    };

    restart_fails(
        &env,
        port,
        &env.dir.join("ckpt_nothing.dmtcp"),
        "no such file",
    );
    let truncated = write("ckpt_truncated.dmtcp", &bytes[..bytes.len() / 2]);
    restart_fails(&env, port, &truncated, "interrupted");
    let mut flipped = bytes.clone();
    // A byte in the middle of the data frames.
    let i = bytes.len() / 3;
    flipped[i] ^= 0x40;
    let flipped = write("ckpt_flipped.dmtcp", &flipped);
    restart_fails(&env, port, &flipped, "corrupt");
    let part = write("ckpt_unfinished.dmtcp.part", &bytes);
    restart_fails(&env, port, &part, "incomplete");
    let text = write("ckpt_text.dmtcp", b"hello\n");
    restart_fails(&env, port, &text, "not a checkpoint image");

    // None of this disturbed the coordinator: the good image still restarts.
    let st = env.status(port);
    assert_eq!(st.peers(), 0, "{:?}", st.json);
    let mut r = restart(&env, port, &good);
    wait_lines(&env, &mut r, "tick", 2);
}

#[test]
fn a_restart_without_room_for_the_memory_says_why() {
    let env = Env::new("ckpt_errors_room");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("incr_array");
    let mut run = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap(), "160"]));
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 2);
    checkpoint_and_kill(&env, port, run);
    let image = images(env.dir.path(), "incr_array")
        .pop()
        .expect("an image");
    // 160 MiB of memory to restore, 97 MiB of address space allowed.
    let script = format!(
        "ulimit -v 100000 && exec {} --join-coordinator --coord-port {port} {}",
        env.tools.path("dmtcp_restart").display(),
        image.display()
    );
    let cmd = env.cmd("sh").args(["-c", &script]);
    fails_clearly(&env, &cmd, "`ulimit -v`");
}
