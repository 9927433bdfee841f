//! Process and thread ids keep their pre-checkpoint values after restart, in both strategies
//! of DESIGN.md §5 (`--pid-mode=namespace`: exact ids in a new pid namespace;
//! `--pid-mode=virtual`: new real ids, translated by the runtime's wrappers).
//!
//! tests/programs/ids_check.c (a parent, its child and a worker thread) checks by itself, at
//! every tick, getpid/getppid/gettid and their `syscall` forms, kill() of the child by its
//! old pid (answered by the child with kill(getppid())), tgkill() of the worker by its old
//! tid, waitpid(child, WNOHANG), readlink("/proc/self") and `/proc/<pid>/...` and
//! `/proc/<pid>/task/<tid>/...` paths by the old ids; at the end it kills and reaps its child
//! by the old pid. The test runs two checkpoint/kill/restart cycles; the restart takes the
//! mode from the images (recorded at launch), and the kernel's pid the program reads from
//! `/proc/self/stat` shows which strategy ran.

use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, checkpoint_after, checkpoint_and_kill, images, numbers, wait_lines,
};
use dmtcp_tests::pid_modes::{PidMode, launch_tree};
use dmtcp_tests::{Cmd, Env, Spawned};

const TICKS: u64 = 300;

fn restart_both(env: &Env, port: u16) -> Spawned {
    let imgs = images(env.dir.path(), "ids_check");
    assert_eq!(imgs.len(), 2, "{imgs:?}");
    let restart = env
        .tool("dmtcp_restart")
        .args(["--join-coordinator", "--coord-port", &port.to_string()])
        .args(&imgs);
    let r = env.spawn(&restart);
    env.wait_peers(port, 2, true, LONG);
    r
}

/// The kernel pids the parent printed ("tick N real R").
fn real_pids(out: &str) -> Vec<i64> {
    out.lines()
        .filter(|l| l.starts_with("tick "))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

fn ids_survive_two_restarts(mode: PidMode) {
    let env = Env::new(&format!("ids_{}", mode.name()));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ids_check");
    let run = launch_tree(&env, port, mode, &format!("{} {TICKS}", prog.display()), 2);
    let (out, t) = checkpoint_after(&env, port, run, "tick", 5);
    let start = out
        .lines()
        .find(|l| l.starts_with("start pid "))
        .expect("a start line");
    let pid0: i64 = start.split(' ').nth(2).unwrap().parse().unwrap();
    assert!(real_pids(&out).iter().all(|&p| p == pid0), "{out}");
    let mut next = t.last().unwrap() + 1;

    for cycle in 1..=2 {
        let mut r = restart_both(&env, port);
        let out = if cycle == 1 {
            wait_lines(&env, &mut r, "tick", 5);
            checkpoint_and_kill(&env, port, r)
        } else {
            let o = r.wait(LONG * 2);
            assert_eq!(o.code(), Some(0), "{}\n{}", o.describe(), env.diagnostics());
            o.stdout_str()
        };
        let t = numbers(&out, "tick");
        assert_consecutive(&t, next, &format!("after restart {cycle}"));
        next = t.last().unwrap() + 1;
        let real = real_pids(&out);
        match mode {
            PidMode::Namespace => assert!(real.iter().all(|&p| p == pid0), "{out}"),
            // The kernel gave a new pid; the program's checks passed through the
            // translation.
            PidMode::Virtual => assert!(real.iter().all(|&p| p != pid0), "{out}"),
        }
        if cycle == 2 {
            assert_eq!(next, TICKS + 1, "{out}");
            assert!(out.ends_with("done\n"), "{out}");
        }
    }
}

dmtcp_tests::both_pid_modes!(ids_survive_two_restarts);

/// `sh -c "<script>"` in a fresh user+pid namespace whose next pid is `last_pid + 1` (the
/// shell keeps the namespace's capabilities, so it may set `ns_last_pid`; the user stays the
/// same, as the coordinator requires).
fn numbered_namespace(env: &Env, last_pid: u32, script: &str) -> Cmd {
    env.cmd("unshare")
        .args([
            "--user",
            "--map-current-user",
            "--keep-caps",
            "--pid",
            "--fork",
            "--mount-proc",
            "sh",
            "-c",
        ])
        .arg(format!(
            "echo {last_pid} > /proc/sys/kernel/ns_last_pid && {script}; exit $?"
        ))
}

/// Virtual ids where every number is taken: the computation is launched in a namespace
/// numbering from 101, and restarted (virtual mode) in another one numbering from 31, so the
/// restored tasks' real ids are other tasks' virtual ids, and the 120 children the program
/// forks after the restart walk through real pids 101..: each of those is a virtual pid in
/// use, which `fork` must skip (the program checks each child's pid against its known ids,
/// its getpid() against fork's answer, and reaps it by that pid). The children are made by
/// fork, vfork, clone and posix_spawn in turn; the first of each kind is aimed at the
/// program's own virtual pid through `ns_last_pid` (the restarted program keeps the
/// namespace's capabilities), so each wrapper must throw a taken pid away.
#[test]
fn virtual_ids_survive_a_crowded_restart() {
    let env = Env::new("ids_crowded");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ids_check");
    let launch = numbered_namespace(
        &env,
        100,
        &format!(
            "{} --join-coordinator --coord-port {port} --pid-mode=virtual {} 200 burst",
            env.tools.path("dmtcp_launch").display(),
            prog.display()
        ),
    );
    let run = env.spawn(&launch);
    env.wait_peers(port, 2, true, LONG);
    let (out, t) = checkpoint_after(&env, port, run, "tick", 5);
    assert!(out.contains("start pid 101 "), "{out}");

    let imgs = images(env.dir.path(), "ids_check");
    assert_eq!(imgs.len(), 2, "{imgs:?}");
    let paths: Vec<String> = imgs.iter().map(|p| p.display().to_string()).collect();
    let restart = numbered_namespace(
        &env,
        30,
        &format!(
            "{} --join-coordinator --coord-port {port} {}",
            env.tools.path("dmtcp_restart").display(),
            paths.join(" ")
        ),
    );
    let o = env.spawn(&restart).wait(LONG * 2);
    let stdout = o.stdout_str();
    assert_eq!(o.code(), Some(0), "{}\n{}", o.describe(), env.diagnostics());
    assert_consecutive(
        &numbers(&stdout, "tick"),
        t.last().unwrap() + 1,
        "after the restart",
    );
    assert!(real_pids(&stdout).iter().all(|&p| p < 101), "{stdout}");
    assert!(
        stdout.contains("burst 120 targeted 4\n") && stdout.ends_with("done\n"),
        "{stdout}"
    );
}

/// The mode can change from one restart to the next: launched with `DMTCP_PID_NAMESPACE=0`
/// (the older spelling of virtual ids, recorded in the images), restarted with new real ids,
/// then restarted with `dmtcp_restart --pid-mode=namespace`, which recreates every process
/// and thread at its virtual id (the program's checks pass each time; its session leader is
/// outside the computation and outside the second restart's namespace, so it is not checked).
#[test]
fn virtual_then_namespace_restart() {
    let env = Env::new("ids_switch");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ids_check");
    let launch = env
        .tool("dmtcp_launch")
        .args(["--join-coordinator", "--coord-port", &port.to_string()])
        .arg(&prog)
        .args([&TICKS.to_string(), "nosession"])
        .env("DMTCP_PID_NAMESPACE", "0");
    let mut run = env.spawn(&launch);
    env.wait_peers(port, 2, true, LONG);
    wait_lines(&env, &mut run, "tick", 5);
    let out = checkpoint_and_kill(&env, port, run);
    let start = out
        .lines()
        .find(|l| l.starts_with("start pid "))
        .expect("a start line");
    let pid0: i64 = start.split(' ').nth(2).unwrap().parse().unwrap();
    let mut next = numbers(&out, "tick").last().unwrap() + 1;

    let mut r = restart_both(&env, port);
    wait_lines(&env, &mut r, "tick", 5);
    let out = checkpoint_and_kill(&env, port, r);
    let t = numbers(&out, "tick");
    assert_consecutive(&t, next, "after the virtual restart");
    assert!(real_pids(&out).iter().all(|&p| p != pid0), "{out}");
    next = t.last().unwrap() + 1;

    let imgs = images(env.dir.path(), "ids_check");
    let restart = env
        .tool("dmtcp_restart")
        .args(["--join-coordinator", "--coord-port", &port.to_string()])
        .arg("--pid-mode=namespace")
        .args(&imgs);
    let o = env.spawn(&restart).wait(LONG * 2);
    assert_eq!(o.code(), Some(0), "{}\n{}", o.describe(), env.diagnostics());
    let out = o.stdout_str();
    assert_consecutive(&numbers(&out, "tick"), next, "after the namespace restart");
    assert!(real_pids(&out).iter().all(|&p| p == pid0), "{out}");
    assert!(out.ends_with("done\n"), "{out}");
}
