//! A fresh directory per test, owned by the test user, removed at the end unless the test
//! failed (then kept and its path printed) or `DMTCP_KEEP_TEST_DIRS` is set.

use crate::user::TestUser;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Parent of every work dir.
pub const ROOT: &str = "/tmp/dmtcp-tests";

pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    /// Creates `/tmp/dmtcp-tests/<name>-<pid>-<n>` with `home/` (the user's HOME in tests),
    /// both owned by `user`, and `.harness/` (captured output) owned by the runner.
    pub fn new(name: &str, user: &TestUser) -> WorkDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let root = Path::new(ROOT);
        std::fs::create_dir_all(root).expect("create /tmp/dmtcp-tests");
        // World-writable with the sticky bit, like /tmp, so runs as different users coexist.
        let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o1777));
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = root.join(format!(
            "{safe}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        for d in [path.clone(), path.join("home")] {
            std::fs::create_dir(&d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
            if user.needs_switch() {
                chown(&d, Some(user.uid), Some(user.gid))
                    .unwrap_or_else(|e| panic!("chown {} to {}: {e}", d.display(), user.name));
            }
        }
        std::fs::create_dir(path.join(".harness")).unwrap();
        WorkDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The test user's HOME during the test.
    pub fn home(&self) -> PathBuf {
        self.path.join("home")
    }

    /// Where the harness keeps captured output (not written by the test user).
    pub fn harness(&self) -> PathBuf {
        self.path.join(".harness")
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("DMTCP_KEEP_TEST_DIRS").is_some() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
