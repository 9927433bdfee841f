//! The signal-mask wrappers (`sigprocmask`, `pthread_sigmask`) are raw system calls on their
//! fast path (runtime/preload/src/checkpoint/sigwrap.rs): they must keep glibc's rules (its
//! internal signals 32 and 33 are never blocked, errors come back as glibc returns them) and the
//! runtime's (the checkpoint signal is never blocked). tests/programs/sigmask_rules.c checks
//! each rule natively and under `dmtcp_launch`.

use dmtcp_tests::{Env, LONG};

#[test]
fn mask_wrappers_keep_glibc_and_runtime_rules() {
    let env = Env::new("wrappers_sigmask");
    let coord = env.coordinator(&[]);
    let prog = env.program("sigmask_rules");
    let prog = prog.to_str().unwrap();

    let plain = env.run(&env.cmd(prog), LONG);
    plain.assert_code(0);
    let launched = env.run(&env.launch_joined(coord.port, [prog]), LONG);
    launched.assert_code(0);

    let oks = |s: &str| s.lines().filter(|l| l.starts_with("ok ")).count();
    let (p, l) = (plain.stdout_str(), launched.stdout_str());
    assert!(
        !l.contains("FAIL") && l.ends_with("done\n"),
        "{}",
        launched.describe()
    );
    // Natively 14 checks; under the runtime two more (the checkpoint signal stays open).
    assert_eq!(oks(&p), 14, "{}", plain.describe());
    assert_eq!(oks(&l), 16, "{}", launched.describe());
}
