//! Helpers for the tests of checkpoints that fail part-way (a full disk, a killed writer, a
//! dead coordinator): a program whose image cannot shrink (tests/programs/incr_array.c, random
//! bytes), a checkpoint caught while its image is being written, and the array's checksum the
//! program prints, which a restart must reproduce.

use crate::engine_support::{LONG, bcheckpoint, images, partial_images, wait_lines};
use crate::{Env, Spawned, wait_for};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// `incr_array` holding `mib` MiB of random bytes, launched with `extra` `dmtcp_launch`
/// options under the coordinator at `port`, checkpointed once (`--bcheckpoint`) into `dir`.
/// Returns the running program, its one image and that image's bytes.
pub fn random_bytes_with_an_image(
    env: &Env,
    port: u16,
    mib: u32,
    extra: &[&OsStr],
    dir: &Path,
) -> (Spawned, PathBuf, Vec<u8>) {
    let prog = env.program("incr_array");
    let launch = env
        .launch_joined(port, extra)
        .arg(&prog)
        .arg(mib.to_string());
    let mut run = env.spawn(&launch);
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(env, &mut run, "tick", 2);
    bcheckpoint(env, port);
    let first = images(dir, "incr_array");
    assert_eq!(first.len(), 1, "{first:?}");
    let bytes = std::fs::read(&first[0]).unwrap();
    (run, first[0].clone(), bytes)
}

/// Starts `dmtcp_command --bcheckpoint` and returns it once the image's writer has created its
/// file in `dir` (the writer then needs a while for a large image).
pub fn checkpoint_being_written(env: &Env, port: u16, dir: &Path) -> Spawned {
    let ckpt = env.spawn(&env.tool("dmtcp_command").args([
        "--coord-port",
        &port.to_string(),
        "--bcheckpoint",
    ]));
    wait_for(
        "the image's writer to start",
        LONG,
        || (!partial_images(dir).is_empty()).then_some(()),
        || env.diagnostics(),
    );
    ckpt
}

/// The checksum of the array that `incr_array` prints on its tick lines ("tick N sum S").
pub fn array_sum(out: &str) -> String {
    out.lines()
        .find_map(|l| l.split(" sum ").nth(1).map(str::to_string))
        .expect("a tick line with the checksum")
}
