//! The fake hosts of the multi-host tests (tests/hosts, tests/src/hosts.rs): each has its own
//! name and address, the test user logs in to every one through ssh with the configuration the
//! fixture writes, the hosts reach each other, and nothing is left once the fixture is dropped.

use dmtcp_tests::hosts::{Hosts, quote};
use dmtcp_tests::{Env, QUICK};

#[test]
fn hosts_have_names_addresses_ssh_and_are_removed_afterwards() {
    let env = Env::new("multihost_fixture");
    let Some(hosts) = Hosts::up("multihost_fixture", 3, &env) else {
        return;
    };
    for i in 1..=3 {
        let out = env.run(&hosts.ssh(&env, i, "uname -n; id -u; hostname -I"), QUICK);
        assert_eq!(out.code(), Some(0), "{}", out.describe());
        let text = out.stdout_str();
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(
            words,
            [
                Hosts::name(i).as_str(),
                &env.user.uid.to_string(),
                &Hosts::addr(i)
            ],
            "{}",
            out.describe()
        );
    }
    // From one host to another, with the same client configuration (a restart script run on
    // a node reaches the others).
    let cfg = quote(&hosts.ssh_config().display().to_string());
    let out = env.run(
        &hosts.ssh(
            &env,
            1,
            &format!("ssh -F {cfg} {} uname -n", Hosts::name(3)),
        ),
        QUICK,
    );
    assert_eq!(
        out.stdout_str().trim(),
        Hosts::name(3),
        "{}",
        out.describe()
    );
    let _lock = hosts.down();
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&netns.stdout);
    assert!(!list.contains("dmtcp-h"), "left behind: {list}");
    let br = std::process::Command::new("ip")
        .args(["link", "show", "dmtcpbr0"])
        .output()
        .unwrap();
    assert!(!br.status.success(), "the bridge is left behind");
}
