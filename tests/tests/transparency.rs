//! A program under `dmtcp_launch` behaves as without it: same bytes out, same exit status,
//! same stdin, same environment (apart from DMTCP's own variables), signals, fork and exec.

use dmtcp_tests::{Cmd, Env, Output, wait_for};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

/// Runs `args` directly and under `dmtcp_launch` (joined to a test coordinator) with the same
/// stdin, and returns (plain, launched).
fn both(
    env: &Env,
    port: u16,
    args: &[&str],
    stdin: Option<&[u8]>,
    extra_env: &[(&str, &str)],
) -> (Output, Output) {
    let with = |c: Cmd| {
        let c = extra_env.iter().fold(c, |c, (k, v)| c.env(k, v));
        match stdin {
            Some(b) => c.stdin(b.to_vec()),
            None => c,
        }
    };
    let plain = env.run(&with(env.cmd(args[0]).args(&args[1..])), LONG);
    let launched = env.run(&with(env.launch_joined(port, args)), LONG);
    (plain, launched)
}

#[test]
fn output_bytes_and_exit_codes_are_unchanged() {
    let env = Env::new("bytes_and_codes");
    let coord = env.coordinator(&[]);
    let script = r#"printf 'a\000b\377\n'; printf 'to stderr' >&2; exit "$1""#;
    for code in ["0", "3"] {
        let (plain, launched) = both(
            &env,
            coord.port,
            &["sh", "-c", script, "sh", code],
            None,
            &[],
        );
        assert_eq!(
            plain.code(),
            Some(code.parse().unwrap()),
            "{}",
            plain.describe()
        );
        assert_eq!(launched.code(), plain.code(), "{}", launched.describe());
        assert_eq!(launched.stdout, plain.stdout, "{}", launched.describe());
        assert_eq!(launched.stderr, plain.stderr, "{}", launched.describe());
    }
}

#[test]
fn death_by_signal_is_the_same_wait_status() {
    let env = Env::new("killed_by_signal");
    let coord = env.coordinator(&[]);
    for sig in ["USR1", "TERM", "KILL"] {
        let script = format!("kill -{sig} $$");
        let (plain, launched) = both(&env, coord.port, &["sh", "-c", &script], None, &[]);
        assert!(plain.signal().is_some(), "{}", plain.describe());
        assert_eq!(
            launched.status,
            plain.status,
            "{sig}: {}",
            launched.describe()
        );
    }
}

#[test]
fn stdin_is_piped_through() {
    let env = Env::new("stdin_through");
    let coord = env.coordinator(&[]);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (plain, launched) = both(&env, coord.port, &["cat"], Some(&data), &[]);
    assert_eq!(plain.stdout, data);
    assert_eq!(
        launched.stdout.len(),
        data.len(),
        "{}",
        launched.stderr_str()
    );
    assert!(
        launched.stdout == data,
        "stdin bytes changed under dmtcp_launch"
    );
    launched.assert_code(0);
}

fn env_lines(out: &Output) -> Vec<String> {
    let mut v: Vec<String> = out
        .stdout_str()
        .lines()
        .filter(|l| !l.starts_with("DMTCP_") && !l.starts_with("LD_PRELOAD="))
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn environment_is_identical_apart_from_dmtcp_variables() {
    let env = Env::new("same_environment");
    let coord = env.coordinator(&[]);
    let (plain, launched) = both(&env, coord.port, &["env"], None, &[("MY_VAR", "x y=z")]);
    launched.assert_code(0);
    assert_eq!(
        env_lines(&launched),
        env_lines(&plain),
        "{}",
        launched.describe()
    );
    let preload = launched.stdout_str();
    let preload = preload
        .lines()
        .find(|l| l.starts_with("LD_PRELOAD="))
        .unwrap_or_default();
    assert!(preload.contains("libdmtcp.so"), "{preload}");
}

#[test]
fn the_users_own_ld_preload_is_kept() {
    let env = Env::new("user_preload");
    let coord = env.coordinator(&[]);
    // Any harmless library works; libm is always there.
    let lib = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("libm.so.6");
    let out = env.run(
        &env.launch_joined(coord.port, ["env"])
            .env("LD_PRELOAD", lib),
        LONG,
    );
    out.assert_code(0);
    let text = out.stdout_str();
    let preload = text
        .lines()
        .find(|l| l.starts_with("LD_PRELOAD="))
        .unwrap_or_default();
    let parts: Vec<&str> = preload
        .trim_start_matches("LD_PRELOAD=")
        .split([':', ' '])
        .collect();
    assert!(
        parts.iter().any(|p| p.ends_with("libdmtcp.so")),
        "{preload}"
    );
    assert!(
        parts.contains(&lib),
        "the user's LD_PRELOAD was dropped: {preload}"
    );
}

#[test]
fn the_programs_signal_handlers_still_run() {
    let env = Env::new("signal_handlers");
    let coord = env.coordinator(&[]);
    let exe = env.program("signals");
    let mut prog = env.spawn(&env.launch_joined(coord.port, [exe.to_str().unwrap()]));
    let expect = |prog: &dmtcp_tests::Spawned, line: &'static str| {
        wait_for(
            &format!("the program to print {line:?}"),
            LONG,
            || {
                prog.stdout_so_far()
                    .lines()
                    .any(|l| l == line)
                    .then_some(())
            },
            || env.diagnostics(),
        )
    };
    expect(&prog, "ready");
    env.wait_peers_of(coord.port, 1, &mut prog);
    prog.signal(libc::SIGUSR1);
    expect(&prog, "usr1 1");
    prog.signal(libc::SIGUSR2);
    expect(&prog, "usr2 1");
    prog.signal(libc::SIGUSR1);
    expect(&prog, "usr1 2");
    prog.signal(libc::SIGTERM);
    let out = prog.wait(LONG);
    out.assert_code(7);
    assert_eq!(out.stdout_str(), "ready\nusr1 1\nusr2 1\nusr1 2\nterm\n");
}

#[test]
fn fork_and_exec_children_stay_members() {
    let env = Env::new("fork_exec_members");
    let coord = env.coordinator(&[]);
    let waitfile = env.program("waitfile");
    let forkexec = env.program("forkexec");
    let mut prog = env.spawn(
        &env.launch_joined(coord.port, [forkexec.to_str().unwrap()])
            .arg(&waitfile)
            .arg("stop")
            .arg("3"),
    );
    let st = env.wait_peers_of(coord.port, 4, &mut prog);
    let list = env
        .command_json(coord.port, &["--list"])
        .workers
        .unwrap_or_default();
    assert_eq!(
        list.matches("waitfile[").count(),
        3,
        "exec'd children keep membership:\n{list}\n{st:?}"
    );
    std::fs::write(env.dir.join("stop"), b"").unwrap();
    let out = prog.wait(LONG);
    out.assert_code(3);
    assert_eq!(
        out.stdout_str()
            .lines()
            .filter(|l| l.starts_with("waiting"))
            .count(),
        3
    );
    assert!(
        out.stdout_str().contains("children ok: 3\n"),
        "{}",
        out.describe()
    );
    env.wait_peers(coord.port, 0, false, LONG);
}

#[test]
fn a_program_that_closes_its_stdio_still_works() {
    let env = Env::new("closes_stdio");
    let coord = env.coordinator(&[]);
    let exe = env.program("closefds");
    for extra in [&[][..], &["also-stdout"]] {
        let out = env.run(
            &env.launch_joined(coord.port, [exe.to_str().unwrap()])
                .args(extra),
            LONG,
        );
        out.assert_code(0);
        assert_eq!(out.stdout_str(), "out\n");
        assert_eq!(out.stderr_str(), "err\n");
    }
    env.wait_peers(coord.port, 0, false, LONG);
}
