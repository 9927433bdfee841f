//! Finds the built tools (`target/<profile>/` beside the test executable, or `DMTCP_BIN_DIR`)
//! and makes sure the unprivileged test user can execute them.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The tools tests use; each must exist before a test runs.
pub const TOOLS: &[&str] = &[
    "dmtcp_launch",
    "dmtcp_command",
    "dmtcp_coordinator",
    "dmtcp_checkpoint",
];

#[derive(Debug)]
pub struct Tools {
    /// The directory tests execute tools from (maybe a world-readable copy).
    pub dir: PathBuf,
    /// Where the build put them.
    pub built: PathBuf,
}

/// The located tools, once per test process.
pub fn tools() -> &'static Tools {
    static T: OnceLock<Tools> = OnceLock::new();
    T.get_or_init(Tools::locate)
}

impl Tools {
    fn locate() -> Tools {
        let built = match std::env::var_os("DMTCP_BIN_DIR").filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => {
                // The test binary is target/<profile>/deps/<name>-<hash>.
                let exe = std::env::current_exe().expect("current_exe");
                exe.parent()
                    .and_then(Path::parent)
                    .expect("target/<profile>")
                    .to_path_buf()
            }
        };
        let dir = if crate::user::is_root() && !reachable_by_others(&built) {
            copy_for_others(&built)
        } else {
            built.clone()
        };
        Tools { dir, built }
    }

    /// The path of a shipped file; panics with the fix when it was not built.
    pub fn path(&self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        assert!(
            p.exists(),
            "{name} not found in {}: build the workspace first with `cargo build --release \
             --workspace` (tests/run.sh does), or point DMTCP_BIN_DIR at the directory holding it",
            self.built.display()
        );
        p
    }

    /// Panics unless every tool and the runtime library are present.
    pub fn require_all(&self) {
        for t in TOOLS.iter().chain(["libdmtcp.so"].iter()) {
            self.path(t);
        }
    }
}

/// True when every directory up to `dir` is searchable by others and `dir` is readable.
fn reachable_by_others(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    let searchable = dir
        .ancestors()
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    searchable && std::fs::metadata(&dir).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

/// Copies the shipped files (tools, libraries) into a 0755 directory under /tmp, reused by every
/// test of the run as long as the copies are up to date.
fn copy_for_others(built: &Path) -> PathBuf {
    let shipped: Vec<PathBuf> = std::fs::read_dir(built)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .filter(|p| {
                    let n = p.file_name().unwrap_or_default().to_string_lossy();
                    n.starts_with("dmtcp") || n.ends_with(".so")
                })
                .collect()
        })
        .unwrap_or_default();
    // The name covers the build's path, sizes and times: a rebuild gets a new copy, and a copy
    // in use by a concurrent test process is never replaced under it.
    let mut key = 0xcbf2_9ce4_8422_2325u64;
    let mut mix = |bytes: &[u8]| {
        for b in bytes {
            key = (key ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    mix(built.to_string_lossy().as_bytes());
    for src in &shipped {
        if let Ok(m) = std::fs::metadata(src) {
            mix(src.to_string_lossy().as_bytes());
            mix(&m.size().to_le_bytes());
            mix(&m.mtime_nsec().to_le_bytes());
            mix(&m.mtime().to_le_bytes());
        }
    }
    let dest = PathBuf::from(format!("/tmp/dmtcp-tests-tools-{key:016x}"));
    if dest.is_dir() {
        return dest;
    }
    let tmp = PathBuf::from(format!("{}.{}", dest.display(), std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("create tool copy dir");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    for src in &shipped {
        let dst = tmp.join(src.file_name().unwrap());
        std::fs::copy(src, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    if std::fs::rename(&tmp, &dest).is_err() {
        // A concurrent test process made the same copy first.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    dest
}
