//! Makes the test process a child subreaper and reaps the orphans that land on it.
//!
//! Computations double-fork (daemon coordinators, `sleep &` in a shell): as a subreaper the test
//! process inherits them instead of init, so nothing the test started escapes it. Children the
//! harness spawned itself are "owned" and waited for by their handle; the sweeper thread reaps
//! only the others, and both sides hold one lock so a fresh child is never reaped by mistake.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, Once, OnceLock};
use std::time::Duration;

fn owned() -> &'static Mutex<HashSet<i32>> {
    static OWNED: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    OWNED.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Locks the owned-pid set; hold it across `spawn` and [`OwnedGuard::own`].
pub fn lock() -> OwnedGuard {
    init();
    OwnedGuard(owned().lock().unwrap_or_else(|e| e.into_inner()))
}

pub struct OwnedGuard(MutexGuard<'static, HashSet<i32>>);

impl OwnedGuard {
    pub fn own(&mut self, pid: u32) {
        self.0.insert(pid as i32);
    }
}

/// Forgets a child once its handle has waited for it.
pub fn disown(pid: u32) {
    owned()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&(pid as i32));
}

/// Sets PR_SET_CHILD_SUBREAPER and starts the sweeper, once per test process.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only changes a flag of this process.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(
            rc,
            0,
            "prctl(PR_SET_CHILD_SUBREAPER): {}",
            std::io::Error::last_os_error()
        );
        std::thread::Builder::new()
            .name("orphan-reaper".into())
            .spawn(|| {
                loop {
                    sweep();
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .expect("start the orphan reaper thread");
    });
}

/// Our direct children, from every thread's `/proc/self/task/*/children`.
pub fn children() -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

/// Reaps exited children that no handle owns.
pub fn sweep() {
    let owned = owned().lock().unwrap_or_else(|e| e.into_inner());
    for pid in children() {
        if !owned.contains(&pid) {
            let mut status = 0;
            // SAFETY: waitpid on a specific child pid with WNOHANG; `status` is a valid int.
            unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        }
    }
}

/// Orphans adopted by this process (children it did not spawn itself).
pub fn orphans() -> Vec<i32> {
    let owned = owned().lock().unwrap_or_else(|e| e.into_inner());
    children()
        .into_iter()
        .filter(|p| !owned.contains(p))
        .collect()
}
