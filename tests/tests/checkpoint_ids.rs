//! Ids after restart, in both strategies: a computation started in its own user+pid namespace
//! (`DMTCP_PID_NAMESPACE=1`) is restarted in a new namespace with the same pid and tids (clone3
//! `set_tid`); with `--pid-mode=virtual` it gets new ones and the runtime translates. Either
//! way cached ids and glibc's `pthread_kill` keep working (tests/programs/ckpt_ids.c checks
//! both).

use dmtcp_tests::Env;
use dmtcp_tests::both_pid_modes;
use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_and_kill, finished_ok, images, numbers, restart,
    wait_lines,
};
use dmtcp_tests::pid_modes::{PidMode, launch_in_mode};

fn pid_and_tids_come_back(mode: PidMode) {
    let env = Env::new(&format!("ckpt_ids_{}", mode.name()));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_ids");
    let cmd = launch_in_mode(&env, port, mode, &format!("{} 50", prog.display()));
    let mut run = env.spawn(&cmd);
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 5);
    let out = checkpoint_and_kill(&env, port, run);
    let t = numbers(&out, "tick");
    assert_consecutive(&t, 1, "the launched program");
    let last = *t.last().unwrap();
    let pid_line = out.lines().next().unwrap().to_string();
    let img = images(env.dir.path(), "ckpt_ids").pop().expect("an image");

    let r = restart(&env, port, &img);
    let stdout = finished_ok(&env, r, LONG);
    assert_consecutive(&numbers(&stdout, "tick"), last + 1, "after restart");
    // Same pid as printed before the checkpoint.
    let pid = pid_line.split(' ').nth(3).unwrap();
    assert!(stdout.contains(&format!("tick 50 pid {pid}\n")), "{stdout}");
    assert!(stdout.ends_with("done\n"), "{stdout}");
}

// Each case under both id strategies (DESIGN.md §5): `<case>::namespace`, `<case>::virtual_ids`.
both_pid_modes!(pid_and_tids_come_back);
