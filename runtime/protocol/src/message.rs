//! The messages exchanged after the hello.

use crate::ids::{CompId, UniquePid, WorkerState};
use serde::{Deserialize, Serialize};

/// Sent by the coordinator as soon as a connection is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHello {
    pub magic: [u8; 8],
    pub version: u32,
    /// Random id of this coordinator instance; names its secret file.
    pub coord_id: String,
    /// The uid that owns the coordinator (and so the computation).
    pub owner_uid: u32,
    pub nonce: [u8; 32],
}

/// The client's answer: who it is and proof that it knows the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    pub magic: [u8; 8],
    pub version: u32,
    pub uid: u32,
    /// HMAC-SHA256(secret, "client" || server nonce).
    pub proof: [u8; 32],
    /// The coordinator proves itself in return over this nonce.
    pub nonce: [u8; 32],
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A new process of the computation (launched, forked or spawned).
    Worker(WorkerHello),
    /// A process being restarted from an image.
    Restart(RestartHello),
    /// `dmtcp_command` and other tools: one command, one reply.
    Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerHello {
    pub hostname: String,
    pub progname: String,
    pub real_pid: i32,
    pub real_ppid: i32,
    /// The member process this one was forked from, if any.
    pub parent: Option<UniquePid>,
    /// The checkpoint interval requested at launch (`-i`), if any.
    pub interval: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartHello {
    pub hostname: String,
    pub progname: String,
    pub real_pid: i32,
    pub upid: UniquePid,
    pub virtual_pid: i32,
    pub comp_id: CompId,
    /// How many processes the computation had at checkpoint time.
    pub num_peers: u32,
    pub generation: u32,
    pub interval: Option<u32>,
}

/// The coordinator's acceptance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// HMAC-SHA256(secret, "server" || client nonce).
    pub proof: [u8; 32],
    /// Present for workers and restarting processes.
    pub assignment: Option<Assignment>,
}

/// What a process of the computation learns when it joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub upid: UniquePid,
    pub virtual_pid: i32,
    pub comp_id: CompId,
    pub generation: u32,
    pub coord_timestamp_ns: u64,
    /// The address the coordinator saw this peer connect from (routable for multi-host runs).
    pub observed_addr: String,
    pub interval: u32,
    /// The coordinator's `--ckptdir`, if it has one; it overrides the worker's default.
    pub ckpt_dir: Option<String>,
    /// Set when the peer joins while a checkpoint is under way: it must take part at once.
    pub pending_checkpoint: Option<CheckpointOrder>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    BadMagic,
    VersionMismatch,
    WrongSecret,
    ForeignUser,
    /// A new worker arrived while the computation is not running (restarting, checkpointing).
    NotRunning,
    /// A restarting process belongs to another computation than the one being restarted.
    WrongComputation,
    /// A restarting process's peer count disagrees with the computation being restarted.
    PeerMismatch,
    /// A restarting process arrived while a live computation is attached.
    NotRestarting,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub reason: RejectReason,
    pub message: String,
}

/// The coordinator's answer to a [`ClientHello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    Welcome(Welcome),
    Rejected(Rejected),
}

/// A process of the computation to the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerMsg {
    /// Arrived at a named global barrier.
    Barrier {
        name: String,
    },
    Kv(KvRequest),
    /// The program (or a signal from the batch system) asks for a checkpoint.
    RequestCheckpoint,
    State(WorkerState),
    /// The process exec'd a new program; it keeps its identity and connection.
    Exec {
        progname: String,
    },
    /// This process's image for the current generation is complete and durable.
    CkptWritten {
        image: String,
        bytes: u64,
    },
    /// This process could not write its image.
    CkptFailed {
        error: String,
    },
    /// The process is exiting normally.
    Leaving,
    /// How long this process's checkpoint took, phase by phase (sent before `CkptWritten`).
    CkptPhases(CkptPhases),
    /// Raw memory bytes saved so far and in all by this process's image writer.
    CkptProgress {
        done: u64,
        total: u64,
    },
    /// Several key-value operations in one round trip (added after `Kv`; a coordinator that
    /// predates it drops the connection on it).
    KvBatch(KvBatchRequest),
}

/// One process's checkpoint, phase by phase, in microseconds: `suspend` freezing the threads,
/// `drain` from frozen to the start of the write (process state, fds, plugins, barriers),
/// `write` the image up to its fsync, `sync` the fsync, `resume` releasing the threads. With
/// the forked writer, `write` and `sync` run after `resume`, while the program runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CkptPhases {
    pub suspend_us: u64,
    pub drain_us: u64,
    pub write_us: u64,
    pub sync_us: u64,
    pub resume_us: u64,
}

impl CkptPhases {
    /// Phase by phase, the longer of the two (the computation waits for its slowest process).
    pub fn max(self, o: CkptPhases) -> CkptPhases {
        CkptPhases {
            suspend_us: self.suspend_us.max(o.suspend_us),
            drain_us: self.drain_us.max(o.drain_us),
            write_us: self.write_us.max(o.write_us),
            sync_us: self.sync_us.max(o.sync_us),
            resume_us: self.resume_us.max(o.resume_us),
        }
    }
}

/// A checkpoint under way, summed over its processes (in the reply to `Status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CkptProgress {
    pub generation: u32,
    /// Raw memory bytes saved so far and in all, over the processes that reported.
    pub done: u64,
    pub total: u64,
    /// Processes whose image is written, out of all taking part.
    pub processes_done: u32,
    pub processes: u32,
}

/// The coordinator to a process of the computation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordMsg {
    DoCheckpoint(CheckpointOrder),
    BarrierReleased {
        name: String,
        num_peers: u32,
    },
    Kv(KvResponse),
    /// Exit now (`dmtcp_command --kill`, or after a `--kcheckpoint`).
    Kill,
    /// The coordinator gives up on this peer (barrier desync and the like).
    Fatal {
        message: String,
    },
    /// The answer to a [`WorkerMsg::KvBatch`].
    KvBatch(KvBatchResponse),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointOrder {
    pub generation: u32,
    pub kill_after: bool,
    /// Directory the coordinator wants images in (its `--ckptdir`), if any.
    pub ckpt_dir: Option<String>,
}

/// A key-value store request; `id` pairs it with its response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRequest {
    pub id: u64,
    pub db: String,
    pub key: Vec<u8>,
    pub op: KvOp,
}

/// Numeric operations treat values as decimal `i64` text and a missing key as absent:
/// `IncrBy` starts from 0, `Min`/`Max` store the operand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    /// Returns the current value.
    Get,
    /// Stores the value and returns the previous one.
    Set(Vec<u8>),
    /// Returns the new value.
    IncrBy(i64),
    /// Returns the new value.
    Min(i64),
    /// Returns the new value.
    Max(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvResponse {
    pub id: u64,
    pub result: Result<Option<Vec<u8>>, KvError>,
}

/// One operation of a [`KvBatchRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvItem {
    pub db: String,
    pub key: Vec<u8>,
    pub op: KvOp,
}

/// Operations applied in order, as one step (no other request runs in between); `id` pairs
/// it with its response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvBatchRequest {
    pub id: u64,
    pub items: Vec<KvItem>,
}

/// One result per item, in the request's order (each as [`KvResponse::result`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvBatchResponse {
    pub id: u64,
    pub results: Vec<Result<Option<Vec<u8>>, KvError>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum KvError {
    #[error("the stored value is not a number")]
    NotANumber,
}

/// `dmtcp_command` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Status,
    List,
    Checkpoint(CkptMode),
    SetInterval(u32),
    Kill,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CkptMode {
    /// Start a checkpoint and return at once (`-c`).
    Async,
    /// Return when every image is written (`-bc`).
    Blocking,
    /// Write every image, then kill the computation (`-kc`); returns when done.
    KillAfter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandStatus {
    Success,
    /// The computation is not in a state to accept the command (e.g. a checkpoint is running).
    NotRunning,
    /// There is nothing to act on (e.g. checkpoint with no peers).
    NoPeers,
    /// The checkpoint was attempted and failed (a process died or reported an error).
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandReply {
    pub status: CommandStatus,
    pub num_peers: u32,
    pub running: bool,
    pub interval: u32,
    pub comp_id: Option<CompId>,
    pub generation: u32,
    pub ckpt_dir: Option<String>,
    /// Filled for `List`.
    pub workers: Vec<WorkerInfo>,
    /// Filled for blocking checkpoints and status: the last completed checkpoint.
    pub last_checkpoint: Option<CheckpointSummary>,
    /// A human explanation when the status is not `Success`.
    pub message: Option<String>,
    /// The checkpoint under way, if any.
    pub progress: Option<CkptProgress>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub number: u32,
    pub progname: String,
    pub virtual_pid: i32,
    pub real_pid: i32,
    pub hostname: String,
    pub upid: UniquePid,
    pub state: WorkerState,
    pub barrier: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointSummary {
    pub generation: u32,
    pub images: Vec<String>,
    pub bytes: u64,
    pub duration_ms: u64,
    pub restart_script: Option<String>,
    /// Phase by phase, the longest over the processes that reported them.
    pub phases: Option<CkptPhases>,
}
