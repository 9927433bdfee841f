//! All or nothing: when one process of a computation cannot write its image, the others'
//! new images are discarded, so every process keeps its previous (complete) image.

use dmtcp_tests::engine_support::{
    bcheckpoint, image_generation, images, partial_images, wait_lines,
};
use dmtcp_tests::{Env, QUICK};
use std::os::unix::fs::PermissionsExt;

#[test]
fn a_failed_process_keeps_everyones_previous_image() {
    let env = Env::new("ckpt_atomic");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let prog = env.program("ckpt_counter");
    let (dir_a, dir_b) = (env.dir.join("a"), env.dir.join("b"));
    let mut runs = Vec::new();
    for d in [&dir_a, &dir_b] {
        let mk = env.run(&env.cmd("mkdir").arg(d), QUICK);
        assert_eq!(mk.code(), Some(0), "{}", mk.describe());
        let cmd = env
            .launch([
                "--join-coordinator",
                "--coord-port",
                &port.to_string(),
                "--ckptdir",
            ])
            .arg(d)
            .arg(&prog);
        runs.push(env.spawn(&cmd));
    }
    env.wait_peers(port, 2, true, dmtcp_tests::LONG);
    for r in &mut runs {
        wait_lines(&env, r, "tick", 2);
    }
    bcheckpoint(&env, port);
    let a1 = images(&dir_a, "ckpt_counter");
    assert_eq!(a1.len(), 1, "{a1:?}");
    assert_eq!(image_generation(&env, &a1[0]), 1);

    // B's directory becomes read-only: B cannot write generation 2.
    std::fs::set_permissions(&dir_b, std::fs::Permissions::from_mode(0o555)).unwrap();
    let bad = env.command(["--coord-port", &port.to_string(), "--bcheckpoint"]);
    std::fs::set_permissions(&dir_b, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_ne!(
        bad.code(),
        Some(0),
        "the checkpoint should fail: {}",
        bad.describe()
    );
    let a2 = images(&dir_a, "ckpt_counter");
    assert_eq!(a2, a1);
    assert_eq!(
        image_generation(&env, &a2[0]),
        1,
        "A's image was replaced by a half generation"
    );
    assert!(
        partial_images(&dir_a).is_empty(),
        "{:?}",
        partial_images(&dir_a)
    );

    // Both keep running and checkpoint again once B can write.
    let st = env.wait_peers(port, 2, true, dmtcp_tests::LONG);
    assert_eq!(st.peers(), 2);
    bcheckpoint(&env, port);
    assert_eq!(
        image_generation(&env, &images(&dir_a, "ckpt_counter")[0]),
        3
    );
}
