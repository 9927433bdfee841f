//! Locks held across checkpoints keep their owner, in both id strategies (DESIGN.md §5).
//!
//! glibc records the owner of error-checking, recursive, robust and PI mutexes and the writer
//! of a rwlock as the kernel tid; a virtual-mode restart gives every thread a new one, and the
//! runtime rewrites stale owners (runtime/preload/src/vids/lock_owner.rs). The program
//! (tests/programs/ids_locks.c) holds such locks in three threads nearly all the time, checks
//! at each iteration that glibc sees each thread as the owner, releases and relocks them, and
//! a fourth thread waits inside pthread_mutex_lock through the checkpoints. Two
//! checkpoint/kill/restart cycles; the work's checksum must match the expected one.

use dmtcp_tests::Env;
use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_after, checkpoint_and_kill, images, numbers, wait_lines,
};
use dmtcp_tests::pid_modes::{PidMode, launch_tree};

const ITER: u64 = 100;

fn locks_survive_two_restarts(mode: PidMode) {
    let env = Env::new(&format!("ids_locks_{}", mode.name()));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ids_locks");
    let run = launch_tree(&env, port, mode, &format!("{} {ITER}", prog.display()), 1);
    let (_, t) = checkpoint_after(&env, port, run, "tick", 5);
    let mut next = t.last().unwrap() + 1;

    for cycle in 1..=2 {
        let imgs = images(env.dir.path(), "ids_locks");
        assert_eq!(imgs.len(), 1, "{imgs:?}");
        let restart = env
            .tool("dmtcp_restart")
            .args(["--join-coordinator", "--coord-port", &port.to_string()])
            .args(&imgs);
        let mut r = env.spawn(&restart);
        let out = if cycle == 1 {
            env.wait_peers(port, 1, true, LONG);
            wait_lines(&env, &mut r, "tick", 5);
            checkpoint_and_kill(&env, port, r)
        } else {
            let o = r.wait(LONG * 2);
            assert_eq!(o.code(), Some(0), "{}\n{}", o.describe(), env.diagnostics());
            o.stdout_str()
        };
        // numbers() fails on a "FAIL ..." line: an unlock refused, a relock not detected.
        let t = numbers(&out, "tick");
        assert_consecutive(&t, next, &format!("after restart {cycle}"));
        next = t.last().unwrap() + 1;
        if cycle == 2 {
            assert_eq!(next, ITER + 1, "{out}");
            let per_worker = ITER * (ITER + 1) / 2 * 31;
            let expected = 3 * per_worker + ITER * 3;
            assert!(
                out.contains(&format!("checksum {expected} expected {expected}\n")),
                "{out}"
            );
            let waiter: u64 = out
                .lines()
                .find_map(|l| l.strip_prefix("waiter "))
                .and_then(|n| n.parse().ok())
                .expect("a waiter line");
            assert!(waiter > 0, "the waiter never got its mutex: {out}");
            assert!(out.ends_with("done\n"), "{out}");
        }
    }
}

dmtcp_tests::both_pid_modes!(locks_survive_two_restarts);
