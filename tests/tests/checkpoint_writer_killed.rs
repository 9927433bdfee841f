//! A killed checkpoint: the process that writes an image (a child of the program, holding its
//! snapshot) is killed mid-write, as the OOM killer or an administrator might. The checkpoint
//! fails saying so, its half-written file is removed, the previous image stays whole, the
//! program runs on, and the next checkpoint and its restart work.

use dmtcp_tests::engine_support::{
    LONG, bcheckpoint, checkpoint_and_kill, images, numbers, partial_images, restart, wait_lines,
};
use dmtcp_tests::failure_support::{
    array_sum, checkpoint_being_written, random_bytes_with_an_image,
};
use dmtcp_tests::process::children;
use dmtcp_tests::{Env, wait_for};

#[test]
fn a_killed_writer_fails_the_checkpoint_and_loses_nothing() {
    let env = Env::new("writer_killed");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    // 512 MiB of random bytes: the writer needs a good fraction of a second.
    let (mut run, first, kept) = random_bytes_with_an_image(&env, port, 512, &[], env.dir.path());
    let ckpt = checkpoint_being_written(&env, port, env.dir.path());
    let writer = wait_for(
        "the second image's writer to start",
        LONG,
        || {
            let live: Vec<i32> = children(run.pid())
                .into_iter()
                .filter(|&(_, state)| state != 'Z')
                .map(|(p, _)| p)
                .collect();
            (live.len() == 1).then(|| live[0])
        },
        || format!("children: {:?}", children(run.pid())),
    );
    // SAFETY: signalling the writer we found, a child of the program we started.
    assert_eq!(unsafe { libc::kill(writer, libc::SIGKILL) }, 0);
    let out = ckpt.wait(LONG);
    assert_ne!(out.code(), Some(0), "{}", out.describe());
    let said = out.describe();
    assert!(
        said.contains("was killed by signal 9 before finishing"),
        "the reason is not given: {said}"
    );
    assert!(
        partial_images(env.dir.path()).is_empty(),
        "{:?}",
        partial_images(env.dir.path())
    );
    assert_eq!(
        images(env.dir.path(), "incr_array"),
        std::slice::from_ref(&first)
    );
    assert_eq!(std::fs::read(&first).unwrap(), kept, "the image changed");

    // The program ran on, and checkpoints again.
    let have = numbers(&run.stdout_so_far(), "tick").len();
    wait_lines(&env, &mut run, "tick", have + 2);
    bcheckpoint(&env, port);
    let out = checkpoint_and_kill(&env, port, run);
    let before = numbers(&out, "tick");
    let mut r = restart(&env, port, &images(env.dir.path(), "incr_array")[0]);
    wait_lines(&env, &mut r, "tick", 2);
    let out2 = checkpoint_and_kill(&env, port, r);
    let t = numbers(&out2, "tick");
    assert_eq!(t[0], before.last().unwrap() + 1, "{out2}");
    assert_eq!(
        array_sum(&out2),
        array_sum(&out),
        "the restored array differs: {out2}"
    );
}
