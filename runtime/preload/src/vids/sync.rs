//! The restart side of virtual ids: learn every process's and thread's new real id.
//!
//! The restart entry says whether ids came back exact (pid namespace) or new; each recreated
//! thread notes its new tid by slot. On the checkpoint thread, before `DMT:RESTART`, a process
//! in virtual mode publishes its (virtual, new real) pairs in the key-value store (db
//! `dmtcp:vids`: `n` counts publishers, `e:<i>` holds publisher i's pairs as i32 LE); after
//! the barrier every publisher is done, and each process reads all pairs into its table.
//! The coordinator clears the store when a restart begins, so no earlier restart's pairs
//! remain. No barrier is added: publishing and reading hang on `DMT:RESTART`, which every
//! process meets on every path.

use super::table;
use crate::checkpoint::threads::{self, MAX_THREADS};
use crate::session::{self, SessionError};
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use dmtcp_protocol::KvOp;
use dmtcp_restorer::sys;

const DB: &str = "dmtcp:vids";

/// The last restart recreated ids exactly (pid namespace): nothing to translate.
static EXACT: AtomicBool = AtomicBool::new(true);
/// The process's virtual pid, as written into its last image.
static OWN_VPID: AtomicI32 = AtomicI32::new(0);

#[allow(clippy::declare_interior_mutable_const)]
const NO_TID: AtomicI32 = AtomicI32::new(0);
/// New real tid of each restored thread slot.
static NEW_TIDS: [AtomicI32; MAX_THREADS] = [NO_TID; MAX_THREADS];

/// From the restart entry (no allocation, no TLS yet).
pub fn note_restart_mode(exact: bool) {
    EXACT.store(exact, Ordering::Release);
}

/// From each recreated thread, on its own stack.
pub fn note_thread(slot: usize, real_tid: i32) {
    if let Some(t) = NEW_TIDS.get(slot) {
        t.store(real_tid, Ordering::Release);
    }
}

/// At checkpoint: the pid the image records (virtual).
pub fn note_own_pid(vpid: i32) {
    OWN_VPID.store(vpid, Ordering::Relaxed);
}

fn encode(pairs: &[(i32, i32)]) -> Vec<u8> {
    pairs
        .iter()
        .flat_map(|&(v, r)| v.to_le_bytes().into_iter().chain(r.to_le_bytes()))
        .collect()
}

fn decode(bytes: &[u8], out: &mut Vec<(i32, i32)>) {
    for c in bytes.chunks_exact(8) {
        let v = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let r = i32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        out.push((v, r));
    }
}

/// This process's pairs: its pid and every restored thread. Virtual ids come from the table
/// as it was at checkpoint (still in memory).
fn own_pairs() -> Vec<(i32, i32)> {
    let mut pairs = Vec::new();
    let vpid = OWN_VPID.load(Ordering::Relaxed);
    if vpid > 0 {
        pairs.push((vpid, sys::getpid()));
    }
    for (i, r) in threads::slots().iter().enumerate() {
        let new = NEW_TIDS[i].load(Ordering::Acquire);
        if r.frozen && new > 0 {
            let v = if r.is_main && vpid > 0 {
                vpid
            } else {
                table::to_virtual(r.tid)
            };
            pairs.push((v, new));
        }
    }
    pairs
}

/// Before `DMT:RESTART` (virtual mode only).
pub fn publish() -> Result<(), SessionError> {
    if EXACT.load(Ordering::Acquire) {
        return Ok(());
    }
    let pairs = own_pairs();
    let i = session::kv(DB, b"n", KvOp::IncrBy(1))?
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    session::kv(DB, format!("e:{i}").as_bytes(), KvOp::Set(encode(&pairs)))?;
    crate::debug!("published {} id pairs as entry {i}", pairs.len());
    Ok(())
}

/// After `DMT:RESTART`, with the program's threads still frozen. With exact ids (a computation
/// that ran with virtual ids and is now restarted in a pid namespace) the processes and
/// threads got their virtual ids as real ones: nothing is translated any more.
pub fn collect() -> Result<(), SessionError> {
    note_moved_tids();
    if EXACT.load(Ordering::Acquire) {
        table::clear();
        return Ok(());
    }
    let n = session::kv(DB, b"n", KvOp::Get)?
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let mut all = Vec::new();
    for i in 1..=n {
        if let Some(b) = session::kv(DB, format!("e:{i}").as_bytes(), KvOp::Get)? {
            decode(&b, &mut all);
        }
    }
    let dropped = table::replace(&all);
    if dropped > 0 {
        crate::warn!("{dropped} virtual ids do not fit the id table; they are not translated");
    }
    crate::debug!("virtual ids: {} pairs from {n} processes", all.len());
    Ok(())
}

/// Locks held across the checkpoint name the owner's real tid of then (see `lock_owner`):
/// tell it each thread's tid of then and of now. Also with exact ids, which are the virtual
/// ids and differ from the real tids of a run in virtual mode.
fn note_moved_tids() {
    let mut moved = Vec::new();
    for (i, r) in threads::slots().iter().enumerate() {
        let new = NEW_TIDS[i].load(Ordering::Acquire);
        if !r.frozen || new <= 0 || r.tid == new {
            continue;
        }
        moved.push((r.tid, new));
        // SAFETY: the robust list head the thread had registered (read at checkpoint), with
        // every program thread frozen.
        unsafe { super::lock_owner::fix_robust_list(r.robust_head, r.tid, new) };
    }
    if moved.is_empty() {
        return;
    }
    let dropped = super::lock_owner::note_restart(&moved);
    if dropped > 0 {
        crate::warn!("{dropped} stale lock-owner tids do not fit the table");
    }
}

/// The image section recording the launch's `--pid-mode` (`namespace` or `virtual`), so the
/// restart uses the same strategy.
pub const PID_MODE_SECTION: &str = "pid-mode";

/// The `pid-mode` section for the image, when the launcher chose a mode.
pub fn image_section() -> Option<(String, Vec<u8>)> {
    let mode = std::env::var("DMTCP_PID_MODE").ok()?;
    matches!(mode.as_str(), "namespace" | "virtual")
        .then(|| (PID_MODE_SECTION.to_string(), mode.into_bytes()))
}
