//! Thread-directed pending signals keep their siginfo (sender, `si_code`, value) through a
//! live checkpoint and two checkpoint/kill/restart cycles, under both pid strategies
//! (tests/programs/sig_thrpending.c): a worker thread blocks three signals that a child
//! process (`tgkill`) and the main thread (`pthread_sigqueue`, twice, with values) sent it at
//! start, and unblocks them only at the end; its handler must see the child's pid (as `fork`
//! gave it: a virtual id where ids are virtual), our own pid, SI_TKILL / SI_QUEUE and the
//! values, in queue order. Before thread-directed signals were saved with their siginfo, a
//! restart raised them again with `tgkill` from the thread itself (sender and value lost).

use dmtcp_tests::Env;
use dmtcp_tests::both_pid_modes;
use dmtcp_tests::engine_support::{Cycles, bcheckpoint, cycles, wait_lines};
use dmtcp_tests::pid_modes::{PidMode, launch_in_mode};

fn thread_signals_keep_their_sender(mode: PidMode) {
    let env = Env::new(&format!("sig_thread_pending_{}", mode.name()));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("sig_thrpending");
    let cmd = launch_in_mode(&env, port, mode, &format!("{} 150", prog.display()));
    let mut run = env.spawn(&cmd);
    env.wait_peers(port, 2, true, dmtcp_tests::engine_support::LONG);
    wait_lines(&env, &mut run, "tick", 3);
    // A checkpoint the program survives: the signals are taken out and queued back at resume.
    bcheckpoint(&env, port);
    let plan = Cycles {
        program: "sig_thrpending",
        images: 2..=2,
        ready: &[("tick", 8)],
        counters: &["tick"],
        restarts: 2,
    };
    let outs = cycles(&env, port, run, &plan);
    let last = outs.last().unwrap();
    for what in [
        "SIGUSR1 from the child",
        "first SIGRTMIN+4 from main",
        "second SIGRTMIN+4 from main",
        "SIGRTMIN+5 from the child",
    ] {
        assert!(last.contains(&format!("kept {what} ok\n")), "{last}");
    }
    assert!(last.ends_with("done\n"), "{last}");
}
both_pid_modes!(thread_signals_keep_their_sender);
