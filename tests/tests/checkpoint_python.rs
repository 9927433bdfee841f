//! An interpreter: a Python loop (tests/programs/ckpt_loop.py) keeps a dict and a running
//! SHA-256; after restart it must continue and end with the hash of an uninterrupted run.

use dmtcp_tests::Env;
use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_and_kill, finished_ok, images, numbers, restart,
    wait_lines,
};

/// The digest prefix ckpt_loop.py prints after `n` iterations, computed here independently.
fn expected_digest(n: u64) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import hashlib\nh=hashlib.sha256()\nfor n in range(1,{}): h.update((str(n)*3).encode())\nprint(h.hexdigest()[:16])",
            n + 1
        ))
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn python_loop_continues_after_restart() {
    let env = Env::new("ckpt_python");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let script = env.dir.join("ckpt_loop.py");
    std::fs::copy(
        dmtcp_tests::programs::source_dir().join("ckpt_loop.py"),
        &script,
    )
    .unwrap();
    let mut run = env.spawn(&env.launch_joined(port, ["python3", script.to_str().unwrap(), "80"]));
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 5);
    let t = numbers(&checkpoint_and_kill(&env, port, run), "tick");
    assert_consecutive(&t, 1, "the launched interpreter");
    let last = *t.last().unwrap();
    let img = images(env.dir.path(), "python3").pop().expect("an image");

    let r = restart(&env, port, &img);
    let stdout = finished_ok(&env, r, LONG);
    assert_consecutive(&numbers(&stdout, "tick"), last + 1, "after restart");
    let want = format!("tick 80 {}\ndone\n", expected_digest(80));
    assert!(
        stdout.ends_with(&want),
        "expected to end with {want:?}:\n{stdout}"
    );
}
