//! IPC between processes over two checkpoint/kill/restart cycles: `MAP_SHARED` mappings of a
//! regular file, of a named POSIX shm segment and of an unlinked one
//! (tests/programs/ipc_shmfile.c), SysV shared memory, semaphores and message queues
//! (tests/programs/ipc_sysv.c), and POSIX message queues (tests/programs/ipc_mq.c). Each
//! program's parent fails as soon as its child's writes stop reaching it or a value differs
//! from what it expects.

use dmtcp_tests::Env;
use dmtcp_tests::both_pid_modes;
use dmtcp_tests::coverage_support::build;
use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, bcheckpoint, checkpoint_and_kill, numbers, wait_lines,
};
use dmtcp_tests::pid_modes::{PidMode, launch_in_mode};
use dmtcp_tests::process::Cmd;

/// Launches `launch` (a computation of `peers` processes); `resumes` times waits for 5 more
/// "tick N" lines and checkpoints it in place; then twice: waits for 5 more ticks, checkpoints
/// with --kcheckpoint and restarts the newest generation. Returns the stdout of the last run,
/// which must end with "done" and continue the ticks by one.
fn family_cycles(env: &Env, port: u16, launch: Cmd, peers: u32, resumes: usize) -> String {
    let mut run = env.spawn(&launch);
    env.wait_peers(port, peers, true, LONG);
    for _ in 0..resumes {
        wait_lines(env, &mut run, "tick", 5);
        bcheckpoint(env, port);
    }
    let mut next = 1;
    for cycle in 0..2 {
        wait_lines(env, &mut run, "tick", 5);
        let t = numbers(&checkpoint_and_kill(env, port, run), "tick");
        assert_consecutive(&t, next, &format!("run {cycle}"));
        next = t.last().unwrap() + 1;
        let restart = env
            .tool("dmtcp_restart")
            .args(["--join-coordinator", "--coord-port", &port.to_string()])
            .arg("--restartdir")
            .arg(env.dir.path());
        run = env.spawn(&restart);
        env.wait_peers(port, peers, true, LONG);
    }
    let out = run.wait(LONG);
    assert_eq!(
        out.code(),
        Some(0),
        "the last restarted run failed: {}\n{}",
        out.describe(),
        env.diagnostics()
    );
    let stdout = out.stdout_str();
    assert_consecutive(&numbers(&stdout, "tick"), next, "the last restarted run");
    assert!(stdout.ends_with("done\n"), "{stdout}");
    stdout
}

/// Builds tests/programs/`program`.c and runs `<program> <ticks> <arg>` in `mode` (a family
/// of `peers` processes) through [`family_cycles`]; the last run must reach tick `ticks`.
/// Returns the test's environment (for what the program left) and that run's output.
fn run_family(
    program: &str,
    mode: PidMode,
    ticks: u32,
    arg: &str,
    peers: u32,
    resumes: usize,
) -> (Env, String) {
    let env = Env::new(&format!("{program}_{}", mode.name()));
    let prog = build(&env, program, &[]);
    let coord = env.coordinator(&[]);
    let args = format!("{} {ticks} {arg}", prog.display());
    let launch = launch_in_mode(&env, coord.port, mode, &args);
    let out = family_cycles(&env, coord.port, launch, peers, resumes);
    assert!(out.contains(&format!("tick {ticks}\n")), "{out}");
    (env, out)
}

/// Names of this test run's own (POSIX shm and mq names are system-wide).
fn unique_suffix(mode: PidMode) -> String {
    format!("{}_{}", std::process::id(), mode.name())
}

/// A SysV key of this test run's own: other tests may run SysV programs in the same IPC
/// namespace. The programs also use key + 1; `salt` (a multiple of 0x20) keeps programs apart,
/// and the two modes differ by 0x10.
fn sysv_key(mode: PidMode, salt: u32) -> u32 {
    let mode_salt = if mode == PidMode::Namespace { 0 } else { 0x10 };
    0x4000_0000 | (std::process::id() & 0xffff) << 8 | salt | mode_salt
}

fn shared_file_and_posix_shm_stay_shared(mode: PidMode) {
    let suffix = unique_suffix(mode);
    let (env, _) = run_family("ipc_shmfile", mode, 150, &suffix, 2, 0);
    let disk = std::fs::read(env.dir.join("ipc_shared.dat")).unwrap();
    assert_eq!(disk.len(), 4096);
    // The stop flag the parent wrote through its mapping reached the file.
    assert_eq!(i32::from_ne_bytes(disk[8..12].try_into().unwrap()), 1);
    assert!(
        !std::path::Path::new(&format!("/dev/shm/ipc_shmfile_{suffix}")).exists(),
        "the program's shm_unlink at the end did not reach /dev/shm"
    );
}
both_pid_modes!(shared_file_and_posix_shm_stay_shared);

fn sysv_shm_semaphores_and_queues_survive_two_restarts(mode: PidMode) {
    run_family(
        "ipc_sysv",
        mode,
        150,
        &sysv_key(mode, 0x20).to_string(),
        2,
        0,
    );
}
both_pid_modes!(sysv_shm_semaphores_and_queues_survive_two_restarts);

/// POSIX message queues (tests/programs/ipc_mq.c): a queue's attributes and its queued
/// messages with their priorities and order, and two queues a parent and its child talk
/// through (ping/pong), with the `mqd_t` values they hold.
fn posix_message_queues_keep_messages_and_stay_shared(mode: PidMode) {
    run_family("ipc_mq", mode, 150, &unique_suffix(mode), 2, 0);
}
both_pid_modes!(posix_message_queues_keep_messages_and_stay_shared);

/// SysV semaphore undo adjustments (tests/programs/ipc_semundo.c): two holders keep
/// adjustments through two restarts (a lock taken, a count added, a blocked `SEM_UNDO` wait,
/// one cleared by `SETVAL`, none inherited through `fork`), the values stay exact, and when
/// the holders exit after the last restart the kernel undoes exactly what they held: the
/// parent then takes the lock without blocking.
fn sysv_semaphore_undo_survives_two_restarts(mode: PidMode) {
    run_family(
        "ipc_semundo",
        mode,
        100,
        &sysv_key(mode, 0x40).to_string(),
        3,
        0,
    );
}
both_pid_modes!(sysv_semaphore_undo_survives_two_restarts);

/// `mq_notify` registrations (tests/programs/ipc_mqnotify.c): `SIGEV_SIGNAL` and
/// `SIGEV_THREAD` registrations made before a checkpoint fire after the restart with their
/// values (and `SI_MESGQ`), round after round over two checkpoints the program survives in
/// place and two restarts; a registration on a queue that is never empty never fires (the
/// checkpoint's drain and refill must not trigger it) and still fires at the end once the
/// queue was emptied.
fn mq_notify_registrations_survive_two_restarts(mode: PidMode) {
    run_family("ipc_mqnotify", mode, 150, &unique_suffix(mode), 2, 2);
}
both_pid_modes!(mq_notify_registrations_survive_two_restarts);
