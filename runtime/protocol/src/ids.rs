//! Identities of processes and computations.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A process identity that stays unique across hosts, restarts and pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UniquePid {
    /// A per-host number (hash of the hostname and machine id).
    pub host_id: u64,
    /// The real pid when the identity was created.
    pub pid: i32,
    /// Creation time, nanoseconds since the epoch.
    pub time_ns: u64,
}

impl fmt::Display for UniquePid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}-{:x}", self.host_id, self.pid, self.time_ns)
    }
}

/// The identity of a computation: the unique pid of its first process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CompId(pub UniquePid);

impl fmt::Display for CompId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a process is in the checkpoint cycle, as the coordinator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WorkerState {
    Unknown,
    Running,
    PreSuspend,
    Suspended,
    Checkpointing,
    Checkpointed,
    Restarting,
}

impl WorkerState {
    /// DMTCP's spelling, used in `dmtcp_command --list`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Unknown => "UNKNOWN",
            WorkerState::Running => "RUNNING",
            WorkerState::PreSuspend => "PRESUSPEND",
            WorkerState::Suspended => "SUSPENDED",
            WorkerState::Checkpointing => "CHECKPOINTING",
            WorkerState::Checkpointed => "CHECKPOINTED",
            WorkerState::Restarting => "RESTARTING",
        }
    }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stable number for this host: FNV-1a of the hostname and /etc/machine-id.
pub fn host_id(hostname: &str) -> u64 {
    let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in hostname.bytes().chain(machine.trim().bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The kernel's hostname of this machine (or network namespace).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
