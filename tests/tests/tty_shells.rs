//! Interactive shells in a terminal, checkpointed and restarted under a NEW terminal twice:
//! the test creates a pty, runs `dmtcp_launch bash -i` (and dash) on it as its controlling
//! terminal, types commands, checkpoints, kills, restarts with `dmtcp_restart` running on
//! another pty of another size, and types more. The shell keeps its variables and functions
//! (`x=41` before, `echo $((x+1))` after gives 42), reads and writes the new terminal, gets
//! SIGWINCH for the new size (a `trap ... WINCH`), and job control works: a command it runs
//! is in its own process group, which is the terminal's foreground group.

use dmtcp_tests::engine_support::LONG;
use dmtcp_tests::pty::{Pty, checkpoint_and_kill, launch_argv, restart_on};
use dmtcp_tests::{Env, QUICK};

/// Prints the process group, the terminal's foreground group and the pid of a command the
/// shell runs (`/proc/<pid>/stat` fields 5 and 8).
const JOBCTL: &str = "sh -c 'set -- $(cat /proc/$$/stat); echo \"pg=$5 fg=$8 pid=$$\"'\n";

/// Checks the `pg= fg= pid=` line after `mark`: own group, in the foreground. Returns once
/// the shell printed its next prompt: it has reaped the job and taken the terminal back (a
/// checkpoint before that saw the job's group in the foreground, so the restored shell got no
/// SIGWINCH, or caught the job exiting).
fn assert_job_control(pty: &mut Pty, mark: usize) {
    let deadline = std::time::Instant::now() + QUICK;
    let line = loop {
        let text = pty.since(mark).replace('\r', "\n");
        // The job's line (a prompt may come first), not the echo of the typed command.
        let found = text
            .lines()
            .filter_map(|l| l.find("pg=").map(|i| &l[i..]))
            .find(|l| l[3..].starts_with(|c: char| c.is_ascii_digit()));
        if let Some(l) = found
            && let Some(at) = text.find(&format!("{l}\n"))
            && text[at + l.len()..].contains("$ ")
        {
            break l.trim().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no job line in {text:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let v: Vec<&str> = line
        .split(' ')
        .map(|f| f.split('=').nth(1).unwrap_or(""))
        .collect();
    assert!(
        v.len() == 3 && v[0] == v[1] && v[1] == v[2],
        "the command is not its own foreground job: {line:?}"
    );
}

fn shell_over_two_cycles(shell: &str, argv: &str, job_control: bool) {
    shell_cycles(shell, argv, job_control, false)
}

/// `leader`: the shell is launched directly on the terminal (virtual ids), so it leads the
/// terminal's session; the restart runs from a shell that leads the new terminal's session (as
/// from a user's login shell), where the restored shell comes back in that session.
fn shell_cycles(shell: &str, argv: &str, job_control: bool, leader: bool) {
    let env = Env::new(&format!(
        "tty_{shell}{}",
        if leader { "_leader" } else { "" }
    ));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let mut pty = Pty::open(&env, 24, 80);
    let vars = [("PS1", "$ "), ("ENV", "")];
    let run = if leader {
        let mut args: Vec<String> = [
            "--join-coordinator",
            "--coord-port",
            &port.to_string(),
            "--pid-mode=virtual",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(argv.split(' ').map(String::from));
        pty.spawn(&env, env.tools.path("dmtcp_launch"), &args, &vars)
    } else {
        pty.spawn(&env, "unshare", &launch_argv(&env, port, argv), &vars)
    };
    env.wait_peers(port, 1, true, LONG);
    let m = pty.mark();
    pty.send("x=41; f() { echo \"fn$(( $1 + 1 ))\"; }; trap 'echo WINCH$x' WINCH; echo ready$x\n");
    pty.expect(m, "ready41", LONG);
    if job_control {
        let m = pty.mark();
        pty.send(JOBCTL);
        assert_job_control(&mut pty, m);
    }
    if leader {
        let m = pty.mark();
        pty.send("set -- $(cat /proc/$$/stat); echo \"leads=$(( $6 == $$ ))\"\n");
        pty.expect(m, "leads=1", QUICK);
    }
    checkpoint_and_kill(&env, port, run);

    for (cycle, (rows, cols)) in [(30u16, 100u16), (40, 120)].into_iter().enumerate() {
        let mut pty = Pty::open(&env, rows, cols);
        let run = restart_on(&env, port, &mut pty, 1, leader);
        let m = pty.mark();
        pty.send(&format!("echo v$((x+{})); f {cycle}\n", cycle + 1));
        pty.expect(m, &format!("v{}", 42 + cycle), LONG);
        pty.expect(m, &format!("fn{}", cycle + 1), QUICK);
        // The size changed: the trap ran.
        pty.expect(m, "WINCH41", QUICK);
        let m = pty.mark();
        pty.send("stty size\n");
        pty.expect(m, &format!("{rows} {cols}"), QUICK);
        if job_control {
            let m = pty.mark();
            pty.send(JOBCTL);
            assert_job_control(&mut pty, m);
        }
        if cycle == 0 {
            checkpoint_and_kill(&env, port, run);
        } else {
            let mut run = run;
            pty.send("exit\n");
            let st = run.wait(LONG).expect("the shell did not exit");
            // A shell gives the terminal back to the group it started from when it exits:
            // outside the pid namespace here, which dash reads as group 0 (it used to exit 2,
            // "Cannot set tty process group"), or its own group by its virtual id.
            assert!(st.success(), "{st:?}\n{}", pty.text());
        }
    }
}

#[test]
fn bash_keeps_variables_functions_and_job_control_under_a_new_terminal() {
    shell_over_two_cycles("bash", "bash --norc --noprofile -i", true);
}

#[test]
fn dash_keeps_variables_and_functions_under_a_new_terminal() {
    shell_over_two_cycles("dash", "dash -i", true);
}

#[test]
fn dash_leading_its_session_gets_the_restart_terminal_and_exits_0() {
    shell_cycles("dash", "dash -i", true, true);
}

#[test]
fn bash_leading_its_session_gets_the_restart_terminal_with_job_control() {
    shell_cycles("bash", "bash --norc --noprofile -i", true, true);
}
