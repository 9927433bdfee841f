//! Children made every way a program makes them — `posix_spawn` with a custom environment,
//! `vfork` + `execl`, `popen`, `system` — are members of the computation, are checkpointed with
//! their parent and come back as its children, over two checkpoint/kill/restart cycles
//! (tests/programs/procs_spawn.c checks parentage, the popen pipe's sequence and `system`'s
//! status itself; the test checks every sequence carries on and the final reaping).

use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_and_kill, images, numbers, wait_lines,
};
use dmtcp_tests::pid_modes::{PidMode, launch_in_mode};
use dmtcp_tests::{Env, Spawned};

const KINDS: [&str; 3] = ["tick", "spawn", "vfork"];

/// The last number of each kind of line in `out`, after checking each sequence continues
/// from `from` (the previous cycle's last numbers).
fn check_sequences(out: &str, from: Option<[u64; 3]>, what: &str) -> [u64; 3] {
    let mut last = [0; 3];
    for (i, kind) in KINDS.iter().enumerate() {
        let t = numbers(out, kind);
        let first = from.map_or(1, |f| f[i] + 1);
        assert_consecutive(&t, first, &format!("{what}: {kind}"));
        last[i] = *t.last().unwrap();
    }
    last
}

fn restart_all(env: &Env, port: u16, cycle: u32) -> Spawned {
    let imgs = images(env.dir.path(), "procs_spawn");
    // The parent, its three long-lived children, and perhaps a `system` shell caught mid-way.
    assert!(imgs.len() >= 4, "{imgs:?}\n{}", env.diagnostics());
    // The next checkpoint writes beside them; keep each cycle's images apart.
    let dir = env.dir.join(format!("cycle{cycle}"));
    std::fs::create_dir(&dir).unwrap();
    let moved: Vec<_> = imgs
        .iter()
        .map(|i| {
            let to = dir.join(i.file_name().unwrap());
            std::fs::rename(i, &to).unwrap();
            to
        })
        .collect();
    let restart = env
        .tool("dmtcp_restart")
        .args(["--join-coordinator", "--coord-port", &port.to_string()])
        .args(&moved);
    env.spawn(&restart)
}

fn spawned_vforked_and_popen_children_come_back_with_their_parent(mode: PidMode) {
    let env = Env::new(&format!("procs_spawn_{}", mode.name()));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("procs_spawn");
    let cmd = launch_in_mode(&env, port, mode, &format!("{} 120", prog.display()));
    let mut run = env.spawn(&cmd);
    wait_lines(&env, &mut run, "tick", 15);
    wait_lines(&env, &mut run, "spawn", 15);
    let out = checkpoint_and_kill(&env, port, run);
    let mut last = check_sequences(&out, None, "launched");

    for cycle in 1..=2 {
        let mut r = restart_all(&env, port, cycle);
        if cycle == 1 {
            wait_lines(&env, &mut r, "tick", 15);
            let out = checkpoint_and_kill(&env, port, r);
            last = check_sequences(&out, Some(last), "restart 1");
        } else {
            let out = r.wait(LONG * 2);
            assert_eq!(
                out.code(),
                Some(0),
                "{}\n{}",
                out.describe(),
                env.diagnostics()
            );
            let stdout = out.stdout_str();
            check_sequences(&stdout, Some(last), "restart 2");
            assert!(
                stdout.contains("\ntick 120 ") && stdout.ends_with("done\n"),
                "{stdout}"
            );
        }
    }
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
    let restart = env
        .tool("dmtcp_restart")
        .args(["--join-coordinator", "--coord-port", &port.to_string()])
        .args(&imgs);
    let mut r = env.spawn(&restart);
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
    let mut run =
        env.spawn(&env.launch_joined(port, [mode.flag().as_str(), prog.to_str().unwrap(), "80"]));
    wait_lines(&env, &mut run, "tick", 5);
    let out = checkpoint_and_kill(&env, port, run);
    let mut last = *numbers(&out, "tick").last().unwrap();
    for cycle in 1..=2 {
        let imgs = images(env.dir.path(), "procs_zombie");
        assert_eq!(imgs.len(), 1, "{imgs:?}");
        let dir = env.dir.join(format!("cycle{cycle}"));
        std::fs::create_dir(&dir).unwrap();
        let img = dir.join(imgs[0].file_name().unwrap());
        std::fs::rename(&imgs[0], &img).unwrap();
        let mut r = dmtcp_tests::engine_support::restart(&env, port, &img);
        if cycle == 1 {
            wait_lines(&env, &mut r, "tick", 5);
            let out = checkpoint_and_kill(&env, port, r);
            let t = numbers(&out, "tick");
            assert_consecutive(&t, last + 1, "after restart 1");
            last = *t.last().unwrap();
        } else {
            let out = r.wait(LONG);
            let stdout = out.stdout_str();
            assert_consecutive(&numbers(&stdout, "tick"), last + 1, "after restart 2");
            assert!(stdout.ends_with("reaped\ndone\n"), "{}", out.describe());
        }
    }
}

dmtcp_tests::both_pid_modes!(unreaped_children_are_still_reapable_after_restart);
dmtcp_tests::both_pid_modes!(spawned_vforked_and_popen_children_come_back_with_their_parent);
