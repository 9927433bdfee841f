//! Incremental checkpoints end to end (`dmtcp_launch --incremental`): a program whose array
//! changes by 5 % between checkpoints writes small generations after the first, restarts
//! from the chain with every byte back (tests/programs/incr_array.c checks its whole array on
//! every tick), prunes old generations without breaking the newest, and a deleted parent image
//! stops the restart with a message naming it before anything runs.

use dmtcp_tests::Env;
use dmtcp_tests::engine_support::{
    assert_consecutive, checkpoint_and_kill, images, numbers, restart, wait_lines,
};
use std::path::{Path, PathBuf};

const PROG: &str = "incr_array";

fn size(p: &Path) -> u64 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .len()
}

/// `<image>.g<k>` chain files beside `image`, by generation.
fn chain(image: &Path) -> Vec<u64> {
    let prefix = format!("{}.g", image.file_name().unwrap().to_string_lossy());
    let mut v: Vec<u64> = std::fs::read_dir(image.parent().unwrap())
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            n.strip_prefix(&prefix)?.parse().ok()
        })
        .collect();
    v.sort();
    v
}

fn link(image: &Path, generation: u64) -> PathBuf {
    image.with_file_name(format!(
        "{}.g{generation}",
        image.file_name().unwrap().to_string_lossy()
    ))
}

/// The ticks of `out` continue from `last` (a restart from an older state would repeat
/// ticks); returns the new last tick.
fn continues(out: &str, last: u64) -> u64 {
    let t = numbers(out, "tick");
    assert_consecutive(&t, last + 1, "after the restart");
    *t.last().unwrap()
}

/// The cold-part checksums the program printed (one value while it runs correctly).
fn sums(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_once(" sum ").map(|(_, s)| s.to_string()))
        .collect();
    v.dedup();
    v
}

#[test]
fn generations_store_only_changes_restart_through_the_chain_and_prune() {
    let env = Env::new("incremental_chain");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let p = port.to_string();
    let prog = env.program(PROG);
    let launch = env.launch_joined(
        port,
        [
            "--incremental",
            "--full-every",
            "3",
            prog.to_str().unwrap(),
            "128",
        ],
    );
    let mut run = env.spawn(&launch);
    env.wait_peers_of(port, 1, &mut run);
    let mut ticks = 3;
    wait_lines(&env, &mut run, "tick", ticks);
    // Generations 1 and 2 with the program running on, 3 with --kcheckpoint.
    for _ in 0..2 {
        let out = env.command(["--coord-port", &p, "--bcheckpoint"]);
        assert_eq!(
            out.code(),
            Some(0),
            "{}\n{}",
            out.describe(),
            env.diagnostics()
        );
        ticks += 3;
        wait_lines(&env, &mut run, "tick", ticks);
    }
    let out = checkpoint_and_kill(&env, port, run);
    let mut last = *numbers(&out, "tick").last().unwrap();
    let before = sums(&out);
    assert_eq!(before.len(), 1, "{out}");
    let imgs = images(env.dir.path(), PROG);
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    let img = &imgs[0];
    assert_eq!(chain(img), vec![1, 2], "{}", env.diagnostics());
    let full = size(&link(img, 1));
    assert!(
        full > 128 << 20,
        "generation 1 is a full image: {full} bytes"
    );
    for (what, bytes) in [("2", size(&link(img, 2))), ("3", size(img))] {
        assert!(
            bytes * 10 < full,
            "generation {what} holds {bytes} bytes, not under 10 % of the full {full}"
        );
    }
    let inspect = env
        .tool("dmtcp_inspect")
        .arg(img)
        .arg("--verify")
        .run(dmtcp_tests::QUICK);
    assert_eq!(inspect.code(), Some(0), "{}", inspect.describe());
    let text = inspect.stdout_str();
    assert!(text.contains("chain     incremental:"), "{text}");
    assert!(text.contains(".g1"), "{text}");

    // Restart from generation 3: the program checks every byte on its next tick.
    let mut r = restart(&env, port, img);
    wait_lines(&env, &mut r, "tick", 3);
    // Generation 4 is full again (--full-every 3), 5 refers to it only: 1-3 are pruned.
    let out = env.command(["--coord-port", &p, "--bcheckpoint"]);
    assert_eq!(
        out.code(),
        Some(0),
        "{}\n{}",
        out.describe(),
        env.diagnostics()
    );
    wait_lines(&env, &mut r, "tick", 6);
    let out = checkpoint_and_kill(&env, port, r);
    last = continues(&out, last);
    assert_eq!(sums(&out), before, "the array came back different");
    assert_eq!(chain(img), vec![4], "{}", env.diagnostics());
    assert!(size(&link(img, 4)) > 128 << 20, "generation 4 is full");
    assert!(size(img) * 10 < full, "generation 5 is small");

    let mut r = restart(&env, port, img);
    wait_lines(&env, &mut r, "tick", 3);
    let out = checkpoint_and_kill(&env, port, r);
    continues(&out, last);
    assert_eq!(sums(&out), before, "the array came back different");

    // Generation 6 needs 5 and 4: without 4, restart stops before starting anything.
    std::fs::remove_file(link(img, 4)).unwrap();
    let out = env
        .tool("dmtcp_restart")
        .args(["--join-coordinator", "--coord-port", &p])
        .arg(img)
        .run(dmtcp_tests::QUICK);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    let err = out.stderr_str();
    assert!(
        err.contains(&format!(
            "parent image {} (generation 4) is missing",
            link(img, 4).display()
        )),
        "{err}"
    );
    assert_eq!(
        env.status(port).num_peers.unwrap_or(0),
        0,
        "nothing may be running"
    );
}

#[test]
fn soft_dirty_bits_skip_unchanged_frames_and_restart_exactly() {
    let env = Env::new("incremental_soft_dirty");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let p = port.to_string();
    let prog = env.program(PROG);
    let launch = env
        .launch_joined(port, ["--incremental", prog.to_str().unwrap(), "64"])
        .env("DMTCP_SOFT_DIRTY", "1")
        .env("DMTCP_LOG", "debug");
    let mut run = env.spawn(&launch);
    env.wait_peers_of(port, 1, &mut run);
    let mut ticks = 3;
    wait_lines(&env, &mut run, "tick", ticks);
    for _ in 0..2 {
        let out = env.command(["--coord-port", &p, "--bcheckpoint"]);
        assert_eq!(
            out.code(),
            Some(0),
            "{}\n{}",
            out.describe(),
            env.diagnostics()
        );
        ticks += 3;
        wait_lines(&env, &mut run, "tick", ticks);
    }
    let log = run.stderr_so_far();
    let out = checkpoint_and_kill(&env, port, run);
    let last = *numbers(&out, "tick").last().unwrap();
    let before = sums(&out);
    // Generation 2 was written by a forked child whose bits were cleared at generation 1.
    let unread: Vec<u64> = log
        .lines()
        .filter_map(|l| {
            l.split(" bytes, ")
                .nth(1)?
                .split(" unread)")
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(
        unread.len(),
        2,
        "one debug line per incremental image:\n{log}"
    );
    // Kernels without CONFIG_MEM_SOFT_DIRTY never set the bit: then nothing may be skipped.
    if log.contains("soft-dirty bits are not tracked") {
        assert!(unread.iter().all(|&n| n == 0), "{unread:?}\n{log}");
    } else {
        assert!(
            unread.iter().any(|&n| n >= 40),
            "no frame skipped: {unread:?}\n{log}"
        );
    }
    let img = &images(env.dir.path(), PROG)[0];
    let full = size(&link(img, 1));
    assert!(size(&link(img, 2)) * 10 < full && size(img) * 10 < full);
    let mut r = restart(&env, port, img);
    wait_lines(&env, &mut r, "tick", 3);
    let out = checkpoint_and_kill(&env, port, r);
    continues(&out, last);
    assert_eq!(sums(&out), before, "the array came back different");
}
