//! `dmtcp_command` against a real coordinator: DMTCP's JSON and text, exit codes, errors.

use dmtcp_tests::Env;
use dmtcp_tests::env::DefaultPortLock;
use std::time::Duration;

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn status_of_an_idle_coordinator() {
    let env = Env::new("status_idle");
    let coord = env.coordinator(&[]);
    let st = env.status(coord.port);
    assert_eq!(st.exit_code, Some(0), "{}", env.diagnostics());
    assert_eq!(st.command, "DMT_STATUS");
    assert_eq!(st.command_status, "DMT_COORD_SUCCESS");
    assert_eq!(st.coordinator_host, "localhost");
    assert_eq!(st.coordinator_port, coord.port);
    assert_eq!(
        (st.num_peers, st.running, st.checkpoint_interval),
        (Some(0), Some(false), Some(0))
    );
    let out = env.command(["--coord-port", &coord.port.to_string(), "-s"]);
    out.assert_code(0);
    assert_eq!(
        out.stdout_str(),
        format!(
            "Coordinator:\n  Host: localhost\n  Port: {}\nStatus...\n  NUM_PEERS=0\n  RUNNING=no\n  \
             CKPT_INTERVAL=0 (checkpoint manually)\n",
            coord.port
        )
    );
}

#[test]
fn raw_json_line_has_dmtcp_field_order() {
    let env = Env::new("json_order");
    let coord = env.coordinator(&[]);
    let out = env.command(["--json", "-p", &coord.port.to_string(), "s"]);
    out.assert_code(0);
    assert_eq!(
        out.stdout_str(),
        format!(
            "{{\"schema_version\":1,\"command\":\"DMT_STATUS\",\"command_status\":\"DMT_COORD_SUCCESS\",\
             \"coordinator_host\":\"localhost\",\"coordinator_port\":{},\"num_peers\":0,\
             \"running\":false,\"checkpoint_interval\":0}}\n",
            coord.port
        )
    );
    assert_eq!(out.stderr_str(), "");
}

#[test]
fn interval_is_set_and_reported() {
    let env = Env::new("interval_cmd");
    let coord = env.coordinator(&[]);
    let st = env.command_json(coord.port, &["--interval", "7"]);
    assert_eq!(st.command, "DMT_UPDATE_CKPT_INTERVAL");
    assert_eq!(st.command_status, "DMT_COORD_SUCCESS");
    assert_eq!(st.checkpoint_interval, Some(7));
    assert_eq!(env.status(coord.port).checkpoint_interval, Some(7));
    let out = env.command(["-p", &coord.port.to_string(), "-i5"]);
    out.assert_code(0);
    assert_eq!(out.stdout_str(), "Interval changed to 5\n");
    let out = env.command(["-p", &coord.port.to_string(), "-s"]);
    assert!(
        out.stdout_str().contains("  CKPT_INTERVAL=5\n"),
        "{}",
        out.describe()
    );
}

#[test]
fn checkpoint_without_peers_is_not_running() {
    let env = Env::new("ckpt_no_peers");
    let coord = env.coordinator(&[]);
    for (arg, name) in [
        ("--checkpoint", "DMT_CHECKPOINT"),
        ("-bc", "DMT_BLOCKING_CKPT"),
        ("-kc", "DMT_KILL_AFTER_CKPT"),
    ] {
        let st = env.command_json(coord.port, &[arg]);
        assert_eq!(st.exit_code, Some(2), "{arg}: {:?}", st.json);
        assert_eq!(st.command, name);
        assert_eq!(st.command_status, "DMT_COORD_NOT_RUNNING");
        assert_eq!(st.json.as_object().unwrap().len(), 5, "{:?}", st.json);
    }
    let out = env.command(["-p", &coord.port.to_string(), "-c"]);
    out.assert_code(2).assert_one_line_error();
    assert!(
        out.stderr_str().contains("not in running state"),
        "{}",
        out.describe()
    );
}

#[test]
fn list_of_an_idle_coordinator() {
    let env = Env::new("list_idle");
    let coord = env.coordinator(&[]);
    let st = env.command_json(coord.port, &["--list"]);
    assert_eq!(st.command, "DMT_LIST");
    assert_eq!(
        st.workers.as_deref(),
        Some("Client List:\n#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE, BARRIER\n")
    );
}

#[test]
fn quit_stops_the_coordinator() {
    let env = Env::new("quit_cmd");
    let coord = env.coordinator(&[]);
    let st = env.command_json(coord.port, &["--quit"]);
    assert_eq!(
        (st.command.as_str(), st.command_status.as_str()),
        ("DMT_QUIT", "DMT_COORD_SUCCESS")
    );
    let out = coord.wait_exit(Duration::from_secs(10));
    assert_eq!(out.code(), Some(0), "{}", out.describe());
}

#[test]
fn kill_with_no_peers_succeeds_and_coordinator_stays() {
    let env = Env::new("kill_cmd");
    let mut coord = env.coordinator(&[]);
    let st = env.command_json(coord.port, &["--kill"]);
    assert_eq!(
        (st.command.as_str(), st.command_status.as_str()),
        ("DMT_KILL", "DMT_COORD_SUCCESS")
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        coord.is_running(),
        "the coordinator must survive --kill:\n{}",
        coord.log()
    );
    assert!(env.status(coord.port).ok());
}

#[test]
fn no_coordinator_is_exit_2_and_not_found() {
    let env = Env::new("not_found");
    let port = free_port();
    let st = env.command_json(port, &["--status"]);
    assert_eq!(st.exit_code, Some(2));
    assert_eq!(st.command_status, "DMT_COORD_NOT_FOUND");
    assert_eq!(st.coordinator_port, port);
    let out = env.command(["-p", &port.to_string(), "-s"]);
    out.assert_code(2).assert_one_line_error();
    assert_eq!(
        out.stderr_str(),
        "Coordinator not found. Please check port and host.\n"
    );
    assert_eq!(out.stdout_str(), "");
}

#[test]
fn usage_errors_are_one_line() {
    let env = Env::new("usage_errors");
    for args in [
        &["--bogus"][..],
        &["--interval", "12x"],
        &["-i12x"],
        &["-p", "99999", "-s"],
    ] {
        let out = env.command(args);
        out.assert_code(1).assert_one_line_error();
        assert!(out.stderr_str().contains("Usage:"), "{}", out.describe());
    }
    let out = env.command(["--json", "--not-a-command"]);
    out.assert_code(2);
    assert_eq!(out.stderr_str(), "");
    let st = dmtcp_tests::Status::parse(&out);
    assert_eq!(st.command, "DMT_INVALID_COORDINATOR_COMMAND");
    assert_eq!(st.command_status, "DMT_COORD_INVALID_COMMAND");
    let out = env.command(["--help"]);
    out.assert_code(0);
    assert!(
        out.stdout_str().starts_with("Usage:  dmtcp_command"),
        "{}",
        out.describe()
    );
    let out = env.command(Vec::<&str>::new());
    out.assert_code(1);
}

#[test]
fn environment_port_is_used() {
    let env = Env::new("env_port");
    let coord = env.coordinator(&[]);
    let out = env.run(
        &env.tool("dmtcp_command")
            .env("DMTCP_COORD_PORT", coord.port.to_string())
            .arg("-s"),
        dmtcp_tests::QUICK,
    );
    out.assert_code(0);
    assert!(
        out.stdout_str()
            .contains(&format!("  Port: {}\n", coord.port)),
        "{}",
        out.describe()
    );
}

/// With no -p and nothing of ours on 7779, the user's only registered coordinator is used.
#[test]
fn registry_finds_the_only_coordinator_of_the_user() {
    let _lock = DefaultPortLock::acquire();
    let env = Env::new("registry_fallback");
    let coord = env.coordinator(&[]);
    let out = env.command(["--json", "-s"]);
    let st = dmtcp_tests::Status::parse(&out);
    assert_eq!(
        st.command_status,
        "DMT_COORD_SUCCESS",
        "{}\n{}",
        out.describe(),
        coord.log()
    );
    assert_eq!(st.coordinator_port, coord.port);
    // A second coordinator makes the choice ambiguous: no guessing, but the error names both.
    let second = env.coordinator(&[]);
    let out = env.command(["-s"]);
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    out.assert_one_line_error();
    if out.stderr_str().starts_with("Coordinator not found") {
        for p in [coord.port, second.port] {
            assert!(
                out.stderr_str().contains(&p.to_string()),
                "{}",
                out.describe()
            );
        }
    }
    drop(second);
}
