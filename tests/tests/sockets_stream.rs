//! Sockets between two processes of the computation (tests/programs/sock_stream.c): a server
//! parent and a client child exchange numbered records both ways, each writing faster than
//! the other reads, so data is in flight at every checkpoint. After two checkpoint/kill/restart
//! cycles, and after a checkpoint the program resumes from, every record has arrived exactly
//! once, in order, whole (message boundaries included for seqpacket and datagram sockets).

use dmtcp_tests::engine_support::{
    Cycles, LONG, assert_consecutive, bcheckpoint, cycles, finished_ok, images, numbers, wait_lines,
};
use dmtcp_tests::pid_modes::{PidMode, launch_tree};
use dmtcp_tests::{Env, Spawned};

/// At ~1 ms per record the reader needs several seconds; the writer is done in milliseconds.
const RECORDS: u64 = 4000;

/// The server and its client, with exact ids.
fn launch(env: &Env, port: u16, mode: &str) -> Spawned {
    let prog = env.program("sock_stream");
    let dir = env.dir.path().display().to_string();
    let args = format!("{} {mode} {RECORDS} {dir}", prog.display());
    launch_tree(env, port, PidMode::Namespace, &args, 2)
}

fn two_cycles(mode: &str) {
    let env = Env::new(&format!("sock_{mode}"));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let plan = Cycles {
        program: "sock_stream",
        images: 2..=2,
        ready: &[("recv", 5)],
        counters: &["recv"],
        restarts: 2,
    };
    let outs = cycles(&env, port, launch(&env, port, mode), &plan);
    let recv = |out: &str| *numbers(out, "recv").last().unwrap();
    // The reader was still far from the end: records were in flight at both checkpoints.
    assert!(
        (recv(&outs[1]) + 1) * 100 + 1000 < RECORDS,
        "the reader went too fast: {}",
        outs[1]
    );
    assert_eq!(recv(&outs[2]), RECORDS / 100, "recv did not reach the end");
    // The other direction; a run may have printed none of its lines.
    if mode != "dgrampath" {
        let mut next = 1;
        for (cycle, out) in outs.iter().enumerate() {
            let t = numbers(out, "back");
            if !t.is_empty() {
                assert_consecutive(&t, next, &format!("back after restart {cycle}"));
                next = t.last().unwrap() + 1;
            }
        }
        assert_eq!(
            next,
            RECORDS / 100 + 1,
            "back did not reach the end: {}",
            outs[2]
        );
    }
    assert!(
        outs[2].contains(&format!("child done {RECORDS}\n")) && outs[2].ends_with("done\n"),
        "{}",
        outs[2]
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
        bcheckpoint(&env, port);
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
