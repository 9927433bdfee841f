//! The `sysv-ipc` image section: the SysV IPC objects a process knew of at checkpoint time
//! (shared memory segments, semaphore sets, message queues), written by the runtime library
//! and recreated by `dmtcp_restart` with the same ids before the processes restart.
//!
//! Several processes of a computation may save the same object; restart keeps the first copy
//! of each id (they were saved while every process was frozen, so the copies agree).

use serde::{Deserialize, Serialize};

pub const SYSV_IPC_SECTION: &str = "sysv-ipc";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysvObjects {
    pub shm: Vec<SysvShm>,
    pub sem: Vec<SysvSem>,
    pub msg: Vec<SysvMsgQueue>,
}

/// A shared memory segment. Its bytes come from the images' `/SYSV` regions of the processes
/// that had it attached, or from `content` when none had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysvShm {
    pub id: i32,
    pub key: i32,
    /// Permission bits (0o777).
    pub mode: u32,
    pub size: u64,
    /// Marked for removal (`IPC_RMID`) while still attached: removed again after restart.
    pub removed: bool,
    pub content: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysvSem {
    pub id: i32,
    pub key: i32,
    pub mode: u32,
    pub values: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysvMsgQueue {
    pub id: i32,
    pub key: i32,
    pub mode: u32,
    /// `msg_qbytes`: the queue's byte limit.
    pub qbytes: u64,
    /// Queued messages, oldest first.
    pub messages: Vec<SysvMessage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysvMessage {
    pub mtype: i64,
    pub data: Vec<u8>,
}

impl SysvObjects {
    pub fn is_empty(&self) -> bool {
        self.shm.is_empty() && self.sem.is_empty() && self.msg.is_empty()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(b)
    }

    /// Adds the objects of `other` whose ids are not here yet (first copy wins), except that a
    /// segment's saved bytes are taken from whichever copy has them.
    ///
    /// Why: each process saves a segment's bytes only when it sees no attach (`shm_nattch ==
    /// 0`), and saving them is itself a brief attach, so a process capturing at the same time
    /// as another may see that attach and save no bytes. The first process to look always
    /// saw 0, so some copy holds the bytes; keeping only the first image's copy lost them.
    pub fn merge(&mut self, other: SysvObjects) {
        for s in other.shm {
            match self.shm.iter_mut().find(|x| x.id == s.id) {
                None => self.shm.push(s),
                Some(x) if x.content.is_none() => x.content = s.content,
                Some(_) => {}
            }
        }
        for s in other.sem {
            if !self.sem.iter().any(|x| x.id == s.id) {
                self.sem.push(s);
            }
        }
        for q in other.msg {
            if !self.msg.iter().any(|x| x.id == q.id) {
                self.msg.push(q);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_merge_keeps_first_copy() {
        let mut a = SysvObjects {
            sem: vec![SysvSem {
                id: 3,
                key: 77,
                mode: 0o600,
                values: vec![1, 2, 3],
            }],
            ..Default::default()
        };
        let b = SysvObjects {
            sem: vec![SysvSem {
                id: 3,
                key: 77,
                mode: 0o600,
                values: vec![9],
            }],
            msg: vec![SysvMsgQueue {
                id: 32768,
                key: 0,
                mode: 0o640,
                qbytes: 16384,
                messages: vec![SysvMessage {
                    mtype: 5,
                    data: b"hello".to_vec(),
                }],
            }],
            ..Default::default()
        };
        let b = SysvObjects::from_bytes(&b.to_bytes()).unwrap();
        a.merge(b);
        assert_eq!(a.sem.len(), 1);
        assert_eq!(a.sem[0].values, vec![1, 2, 3]);
        assert_eq!(a.msg[0].messages[0].data, b"hello");
        assert!(SysvObjects::from_bytes(&[0xff, 0xff]).is_err());
    }

    fn shm(content: Option<&[u8]>) -> SysvObjects {
        SysvObjects {
            shm: vec![SysvShm {
                id: 65536,
                key: 4243,
                mode: 0o640,
                size: 3,
                removed: false,
                content: content.map(<[u8]>::to_vec),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn merge_takes_segment_bytes_from_any_copy() {
        // The first image's process saw another's temporary attach and saved no bytes.
        let mut a = shm(None);
        a.merge(shm(Some(b"abc")));
        assert_eq!(a.shm.len(), 1);
        assert_eq!(a.shm[0].content.as_deref(), Some(&b"abc"[..]));
        // A later copy without bytes does not erase them, and the first bytes stay.
        a.merge(shm(None));
        a.merge(shm(Some(b"xyz")));
        assert_eq!(a.shm[0].content.as_deref(), Some(&b"abc"[..]));
    }
}
