//! A dead coordinator: the computation runs on without checkpoints (and says so), a checkpoint
//! in progress when it dies leaves neither a partial image nor a stray writer process, the
//! previous image stays whole and restarts under a new coordinator.

use dmtcp_tests::engine_support::{
    LONG, assert_consecutive, bcheckpoint, checkpoint_and_kill, images, numbers, partial_images,
    restart, wait_lines,
};
use dmtcp_tests::failure_support::{checkpoint_being_written, random_bytes_with_an_image};
use dmtcp_tests::process::zombie_children;
use dmtcp_tests::{Env, Spawned, wait_for};
use std::time::Duration;

/// Waits for the runtime's warning on the program's stderr, then for `more` further ticks,
/// which must continue its numbering.
fn runs_on(env: &Env, run: &mut Spawned, more: usize) {
    wait_for(
        "the program's warning that it runs on without checkpoints",
        LONG,
        || {
            run.stderr_so_far()
                .contains("the program runs on without checkpoints")
                .then_some(())
        },
        || format!("stderr: {}", run.stderr_so_far()),
    );
    let have = numbers(&run.stdout_so_far(), "tick").len();
    wait_lines(env, run, "tick", have + more);
    assert_consecutive(
        &numbers(&run.stdout_so_far(), "tick"),
        1,
        "through the coordinator's death",
    );
}

#[test]
fn the_program_runs_on_when_its_coordinator_dies_and_its_image_restarts() {
    let env = Env::new("coord_loss");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_counter");
    let mut run = env.spawn(&env.launch_joined(port, [prog.to_str().unwrap()]));
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 5);
    bcheckpoint(&env, port);
    let at = numbers(&run.stdout_so_far(), "tick").len() as u64;
    coord.signal(libc::SIGKILL);
    runs_on(&env, &mut run, 10);
    run.signal_group(libc::SIGKILL);
    drop(run.wait(LONG));

    let imgs = images(env.dir.path(), "ckpt_counter");
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    let coord2 = env.coordinator(&[]);
    let mut r = restart(&env, coord2.port, &imgs[0]);
    wait_lines(&env, &mut r, "tick", 3);
    let t = numbers(&checkpoint_and_kill(&env, coord2.port, r), "tick");
    assert!(
        t[0] <= at + 1,
        "restarted at tick {} after a checkpoint by tick {at}",
        t[0]
    );
    assert_consecutive(&t, t[0], "the restarted program");
}

#[test]
fn a_checkpoint_cut_short_by_the_coordinators_death_leaves_nothing_behind() {
    let env = Env::new("coord_loss_mid");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    // 512 MiB of random bytes: the writer needs a good fraction of a second.
    let (mut run, first, kept) = random_bytes_with_an_image(&env, port, 512, &[], env.dir.path());
    let ckpt = checkpoint_being_written(&env, port, env.dir.path());
    coord.signal(libc::SIGKILL);
    let out = ckpt.wait(LONG);
    assert_ne!(out.code(), Some(0), "{}", out.describe());

    runs_on(&env, &mut run, 3);
    wait_for(
        "the partial image to be deleted and its writer reaped",
        LONG,
        || {
            (partial_images(env.dir.path()).is_empty() && zombie_children(run.pid()).is_empty())
                .then_some(())
        },
        || {
            format!(
                "left: {:?}, zombies {:?}",
                partial_images(env.dir.path()),
                zombie_children(run.pid())
            )
        },
    );
    assert_eq!(
        images(env.dir.path(), "incr_array"),
        std::slice::from_ref(&first)
    );
    assert_eq!(std::fs::read(&first).unwrap(), kept, "the image changed");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !run.stdout_so_far().contains("CORRUPT"),
        "{}",
        run.stdout_so_far()
    );
    run.signal_group(libc::SIGKILL);
    drop(run.wait(LONG));
}
