//! Open file descriptions shared by several processes come back shared
//! (tests/programs/shared_append.c): a parent and its child take turns writing records through
//! one inherited fd opened without O_APPEND, and both count in one inherited eventfd. After
//! two checkpoint/kill/restart cycles the file holds every record once, in turn order (a
//! per-process offset would make them overwrite each other), the parent's offset is the sum
//! of both processes' writes, and the eventfd counted both processes' increments. The child
//! also opened the file itself (read-only): that description stays its own, and its offset
//! keeps following the records.

use dmtcp_tests::Env;
use dmtcp_tests::both_pid_modes;
use dmtcp_tests::engine_support::{Cycles, cycles, numbers};
use dmtcp_tests::pid_modes::{PidMode, launch_tree};

const TURNS: u64 = 1500;

/// Under both id strategies: with virtual ids the second checkpoint runs with real pids that
/// differ from the virtual ones (kcmp needs the real ones).
fn file_offset_and_eventfd_stay_shared_over_two_cycles(mode: PidMode) {
    let env = Env::new(&format!("shared_fds_{}", mode.name()));
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("shared_append");
    let out = env.dir.path().join("records.txt");
    let args = format!("{} {} {TURNS}", prog.display(), out.display());
    let plan = Cycles {
        program: "shared_append",
        images: 2..=2,
        ready: &[("step", 3)],
        counters: &["step"],
        restarts: 2,
    };
    let outs = cycles(&env, port, launch_tree(&env, port, mode, &args, 2), &plan);
    let next = numbers(&outs[1], "step").last().unwrap() + 1;
    assert!(next * 50 < TURNS, "the program went too fast: {}", outs[1]);
    assert!(
        outs[2].ends_with(&format!(
            "file ok {}\neventfd {}\ndone\n",
            2 * TURNS,
            2 * TURNS
        )),
        "{}",
        outs[2]
    );
    // The file as the test reads it: every record once, alternating, nothing overwritten.
    let text = std::fs::read_to_string(&out).unwrap();
    let want: String = (1..=TURNS).map(|i| format!("P{i:05}\nC{i:05}\n")).collect();
    assert!(text == want, "{} bytes, want {}", text.len(), want.len());
}

both_pid_modes!(file_offset_and_eventfd_stay_shared_over_two_cycles);
