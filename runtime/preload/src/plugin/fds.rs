//! Protected fds: descriptors the checkpoint must leave alone (the runtime's own, and those a
//! plugin marks with `dmtcp_protect_fd`). The fd subsystems read [`protected_fds`].

use crate::settings::{COORD_FD, LOG_FD};
use std::collections::BTreeSet;
use std::sync::Mutex;

static PROTECTED: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

pub fn protect(fd: i32) {
    PROTECTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(fd);
}

pub fn unprotect(fd: i32) -> bool {
    PROTECTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&fd)
}

pub fn is_protected(fd: i32) -> bool {
    fd == COORD_FD
        || fd == LOG_FD
        || PROTECTED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&fd)
}

/// Every protected fd, the runtime's own included, in ascending order.
pub fn protected_fds() -> Vec<i32> {
    let mut v: Vec<i32> = PROTECTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .copied()
        .collect();
    v.extend([COORD_FD, LOG_FD]);
    v.sort_unstable();
    v.dedup();
    v
}
