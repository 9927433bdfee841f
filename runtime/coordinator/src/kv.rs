//! The key-value store that plugins use to find each other (`db → key → value`).

use dmtcp_protocol::{KvError, KvOp};
use std::collections::HashMap;

/// The databases of the runtime itself (the elections and address exchanges of a checkpoint
/// or restart); plugins' are named `plugin:<name>`.
pub const RUNTIME_DB_PREFIX: &str = "dmtcp:";

#[derive(Debug, Default)]
pub struct KvStore {
    dbs: HashMap<String, HashMap<Vec<u8>, Vec<u8>>>,
}

fn number(v: &[u8]) -> Result<i64, KvError> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(KvError::NotANumber)
}

fn text(n: i64) -> Vec<u8> {
    n.to_string().into_bytes()
}

impl KvStore {
    /// Applies one operation; see [`KvOp`] for what each returns.
    pub fn apply(&mut self, db: &str, key: &[u8], op: KvOp) -> Result<Option<Vec<u8>>, KvError> {
        if let KvOp::Get = op {
            return Ok(self.dbs.get(db).and_then(|d| d.get(key)).cloned());
        }
        let table = self.dbs.entry(db.to_string()).or_default();
        let old = table.get(key);
        let new = match op {
            KvOp::Get => unreachable!("handled above"),
            KvOp::Set(v) => return Ok(table.insert(key.to_vec(), v)),
            // Plugins use IncrBy for unique ids; wrapping keeps it total rather than an error.
            KvOp::IncrBy(n) => old
                .map(|v| number(v))
                .transpose()?
                .unwrap_or(0)
                .wrapping_add(n),
            KvOp::Min(n) => old.map(|v| number(v)).transpose()?.map_or(n, |o| o.min(n)),
            KvOp::Max(n) => old.map(|v| number(v)).transpose()?.map_or(n, |o| o.max(n)),
        };
        table.insert(key.to_vec(), text(new));
        Ok(Some(text(new)))
    }

    /// Forgets everything (a new computation or a restart begins).
    pub fn clear(&mut self) {
        self.dbs.clear();
    }

    /// Forgets the runtime's own databases (`dmtcp:*`), whose keys serve one checkpoint or
    /// restart only: called as a checkpoint starts, so a long computation does not accumulate
    /// every generation's keys. Plugins' databases stay. Returns the keys dropped.
    pub fn drop_runtime_keys(&mut self) -> usize {
        let mut dropped = 0;
        self.dbs.retain(|db, keys| {
            let runtime = db.starts_with(RUNTIME_DB_PREFIX);
            if runtime {
                dropped += keys.len();
            }
            !runtime
        });
        dropped
    }

    /// Number of keys over all databases.
    pub fn len(&self) -> usize {
        self.dbs.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<Vec<u8>> {
        Some(v.as_bytes().to_vec())
    }

    #[test]
    fn set_returns_previous_and_get_reads_it() {
        let mut kv = KvStore::default();
        assert_eq!(kv.apply("d", b"k", KvOp::Get), Ok(None));
        assert_eq!(kv.apply("d", b"k", KvOp::Set(b"a".to_vec())), Ok(None));
        assert_eq!(kv.apply("d", b"k", KvOp::Set(b"b".to_vec())), Ok(s("a")));
        assert_eq!(kv.apply("d", b"k", KvOp::Get), Ok(s("b")));
        // Databases are separate namespaces.
        assert_eq!(kv.apply("other", b"k", KvOp::Get), Ok(None));
    }

    #[test]
    fn numeric_ops_start_from_absent() {
        let mut kv = KvStore::default();
        assert_eq!(kv.apply("d", b"n", KvOp::IncrBy(5)), Ok(s("5")));
        assert_eq!(kv.apply("d", b"n", KvOp::IncrBy(-7)), Ok(s("-2")));
        assert_eq!(kv.apply("d", b"lo", KvOp::Min(9)), Ok(s("9")));
        assert_eq!(kv.apply("d", b"lo", KvOp::Min(3)), Ok(s("3")));
        assert_eq!(kv.apply("d", b"lo", KvOp::Min(4)), Ok(s("3")));
        assert_eq!(kv.apply("d", b"hi", KvOp::Max(-1)), Ok(s("-1")));
        assert_eq!(kv.apply("d", b"hi", KvOp::Max(8)), Ok(s("8")));
        assert_eq!(kv.apply("d", b"hi", KvOp::Get), Ok(s("8")));
        assert_eq!(kv.len(), 3);
    }

    #[test]
    fn numeric_op_on_text_is_refused_and_leaves_value() {
        let mut kv = KvStore::default();
        kv.apply("d", b"k", KvOp::Set(b"abc".to_vec())).unwrap();
        assert_eq!(
            kv.apply("d", b"k", KvOp::IncrBy(1)),
            Err(KvError::NotANumber)
        );
        assert_eq!(kv.apply("d", b"k", KvOp::Max(1)), Err(KvError::NotANumber));
        assert_eq!(kv.apply("d", b"k", KvOp::Get), Ok(s("abc")));
        kv.clear();
        assert!(kv.is_empty());
    }
}
