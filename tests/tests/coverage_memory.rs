//! Memory and process state over two checkpoint/kill/restart cycles
//! (tests/programs/cov_memory.c checks them on every tick): a sparse 4 GiB reservation, 256 MiB
//! of touched heap, munmap holes, mremap, brk growth after restart, deep recursion growing the
//! stack after restart, read-only and private writable file mappings, libm via dlopen, the
//! environment, cwd, page protections, a JIT page and the vdso clocks.

use dmtcp_tests::Env;
use dmtcp_tests::coverage_support::{
    build, live_checkpoint_kill_restart, run_cycles, s, uncheckpointed,
};

#[test]
fn memory_and_environment_survive_two_restarts() {
    let env = Env::new("cov_memory");
    let prog = build(&env, "cov_memory", &["-ldl"]);
    // The heap checksum printed at the end by a run without checkpoints.
    let plain = uncheckpointed(&env, env.cmd(&prog).arg("3"));
    let want_sum = plain
        .lines()
        .find(|l| l.starts_with("heapsum "))
        .expect("heapsum line")
        .to_string();

    let coord = env.coordinator(&[]);
    let launch = env.launch_joined(coord.port, [s(&prog), "60"]);
    let c = run_cycles(&env, coord.port, launch, "cov_memory", "tick", 5, 2);
    let out = c.finished_stdout(&env);
    assert!(out.contains("tick 60\n"), "{out}");
    assert!(
        out.contains(&format!("{want_sum}\n")),
        "256 MiB heap checksum differs from an uncheckpointed run ({want_sum}):\n{out}"
    );
}

/// The same program checkpointed live (a forked copy writes the 256 MiB heap while the program
/// runs on), killed, and restarted from that image.
#[test]
fn live_checkpoint_of_large_memory_restarts() {
    let env = Env::new("cov_memory_live");
    let prog = build(&env, "cov_memory", &["-ldl"]);
    let coord = env.coordinator(&[]);
    let launch = env.launch_joined(coord.port, [s(&prog), "150"]);
    let out = live_checkpoint_kill_restart(&env, coord.port, launch, "cov_memory", "tick");
    assert!(out.contains("tick 150\nheapsum "), "{out}");
}
