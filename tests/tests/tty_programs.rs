//! Terminal programs driven through a pty the test creates, checkpointed and restarted twice
//! under NEW ptys of other sizes:
//! - `script -q -c bash LOG`: script holds the master of a pty it made, bash runs on its
//!   slave; after each restart the pair is connected again, bash keeps its variables, and
//!   script keeps logging (the log holds what was typed before and after both restarts);
//! - vim: text typed before the checkpoint is still in the buffer after the restarts (vim's
//!   raw terminal mode comes back on the new terminal), `:wq` writes all of it.

use dmtcp_tests::engine_support::LONG;
use dmtcp_tests::pty::{Pty, checkpoint_and_kill, launch_argv, restart_on};
use dmtcp_tests::{Env, QUICK};

#[test]
fn script_running_bash_keeps_its_pty_and_its_log() {
    let env = Env::new("tty_script");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let log = env.dir.path().join("typescript.log");
    let mut pty = Pty::open(&env, 24, 80);
    let argv = format!(
        "script -q -c 'bash --norc --noprofile -i' {}",
        log.display()
    );
    let run = pty.spawn(
        &env,
        "unshare",
        &launch_argv(&env, port, &argv),
        &[("PS1", "$ "), ("SHELL", "/bin/sh")],
    );
    let m = pty.mark();
    pty.send("x=41; echo ready$x\n");
    pty.expect(m, "ready41", LONG);
    let peers = env.status(port).peers() as usize;
    assert!(peers >= 2, "script and bash run under the runtime: {peers}");
    checkpoint_and_kill(&env, port, run);

    for (cycle, (rows, cols)) in [(30u16, 100u16), (40, 120)].into_iter().enumerate() {
        let mut pty = Pty::open(&env, rows, cols);
        let run = restart_on(&env, port, &mut pty, peers, false);
        let m = pty.mark();
        pty.send(&format!("echo v$((x+{}))\n", cycle + 1));
        pty.expect(m, &format!("v{}", 42 + cycle), LONG);
        // script passed the new size on to its own pty (it got SIGWINCH).
        let m = pty.mark();
        pty.send("stty size\n");
        pty.expect(m, &format!("{rows} {cols}"), QUICK);
        if cycle == 0 {
            checkpoint_and_kill(&env, port, run);
        } else {
            let mut run = run;
            pty.send("exit\n");
            let st = run.wait(LONG).expect("script did not exit");
            assert!(st.success(), "{st:?}\n{}", pty.text());
        }
    }
    let text = std::fs::read_to_string(&log).unwrap();
    for want in ["ready41", "v42", "v43"] {
        // Once: the output (the typed command reads `$x`, not the value).
        assert_eq!(text.matches(want).count(), 1, "{want} in the log:\n{text}");
    }
}

/// vim's timers are SIGEV_THREAD timers, made freezable by the runtime's `timer_create`
/// wrapper (runtime/preload/src/checkpoint/posix_timers.rs).
#[test]
fn vim_keeps_its_buffer_over_two_restarts() {
    let env = Env::new("tty_vim");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let file = env.dir.path().join("notes.txt");
    let mut pty = Pty::open(&env, 24, 80);
    // No vimrc, no viminfo, no swap file; the file does not exist yet.
    let argv = format!("vim -u NONE -i NONE -N -n {}", file.display());
    let run = pty.spawn(&env, "unshare", &launch_argv(&env, port, &argv), &[]);
    env.wait_peers(port, 1, true, LONG);
    let m = pty.mark();
    pty.send("ibefore the checkpoint\x1b");
    pty.expect(m, "before the checkpoint", LONG);
    // Let vim read the escape before it is frozen.
    std::thread::sleep(std::time::Duration::from_millis(300));
    checkpoint_and_kill(&env, port, run);

    for (cycle, (rows, cols)) in [(30u16, 100u16), (40, 120)].into_iter().enumerate() {
        let mut pty = Pty::open(&env, rows, cols);
        let run = restart_on(&env, port, &mut pty, 1, false);
        let m = pty.mark();
        pty.send(&format!("oafter restart {}\x1b", cycle + 1));
        pty.expect(m, &format!("after restart {}", cycle + 1), LONG);
        std::thread::sleep(std::time::Duration::from_millis(300));
        if cycle == 0 {
            checkpoint_and_kill(&env, port, run);
        } else {
            let mut run = run;
            pty.send(":wq\r");
            let st = run.wait(LONG).expect("vim did not exit");
            assert!(st.success(), "{st:?}\n{}", pty.text());
        }
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        text,
        "before the checkpoint\nafter restart 1\nafter restart 2\n"
    );
}
