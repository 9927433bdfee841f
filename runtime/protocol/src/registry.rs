//! The per-user list of running coordinators, kept beside their secrets, so that
//! `dmtcp_command` and `dmtcp_launch` can find a coordinator started on a free port.

use crate::auth::secret_dir;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorEntry {
    pub coord_id: String,
    pub hostname: String,
    pub port: u16,
    pub pid: i32,
}

fn entry_path(coord_id: &str) -> PathBuf {
    secret_dir().join(format!("{coord_id}.json"))
}

/// Records a running coordinator; the secret file must already exist (it made the directory).
pub fn register(entry: &CoordinatorEntry) -> std::io::Result<()> {
    let path = entry_path(&entry.coord_id);
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec(entry).expect("entry serializes"))?;
    fs::rename(tmp, path)
}

/// Removes a coordinator's entry and secret (on coordinator exit).
pub fn unregister(coord_id: &str) {
    let _ = fs::remove_file(entry_path(coord_id));
    let _ = fs::remove_file(crate::auth::secret_path(coord_id));
}

/// The coordinators of this user that run on this host and are still alive.
pub fn live_on_this_host() -> Vec<CoordinatorEntry> {
    let host = crate::ids::hostname();
    let Ok(dir) = fs::read_dir(secret_dir()) else {
        return Vec::new();
    };
    let mut out: Vec<CoordinatorEntry> = dir
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_slice(&fs::read(e.path()).ok()?).ok())
        .filter(|e: &CoordinatorEntry| e.hostname == host && alive(e.pid))
        .collect();
    out.sort_by_key(|e| e.port);
    out
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}
