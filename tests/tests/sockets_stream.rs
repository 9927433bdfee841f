//! Sockets between two processes of the computation (tests/programs/sock_stream.c): a server
//! parent and a client child exchange numbered records both ways, each writing faster than
//! the other reads, so data is in flight at every checkpoint. After two checkpoint/kill/restart
//! cycles, and after a checkpoint the program resumes from, every record has arrived exactly
//! once, in order, whole (message boundaries included for seqpacket and datagram sockets).

use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_and_kill, finished_ok, images, launch_in_pid_namespace,
    numbers, wait_lines,
};
use dmtcp_tests::{Env, Spawned};

/// At ~1 ms per record the reader needs several seconds; the writer is done in milliseconds.
const RECORDS: u64 = 4000;

fn restart_all(env: &Env, port: u16, n: usize) -> Spawned {
    let imgs = images(env.dir.path(), "sock_stream");
    assert_eq!(imgs.len(), n, "{imgs:?}");
    let restart = env
        .tool("dmtcp_restart")
        .args(["--join-coordinator", "--coord-port", &port.to_string()])
        .args(&imgs);
    env.spawn(&restart)
}

fn launch(env: &Env, port: u16, mode: &str) -> Spawned {
    let prog = env.program("sock_stream");
    let dir = env.dir.path().display().to_string();
    let cmd = launch_in_pid_namespace(
        env,
        port,
        &format!("{} {mode} {RECORDS} {dir}", prog.display()),
    );
    let run = env.spawn(&cmd);
    env.wait_peers(port, 2, true, LONG);
    run
}

/// The next numbers expected on each progress line after `out`, checked to continue `next`.
fn check(out: &str, next: &mut [(&str, u64)], what: &str) {
    for (prefix, n) in next.iter_mut() {
        let t = numbers(out, prefix);
        if t.is_empty() {
            continue;
        }
        assert_consecutive(&t, *n, &format!("{what} ({prefix})"));
        *n = t.last().unwrap() + 1;
    }
}

fn two_cycles(mode: &str) {
    let env = Env::new(&format!("sock_{mode}"));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let one_way = mode == "dgrampath";
    let mut next = vec![("recv", 1u64)];
    if !one_way {
        next.push(("back", 1));
    }
    let mut run = launch(&env, port, mode);
    wait_lines(&env, &mut run, "recv", 5);
    let out = checkpoint_and_kill(&env, port, run);
    check(&out, &mut next, "before the first checkpoint");

    let mut r = restart_all(&env, port, 2);
    wait_lines(&env, &mut r, "recv", 5);
    let out = checkpoint_and_kill(&env, port, r);
    check(&out, &mut next, "after the first restart");
    // The reader was still far from the end: records were in flight at both checkpoints.
    assert!(
        next[0].1 * 100 + 1000 < RECORDS,
        "the reader went too fast: {out}"
    );

    let out = restart_all(&env, port, 2).wait(LONG * 2);
    assert_eq!(
        out.code(),
        Some(0),
        "{}\n{}",
        out.describe(),
        env.diagnostics()
    );
    let stdout = out.stdout_str();
    check(&stdout, &mut next, "after the second restart");
    for (prefix, n) in &next {
        assert_eq!(
            *n,
            RECORDS / 100 + 1,
            "{prefix} did not reach the end: {stdout}"
        );
    }
    assert!(
        stdout.contains(&format!("child done {RECORDS}\n")) && stdout.ends_with("done\n"),
        "{stdout}"
    );
}

/// A checkpoint the program resumes from: the drained bytes go back where they were.
fn resume(mode: &str) {
    let env = Env::new(&format!("sock_resume_{mode}"));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let mut run = launch(&env, port, mode);
    wait_lines(&env, &mut run, "recv", 5);
    for _ in 0..2 {
        let ok = env.command(["--coord-port", &port.to_string(), "--bcheckpoint"]);
        assert_eq!(
            ok.code(),
            Some(0),
            "{}\n{}",
            ok.describe(),
            env.diagnostics()
        );
    }
    let stdout = finished_ok(&env, run, LONG * 2);
    let mut prefixes = vec!["recv"];
    if mode != "dgrampath" {
        prefixes.push("back");
    }
    for p in prefixes {
        let t = numbers(&stdout, p);
        assert_consecutive(&t, 1, p);
        assert_eq!(t.last(), Some(&(RECORDS / 100)), "{p}: {stdout}");
    }
    assert_eq!(images(env.dir.path(), "sock_stream").len(), 2);
}

#[test]
fn tcp4_survives_two_cycles() {
    two_cycles("tcp4");
}

#[test]
fn tcp4_resumes_after_checkpoint() {
    resume("tcp4");
}

#[test]
fn tcp6_survives_two_cycles() {
    two_cycles("tcp6");
}

#[test]
fn unix_socketpair_survives_two_cycles() {
    two_cycles("unix");
}

#[test]
fn unix_socketpair_resumes_after_checkpoint() {
    resume("unix");
}

#[test]
fn unix_path_stream_survives_two_cycles() {
    two_cycles("unixpath");
}

#[test]
fn seqpacket_keeps_message_boundaries_over_two_cycles() {
    two_cycles("seqpacket");
}

#[test]
fn seqpacket_resumes_after_checkpoint() {
    resume("seqpacket");
}

#[test]
fn datagram_socketpair_survives_two_cycles() {
    two_cycles("dgram");
}

#[test]
fn datagram_to_a_bound_path_survives_two_cycles() {
    two_cycles("dgrampath");
}

#[test]
fn datagram_to_a_bound_path_resumes_after_checkpoint() {
    resume("dgrampath");
}
