//! Several programs launched separately with `dmtcp_launch -j` form one computation: one
//! checkpoint covers all of them, and the generated restart script brings all of them back,
//! each carrying on from its own checkpoint (two cycles).

use dmtcp_tests::engine_support::{LONG, assert_consecutive, images, numbers, wait_lines};
use dmtcp_tests::{Env, Spawned};

const TAGS: [&str; 3] = ["alpha", "beta", "gamma"];

/// `--kcheckpoint`, then everything the killed programs printed.
fn checkpoint_and_kill_all(env: &Env, port: u16, runs: Vec<Spawned>) -> String {
    let out = env.command(["--coord-port", &port.to_string(), "--kcheckpoint"]);
    assert_eq!(
        out.code(),
        Some(0),
        "{}\n{}",
        out.describe(),
        env.diagnostics()
    );
    runs.into_iter()
        .map(|r| r.wait(LONG).stdout_str())
        .collect::<Vec<_>>()
        .join("")
}

#[test]
fn separately_launched_programs_checkpoint_and_restart_together() {
    let env = Env::new("procs_joined");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("procs_tagged");
    let mut runs = Vec::new();
    for tag in TAGS {
        let mut r = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap(), tag, "400"]));
        wait_lines(&env, &mut r, tag, 3);
        runs.push(r);
    }
    env.wait_peers(port, 3, true, LONG);
    let mut out = checkpoint_and_kill_all(&env, port, runs);
    for cycle in 1..=2 {
        let mut last = Vec::new();
        for tag in TAGS {
            let t = numbers(&out, tag);
            assert!(
                !t.is_empty(),
                "{tag} printed nothing before cycle {cycle}:\n{out}"
            );
            last.push(*t.last().unwrap());
        }
        let imgs = images(env.dir.path(), "procs_tagged");
        assert_eq!(imgs.len(), 3, "one image per program: {imgs:?}");
        let script = env.dir.join("dmtcp_restart_script.sh");
        let mut r = env.spawn(&env.cmd("sh").arg(&script));
        env.wait_peers_of(port, 3, &mut r);
        for tag in TAGS {
            wait_lines(&env, &mut r, tag, 3);
        }
        let stdout = checkpoint_and_kill_all(&env, port, vec![r]);
        for (tag, last) in TAGS.iter().zip(&last) {
            assert_consecutive(
                &numbers(&stdout, tag),
                last + 1,
                &format!("{tag}, restart {cycle}"),
            );
        }
        out = stdout;
    }
}
