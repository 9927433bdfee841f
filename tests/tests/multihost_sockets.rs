//! Programs talking over TCP across hosts (network namespaces with sshd, see
//! tests/src/hosts.rs), in one computation with the coordinator on the head node: a token ring
//! of three processes on three hosts passing 1 MiB with every hop, and a client/server pair on
//! two hosts. Each is checkpointed with data in flight, killed, and restarted through the
//! restart script on the saved hosts, permuted with --hostfile, all on one host, and (the
//! pair) split between the head and a host, and all on the head with --local. The programs check every byte they receive; the test
//! checks the token arithmetic and request sequence over all of it, and where each stretch ran.

use dmtcp_tests::Env;
use dmtcp_tests::hosts::{Hosts, Spread, quote, records, this_host};
use std::path::PathBuf;

const M: u64 = 6364136223846793005;

#[test]
fn token_ring_on_three_hosts_survives_restarts_in_place_permuted_and_on_one_host() {
    let env = Env::new("multihost_ring");
    let Some(hosts) = Hosts::up("multihost_ring", 3, &env) else {
        return;
    };
    let prog = env.program("mh_ring");
    let coord = env.coordinator(&[]);
    let files: Vec<PathBuf> = (0..3)
        .map(|k| env.dir.join(format!("ring{k}.txt")))
        .collect();
    let mut run = Spread::new(&env, &hosts, coord.port, files.clone());
    // Process k on host k+1; it connects to process k+1 on the next host.
    let mut sessions = Vec::new();
    for (k, file) in files.iter().enumerate() {
        let args = format!(
            "{} {k} 3 7300 {} {}",
            quote(&prog.display().to_string()),
            Hosts::addr((k + 1) % 3 + 1),
            quote(&file.display().to_string())
        );
        sessions.push(run.launch(k + 1, &args, &format!("launch{k}.log")));
    }
    env.wait_peers(coord.port, 3, true, dmtcp_tests::LONG);
    run.placed_on((1..=3).map(Hosts::name).collect());
    run.wait_growth(5);
    run.checkpoint_and_kill(sessions);

    let s = run.restart(&[], (1..=3).map(Hosts::name).collect());
    run.wait_growth(5);
    run.checkpoint_and_kill(vec![s]);
    let s = run.restart_on(vec![Hosts::name(3), Hosts::name(1), Hosts::name(2)]);
    run.wait_growth(5);
    run.checkpoint_and_kill(vec![s]);
    let s = run.restart_on(vec![Hosts::name(2); 3]);
    run.wait_growth(5);
    run.checkpoint_and_kill(vec![s]);

    // Every round exactly once, at the process whose turn it was, with the value the chain
    // of hops gives.
    let mut all = Vec::new();
    for (k, f) in files.iter().enumerate() {
        for r in records(f) {
            assert_eq!(
                r.n % 3,
                k as u64,
                "{}: round {} at process {k}",
                f.display(),
                r.n
            );
            all.push(r);
        }
    }
    all.sort_by_key(|r| r.n);
    let rounds: Vec<u64> = all.iter().map(|r| r.n).collect();
    let want: Vec<u64> = (1..=all.len() as u64).collect();
    assert_eq!(rounds, want, "rounds lost or repeated");
    let mut v: u64 = 1;
    for r in &all {
        assert_eq!(
            r.values,
            [v.to_string()],
            "round {}: wrong token value",
            r.n
        );
        v = v.wrapping_mul(M).wrapping_add(r.n).wrapping_add(r.n % 3);
    }
    run.check_hosts();
}

#[test]
fn client_server_pair_on_two_hosts_survives_restarts_in_place_swapped_and_together() {
    let env = Env::new("multihost_pair");
    let Some(hosts) = Hosts::up("multihost_pair", 3, &env) else {
        return;
    };
    let prog = env.program("mh_pair");
    let coord = env.coordinator(&[]);
    let files = vec![env.dir.join("server.txt"), env.dir.join("client.txt")];
    let mut run = Spread::new(&env, &hosts, coord.port, files.clone());
    let p = quote(&prog.display().to_string());
    let server = run.launch(
        1,
        &format!("{p} server 7310 {}", quote(&files[0].display().to_string())),
        "server.log",
    );
    let client = run.launch(
        2,
        &format!(
            "{p} client {} 7310 {}",
            Hosts::addr(1),
            quote(&files[1].display().to_string())
        ),
        "client.log",
    );
    env.wait_peers(coord.port, 2, true, dmtcp_tests::LONG);
    run.placed_on(vec![Hosts::name(1), Hosts::name(2)]);
    run.wait_growth(5);
    run.checkpoint_and_kill(vec![server, client]);

    let s = run.restart(&[], vec![Hosts::name(1), Hosts::name(2)]);
    run.wait_growth(5);
    run.checkpoint_and_kill(vec![s]);
    // Mixed: the server on the head (started by the script itself), the client through ssh.
    let s = run.restart_on(vec![this_host(), Hosts::name(1)]);
    run.wait_growth(5);
    run.checkpoint_and_kill(vec![s]);
    let s = run.restart_on(vec![Hosts::name(2), Hosts::name(1)]);
    run.wait_growth(5);
    run.checkpoint_and_kill(vec![s]);
    let s = run.restart_on(vec![Hosts::name(3); 2]);
    run.wait_growth(5);
    run.checkpoint_and_kill(vec![s]);
    let s = run.restart(&["--local"], vec![this_host(); 2]);
    run.wait_growth(5);
    run.checkpoint_and_kill(vec![s]);

    let server = records(&files[0]);
    let client = records(&files[1]);
    for (name, recs) in [("server", &server), ("client", &client)] {
        let seqs: Vec<u64> = recs.iter().map(|r| r.n).collect();
        let want: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, want, "{name}: requests lost or repeated");
    }
    // The server answered at most one request the client had not read at the checkpoint.
    assert!(
        server.len() == client.len() || server.len() == client.len() + 1,
        "server {} requests, client {}",
        server.len(),
        client.len()
    );
    for (s, c) in server.iter().zip(&client) {
        assert_eq!(s.values, c.values, "request {}: the sums differ", s.n);
    }
    run.check_hosts();
}
