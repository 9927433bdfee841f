//! A process tree: parent and child are checkpointed together and restarted by one
//! `dmtcp_restart` as parent and child again, with their pids (exact in a pid namespace, or virtual), session and
//! process group; the parent can still wait for and reap its child
//! (tests/programs/ckpt_family.c).

use dmtcp_tests::Env;
use dmtcp_tests::both_pid_modes;
use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_after, finished_ok, images, numbers,
};
use dmtcp_tests::pid_modes::{PidMode, launch_tree};

fn parent_and_child_come_back_as_a_family(mode: PidMode) {
    let env = Env::new(&format!("ckpt_family_{}", mode.name()));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_family");
    let run = launch_tree(&env, port, mode, &format!("{} 60", prog.display()), 2);
    let (out, t) = checkpoint_after(&env, port, run, "tick", 5);
    let last = *t.last().unwrap();
    let last_child = *numbers(&out, "child").last().unwrap();
    let imgs = images(env.dir.path(), "ckpt_family");
    assert_eq!(imgs.len(), 2, "{imgs:?}");

    let restart = env
        .tool("dmtcp_restart")
        .args(["--join-coordinator", "--coord-port", &port.to_string()])
        .args(&imgs);
    let r = env.spawn(&restart);
    let stdout = finished_ok(&env, r, LONG);
    assert_consecutive(&numbers(&stdout, "tick"), last + 1, "the restarted parent");
    assert_consecutive(
        &numbers(&stdout, "child"),
        last_child + 1,
        "the restarted child",
    );
    // "done" comes after the parent killed and reaped its (restored) child.
    assert!(
        stdout.contains("\ntick 60\n") && stdout.ends_with("done\n"),
        "{stdout}"
    );
}

// Each case under both id strategies (DESIGN.md §5): `<case>::namespace`, `<case>::virtual_ids`.
both_pid_modes!(parent_and_child_come_back_as_a_family);
