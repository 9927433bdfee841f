//! A full disk: a checkpoint that cannot write its image fails with the system's reason, leaves
//! no partial file, keeps the previous image (and, incremental, the chain it belongs to) whole,
//! and the program runs on; once there is room again the next checkpoint succeeds and restarts.
//! The image directory is a small tmpfs (mounting needs root: the test says SKIP otherwise);
//! the program (tests/programs/incr_array.c, 16 MiB of random bytes, so the image cannot shrink
//! below its memory) runs as the test user.

use dmtcp_tests::engine_support::{
    bcheckpoint, checkpoint_and_kill, image_generation, images, numbers, partial_images,
    restart_images, wait_lines,
};
use dmtcp_tests::failure_support::{array_sum, random_bytes_with_an_image};
use dmtcp_tests::user::is_root;
use dmtcp_tests::{Env, QUICK};
use std::ffi::OsStr;
use std::path::PathBuf;

const MIB: u64 = 1 << 20;

/// A tmpfs of `size_mib` at `dir`, owned by the test user; unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(env: &Env, dir: PathBuf, size_mib: u64) -> SmallDisk {
        std::fs::create_dir_all(&dir).unwrap();
        let opts = format!(
            "size={size_mib}m,mode=0700,uid={},gid={}",
            env.user.uid, env.user.gid
        );
        let out = dmtcp_tests::Cmd::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "dmtcp-test-small"])
            .arg(&dir)
            .run(QUICK);
        assert_eq!(out.code(), Some(0), "mount: {}", out.describe());
        SmallDisk { dir }
    }

    /// Fills the disk until `leave` bytes are free (a file written as root, so nothing of the
    /// test user's quota-free space is reserved).
    fn fill_leaving(&self, leave: u64) -> PathBuf {
        let st = nix::sys::statvfs::statvfs(&self.dir).unwrap();
        let free = st.blocks_available() * st.fragment_size();
        let filler = self.dir.join("filler");
        let len = free.saturating_sub(leave) as usize;
        std::fs::write(&filler, vec![0xa5u8; len]).unwrap();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = dmtcp_tests::Cmd::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .run(QUICK);
    }
}

fn full_disk_fails_cleanly_and_loses_nothing(name: &str, incremental: bool) {
    if !is_root() {
        eprintln!("SKIP {name}: mounting the small tmpfs needs root");
        return;
    }
    let env = Env::new(name);
    let disk = SmallDisk::mount(&env, env.dir.join("small"), 48);
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let mut extra = vec![OsStr::new("--ckptdir"), disk.dir.as_os_str()];
    if incremental {
        extra.push(OsStr::new("--incremental"));
    }
    let (mut run, first, kept) = random_bytes_with_an_image(&env, port, 16, &extra, &disk.dir);
    assert_eq!(image_generation(&env, &first), 1);
    assert!(kept.len() as u64 > 16 * MIB, "{} bytes", kept.len());

    // Two more ticks: the program rewrites its hot 5 % (0.8 MiB) on each, so an incremental
    // generation has that much to store (with no tick in between it would be all references).
    let have = numbers(&run.stdout_so_far(), "tick").len();
    wait_lines(&env, &mut run, "tick", have + 2);
    // Room for a few MiB only: the next image (16 MiB of random bytes, or in an incremental
    // generation the 0.8 MiB that changed) does not fit.
    let filler = disk.fill_leaving(if incremental { 256 << 10 } else { 4 * MIB });
    let have = numbers(&run.stdout_so_far(), "tick").len();
    let bad = env.command(["--coord-port", &port.to_string(), "--bcheckpoint"]);
    assert_ne!(
        bad.code(),
        Some(0),
        "the checkpoint should fail: {}",
        bad.describe()
    );
    let said = format!("{}\n{}", bad.describe(), coord.log());
    assert!(
        said.contains("No space left on device"),
        "the reason is not given: {said}"
    );
    assert!(
        partial_images(&disk.dir).is_empty(),
        "{:?}",
        partial_images(&disk.dir)
    );
    assert_eq!(
        images(&disk.dir, "incr_array"),
        std::slice::from_ref(&first)
    );
    assert_eq!(
        std::fs::read(&first).unwrap(),
        kept,
        "the previous image changed"
    );
    assert_eq!(image_generation(&env, &first), 1);

    // The program ran on through the failed checkpoint (its checks print CORRUPT otherwise).
    wait_lines(&env, &mut run, "tick", have + 3);

    std::fs::remove_file(&filler).unwrap();
    bcheckpoint(&env, port);
    let imgs = images(&disk.dir, "incr_array");
    assert_eq!(image_generation(&env, &imgs[0]), 3, "{imgs:?}");
    let out = checkpoint_and_kill(&env, port, run);
    let before = numbers(&out, "tick");
    let cold = array_sum(&out);

    let imgs = images(&disk.dir, "incr_array");
    let mut r = restart_images(&env, port, &imgs);
    env.wait_peers_of(port, 1, &mut r);
    wait_lines(&env, &mut r, "tick", 3);
    let out = checkpoint_and_kill(&env, port, r);
    let t = numbers(&out, "tick");
    assert_eq!(t[0], before.last().unwrap() + 1, "{out}");
    assert_eq!(array_sum(&out), cold, "the restored array differs: {out}");
}

#[test]
fn full_disk_fails_cleanly_and_loses_nothing_full_images() {
    full_disk_fails_cleanly_and_loses_nothing("disk_full", false);
}

#[test]
fn full_disk_fails_cleanly_and_loses_nothing_incremental() {
    full_disk_fails_cleanly_and_loses_nothing("disk_full_incr", true);
}
