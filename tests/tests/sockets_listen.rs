//! Listeners, socket options and peers outside the computation.
//!
//! - tests/programs/sock_listen.c: an IPv6 listener held by a parent and the child serving it
//!   (one socket in two processes), a kept connection with both ends in the parent, and a new
//!   connection to the listener's port every round. After each restart the listener is back on
//!   its port in both processes, and every option of the kept connection and the listener is
//!   as it was (the program prints them every round).
//! - tests/programs/sock_external.c: a client of a server the test runs itself, outside the
//!   computation. A checkpoint the program resumes from leaves the connection untouched; after
//!   a restart the socket reports a reset (docs/sockets.md), and the program reconnects.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use dmtcp_tests::Env;
use dmtcp_tests::engine_support::{
    Cycles, LONG, assert_consecutive, bcheckpoint, checkpoint_and_kill, cycles, finished_ok,
    images, launch_in_pid_namespace, numbers, restart_images, wait_lines,
};
use dmtcp_tests::pid_modes::{PidMode, launch_tree};

/// A program forking one child, launched with exact ids; waits for both processes.
fn launch_pair(env: &Env, port: u16, program_and_args: &str) -> dmtcp_tests::Spawned {
    launch_tree(env, port, PidMode::Namespace, program_and_args, 2)
}

/// The option part of the "ping N ..." lines; all equal.
fn options(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("ping "))
        .map(|l| l.splitn(3, ' ').nth(2).unwrap_or_default().to_string())
        .collect()
}

const ROUNDS: u64 = 400;

#[test]
fn listener_and_options_survive_two_cycles() {
    let env = Env::new("sock_listen");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("sock_listen");
    let run = launch_pair(&env, port, &format!("{} {ROUNDS}", prog.display()));
    let plan = Cycles {
        program: "sock_listen",
        images: 2..=2,
        ready: &[("ping", 5)],
        counters: &["ping"],
        restarts: 2,
    };
    let outs = cycles(&env, port, run, &plan);
    let want = options(&outs[0])[0].clone();
    assert!(
        want.contains("keepalive=1")
            && want.contains("nodelay=1")
            && want.contains("linger=1/5")
            && want.contains("nonblock=1")
            && want.contains("v6only=1")
            && want.contains("reuseaddr=1")
            && want.contains("listening=1"),
        "{want}"
    );
    for (cycle, out) in outs.iter().enumerate() {
        for o in options(out) {
            assert_eq!(o, want, "options after restart {cycle}");
        }
    }
    assert_eq!(numbers(&outs[2], "ping").last(), Some(&ROUNDS));
    assert!(outs[2].ends_with("done\n"), "{}", outs[2]);
}

#[test]
fn listener_and_options_survive_a_resumed_checkpoint() {
    let env = Env::new("sock_listen_resume");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("sock_listen");
    let mut run = launch_pair(&env, port, &format!("{} 150", prog.display()));
    wait_lines(&env, &mut run, "ping", 5);
    bcheckpoint(&env, port);
    let stdout = finished_ok(&env, run, LONG * 2);
    assert_consecutive(&numbers(&stdout, "ping"), 1, "ping");
    let opts = options(&stdout);
    assert_eq!(opts.len(), 150);
    assert!(opts.iter().all(|o| *o == opts[0]), "{stdout}");
}

/// A line-based echo server outside the computation ("ping N" -> "pong N"), one thread per
/// connection; returns its port.
fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            std::thread::spawn(move || {
                let mut w = c.try_clone().unwrap();
                for line in BufReader::new(c).lines() {
                    let Ok(line) = line else { return };
                    let n = line.strip_prefix("ping ").unwrap_or("?");
                    if writeln!(w, "pong {n}").is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn external_peer_is_untouched_at_resume_and_reset_at_restart() {
    let env = Env::new("sock_external");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let server = echo_server();
    let prog = env.program("sock_external");
    let cmd = launch_in_pid_namespace(&env, port, &format!("{} {server} 150", prog.display()));
    let mut run = env.spawn(&cmd);
    env.wait_peers(port, 1, true, LONG);
    wait_lines(&env, &mut run, "pong", 5);
    bcheckpoint(&env, port);
    let seen = numbers(&run.stdout_so_far(), "pong").len();
    wait_lines(&env, &mut run, "pong", seen + 10);
    let out = checkpoint_and_kill(&env, port, run);
    assert!(
        !out.contains("lost"),
        "resume touched the connection: {out}"
    );
    let t = numbers(&out, "pong");
    assert_consecutive(&t, 1, "before the restart");

    let imgs = images(env.dir.path(), "sock_external");
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    let stdout = finished_ok(&env, restart_images(&env, port, &imgs), LONG * 2);
    // A reply already queued at the checkpoint is still read first, then the reset.
    let lost = stdout.lines().position(|l| l.starts_with("lost"));
    assert!(matches!(lost, Some(0 | 1)), "{stdout}");
    assert!(
        stdout.contains("lost Connection reset by peer\n"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("lost").count(), 1, "{stdout}");
    assert_consecutive(
        &numbers(&stdout, "pong"),
        t.last().unwrap() + 1,
        "after the restart",
    );
    assert!(stdout.ends_with("pong 150\ndone\n"), "{stdout}");
}

/// tests/programs/sock_backlog.c: three connections with bytes in flight wait un-accepted in
/// a listener's backlog at both checkpoints; the listener accepts them only afterwards.
#[test]
fn backlog_connections_survive_two_cycles() {
    let env = Env::new("sock_backlog");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("sock_backlog");
    let run = launch_pair(&env, port, &format!("{} 60", prog.display()));
    let plan = Cycles {
        program: "sock_backlog",
        images: 2..=2,
        ready: &[("tick", 5)],
        counters: &["tick"],
        restarts: 2,
    };
    let outs = cycles(&env, port, run, &plan);
    assert!(outs[0].contains("child sent\n"), "{}", outs[0]);
    assert!(
        numbers(&outs[1], "tick").last().unwrap() + 1 < 55,
        "the listener accepted before the second checkpoint: {}",
        outs[1]
    );
    for c in 0..3 {
        assert!(outs[2].contains(&format!("child ok {c}\n")), "{}", outs[2]);
    }
    assert!(outs[2].ends_with("done\n"), "{}", outs[2]);
}

#[test]
fn backlog_connections_survive_a_resumed_checkpoint() {
    let env = Env::new("sock_backlog_resume");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("sock_backlog");
    let mut run = launch_pair(&env, port, &format!("{} 30", prog.display()));
    wait_lines(&env, &mut run, "tick", 5);
    bcheckpoint(&env, port);
    let stdout = finished_ok(&env, run, LONG * 2);
    assert_consecutive(&numbers(&stdout, "tick"), 1, "ticks");
    for c in 0..3 {
        assert!(stdout.contains(&format!("child ok {c}\n")), "{stdout}");
    }
    assert!(stdout.ends_with("done\n"), "{stdout}");
}

/// tests/programs/sock_orphan.c: a child wrote records into a socket to its parent and
/// exited before the checkpoints; the parent reads them only afterwards. The peer is gone
/// (outside the computation), so the socket comes back as a stand-in that still delivers the
/// unread bytes, then end-of-file.
fn orphan_bytes_survive_two_cycles(mode: &str) {
    let env = Env::new(&format!("sock_orphan_{mode}"));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("sock_orphan");
    let cmd = launch_in_pid_namespace(&env, port, &format!("{} {mode} 40", prog.display()));
    let mut run = env.spawn(&cmd);
    wait_lines(&env, &mut run, "tick", 5);
    // The child has exited: one process is checkpointed.
    env.wait_peers(port, 1, true, LONG);
    let plan = Cycles {
        program: "sock_orphan",
        images: 1..=1,
        ready: &[("tick", 5)],
        counters: &["tick"],
        restarts: 2,
    };
    let outs = cycles(&env, port, run, &plan);
    assert!(outs[2].ends_with("got 500\ndone\n"), "{}", outs[2]);
}

#[test]
fn unread_bytes_of_an_exited_unix_peer_survive_two_cycles() {
    orphan_bytes_survive_two_cycles("unix");
}

#[test]
fn unread_bytes_of_an_exited_tcp_peer_survive_two_cycles() {
    orphan_bytes_survive_two_cycles("tcp");
}
