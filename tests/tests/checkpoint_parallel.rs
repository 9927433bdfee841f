//! The image writer's compression workers (issue 7): images written by one or several worker
//! processes, compressed, adaptive or raw, restore the same memory; a dead worker fails the
//! checkpoint cleanly and keeps the previous image; `dmtcp_command -bc` reports the phases of
//! the checkpoint in `--json` and draws a progress bar only on a terminal.
//!
//! tests/programs/ckpt_bigmem.c holds MIB MiB of heap-like data and prints its checksum on
//! every tick, so a restart that brings back any byte wrong shows a different sum.

use dmtcp_tests::engine_support::{images, restart, wait_lines};
use dmtcp_tests::{Env, Spawned};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(60);

/// The checksum printed once the memory is filled (`sum X`).
fn first_sum(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("sum "))
        .unwrap_or_else(|| panic!("no sum line in {out}"))
        .to_string()
}

/// The checksums of every `tick N sum X` line.
fn tick_sums(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("tick "))
        .filter_map(|l| l.split_whitespace().nth(3).map(String::from))
        .collect()
}

fn launch_bigmem(env: &Env, port: u16, mib: &str, vars: &[(&str, &str)]) -> Spawned {
    let prog = env.program("ckpt_bigmem");
    let mut cmd = env.launch_joined(port, [prog.to_str().unwrap(), mib]);
    for (k, v) in vars {
        cmd = cmd.env(k, v);
    }
    let mut run = env.spawn(&cmd);
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(env, &mut run, "tick", 2);
    run
}

fn command(env: &Env, port: u16, args: &[&str]) -> dmtcp_tests::Output {
    env.command(["--coord-port", &port.to_string()].iter().chain(args))
}

/// `phases` of a `--json` reply: every phase present and >= 0, some time spent writing, and
/// the phases together no longer than the command took.
fn check_phases(json: &serde_json::Value, wall_ms: f64, env: &Env) {
    let p = &json["phases"];
    let mut sum = 0.0;
    for k in ["suspend_ms", "drain_ms", "write_ms", "sync_ms", "resume_ms"] {
        let v = p[k]
            .as_f64()
            .unwrap_or_else(|| panic!("no {k} in {json}\n{}", env.diagnostics()));
        assert!(v >= 0.0, "{k} = {v} in {json}");
        sum += v;
    }
    assert!(
        p["write_ms"].as_f64().unwrap() > 0.0,
        "no write time: {json}"
    );
    assert!(
        sum <= wall_ms + 1.0,
        "phases add up to {sum} ms, more than the {wall_ms} ms the checkpoint took: {json}"
    );
    let total = p["total_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(
        total <= wall_ms + 1.0,
        "total_ms {total} > {wall_ms}: {json}"
    );
}

/// Checkpoint (forked writer) with these settings, kill, restart: the memory comes back.
/// Returns the image's size.
fn round_trip(name: &str, vars: &[(&str, &str)]) -> u64 {
    let env = Env::new(name);
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let run = launch_bigmem(&env, port, "48", vars);
    let want = first_sum(&run.stdout_so_far());
    let t0 = Instant::now();
    let st = env.command_json(port, &["--bcheckpoint"]);
    let wall_ms = t0.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(
        st.command_status,
        "DMT_COORD_SUCCESS",
        "{:?}\n{}",
        st.json,
        env.diagnostics()
    );
    check_phases(&st.json, wall_ms, &env);
    // The status reply carries the same phases afterwards.
    assert_eq!(env.status(port).json["phases"], st.json["phases"]);
    command(&env, port, &["--kill"]).assert_code(0);
    run.wait(LONG);
    let imgs = images(env.dir.path(), "ckpt_bigmem");
    assert_eq!(imgs.len(), 1, "{imgs:?}\n{}", env.diagnostics());
    let size = std::fs::metadata(&imgs[0]).unwrap().len();
    let mut r = restart(&env, port, &imgs[0]);
    wait_lines(&env, &mut r, "tick", 2);
    let sums = tick_sums(&r.stdout_so_far());
    assert!(
        !sums.is_empty() && sums.iter().all(|s| *s == want),
        "memory differs after the restart ({vars:?}): want {want}, got {sums:?}\n{}",
        env.diagnostics()
    );
    command(&env, port, &["--quit"]);
    size
}

#[test]
fn one_writer_restores_the_same_memory() {
    round_trip(
        "ckpt_par_1",
        &[("DMTCP_CKPT_THREADS", "1"), ("DMTCP_GZIP", "1")],
    );
}

#[test]
fn three_workers_restore_the_same_memory() {
    round_trip(
        "ckpt_par_3",
        &[("DMTCP_CKPT_THREADS", "3"), ("DMTCP_GZIP", "1")],
    );
}

#[test]
fn adaptive_storage_restores_the_same_memory() {
    round_trip(
        "ckpt_par_adaptive",
        &[("DMTCP_CKPT_THREADS", "2"), ("DMTCP_GZIP", "adaptive")],
    );
}

#[test]
fn uncompressed_frames_restore_the_same_memory() {
    round_trip(
        "ckpt_par_raw",
        &[("DMTCP_CKPT_THREADS", "2"), ("DMTCP_GZIP", "0")],
    );
}

/// `DMTCP_ZSTD_LEVEL` reaches the writer (a slower level gives a smaller image of the same
/// memory) and both restore; `DMTCP_CKPT_WRITEBACK=0` (no early writeback) too.
#[test]
fn zstd_levels_restore_the_same_memory() {
    let fast = round_trip("ckpt_par_fast5", &[("DMTCP_ZSTD_LEVEL", "-5")]);
    let slow = round_trip(
        "ckpt_par_level3",
        &[("DMTCP_ZSTD_LEVEL", "3"), ("DMTCP_CKPT_WRITEBACK", "0")],
    );
    assert!(
        fast > slow + slow / 20,
        "level -5 image {fast} bytes, level 3 image {slow} bytes"
    );
}

#[test]
fn a_dead_worker_fails_the_checkpoint_and_keeps_the_previous_image() {
    let env = Env::new("ckpt_par_crash");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    // In generation 2 the worker that takes frame 1 kills itself.
    let mut run = launch_bigmem(
        &env,
        port,
        "32",
        &[
            ("DMTCP_CKPT_THREADS", "2"),
            ("DMTCP_TEST_CKPT_WORKER_CRASH", "2"),
        ],
    );
    let want = first_sum(&run.stdout_so_far());
    command(&env, port, &["--bcheckpoint"]).assert_code(0);
    let imgs = images(env.dir.path(), "ckpt_bigmem");
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    let gen1 = std::fs::read(&imgs[0]).unwrap();

    let out = command(&env, port, &["--bcheckpoint"]);
    assert_eq!(
        out.code(),
        Some(2),
        "generation 2 must fail: {}",
        out.describe()
    );
    assert!(
        out.stderr_str().contains("compression worker"),
        "the failure names the dead worker: {}",
        out.describe()
    );
    assert_eq!(
        std::fs::read(&imgs[0]).unwrap(),
        gen1,
        "the failed checkpoint changed the previous image"
    );
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "partial images left: {leftovers:?}");
    // The program runs on, and the next checkpoint works again.
    let n = tick_sums(&run.stdout_so_far()).len();
    wait_lines(&env, &mut run, "tick", n + 2);
    command(&env, port, &["--bcheckpoint"]).assert_code(0);
    assert_ne!(
        std::fs::read(&imgs[0]).unwrap(),
        gen1,
        "generation 3 was not written"
    );
    command(&env, port, &["--kill"]).assert_code(0);
    run.wait(LONG);
    let mut r = restart(&env, port, &imgs[0]);
    wait_lines(&env, &mut r, "tick", 2);
    let sums = tick_sums(&r.stdout_so_far());
    assert!(
        !sums.is_empty() && sums.iter().all(|s| *s == want),
        "memory differs after the restart: want {want}, got {sums:?}\n{}",
        env.diagnostics()
    );
    command(&env, port, &["--quit"]);
}

#[test]
fn progress_bar_only_on_a_terminal() {
    let env = Env::new("ckpt_par_progress");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    // One compressor and 384 MiB: long enough for the bar's 250 ms polls to see progress.
    let run = launch_bigmem(&env, port, "384", &[("DMTCP_CKPT_THREADS", "1")]);
    let out = command(&env, port, &["--bcheckpoint"]);
    out.assert_code(0);
    assert!(
        !out.stderr_str().contains("dmtcp_command: checkpoint"),
        "a progress bar without a terminal: {}",
        out.describe()
    );
    // `script` gives the command a pseudo-terminal (indicatif also wants a TERM).
    let line = format!(
        "{} --coord-port {port} --bcheckpoint",
        env.tools.path("dmtcp_command").display()
    );
    let t0 = Instant::now();
    let out = env
        .cmd("script")
        .env("TERM", "xterm")
        .args(["-qec", &line, "/dev/null"])
        .run(LONG);
    let took = t0.elapsed();
    out.assert_code(0);
    let text = out.stdout_str();
    if took >= Duration::from_millis(1500) {
        assert!(
            text.contains("dmtcp_command: checkpoint 2 (0/1 images)") && text.contains("MiB"),
            "no progress bar on a terminal during a {took:?} checkpoint: {text:?}"
        );
    } else {
        eprintln!("checkpoint took only {took:?}: too short to require a progress bar");
    }
    command(&env, port, &["--quit"]);
    drop(run);
}
