//! The first promise of the engine: a program checkpointed, killed and restarted continues
//! exactly where it stopped, cycle after cycle (tests/programs/ckpt_counter.c checks its own
//! heap and stack against its counter on every tick).

use dmtcp_tests::{Env, Spawned, wait_for};
use std::path::PathBuf;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// The tick numbers printed so far; fails on a line that reports corruption.
fn ticks(out: &str) -> Vec<u64> {
    out.lines()
        .map(|l| {
            assert!(!l.starts_with("CORRUPT"), "the program saw corrupt memory: {l}");
            l
        })
        .filter_map(|l| l.strip_prefix("tick ")?.split(' ').next()?.parse().ok())
        .collect()
}

fn assert_consecutive(t: &[u64], first: u64, what: &str) {
    assert!(!t.is_empty(), "{what}: no output");
    assert_eq!(t[0], first, "{what}: does not continue from the checkpoint: {t:?}");
    for w in t.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{what}: sequence broken: {t:?}");
    }
}

fn wait_ticks(env: &Env, prog: &mut Spawned, n: usize) {
    wait_for(
        &format!("{n} ticks from {}", prog.name),
        LONG,
        || {
            if let Some(st) = prog.try_status() {
                panic!("{} exited with {st:?}\n{}", prog.name, env.diagnostics());
            }
            (ticks(&prog.stdout_so_far()).len() >= n).then_some(())
        },
        || env.diagnostics(),
    );
}

fn images(env: &Env) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("ckpt_ckpt_counter") && n.ends_with(".dmtcp")
        })
        .collect();
    v.sort();
    v
}

/// `dmtcp_command -kc`: checkpoint, then the computation is killed. Returns the last tick the
/// program printed, which the restart must continue from.
fn checkpoint_and_kill(env: &Env, port: u16, prog: Spawned) -> u64 {
    let out = env.command(["--coord-port", &port.to_string(), "--kcheckpoint"]);
    assert_eq!(out.code(), Some(0), "checkpoint failed: {}\n{}", out.describe(), env.diagnostics());
    let done = prog.wait(LONG);
    let t = ticks(&done.stdout_str());
    *t.last().expect("the program printed ticks")
}

#[test]
fn counter_continues_exactly_over_two_restarts() {
    let env = Env::new("ckpt_counter");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_counter");
    let mut run = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap()]));
    env.wait_peers_of(port, 1, &mut run);
    wait_ticks(&env, &mut run, 5);
    let t0 = ticks(&run.stdout_so_far());
    assert_consecutive(&t0, 1, "the launched program");
    let mut last = checkpoint_and_kill(&env, port, run);
    let imgs = images(&env);
    assert_eq!(imgs.len(), 1, "one image expected: {imgs:?}\n{}", env.diagnostics());

    for cycle in 1..=2 {
        let restart = env.tool("dmtcp_restart").args(["--join-coordinator", "--coord-port", &port.to_string()]).arg(&imgs[0]);
        let mut r = env.spawn(&restart);
        env.wait_peers_of(port, 1, &mut r);
        wait_ticks(&env, &mut r, 5);
        assert_consecutive(&ticks(&r.stdout_so_far()), last + 1, &format!("restart {cycle}"));
        let before = last;
        last = checkpoint_and_kill(&env, port, r);
        assert!(last > before + 4, "restart {cycle} did not run on");
    }
}
