//! Lazy restart (`dmtcp_restart --lazy`): the program's large mapping comes back page by page
//! from a pager process (userfaultfd). The program (tests/programs/restart_lazy.c) verifies
//! its whole memory against the pattern it wrote, discards a range after restart (which must
//! then read as zeros, not as the saved bytes), and writes everything at the end. If the pager
//! dies before all memory is loaded, the restored program must be killed with a message, never
//! run on with missing pages.

use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_and_kill, images, numbers, wait_lines,
};
use dmtcp_tests::{Env, Spawned, wait_for};
use std::path::Path;
use std::time::Duration;

/// Launches `restart_lazy <mb> <limit> <tick_ms>`, checkpoints it after a few ticks and kills
/// it; returns the image and the last tick before the checkpoint.
fn checkpointed(
    env: &Env,
    port: u16,
    mb: &str,
    limit: &str,
    tick_ms: &str,
) -> (std::path::PathBuf, u64) {
    let prog = env.program("restart_lazy");
    let mut run = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap(), mb, limit, tick_ms]));
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(env, &mut run, "tick", 3);
    let out = checkpoint_and_kill(env, port, run);
    let t = numbers(&out, "tick");
    assert_consecutive(&t, 1, "the launched program");
    let img = images(env.dir.path(), "restart_lazy")
        .pop()
        .expect("an image");
    (img, *t.last().unwrap())
}

fn restart_lazily(env: &Env, port: u16, image: &Path, extra_env: &[(&str, &str)]) -> Spawned {
    // The program discards part of its memory once it sees this file (after the restart).
    std::fs::write(env.dir.path().join("restarted"), b"").unwrap();
    let mut cmd = env
        .tool("dmtcp_restart")
        .args([
            "--lazy",
            "--join-coordinator",
            "--coord-port",
            &port.to_string(),
        ])
        .arg(image);
    for (k, v) in extra_env {
        cmd = cmd.env(k, v);
    }
    let mut r = env.spawn(&cmd);
    env.wait_peers_of(port, 1, &mut r);
    r
}

/// This test's processes whose command name is `name`.
fn processes_named(env: &Env, name: &str) -> Vec<i32> {
    env.own_processes()
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .collect()
}

/// `text` without ANSI colour sequences (the debug log colours its fields).
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The start-up timeline (`restart: <step> elapsed_ms=<ms>` debug lines) names every step of
/// a lazy restart once, in order, with times that never go back.
fn check_timeline(stderr: &str) {
    let steps: Vec<(String, f64)> = plain(stderr)
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find("restart: ")? + "restart: ".len()..];
            let (step, ms) = rest.rsplit_once(" elapsed_ms=")?;
            Some((step.to_string(), ms.trim().parse().ok()?))
        })
        .collect();
    let names: Vec<&str> = steps.iter().map(|(s, _)| s.as_str()).collect();
    let want = [
        "images checked",
        "coordinator found or started",
        "pid mode chosen (namespace entered in namespace mode)",
        "process forked",
        "memory staged",
        "pager started",
        "restorer loaded",
        "joined the coordinator",
        "entering the restorer",
    ];
    assert_eq!(names, want, "timeline:\n{stderr}");
    for w in steps.windows(2) {
        assert!(w[0].1 <= w[1].1, "time went back: {w:?}\n{stderr}");
    }
    assert!(steps[0].1 >= 0.0 && steps[8].1 < 60_000.0, "{steps:?}");
}

#[test]
fn lazy_restart_brings_back_every_byte() {
    let env = Env::new("restart_lazy");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let (img, last) = checkpointed(&env, port, "96", "40", "20");

    // With the debug log, dmtcp_restart prints its start-up timeline.
    let r = restart_lazily(&env, port, &img, &[("DMTCP_LOG", "debug")]);
    let out = r.wait(LONG);
    let stderr = out.stderr_str();
    check_timeline(&stderr);
    assert_eq!(
        out.code(),
        Some(0),
        "{}\n{}",
        out.describe(),
        env.diagnostics()
    );
    assert!(
        !stderr.contains("lazy restart is not possible"),
        "the restart fell back to a full load: {stderr}"
    );
    let stdout = out.stdout_str();
    let t = numbers(&stdout, "tick");
    assert_consecutive(&t, last + 1, "after restart");
    assert_eq!(t.last(), Some(&40));
    assert!(stdout.contains("discarded\n"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("done ")), "{stdout}");
    // The pager and its watcher end once everything is loaded.
    wait_for(
        "the pager and watcher to exit",
        Duration::from_secs(10),
        || {
            (processes_named(&env, "dmtcp_pager").is_empty()
                && processes_named(&env, "dmtcp_watcher").is_empty())
            .then_some(())
        },
        || env.diagnostics(),
    );
}

#[test]
fn a_dead_pager_kills_the_restored_program_with_a_message() {
    let env = Env::new("restart_lazy_kill");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let (img, _) = checkpointed(&env, port, "96", "400", "50");

    // A slow pager (one 4 MiB frame per 200 ms in the background): killed mid-way.
    let r = restart_lazily(&env, port, &img, &[("DMTCP_PAGER_THROTTLE_MS", "200")]);
    let before = numbers(&r.stdout_so_far(), "tick").len();
    wait_for(
        "a tick after the restart",
        LONG,
        || (numbers(&r.stdout_so_far(), "tick").len() > before).then_some(()),
        || env.diagnostics(),
    );
    let pagers = processes_named(&env, "dmtcp_pager");
    let all: Vec<String> = env
        .own_processes()
        .iter()
        .map(|p| {
            format!(
                "{p}:{}",
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .unwrap_or_default()
                    .trim()
            )
        })
        .collect();
    assert_eq!(
        pagers.len(),
        1,
        "one pager: {all:?}\n{}\n{}",
        r.stderr_so_far(),
        env.diagnostics()
    );
    // SAFETY: kill() of the pager this test's restart started.
    unsafe { libc::kill(pagers[0], libc::SIGKILL) };

    let out = r.wait(LONG);
    let stdout = out.stdout_str();
    assert!(
        !stdout.lines().any(|l| l.starts_with("done ")),
        "the program finished without its pager: {stdout}"
    );
    // numbers() fails on a CORRUPT line: a missing page must never read as zeros.
    numbers(&stdout, "tick");
    assert!(
        out.signal() == Some(libc::SIGKILL) || out.code() == Some(128 + libc::SIGKILL),
        "{}",
        out.describe()
    );
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("lazy-restart pager") && stderr.contains("killed by signal 9"),
        "no clear message: {stderr}"
    );
}

/// A checkpoint taken while a lazy restart is still loading memory waits for the load: pages
/// not loaded yet are missing from the page tables and must not be saved as holes. The
/// program verifies every byte after the next (eager) restart.
#[test]
fn a_checkpoint_during_a_lazy_load_saves_every_byte() {
    let env = Env::new("restart_lazy_ckpt");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let (img, _) = checkpointed(&env, port, "96", "80", "50");

    // A slow pager (one 4 MiB frame per 100 ms): the checkpoint comes long before it is done.
    let r = restart_lazily(&env, port, &img, &[("DMTCP_PAGER_THROTTLE_MS", "100")]);
    assert_eq!(
        processes_named(&env, "dmtcp_pager").len(),
        1,
        "the pager is still loading\n{}",
        env.diagnostics()
    );
    let out = checkpoint_and_kill(&env, port, r);
    let last = *numbers(&out, "tick").last().unwrap();
    let img = images(env.dir.path(), "restart_lazy")
        .pop()
        .expect("an image");
    let r = dmtcp_tests::engine_support::restart(&env, port, &img);
    let out = r.wait(LONG);
    let stdout = out.stdout_str();
    // numbers() fails on a CORRUPT line: a page saved as a hole reads as zeros.
    assert_consecutive(
        &numbers(&stdout, "tick"),
        last + 1,
        "after the eager restart",
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("done ")),
        "{}",
        out.describe()
    );
}
