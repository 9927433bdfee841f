//! Children made every way a program makes them — `posix_spawn` with a custom environment,
//! `vfork` + `execl`, `popen`, `system` — are members of the computation, are checkpointed with
//! their parent and come back as its children, over two checkpoint/kill/restart cycles
//! (tests/programs/procs_spawn.c checks parentage, the popen pipe's sequence and `system`'s
//! status itself; the test checks every sequence carries on and the final reaping).

use dmtcp_tests::Env;
use dmtcp_tests::engine_support::{
    Cycles, assert_consecutive, checkpoint_and_kill, cycles, images, numbers, restart_images,
    wait_lines,
};
use dmtcp_tests::pid_modes::{PidMode, launch_in_mode};

fn spawned_vforked_and_popen_children_come_back_with_their_parent(mode: PidMode) {
    let env = Env::new(&format!("procs_spawn_{}", mode.name()));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("procs_spawn");
    let cmd = launch_in_mode(&env, port, mode, &format!("{} 120", prog.display()));
    let plan = Cycles {
        program: "procs_spawn",
        // The parent, its three long-lived children, and perhaps a `system` shell caught
        // mid-way.
        images: 4..=5,
        ready: &[("tick", 15), ("spawn", 15)],
        // The program checks parentage, the popen pipe's sequence and `system`'s status
        // itself; every child's sequence carries on.
        counters: &["tick", "spawn", "vfork"],
        restarts: 2,
    };
    let outs = cycles(&env, port, env.spawn(&cmd), &plan);
    assert!(
        outs[2].contains("\ntick 120 ") && outs[2].ends_with("done\n"),
        "{}",
        outs[2]
    );
}

/// `execl`, `execle` (with an environment of its own) and `execlp` keep the process's
/// identity: one member from launch to the end, checkpointed and restarted after the last exec.
#[test]
fn list_form_execs_keep_the_identity() {
    let env = Env::new("procs_execl");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("procs_execl");
    // Under a shell that stays a member (virtual pid 40000), the program is the second member
    // (41000); had it lost its identity at an exec it would rejoin as a third (42000).
    let script = format!("{} & wait", prog.display());
    let mut run = env.spawn(&env.launch_joined(port, ["sh", "-c", &script]));
    wait_lines(&env, &mut run, "count", 5);
    let list = env.command(["--coord-port", &port.to_string(), "--list"]);
    let members: Vec<&str> = list
        .stdout_str()
        .leak()
        .lines()
        .filter(|l| l.contains("procs_execl["))
        .collect();
    assert_eq!(members.len(), 1, "{}", list.describe());
    assert!(members[0].contains("[41000:"), "{members:?}");
    let out = checkpoint_and_kill(&env, port, run);
    for stage in 1..=4 {
        assert!(out.contains(&format!("stage {stage} pid ")), "{out}");
    }
    let last = *numbers(&out, "count").last().unwrap();
    let mut imgs = images(env.dir.path(), "procs_execl");
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    imgs.extend(images(env.dir.path(), "sh"));
    let mut r = restart_images(&env, port, &imgs);
    wait_lines(&env, &mut r, "count", 5);
    let out = checkpoint_and_kill(&env, port, r);
    assert_consecutive(&numbers(&out, "count"), last + 1, "after restart");
}

/// Children that ended but were not reaped at checkpoint time are still there to reap after
/// a restart, with their exit status or signal, and no extra SIGCHLD reaches the program
/// (tests/programs/procs_zombie.c checks all of it; two cycles). Both id strategies: with
/// virtual ids the recreated children have new pids that the program's table learns.
fn unreaped_children_are_still_reapable_after_restart(mode: PidMode) {
    let env = Env::new(&format!("procs_zombie_{}", mode.name()));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("procs_zombie");
    let run =
        env.spawn(&env.launch_joined(port, [mode.flag().as_str(), prog.to_str().unwrap(), "80"]));
    let plan = Cycles {
        program: "procs_zombie",
        images: 1..=1,
        ready: &[("tick", 5)],
        counters: &["tick"],
        restarts: 2,
    };
    let outs = cycles(&env, port, run, &plan);
    assert!(outs[2].ends_with("reaped\ndone\n"), "{}", outs[2]);
}

dmtcp_tests::both_pid_modes!(unreaped_children_are_still_reapable_after_restart);
dmtcp_tests::both_pid_modes!(spawned_vforked_and_popen_children_come_back_with_their_parent);
