//! One computation over three hosts (network namespaces with sshd, see tests/src/hosts.rs):
//! a counter per host, launched through ssh and joined to the coordinator on the head node;
//! checkpoint, kill, and restart through the generated restart script (a) on the saved hosts,
//! (b) permuted with --hostfile, (c) all on one host with --hostfile, (d) all on the head with
//! --local. Every counter's file must count up by one without a gap or a repeat through all of
//! it, each stretch written on the host its placement names, memory checked by the program.

use dmtcp_tests::hosts::{HEAD, Hosts, quote};
use dmtcp_tests::{Env, Spawned, wait_for};
use std::path::{Path, PathBuf};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// The `(n, host)` lines of a counter file; fails on a line the program wrote on damage.
fn lines(path: &Path) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let (n, host) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("{}: bad line {l:?}", path.display()));
            let n = n
                .parse()
                .unwrap_or_else(|_| panic!("{}: the program reported: {l}", path.display()));
            (n, host.to_string())
        })
        .collect()
}

/// Waits until every counter wrote `more` lines beyond `from[i]`.
fn wait_growth(env: &Env, files: &[PathBuf], from: &[usize], more: usize) {
    wait_for(
        &format!("{more} new lines from every counter"),
        LONG,
        || {
            files
                .iter()
                .zip(from)
                .all(|(f, &n)| lines(f).len() >= n + more)
                .then_some(())
        },
        || {
            let tails: Vec<String> = files
                .iter()
                .map(|f| format!("{}: {:?}", f.display(), lines(f).last()))
                .collect();
            format!("{}\n{}", tails.join("\n"), env.diagnostics())
        },
    );
}

/// `dmtcp_command --kcheckpoint`, then waits for `waiting` (the ssh sessions or the restart
/// script) to end; returns every file's line count at the checkpoint.
fn checkpoint_and_kill(
    env: &Env,
    port: u16,
    waiting: Vec<Spawned>,
    files: &[PathBuf],
) -> Vec<usize> {
    let out = env.command(["--coord-port", &port.to_string(), "--kcheckpoint"]);
    assert_eq!(
        out.code(),
        Some(0),
        "checkpoint failed: {}\n{}",
        out.describe(),
        env.diagnostics()
    );
    for w in waiting {
        w.wait(LONG);
    }
    files.iter().map(|f| lines(f).len()).collect()
}

/// Runs the restart script with `args` as the test user on the head node; waits for the three
/// processes to run again.
fn restart(env: &Env, hosts: &Hosts, port: u16, script: &Path, args: &[&str]) -> Spawned {
    let cmd = env
        .cmd("sh")
        .arg(script)
        .args(args)
        .env("DMTCP_REMOTE_SHELL", hosts.rsh())
        // Reaches the restarts on other hosts through ssh's SendEnv DMTCP_*.
        .env(
            "DMTCP_SECRET_DIR",
            env.user.home.join(".dmtcp/coordinators"),
        );
    let mut s = env.spawn(&cmd);
    env.wait_peers_of(port, 3, &mut s);
    s
}

#[test]
fn counters_on_three_hosts_restart_in_place_permuted_on_one_host_and_locally() {
    let env = Env::new("multihost_counters");
    let Some(hosts) = Hosts::up("multihost_counters", 3, &env) else {
        return;
    };
    let prog = env.program("mh_counter");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let launch = env.tools.path("dmtcp_launch");

    let files: Vec<PathBuf> = (1..=3)
        .map(|i| env.dir.join(format!("seq{i}.txt")))
        .collect();
    let mut sessions = Vec::new();
    for i in 1..=3 {
        let log = env.dir.join(format!("launch{i}.log"));
        let command = format!(
            "exec {} --join-coordinator --coord-host {HEAD} --coord-port {port} {} {} \
             </dev/null >{} 2>&1",
            quote(&launch.display().to_string()),
            quote(&prog.display().to_string()),
            quote(&files[i - 1].display().to_string()),
            quote(&log.display().to_string()),
        );
        let mut s = env.spawn(&hosts.ssh(&env, i, &command));
        if i == 3 {
            env.wait_peers_of(port, 3, &mut s);
        }
        sessions.push(s);
    }
    let list = env.command(["--coord-port", &port.to_string(), "--list"]);
    for i in 1..=3 {
        assert!(
            list.stdout_str().contains(&Hosts::name(i)),
            "{}",
            list.describe()
        );
    }
    wait_growth(&env, &files, &[0, 0, 0], 5);
    let mut bounds = vec![
        vec![0; 3],
        checkpoint_and_kill(&env, port, sessions, &files),
    ];

    // The script names the address the hosts reached the coordinator at, not the head's
    // host name (which resolves to 127.0.0.1 here).
    let script = env.dir.join("dmtcp_restart_script.sh");
    let text = std::fs::read_to_string(&script).expect("restart script");
    assert!(text.contains(&format!("coord_host='{HEAD}'")), "{text}");

    let hostfile = env.dir.join("hostfile");
    let local = dmtcp_tests::hosts::this_host();
    // (placement arguments, host of counter i after that restart)
    type Placement = (Vec<String>, fn(usize) -> String);
    let placements: Vec<Placement> = vec![
        (vec![], |i| Hosts::name(i)),
        (
            vec!["--hostfile".into(), hostfile.display().to_string()],
            |i| Hosts::name(i % 3 + 1),
        ),
        (
            vec!["--hostfile".into(), hostfile.display().to_string()],
            |_| Hosts::name(3),
        ),
        (vec!["--local".into()], |_| dmtcp_tests::hosts::this_host()),
    ];
    let hostfiles = [
        "",
        // Saved hosts are numbered in name order: h1 -> h2, h2 -> h3, h3 -> h1.
        "dmtcp-h2\ndmtcp-h3\n# comment\ndmtcp-h1\n",
        "dmtcp-h3\n",
        "",
    ];
    let mut expected_hosts: Vec<Vec<String>> = vec![(1..=3).map(Hosts::name).collect()];
    for ((args, host_of), hf) in placements.iter().zip(hostfiles) {
        std::fs::write(&hostfile, hf).unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let s = restart(&env, &hosts, port, &script, &args);
        let from = bounds.last().unwrap().clone();
        wait_growth(&env, &files, &from, 5);
        bounds.push(checkpoint_and_kill(&env, port, vec![s], &files));
        expected_hosts.push((1..=3).map(host_of).collect());
    }
    assert_eq!(expected_hosts[4][0], local);

    for (c, file) in files.iter().enumerate() {
        let l = lines(file);
        let numbers: Vec<u64> = l.iter().map(|(n, _)| *n).collect();
        let want: Vec<u64> = (1..=l.len() as u64).collect();
        assert_eq!(numbers, want, "{}: not one unbroken count", file.display());
        for (stretch, w) in bounds.windows(2).enumerate() {
            for (n, host) in &l[w[0][c]..w[1][c]] {
                assert_eq!(
                    *host,
                    expected_hosts[stretch][c],
                    "{}: line {n} (stretch {stretch}) ran on the wrong host",
                    file.display()
                );
            }
        }
    }
    drop(coord);
    drop(hosts);
}
