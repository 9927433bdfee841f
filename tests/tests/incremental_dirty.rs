//! Dirty tracking for incremental checkpoints (`DMTCP_DIRTY_TRACKING=uffd`, the default):
//! frames the userfaultfd write-protection says were not written become references without
//! being read. tests/programs/incr_dirty.c changes known pages between checkpoints in every
//! way tracking must see (stores, read(2) into the page, a region mapped after the first
//! checkpoint, a region moved by mremap, a forked child's memory) and
//! checks every byte of its memory before each step, so a restart from an image that missed
//! a write prints CORRUPT. A run whose tracker forgets the writes shows that check catches it.

use dmtcp_tests::engine_support::{
    assert_consecutive, bcheckpoint, images, numbers, restart_images, wait_lines,
};
use dmtcp_tests::{Env, Spawned};
use std::path::Path;

const PROG: &str = "incr_dirty";

/// `(source, unread frames)` of each "incremental image (<source>): ..." debug line.
fn image_lines(log: &str) -> Vec<(String, u64)> {
    log.lines()
        .filter_map(|l| {
            let rest = l.split("incremental image (").nth(1)?;
            let (source, rest) = rest.split_once("): ")?;
            let unread = rest.split(" bytes, ").nth(1)?.split(" unread)").next()?;
            Some((source.to_string(), unread.parse().ok()?))
        })
        .collect()
}

/// `--kcheckpoint` (written in-process: hashed) and the killed run's stdout and stderr.
fn checkpoint_and_kill(env: &Env, port: u16, run: Spawned) -> (String, String) {
    let out = env.command(["--coord-port", &port.to_string(), "--kcheckpoint"]);
    assert_eq!(
        out.code(),
        Some(0),
        "{}\n{}",
        out.describe(),
        env.diagnostics()
    );
    let o = run.wait(dmtcp_tests::LONG);
    (o.stdout_str(), o.stderr_str())
}

/// Waits until both processes printed `n` more steps than `base` (`tick` and `ctick`).
fn wait_steps(env: &Env, run: &mut Spawned, n: usize) {
    wait_lines(env, run, "tick", n);
    wait_lines(env, run, "ctick", n);
}

fn no_corruption(out: &str, err: &str) {
    assert!(
        !out.contains("CORRUPT") && !out.contains("ERROR"),
        "{out}\n--- stderr ---\n{err}"
    );
}

fn restart_all(env: &Env, port: u16) -> Spawned {
    let imgs = images(env.dir.path(), PROG);
    assert_eq!(imgs.len(), 2, "{imgs:?}\n{}", env.diagnostics());
    let mut r = restart_images(env, port, &imgs);
    env.wait_peers_of(port, 2, &mut r);
    r
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Kills the run's processes (after a `--bcheckpoint`: the restart must take images written
/// by forked, tracked writers, not by the in-process writer of `--kcheckpoint`).
fn kill(run: Spawned) -> (String, String) {
    run.signal_group(libc::SIGKILL);
    let o = run.wait(dmtcp_tests::LONG);
    (o.stdout_str(), o.stderr_str())
}

fn tracking_supported(err: &str) -> bool {
    let off = err.contains("no asynchronous userfaultfd") || err.contains("PAGEMAP_SCAN is not");
    if off {
        eprintln!("this kernel cannot track writes: every frame was hashed");
    }
    !off
}

/// The unread frames of the tracked images in `lines` (the first image of each process is
/// full, the first after a restart hashed).
fn tracked(lines: &[(String, u64)]) -> Vec<u64> {
    lines
        .iter()
        .filter(|(s, _)| s == "uffd-wp")
        .map(|l| l.1)
        .collect()
}

#[test]
fn uffd_tracking_sees_every_write_through_two_restarts() {
    let env = Env::new("incremental_dirty");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program(PROG);
    let launch = env
        .launch_joined(port, ["--incremental", prog.to_str().unwrap(), "fork"])
        .env("DMTCP_DIRTY_TRACKING", "uffd")
        .env("DMTCP_LOG", "debug");
    let mut run = env.spawn(&launch);
    env.wait_peers_of(port, 2, &mut run);
    // Generation 1 (full) before step 8 (a region is mapped) and step 10 (one is moved),
    // generation 2 after both, 3 three steps later (most frames unwritten).
    wait_steps(&env, &mut run, 3);
    bcheckpoint(&env, port);
    wait_steps(&env, &mut run, 13);
    bcheckpoint(&env, port);
    wait_steps(&env, &mut run, 16);
    bcheckpoint(&env, port);
    let (out, err) = kill(run);
    no_corruption(&out, &err);
    let lines = image_lines(&err);
    assert_eq!(
        lines.len(),
        6,
        "three images of two processes: {lines:?}\n{err}"
    );
    if tracking_supported(&err) {
        let t = tracked(&lines);
        assert_eq!(
            t.len(),
            4,
            "generations 2 and 3 are tracked: {lines:?}\n{err}"
        );
        assert!(
            t.iter().filter(|&&n| n >= 15).count() >= 2,
            "generation 3 reads only the few written frames: {lines:?}\n{err}"
        );
    }
    let last = *numbers(&out, "tick").last().unwrap();

    // Restart from generation 3: both processes check every byte before their next step.
    // Generation 4 (hashed: the restored pages carry no protection) re-arms the tracker,
    // generation 5 is tracked again; a second restart from 5 checks every byte once more.
    let mut r = restart_all(&env, port);
    wait_steps(&env, &mut r, 3);
    bcheckpoint(&env, port);
    wait_steps(&env, &mut r, 6);
    bcheckpoint(&env, port);
    let (out, err) = kill(r);
    no_corruption(&out, &err);
    let t = numbers(&out, "tick");
    assert_consecutive(&t, t[0], "tick");
    assert!(t[0] > 16 && t[0] <= last + 1, "{t:?} after {last}");
    let lines = image_lines(&err);
    assert_eq!(lines.len(), 4, "{lines:?}\n{err}");
    assert_eq!(
        lines.iter().filter(|(s, _)| s == "hashed").count(),
        2,
        "the first generation after a restart is hashed: {lines:?}"
    );
    if tracking_supported(&err) {
        assert_eq!(
            tracked(&lines).len(),
            2,
            "generation 5 is tracked: {lines:?}\n{err}"
        );
    }
    let mut r = restart_all(&env, port);
    wait_steps(&env, &mut r, 3);
    let (out, err) = kill(r);
    no_corruption(&out, &err);
    let c = numbers(&out, "ctick");
    assert_consecutive(&c, c[0], "ctick");
}

#[test]
fn a_tracker_that_misses_writes_is_caught() {
    let env = Env::new("incremental_dirty_miss");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program(PROG);
    let launch = env
        .launch_joined(port, ["--incremental", prog.to_str().unwrap()])
        .env("DMTCP_DIRTY_TRACKING", "uffd")
        .env("DMTCP_TEST_DIRTY_DROP", "16")
        .env("DMTCP_LOG", "debug");
    let mut run = env.spawn(&launch);
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 3);
    bcheckpoint(&env, port);
    wait_lines(&env, &mut run, "tick", 9);
    bcheckpoint(&env, port);
    let (out, err) = kill(run);
    no_corruption(&out, &err);
    if !tracking_supported(&err) {
        return;
    }
    let imgs = images(env.dir.path(), PROG);
    let r = restart_images(&env, port, &imgs);
    let o = r.wait(dmtcp_tests::LONG);
    let out = o.stdout_str();
    assert!(
        out.contains("CORRUPT tick region array"),
        "the writes the tracker dropped must show: {}\n{}",
        o.describe(),
        env.diagnostics()
    );
}

#[test]
fn unchanged_frames_of_a_5_percent_change_are_not_read() {
    let env = Env::new("incremental_dirty_bytes");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("incr_array");
    let launch = env
        .launch_joined(port, ["--incremental", prog.to_str().unwrap(), "128"])
        .env("DMTCP_LOG", "debug");
    let mut run = env.spawn(&launch);
    env.wait_peers_of(port, 1, &mut run);
    let mut ticks = 3;
    wait_lines(&env, &mut run, "tick", ticks);
    for _ in 0..2 {
        bcheckpoint(&env, port);
        ticks += 3;
        wait_lines(&env, &mut run, "tick", ticks);
    }
    let (out, err) = checkpoint_and_kill(&env, port, run);
    assert!(!out.contains("CORRUPT"), "{out}");
    // Generation 1 is full, 2 tracked (forked writer), 3 hashed (in-process, --kcheckpoint).
    let lines = image_lines(&err);
    assert_eq!(lines.len(), 3, "{lines:?}\n{err}");
    if tracking_supported(&err) {
        // 128 frames of array, 7 of them hot (the first 5 %): the cold ones are not read.
        let t = tracked(&lines);
        assert!(t.len() == 1 && t[0] >= 115, "{lines:?}");
    }
    let img = &images(env.dir.path(), "incr_array")[0];
    let g1 = img.with_file_name(format!("{}.g1", img.file_name().unwrap().to_string_lossy()));
    let full = size(&g1);
    assert!(full > 128 << 20, "{full}");
    assert!(size(img) * 10 < full, "{} of {full}", size(img));
    let imgs = images(env.dir.path(), "incr_array");
    let mut r = restart_images(&env, port, &imgs);
    env.wait_peers_of(port, 1, &mut r);
    wait_lines(&env, &mut r, "tick", 2);
    let (out, _) = checkpoint_and_kill(&env, port, r);
    assert!(!out.contains("CORRUPT"), "{out}");
}
