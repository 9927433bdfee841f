//! After a lazy restart (`dmtcp_restart --lazy`), memory arrives in the background: pages not
//! loaded yet are missing from the page tables and served on first touch by the pager through
//! userfaultfd. Two things must not happen until everything is loaded: a `fork` (without
//! `UFFD_FEATURE_EVENT_FORK`, which needs privileges, the child would see zeros where pages are
//! still missing) and a checkpoint (the pagemap scan would take missing pages for untouched
//! ones and save them as holes). Both wait here; once no mapping is registered any more
//! (`um` in `/proc/self/smaps` VmFlags) the check costs one relaxed load. `dmtcp_restart` says
//! whether it started a pager (`RESTART_LAZY`), so an eager restart never reads smaps (a walk
//! of every page table, milliseconds for a large process, on the path to the first instruction).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Set after a restart while some mapping is still registered with userfaultfd.
static LOADING: AtomicBool = AtomicBool::new(false);

/// Did `dmtcp_restart` leave memory to a pager? Set by the restart entry, before any thread.
static PAGER: AtomicBool = AtomicBool::new(false);

/// Restart entry: whether this restart started a pager (`RESTART_LAZY`).
pub fn note_pager(lazy: bool) {
    PAGER.store(lazy, Ordering::Release);
}

/// After a restart: is memory still arriving? Only a lazy restart can say yes.
pub fn note_restart() {
    LOADING.store(PAGER.load(Ordering::Acquire), Ordering::Release);
}

/// Returns once no mapping waits for the pager. If the pager dies, its watcher kills this
/// process, so the wait cannot outlive a failed load.
pub fn wait_loaded() {
    if !LOADING.load(Ordering::Acquire) {
        return;
    }
    let mut told = false;
    while registered() {
        if !told {
            crate::debug!("waiting for the lazy restart to load every page first");
            told = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    LOADING.store(false, Ordering::Release);
}

/// Does any mapping of this process still have userfaultfd missing-page tracking?
fn registered() -> bool {
    std::fs::read_to_string("/proc/self/smaps").is_ok_and(|s| {
        s.lines()
            .filter_map(|l| l.strip_prefix("VmFlags:"))
            .any(|flags| flags.split_whitespace().any(|f| f == "um"))
    })
}
