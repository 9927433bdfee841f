//! An image written by one user (dmtcptest) restarted by another (dmtcptest2) is refused with
//! one clear line naming the owner problem, unless --no-strict-checking is given.

use dmtcp_tests::coverage_support::{build, newest_image, s};
use dmtcp_tests::engine_support::{checkpoint_and_kill, wait_lines};
use dmtcp_tests::{Env, QUICK, TestUser};
use std::os::unix::fs::PermissionsExt;

#[test]
fn image_of_another_user_is_refused() {
    let Some(other) = TestUser::other() else {
        eprintln!("SKIP: needs root to run as a second user");
        return;
    };
    let env = Env::new("cov_owner");
    let prog = build(&env, "cov_signals", &[]);
    let coord = env.coordinator(&[]);
    let mut run = env.spawn(&env.launch_joined(coord.port, [s(&prog), "40", "1000"]));
    env.wait_peers_of(coord.port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 3);
    checkpoint_and_kill(&env, coord.port, run);
    let img = newest_image(&env, "cov_signals");
    // Let the other user read the image (the test runs as root), so only the owner check can
    // refuse it.
    let copy = std::env::temp_dir().join(format!("cov_owner_{}.dmtcp", std::process::id()));
    std::fs::copy(&img, &copy).unwrap();
    std::os::unix::fs::chown(&copy, Some(env.user.uid), None).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();

    let intruder = Env::for_user("cov_owner_other", other);
    let c2 = intruder.coordinator(&[]);
    let out = intruder.run(
        &intruder
            .tool("dmtcp_restart")
            .args(["--join-coordinator", "--coord-port", &c2.port.to_string()])
            .arg(&copy),
        QUICK,
    );
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    out.assert_one_line_error();
    let err = out.stderr_str();
    assert!(
        err.starts_with("dmtcp_restart: ") && (err.contains("user") || err.contains("owner")),
        "unclear refusal: {err}"
    );

    // With --no-strict-checking the other user may restart it; it runs to its end.
    let out = intruder.run(
        &intruder
            .tool("dmtcp_restart")
            .args([
                "--no-strict-checking",
                "--join-coordinator",
                "--coord-port",
                &c2.port.to_string(),
            ])
            .arg(&copy),
        dmtcp_tests::engine_support::LONG,
    );
    let _ = std::fs::remove_file(&copy);
    assert_eq!(
        out.code(),
        Some(0),
        "--no-strict-checking: {}\n{}",
        out.describe(),
        intruder.diagnostics()
    );
    assert!(
        out.stdout_str().ends_with("tick 40\ndone\n"),
        "{}",
        out.stdout_str()
    );
}
