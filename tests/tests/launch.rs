//! `dmtcp_launch` and the coordinator together: membership, the embedded default coordinator,
//! the options that choose a coordinator, and the error paths.

use dmtcp_tests::env::{DefaultPortLock, port_is_free};
use dmtcp_tests::{Env, QUICK, TestUser, wait_for};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `touch <dir>/<name>` as the harness (the programs only test for existence).
fn touch(env: &Env, name: &str) {
    std::fs::write(env.dir.join(name), b"").unwrap();
}

#[test]
fn a_shell_and_its_two_children_are_three_peers() {
    let env = Env::new("three_peers");
    let coord = env.coordinator(&[]);
    let waitfile = env.program("waitfile");
    let script = format!("{w} stop & {w} stop & wait", w = waitfile.display());
    let mut prog = env.spawn(&env.launch_joined(coord.port, ["bash", "-c", &script]));
    let st = env.wait_peers_of(coord.port, 3, &mut prog);
    assert_eq!(st.num_peers, Some(3));
    // The computation runs as the unprivileged test user, not as the runner.
    let status = std::fs::read_to_string(format!("/proc/{}/status", prog.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uids: Vec<u32> = uid_line
        .split_whitespace()
        .skip(1)
        .map(|u| u.parse().unwrap())
        .collect();
    assert!(
        uids.iter().all(|&u| u == env.user.uid),
        "{uid_line} vs {}",
        env.user.uid
    );
    let list = env.command_json(coord.port, &["--list"]);
    let workers = list.workers.unwrap_or_default();
    assert_eq!(
        workers.matches("WorkerState::RUNNING").count(),
        3,
        "{workers}"
    );
    assert!(workers.contains("bash["), "{workers}");
    assert_eq!(workers.matches("waitfile[").count(), 2, "{workers}");
    touch(&env, "stop");
    let out = prog.wait(LONG);
    out.assert_code(0);
    env.wait_peers(coord.port, 0, false, LONG);
}

#[test]
fn embedded_default_coordinator_serves_and_exits_with_the_program() {
    let _lock = DefaultPortLock::acquire();
    let env = Env::new("embedded_default");
    let default_free = port_is_free(7779);
    let waitfile = env.program("waitfile");
    let mut prog = env.spawn(&env.launch([waitfile.to_str().unwrap(), "stop"]));
    // `dmtcp_command -s` with no port finds it: on 7779, or through the user's registry.
    let st = wait_for(
        "dmtcp_command -s (no port) to see the launched program",
        LONG,
        || {
            if let Some(st) = prog.try_status() {
                panic!(
                    "dmtcp_launch exited with {st:?} too early\n{}",
                    env.diagnostics()
                );
            }
            let out = env.command(["--json", "-s"]);
            let st = dmtcp_tests::Status::parse(&out);
            (st.peers() == 1 && st.is_running()).then_some(st)
        },
        || env.diagnostics(),
    );
    if default_free {
        assert_eq!(
            st.coordinator_port, 7779,
            "7779 was free, so the coordinator must use it"
        );
    } else {
        assert_ne!(st.coordinator_port, 7779);
        assert!(
            prog.stderr_so_far()
                .contains(&st.coordinator_port.to_string()),
            "a coordinator on a free port must be announced:\n{}",
            env.diagnostics()
        );
    }
    let coordinators: Vec<i32> = env
        .own_processes()
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "dmtcp_coordinat")
        })
        .collect();
    assert_eq!(
        coordinators.len(),
        1,
        "one coordinator expected\n{}",
        env.diagnostics()
    );
    touch(&env, "stop");
    prog.wait(LONG).assert_code(0);
    wait_for(
        "the auto-started coordinator to exit after its last program",
        LONG,
        || (!std::path::Path::new(&format!("/proc/{}", coordinators[0])).exists()).then_some(()),
        || env.diagnostics(),
    );
}

/// Another user's coordinator on 7779 neither captures our program nor hides our coordinator.
#[test]
fn default_port_held_by_another_user() {
    let Some(other) = TestUser::other() else {
        eprintln!("SKIP: needs root to run as a second user");
        return;
    };
    let _lock = DefaultPortLock::acquire();
    if !port_is_free(7779) {
        eprintln!("SKIP: port 7779 is in use on this machine");
        return;
    }
    let intruder = Env::for_user("default_port_theirs", other);
    let _theirs = intruder.coordinator_on_port(7779, &[]);
    let env = Env::new("default_port_mine");
    let waitfile = env.program("waitfile");
    let mut prog = env.spawn(&env.launch([waitfile.to_str().unwrap(), "stop"]));
    let st = wait_for(
        "dmtcp_command -s (no port) to find our own coordinator",
        LONG,
        || {
            if let Some(st) = prog.try_status() {
                panic!(
                    "dmtcp_launch exited with {st:?} too early\n{}",
                    env.diagnostics()
                );
            }
            let st = dmtcp_tests::Status::parse(&env.command(["--json", "-s"]));
            (st.peers() == 1 && st.is_running()).then_some(st)
        },
        || env.diagnostics(),
    );
    assert_ne!(st.coordinator_port, 7779);
    assert!(
        prog.stderr_so_far()
            .contains(&st.coordinator_port.to_string()),
        "the free port must be announced:\n{}",
        env.diagnostics()
    );
    assert_eq!(
        intruder.status(7779).peers(),
        0,
        "our program joined another user's coordinator"
    );
    touch(&env, "stop");
    prog.wait(LONG).assert_code(0);
}

#[test]
fn join_without_coordinator_is_a_clear_error() {
    let env = Env::new("join_none");
    let port = free_port();
    let out = env.run(&env.launch(["-j", "-p", &port.to_string(), "true"]), QUICK);
    assert_ne!(out.code(), Some(0), "{}", out.describe());
    out.assert_one_line_error();
    assert!(
        out.stderr_str().contains("no coordinator"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr_str().contains(&port.to_string()),
        "{}",
        out.describe()
    );
}

#[test]
fn new_coordinator_on_a_busy_port_names_the_port() {
    let env = Env::new("new_busy");
    let coord = env.coordinator(&[]);
    let out = env.run(
        &env.launch(["--new-coordinator", "-p", &coord.port.to_string(), "true"]),
        QUICK,
    );
    assert_ne!(out.code(), Some(0), "{}", out.describe());
    out.assert_one_line_error();
    assert!(
        out.stderr_str()
            .contains(&format!("port {} is in use", coord.port)),
        "{}",
        out.describe()
    );
}

#[test]
fn port_file_names_the_started_coordinator() {
    let env = Env::new("port_file");
    let waitfile = env.program("waitfile");
    let pf = env.dir.join("launch.port");
    let mut prog = env.spawn(
        &env.launch(["-p", "0", "--port-file"])
            .arg(&pf)
            .arg(&waitfile)
            .arg("stop"),
    );
    let port: u16 = wait_for(
        "dmtcp_launch to write the port file",
        LONG,
        || {
            if let Some(st) = prog.try_status() {
                panic!(
                    "dmtcp_launch exited with {st:?} too early\n{}",
                    env.diagnostics()
                );
            }
            std::fs::read_to_string(&pf).ok()?.trim().parse().ok()
        },
        || env.diagnostics(),
    );
    assert_ne!(port, 0);
    env.wait_peers_of(port, 1, &mut prog);
    touch(&env, "stop");
    prog.wait(LONG).assert_code(0);
}

#[test]
fn launch_interval_reaches_the_coordinator_and_command_changes_it() {
    let env = Env::new("launch_interval");
    let coord = env.coordinator(&[]);
    let waitfile = env.program("waitfile");
    let mut prog = env.spawn(
        &env.launch_joined(coord.port, ["-i", "17"])
            .arg(&waitfile)
            .arg("stop"),
    );
    let st = env.wait_peers_of(coord.port, 1, &mut prog);
    assert_eq!(st.checkpoint_interval, Some(17), "{}", env.diagnostics());
    let out = env.command(["-p", &coord.port.to_string(), "-i", "5"]);
    out.assert_code(0);
    assert_eq!(env.status(coord.port).checkpoint_interval, Some(5));
    touch(&env, "stop");
    prog.wait(LONG).assert_code(0);
}

#[test]
fn kill_command_ends_the_computation() {
    let env = Env::new("kill_computation");
    let mut coord = env.coordinator(&[]);
    let waitfile = env.program("waitfile");
    let mut prog = env.spawn(&env.launch_joined(coord.port, [waitfile.to_str().unwrap(), "never"]));
    env.wait_peers_of(coord.port, 1, &mut prog);
    let st = env.command_json(coord.port, &["--kill"]);
    assert_eq!(st.command_status, "DMT_COORD_SUCCESS");
    // DMTCP's workers _exit(0) when the coordinator kills them; what matters is that it ends.
    prog.wait(LONG);
    env.wait_peers(coord.port, 0, false, LONG);
    assert!(
        coord.is_running(),
        "--kill keeps the coordinator:\n{}",
        coord.log()
    );
}

#[test]
fn quit_command_ends_the_computation_and_the_coordinator() {
    let env = Env::new("quit_computation");
    let coord = env.coordinator(&[]);
    let waitfile = env.program("waitfile");
    let mut prog = env.spawn(&env.launch_joined(coord.port, [waitfile.to_str().unwrap(), "never"]));
    env.wait_peers_of(coord.port, 1, &mut prog);
    env.command(["-p", &coord.port.to_string(), "-q"])
        .assert_code(0);
    prog.wait(LONG);
    coord.wait_exit(LONG);
}

#[test]
fn missing_program_is_127_and_named() {
    let env = Env::new("no_such_program");
    let coord = env.coordinator(&[]);
    let out = env.run(
        &env.launch_joined(coord.port, ["no-such-program-xyz"]),
        QUICK,
    );
    out.assert_code(127).assert_one_line_error();
    assert!(
        out.stderr_str().contains("no-such-program-xyz"),
        "{}",
        out.describe()
    );
    // A shell says the same thing with the same code.
    let sh = env.run(&env.cmd("sh").args(["-c", "no-such-program-xyz"]), QUICK);
    assert_eq!(sh.code(), Some(127));
}

#[test]
fn unknown_options_are_one_line_errors() {
    let env = Env::new("unknown_options");
    for tool in ["dmtcp_launch", "dmtcp_command", "dmtcp_coordinator"] {
        let out = env.run(&env.tool(tool).args(["--no-such-option", "true"]), QUICK);
        assert_ne!(out.code(), Some(0), "{}", out.describe());
        out.assert_one_line_error();
        assert!(
            out.stderr_str().contains("--no-such-option"),
            "{}",
            out.describe()
        );
    }
}

#[test]
fn dmtcp_checkpoint_is_a_deprecated_alias() {
    let env = Env::new("checkpoint_alias");
    let coord = env.coordinator(&[]);
    let cmd = env.tool("dmtcp_checkpoint").args([
        "--join-coordinator",
        "-p",
        &coord.port.to_string(),
        "sh",
        "-c",
        "echo hi; exit 4",
    ]);
    let out = env.run(&cmd, LONG);
    out.assert_code(4);
    assert_eq!(out.stdout_str(), "hi\n");
    let err = out.stderr_str();
    assert_eq!(err.lines().count(), 1, "{}", out.describe());
    assert!(
        err.contains("deprecated") && err.contains("dmtcp_launch"),
        "{}",
        out.describe()
    );
}

#[test]
fn statically_linked_program_is_refused_before_it_runs() {
    let env = Env::new("static_program");
    let coord = env.coordinator(&[]);
    let prog = dmtcp_tests::coverage_support::build(&env, "counter", &["-static"]);
    let out = env.run(
        &env.launch_joined(coord.port, [prog.to_str().unwrap(), "10"]),
        QUICK,
    );
    out.assert_code(1).assert_one_line_error();
    assert!(
        out.stderr_str().contains("statically linked"),
        "{}",
        out.describe()
    );
    // Refused up front: the program never ran (it would have printed "count 1").
    assert!(out.stdout_str().is_empty(), "{}", out.describe());
    // The same program dynamically linked is accepted (the check is not over-eager).
    let dynamic = env.program("counter");
    let mut run = env.spawn(&env.launch_joined(coord.port, [dynamic.to_str().unwrap(), "10"]));
    env.wait_peers_of(coord.port, 1, &mut run);
}
