//! Virtual id tables: a plugin hands the program a virtual id that stays the same across
//! restarts and maps it to the real id of the moment (`dmtcp_vid_*`).
//!
//! Tables live in the runtime's memory, which the image saves, so they survive restart; a
//! plugin updates the real side in its `Restart` hook.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
struct Table {
    to_real: BTreeMap<i64, i64>,
    to_virtual: BTreeMap<i64, i64>,
}

static TABLES: Mutex<BTreeMap<String, Table>> = Mutex::new(BTreeMap::new());

fn with<R>(table: &str, f: impl FnOnce(&mut Table) -> R) -> R {
    let mut all = TABLES.lock().unwrap_or_else(|e| e.into_inner());
    f(all.entry(table.to_string()).or_default())
}

/// Registers `real` and returns its virtual id: `real` itself when that virtual id is free
/// (so ids look natural before the first restart), else the next free one above the largest.
/// Registering a real id twice returns the same virtual id.
pub fn register(table: &str, real: i64) -> i64 {
    with(table, |t| {
        if let Some(&v) = t.to_virtual.get(&real) {
            return v;
        }
        let v = if t.to_real.contains_key(&real) {
            t.to_real.last_key_value().map_or(real, |(&k, _)| k + 1)
        } else {
            real
        };
        t.to_real.insert(v, real);
        t.to_virtual.insert(real, v);
        v
    })
}

pub fn to_real(table: &str, virt: i64) -> Option<i64> {
    with(table, |t| t.to_real.get(&virt).copied())
}

pub fn to_virtual(table: &str, real: i64) -> Option<i64> {
    with(table, |t| t.to_virtual.get(&real).copied())
}

/// Points `virt` at a new real id (after restart). False if `virt` is unknown.
pub fn update(table: &str, virt: i64, new_real: i64) -> bool {
    with(table, |t| {
        let Some(old) = t.to_real.get(&virt).copied() else {
            return false;
        };
        if t.to_virtual.get(&old) == Some(&virt) {
            t.to_virtual.remove(&old);
        }
        t.to_real.insert(virt, new_real);
        t.to_virtual.insert(new_real, virt);
        true
    })
}

/// Forgets `virt`. False if it was unknown.
pub fn unregister(table: &str, virt: i64) -> bool {
    with(table, |t| {
        let Some(real) = t.to_real.remove(&virt) else {
            return false;
        };
        if t.to_virtual.get(&real) == Some(&virt) {
            t.to_virtual.remove(&real);
        }
        true
    })
}
