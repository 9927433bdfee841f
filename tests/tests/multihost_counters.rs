//! One computation over three hosts (network namespaces with sshd, see tests/src/hosts.rs):
//! a counter per host, launched through ssh and joined to the coordinator on the head node;
//! checkpoint, kill, and restart through the generated restart script (a) on the saved hosts
//! (run on the head, then on host 1), (b) permuted with --hostfile, (c) all on one host with
//! --hostfile, (d) all on the head with --local. Every counter's file must count up by one
//! without a gap or a repeat through all of it, each stretch written on the host its placement
//! names; the program checks its memory.

use dmtcp_tests::Env;
use dmtcp_tests::hosts::{HEAD, Hosts, Spread, quote, records, this_host};
use std::path::PathBuf;

#[test]
fn counters_on_three_hosts_restart_in_place_permuted_on_one_host_and_locally() {
    let env = Env::new("multihost_counters");
    let Some(hosts) = Hosts::up("multihost_counters", 3, &env) else {
        return;
    };
    let prog = env.program("mh_counter");
    let coord = env.coordinator(&[]);
    let files: Vec<PathBuf> = (1..=3)
        .map(|i| env.dir.join(format!("seq{i}.txt")))
        .collect();
    let mut run = Spread::new(&env, &hosts, coord.port, files.clone());
    let mut sessions = Vec::new();
    for i in 1..=3 {
        let args = format!(
            "{} {}",
            quote(&prog.display().to_string()),
            quote(&files[i - 1].display().to_string())
        );
        let mut s = run.launch(i, &args, &format!("launch{i}.log"));
        if i == 3 {
            env.wait_peers_of(coord.port, 3, &mut s);
        }
        sessions.push(s);
    }
    run.placed_on((1..=3).map(Hosts::name).collect());
    let list = env.command(["--coord-port", &coord.port.to_string(), "--list"]);
    for i in 1..=3 {
        assert!(
            list.stdout_str().contains(&Hosts::name(i)),
            "{}",
            list.describe()
        );
    }
    run.wait_growth(5);
    run.checkpoint_and_kill(sessions);

    // The script names the address the hosts reached the coordinator at, not the head's
    // host name (which may resolve to 127.0.0.1).
    let script = env.dir.join("dmtcp_restart_script.sh");
    let text = std::fs::read_to_string(&script).expect("restart script");
    assert!(text.contains(&format!("coord_host='{HEAD}'")), "{text}");

    let hostfile = env.dir.join("hostfile");
    let hf = hostfile.display().to_string();
    // (a) where they ran.
    let s = run.restart(&[], (1..=3).map(Hosts::name).collect());
    run.wait_growth(5);
    run.checkpoint_and_kill(vec![s]);
    // The same, with the script run on host 1: its process starts there directly, the others
    // through ssh from host 1.
    let s = run.restart_from(1, &[], (1..=3).map(Hosts::name).collect());
    run.wait_growth(5);
    run.checkpoint_and_kill(vec![s]);
    // (b) saved hosts are numbered in name order: h1 -> h2, h2 -> h3, h3 -> h1.
    std::fs::write(&hostfile, "dmtcp-h2\ndmtcp-h3\n# comment\ndmtcp-h1\n").unwrap();
    let s = run.restart(
        &["--hostfile", &hf],
        (1..=3).map(|i| Hosts::name(i % 3 + 1)).collect(),
    );
    run.wait_growth(5);
    run.checkpoint_and_kill(vec![s]);
    // (c) everything on one host: one dmtcp_restart there with the three images.
    std::fs::write(&hostfile, "dmtcp-h3\n").unwrap();
    let s = run.restart(&["--hostfile", &hf], vec![Hosts::name(3); 3]);
    run.wait_growth(5);
    run.checkpoint_and_kill(vec![s]);
    // (d) everything on the head.
    let s = run.restart(&["--local"], vec![this_host(); 3]);
    run.wait_growth(5);
    run.checkpoint_and_kill(vec![s]);

    for file in &files {
        let numbers: Vec<u64> = records(file).iter().map(|r| r.n).collect();
        let want: Vec<u64> = (1..=numbers.len() as u64).collect();
        assert_eq!(numbers, want, "{}: not one unbroken count", file.display());
    }
    run.check_hosts();
}
