//! The coordinator's logic as a synchronous, I/O-free state machine.
//!
//! Every input (a join, a message from a peer, a disconnect, a command, a timer tick) returns the
//! [`Action`]s the server must carry out, in order. Nothing here touches sockets or files, so the
//! whole protocol is unit-tested directly (see `tests.rs`).

use crate::kv::KvStore;
use crate::restart_script::{self, RestartScript};
use dmtcp_protocol::ids::host_id;
use dmtcp_protocol::{
    Assignment, CheckpointOrder, CheckpointSummary, CkptMode, CkptPhases, CkptProgress, Command,
    CommandReply, CommandStatus, CompId, CoordMsg, KvBatchResponse, KvResponse, RejectReason,
    Rejected, RestartHello, UniquePid, WorkerHello, WorkerInfo, WorkerMsg, WorkerState,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

#[cfg(test)]
mod tests;

/// A peer connection, numbered by the server in accept order.
pub type ConnId = u64;
/// A command connection waiting for its reply.
pub type CmdId = u64;

/// First virtual pid of a computation; each process gets the next multiple of 1000 (DMTCP's
/// scheme, which leaves 999 virtual thread ids per process).
pub const VPID_BASE: i32 = 40000;
pub const VPID_STRIDE: i32 = 1000;

/// Settings of the computation that come from the coordinator's command line.
#[derive(Debug, Clone)]
pub struct CompConfig {
    /// `-i`: overrides the interval that workers ask for.
    pub interval: Option<u32>,
    pub ckpt_dir: Option<String>,
    pub kill_after_ckpt: bool,
    pub exit_on_last: bool,
    pub timeout: Option<Duration>,
    pub stale_timeout: Option<Duration>,
    /// Host and port written into the restart script.
    pub coord_host: String,
    pub coord_port: u16,
    /// This machine's host name; images from other hosts are restarted through ssh.
    pub local_hostname: String,
    pub cwd: PathBuf,
    pub restart_bin: String,
}

impl Default for CompConfig {
    fn default() -> Self {
        CompConfig {
            interval: None,
            ckpt_dir: None,
            kill_after_ckpt: false,
            exit_on_last: false,
            timeout: None,
            stale_timeout: None,
            coord_host: "127.0.0.1".into(),
            coord_port: dmtcp_protocol::DEFAULT_PORT,
            local_hostname: dmtcp_protocol::ids::hostname(),
            cwd: PathBuf::from("."),
            restart_bin: "dmtcp_restart".into(),
        }
    }
}

/// The current time in both clocks: monotonic for timers, wall for identities.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub at: Instant,
    pub wall_ns: u64,
}

impl Now {
    pub fn real() -> Now {
        let wall_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Now {
            at: Instant::now(),
            wall_ns,
        }
    }
}

/// Who is joining.
#[derive(Debug, Clone)]
pub enum Joining {
    Worker(WorkerHello),
    Restart(RestartHello),
}

/// Why the coordinator stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    Quit,
    LastPeerLeft,
    Timeout,
    StaleTimeout,
    Signal,
}

/// What the server must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send(ConnId, CoordMsg),
    /// One message to many peers (the server encodes it once).
    Broadcast(Vec<ConnId>, CoordMsg),
    /// Close a peer's connection once its queued frames are out.
    Disconnect(ConnId),
    Reply(CmdId, Box<CommandReply>),
    WriteRestartScript(Box<RestartScript>),
    Exit(ExitReason),
}

#[derive(Debug, Clone)]
struct Peer {
    upid: UniquePid,
    virtual_pid: i32,
    real_pid: i32,
    hostname: String,
    progname: String,
    state: WorkerState,
    /// The barrier this peer waits at.
    barrier: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No computation attached.
    Empty,
    Live,
    /// Restarting processes are gathering; `expected` is the checkpoint's peer count.
    Restarting {
        expected: u32,
    },
}

#[derive(Debug)]
struct InFlight {
    order: CheckpointOrder,
    started: Instant,
    participants: BTreeSet<ConnId>,
    /// Image path, size and host per participant that finished.
    written: BTreeMap<ConnId, (String, u64, String)>,
    waiters: Vec<CmdId>,
    /// Raw bytes saved so far and in all, per participant that reported progress.
    progress: BTreeMap<ConnId, (u64, u64)>,
    /// Phase timings per participant that reported them.
    phases: BTreeMap<ConnId, CkptPhases>,
    /// Whether a barrier was released since the checkpoint started: from then on every
    /// participant has been suspended, so losing one loses part of the computation's state.
    suspended: bool,
}

#[derive(Debug)]
pub struct Computation {
    cfg: CompConfig,
    phase: Phase,
    comp_id: Option<CompId>,
    generation: u32,
    coord_timestamp_ns: u64,
    peers: BTreeMap<ConnId, Peer>,
    /// How many peers are in state RUNNING (kept so checks stay O(1) with 10,000 peers).
    running_peers: usize,
    next_k: i32,
    barrier: Option<String>,
    arrived: usize,
    kv: KvStore,
    interval: u32,
    /// The interval came from `-i` or a command, so workers' hellos no longer change it.
    interval_fixed: bool,
    next_ckpt: Option<Instant>,
    in_flight: Option<InFlight>,
    last: Option<CheckpointSummary>,
    ever_joined: bool,
    started_at: Instant,
    empty_since: Instant,
    exiting: bool,
    host_ids: HashMap<String, u64>,
    /// The coordinator's address as a process on another host reached it (restart scripts
    /// name it: the published name may resolve to something other hosts cannot reach).
    reached_at: Option<String>,
}

impl Computation {
    pub fn new(cfg: CompConfig, now: Now) -> Computation {
        Computation {
            interval: cfg.interval.unwrap_or(0),
            interval_fixed: cfg.interval.is_some(),
            cfg,
            phase: Phase::Empty,
            comp_id: None,
            generation: 0,
            coord_timestamp_ns: now.wall_ns,
            peers: BTreeMap::new(),
            running_peers: 0,
            next_k: 0,
            barrier: None,
            arrived: 0,
            kv: KvStore::default(),
            next_ckpt: None,
            in_flight: None,
            last: None,
            ever_joined: false,
            started_at: now.at,
            empty_since: now.at,
            exiting: false,
            host_ids: HashMap::new(),
            reached_at: None,
        }
    }

    /// A process connected from `peer` to our address `local`; the first one from another
    /// host fixes the coordinator address of restart scripts.
    pub fn note_route(&mut self, peer: std::net::IpAddr, local: std::net::IpAddr) {
        if self.reached_at.is_none() && !peer.is_loopback() && !local.is_unspecified() {
            info!(%local, %peer, "reached from another host; restart scripts name {local}");
            self.reached_at = Some(local.to_string());
        }
    }

    pub fn num_peers(&self) -> usize {
        self.peers.len()
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    pub fn comp_id(&self) -> Option<CompId> {
        self.comp_id
    }

    pub fn interval(&self) -> u32 {
        self.interval
    }

    /// There are peers, the computation is not gathering a restart, and every peer runs.
    pub fn running(&self) -> bool {
        !self.peers.is_empty()
            && self.phase == Phase::Live
            && self.running_peers == self.peers.len()
    }

    fn arm_timer(&mut self, now: Instant) {
        self.next_ckpt =
            (self.interval > 0).then(|| now + Duration::from_secs(u64::from(self.interval)));
    }

    fn host_id(&mut self, hostname: &str) -> u64 {
        *self
            .host_ids
            .entry(hostname.to_string())
            .or_insert_with(|| host_id(hostname))
    }

    fn assignment(&self, peer: &Peer, observed_addr: String) -> Assignment {
        Assignment {
            upid: peer.upid,
            virtual_pid: peer.virtual_pid,
            comp_id: self
                .comp_id
                .expect("a joined peer belongs to a computation"),
            generation: self.generation,
            coord_timestamp_ns: self.coord_timestamp_ns,
            observed_addr,
            interval: self.interval,
            ckpt_dir: self.cfg.ckpt_dir.clone(),
            pending_checkpoint: self.in_flight.as_ref().map(|f| f.order.clone()),
        }
    }

    /// A process of the computation has proved its identity and asks to join.
    pub fn join(
        &mut self,
        conn: ConnId,
        joining: Joining,
        observed_addr: String,
        now: Now,
    ) -> Result<Assignment, Rejected> {
        let peer = match joining {
            Joining::Worker(h) => self.join_worker(h, now)?,
            Joining::Restart(h) => self.join_restart(h, now)?,
        };
        if let Some(f) = &mut self.in_flight {
            // A fork or exec racing the checkpoint: it takes part at once.
            f.participants.insert(conn);
        }
        let assignment = self.assignment(&peer, observed_addr);
        info!(
            peer = conn,
            prog = %peer.progname,
            vpid = peer.virtual_pid,
            host = %peer.hostname,
            upid = %peer.upid,
            peers = self.peers.len() + 1,
            "process joined"
        );
        if peer.state == WorkerState::Running {
            self.running_peers += 1;
        }
        self.peers.insert(conn, peer);
        self.ever_joined = true;
        Ok(assignment)
    }

    fn join_worker(&mut self, h: WorkerHello, now: Now) -> Result<Peer, Rejected> {
        if let Phase::Restarting { expected } = self.phase {
            return Err(Rejected {
                reason: RejectReason::NotRunning,
                message: format!(
                    "the coordinator is restarting a computation ({} of {expected} processes \
                     present); new processes can join once it runs",
                    self.peers.len()
                ),
            });
        }
        let upid = UniquePid {
            host_id: self.host_id(&h.hostname),
            pid: h.real_pid,
            time_ns: now.wall_ns,
        };
        if self.phase == Phase::Empty {
            self.phase = Phase::Live;
            self.comp_id = Some(CompId(upid));
            self.generation = 0;
            self.next_k = 0;
            self.kv.clear();
            self.last = None;
            if !self.interval_fixed {
                self.interval = h.interval.unwrap_or(0);
            }
            self.arm_timer(now.at);
            info!(comp = %upid, "new computation");
        }
        let virtual_pid = VPID_BASE + self.next_k * VPID_STRIDE;
        self.next_k += 1;
        Ok(Peer {
            upid,
            virtual_pid,
            real_pid: h.real_pid,
            hostname: h.hostname,
            progname: h.progname,
            state: WorkerState::Running,
            barrier: None,
        })
    }

    fn join_restart(&mut self, h: RestartHello, now: Now) -> Result<Peer, Rejected> {
        let reject = |reason, message| Err(Rejected { reason, message });
        match self.phase {
            Phase::Live => {
                return reject(
                    RejectReason::NotRestarting,
                    format!(
                        "this coordinator runs a live computation ({}); restart with another \
                         coordinator (--new-coordinator or another port)",
                        self.comp_id.map(|c| c.to_string()).unwrap_or_default()
                    ),
                );
            }
            Phase::Empty => {
                self.phase = Phase::Restarting {
                    expected: h.num_peers.max(1),
                };
                self.comp_id = Some(h.comp_id);
                self.generation = h.generation;
                self.coord_timestamp_ns = now.wall_ns;
                self.next_k = 0;
                self.kv.clear();
                if !self.interval_fixed {
                    self.interval = h.interval.unwrap_or(0);
                }
                info!(comp = %h.comp_id, expected = h.num_peers, generation = h.generation, "restart begins");
            }
            Phase::Restarting { expected } => {
                let comp = self.comp_id.expect("restarting computation has an id");
                if h.comp_id != comp {
                    return reject(
                        RejectReason::WrongComputation,
                        format!(
                            "image of computation {} but this coordinator restarts {comp}",
                            h.comp_id
                        ),
                    );
                }
                if h.num_peers.max(1) != expected {
                    return reject(
                        RejectReason::PeerMismatch,
                        format!(
                            "image says the computation had {} processes, others said {expected}",
                            h.num_peers
                        ),
                    );
                }
                if self.peers.len() >= expected as usize {
                    return reject(
                        RejectReason::PeerMismatch,
                        format!(
                            "all {expected} processes of the computation are already restarted"
                        ),
                    );
                }
                if self.peers.values().any(|p| p.upid == h.upid) {
                    return reject(
                        RejectReason::PeerMismatch,
                        format!("process {} is restarted twice", h.upid),
                    );
                }
            }
        }
        if h.virtual_pid >= VPID_BASE {
            self.next_k = self
                .next_k
                .max((h.virtual_pid - VPID_BASE) / VPID_STRIDE + 1);
        }
        Ok(Peer {
            upid: h.upid,
            virtual_pid: h.virtual_pid,
            real_pid: h.real_pid,
            hostname: h.hostname,
            progname: h.progname,
            state: WorkerState::Restarting,
            barrier: None,
        })
    }

    /// The connection of a peer closed (or the peer said it leaves).
    pub fn disconnect(&mut self, conn: ConnId, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        self.remove_peer(conn, now, &mut out);
        out
    }

    fn remove_peer(&mut self, conn: ConnId, now: Now, out: &mut Vec<Action>) {
        let Some(peer) = self.peers.remove(&conn) else {
            return;
        };
        if peer.state == WorkerState::Running {
            self.running_peers -= 1;
        }
        if peer.barrier.is_some() {
            self.arrived -= 1;
        }
        info!(peer = conn, prog = %peer.progname, vpid = peer.virtual_pid, peers = self.peers.len(), "process left");
        if let Some(f) = &mut self.in_flight
            && f.participants.contains(&conn)
            && !f.written.contains_key(&conn)
        {
            if f.suspended || peer.barrier.is_some() {
                let msg = format!(
                    "process {} ({}, vpid {}) exited during checkpoint {}",
                    peer.upid, peer.progname, peer.virtual_pid, f.order.generation
                );
                self.fail_checkpoint(msg, now, out);
            } else {
                // It exited before the checkpoint suspended it (a short-lived child such as
                // system()'s shell): the computation no longer holds it, nothing is lost.
                info!(peer = conn, prog = %peer.progname, generation = f.order.generation,
                    "process exited before it was suspended; checkpoint goes on without it");
                f.participants.remove(&conn);
                f.progress.remove(&conn);
                f.phases.remove(&conn);
                if f.participants.is_empty() {
                    let msg = format!(
                        "every process exited before checkpoint {} suspended it",
                        f.order.generation
                    );
                    self.fail_checkpoint(msg, now, out);
                } else if f.written.len() == f.participants.len() {
                    self.complete_checkpoint(now, out);
                }
            }
        }
        if self.peers.is_empty() {
            self.phase = Phase::Empty;
            self.barrier = None;
            self.arrived = 0;
            self.empty_since = now.at;
            self.next_ckpt = None;
            if self.cfg.exit_on_last && self.ever_joined {
                self.exit(ExitReason::LastPeerLeft, out);
            }
        } else {
            self.check_barrier(out);
            self.check_restart_complete(now);
        }
    }

    fn exit(&mut self, reason: ExitReason, out: &mut Vec<Action>) {
        if !self.exiting {
            self.exiting = true;
            out.push(Action::Exit(reason));
        }
    }

    /// A message from a joined peer.
    pub fn message(&mut self, conn: ConnId, msg: WorkerMsg, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.peers.contains_key(&conn) {
            debug!(peer = conn, "message from a peer that is gone");
            return out;
        }
        match msg {
            WorkerMsg::Barrier { name } => self.arrive(conn, name, now, &mut out),
            WorkerMsg::Kv(req) => {
                let result = self.kv.apply(&req.db, &req.key, req.op);
                out.push(Action::Send(
                    conn,
                    CoordMsg::Kv(KvResponse { id: req.id, result }),
                ));
            }
            WorkerMsg::KvBatch(req) => {
                let results = req
                    .items
                    .into_iter()
                    .map(|i| self.kv.apply(&i.db, &i.key, i.op))
                    .collect();
                out.push(Action::Send(
                    conn,
                    CoordMsg::KvBatch(KvBatchResponse {
                        id: req.id,
                        results,
                    }),
                ));
            }
            WorkerMsg::RequestCheckpoint => {
                match self.start_checkpoint(self.cfg.kill_after_ckpt, now, &mut out) {
                    Ok(g) => info!(
                        peer = conn,
                        generation = g,
                        "checkpoint requested by a process"
                    ),
                    Err((_, why)) => info!(peer = conn, "checkpoint request ignored: {why}"),
                }
            }
            WorkerMsg::State(state) => {
                if let Some(p) = self.peers.get_mut(&conn) {
                    let was = p.state == WorkerState::Running;
                    let is = state == WorkerState::Running;
                    p.state = state;
                    // Adding before subtracting keeps the unsigned count from underflowing.
                    self.running_peers = self.running_peers + usize::from(is) - usize::from(was);
                }
                self.check_restart_complete(now);
            }
            WorkerMsg::Exec { progname } => {
                if let Some(p) = self.peers.get_mut(&conn) {
                    info!(peer = conn, from = %p.progname, to = %progname, "process exec'd");
                    p.progname = progname;
                }
            }
            WorkerMsg::CkptWritten { image, bytes } => {
                self.written(conn, image, bytes, now, &mut out)
            }
            WorkerMsg::CkptFailed { error } => {
                let participant = self
                    .in_flight
                    .as_ref()
                    .is_some_and(|f| f.participants.contains(&conn));
                if participant {
                    let p = &self.peers[&conn];
                    let msg = format!(
                        "process {} ({}) could not write its image: {error}",
                        p.upid, p.progname
                    );
                    self.fail_checkpoint(msg, now, &mut out);
                } else {
                    warn!(
                        peer = conn,
                        "checkpoint failure reported outside a checkpoint: {error}"
                    );
                }
            }
            WorkerMsg::Leaving => {
                self.remove_peer(conn, now, &mut out);
                out.push(Action::Disconnect(conn));
            }
            WorkerMsg::CkptPhases(p) => {
                if let Some(f) = &mut self.in_flight
                    && f.participants.contains(&conn)
                {
                    debug!(peer = conn, phases = ?p, "checkpoint phases");
                    f.phases.insert(conn, p);
                }
            }
            WorkerMsg::CkptProgress { done, total } => {
                if let Some(f) = &mut self.in_flight
                    && f.participants.contains(&conn)
                {
                    f.progress.insert(conn, (done, total));
                }
            }
        }
        out
    }

    fn arrive(&mut self, conn: ConnId, name: String, now: Now, out: &mut Vec<Action>) {
        let waiting = self.peers[&conn].barrier.clone();
        if let Some(waiting) = waiting {
            if waiting == name {
                return; // A duplicate arrival changes nothing.
            }
            let message = format!(
                "barrier desync: this process reached barrier '{name}' while still waiting at '{waiting}'"
            );
            return self.desync(conn, message, now, out);
        }
        match &self.barrier {
            Some(current) if *current != name => {
                let message = format!(
                    "barrier desync: this process reached barrier '{name}' while the computation \
                     waits at '{current}'"
                );
                return self.desync(conn, message, now, out);
            }
            Some(_) => {}
            None => self.barrier = Some(name.clone()),
        }
        self.peers.get_mut(&conn).expect("caller checked").barrier = Some(name);
        self.arrived += 1;
        self.check_barrier(out);
    }

    fn desync(&mut self, conn: ConnId, message: String, now: Now, out: &mut Vec<Action>) {
        let p = &self.peers[&conn];
        warn!(peer = conn, prog = %p.progname, vpid = p.virtual_pid, "{message}; disconnecting it");
        out.push(Action::Send(conn, CoordMsg::Fatal { message }));
        out.push(Action::Disconnect(conn));
        self.remove_peer(conn, now, out);
    }

    /// Releases the pending barrier if every peer is there (and, on restart, every expected one).
    fn check_barrier(&mut self, out: &mut Vec<Action>) {
        let Some(name) = &self.barrier else { return };
        if self.arrived == 0 {
            self.barrier = None;
            return;
        }
        if self.arrived < self.peers.len() {
            return;
        }
        if let Phase::Restarting { expected } = self.phase
            && self.peers.len() < expected as usize
        {
            return;
        }
        let name = name.clone();
        debug!(barrier = %name, peers = self.peers.len(), "barrier released");
        for p in self.peers.values_mut() {
            p.barrier = None;
        }
        self.barrier = None;
        self.arrived = 0;
        if let Some(f) = &mut self.in_flight {
            f.suspended = true;
        }
        let msg = CoordMsg::BarrierReleased {
            name,
            num_peers: self.peers.len() as u32,
        };
        out.push(Action::Broadcast(self.peers.keys().copied().collect(), msg));
    }

    fn check_restart_complete(&mut self, now: Now) {
        if let Phase::Restarting { expected } = self.phase
            && self.peers.len() >= expected as usize
            && self.running_peers == self.peers.len()
        {
            self.phase = Phase::Live;
            self.arm_timer(now.at);
            info!(
                peers = expected,
                generation = self.generation,
                "restart complete; computation running"
            );
        }
    }

    /// Starts a checkpoint if the computation can take one; returns the new generation.
    fn start_checkpoint(
        &mut self,
        kill_after: bool,
        now: Now,
        out: &mut Vec<Action>,
    ) -> Result<u32, (CommandStatus, String)> {
        if self.peers.is_empty() {
            return Err((CommandStatus::NoPeers, "no processes are connected".into()));
        }
        if let Some(f) = &self.in_flight {
            return Err((
                CommandStatus::NotRunning,
                format!("checkpoint {} is still in progress", f.order.generation),
            ));
        }
        if let Phase::Restarting { expected } = self.phase {
            return Err((
                CommandStatus::NotRunning,
                format!(
                    "the computation is restarting ({} of {expected} processes running)",
                    self.peers.len()
                ),
            ));
        }
        if self.running_peers < self.peers.len()
            && let Some(p) = self
                .peers
                .values()
                .find(|p| p.state != WorkerState::Running)
        {
            return Err((
                CommandStatus::NotRunning,
                format!(
                    "process {} (vpid {}) is {}, not RUNNING",
                    p.progname, p.virtual_pid, p.state
                ),
            ));
        }
        self.generation += 1;
        // Every process runs: no earlier checkpoint or restart still needs its keys.
        let dropped = self.kv.drop_runtime_keys();
        if dropped > 0 {
            debug!(dropped, "runtime keys of the previous cycle dropped");
        }
        let order = CheckpointOrder {
            generation: self.generation,
            kill_after,
            ckpt_dir: self.cfg.ckpt_dir.clone(),
        };
        self.in_flight = Some(InFlight {
            order: order.clone(),
            started: now.at,
            participants: self.peers.keys().copied().collect(),
            written: BTreeMap::new(),
            waiters: Vec::new(),
            progress: BTreeMap::new(),
            phases: BTreeMap::new(),
            suspended: false,
        });
        self.next_ckpt = None;
        info!(
            generation = self.generation,
            peers = self.peers.len(),
            kill_after,
            "checkpoint started"
        );
        out.push(Action::Broadcast(
            self.peers.keys().copied().collect(),
            CoordMsg::DoCheckpoint(order),
        ));
        Ok(self.generation)
    }

    fn written(
        &mut self,
        conn: ConnId,
        image: String,
        bytes: u64,
        now: Now,
        out: &mut Vec<Action>,
    ) {
        let host = self.peers[&conn].hostname.clone();
        let Some(f) = &mut self.in_flight else {
            warn!(peer = conn, %image, "image reported outside a checkpoint; ignored");
            return;
        };
        if !f.participants.contains(&conn) {
            warn!(peer = conn, %image, "image from a process not in this checkpoint; ignored");
            return;
        }
        f.written.insert(conn, (image, bytes, host));
        if f.written.len() == f.participants.len() {
            self.complete_checkpoint(now, out);
        }
    }

    fn complete_checkpoint(&mut self, now: Now, out: &mut Vec<Action>) {
        let f = self.in_flight.take().expect("caller checked");
        let images: Vec<String> = f.written.values().map(|(i, _, _)| i.clone()).collect();
        let bytes = f.written.values().map(|(_, b, _)| b).sum();
        let dir = restart_script::choose_dir(&images, self.cfg.ckpt_dir.as_deref(), &self.cfg.cwd);
        let script = RestartScript {
            dir,
            comp_id: self.comp_id.expect("checkpointing computation has an id"),
            generation: f.order.generation,
            coord_host: self
                .reached_at
                .clone()
                .unwrap_or_else(|| self.cfg.coord_host.clone()),
            coord_port: self.cfg.coord_port,
            interval: self.interval,
            restart_bin: self.cfg.restart_bin.clone(),
            local_host: self.cfg.local_hostname.clone(),
            images: f.written.into_values().map(|(i, _, h)| (h, i)).collect(),
        };
        let phases = f.phases.values().copied().reduce(CkptPhases::max);
        let summary = CheckpointSummary {
            generation: f.order.generation,
            images,
            bytes,
            duration_ms: now.at.saturating_duration_since(f.started).as_millis() as u64,
            restart_script: Some(script.path().to_string_lossy().into_owned()),
            phases,
        };
        info!(
            generation = summary.generation,
            images = summary.images.len(),
            bytes = summary.bytes,
            ms = summary.duration_ms,
            "checkpoint complete"
        );
        if let Some(p) = phases {
            let ms = |us: u64| us as f64 / 1000.0;
            info!(
                generation = summary.generation,
                processes = f.phases.len(),
                suspend_ms = ms(p.suspend_us),
                drain_ms = ms(p.drain_us),
                write_ms = ms(p.write_us),
                sync_ms = ms(p.sync_us),
                resume_ms = ms(p.resume_us),
                "checkpoint phases (longest over the processes)"
            );
        }
        out.push(Action::WriteRestartScript(Box::new(script)));
        self.last = Some(summary);
        for w in f.waiters {
            out.push(Action::Reply(
                w,
                Box::new(self.reply(CommandStatus::Success, None, false)),
            ));
        }
        if f.order.kill_after {
            info!("killing the computation after its checkpoint");
            out.push(Action::Broadcast(
                self.peers.keys().copied().collect(),
                CoordMsg::Kill,
            ));
        }
        self.arm_timer(now.at);
    }

    fn fail_checkpoint(&mut self, message: String, now: Now, out: &mut Vec<Action>) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        warn!(
            generation = f.order.generation,
            "checkpoint failed: {message}"
        );
        for w in f.waiters {
            out.push(Action::Reply(
                w,
                Box::new(self.reply(CommandStatus::Failed, Some(message.clone()), false)),
            ));
        }
        self.arm_timer(now.at);
    }

    fn reply(&self, status: CommandStatus, message: Option<String>, list: bool) -> CommandReply {
        let workers = if list {
            self.peers
                .values()
                .enumerate()
                .map(|(i, p)| WorkerInfo {
                    number: i as u32 + 1,
                    progname: p.progname.clone(),
                    virtual_pid: p.virtual_pid,
                    real_pid: p.real_pid,
                    hostname: p.hostname.clone(),
                    upid: p.upid,
                    state: p.state,
                    barrier: p.barrier.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        CommandReply {
            status,
            num_peers: self.peers.len() as u32,
            running: self.running(),
            interval: self.interval,
            comp_id: self.comp_id,
            generation: self.generation,
            ckpt_dir: self.cfg.ckpt_dir.clone(),
            workers,
            last_checkpoint: self.last.clone(),
            message,
            progress: self.in_flight.as_ref().map(|f| CkptProgress {
                generation: f.order.generation,
                done: f.progress.values().map(|p| p.0).sum(),
                total: f.progress.values().map(|p| p.1).sum(),
                processes_done: f.written.len() as u32,
                processes: f.participants.len() as u32,
            }),
        }
    }

    /// A `dmtcp_command` request; the reply comes as [`Action::Reply`] (maybe later).
    pub fn command(&mut self, id: CmdId, cmd: Command, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        let reply = |c: &Self, status, message| {
            Action::Reply(id, Box::new(c.reply(status, message, false)))
        };
        match cmd {
            Command::Status => out.push(reply(self, CommandStatus::Success, None)),
            Command::List => out.push(Action::Reply(
                id,
                Box::new(self.reply(CommandStatus::Success, None, true)),
            )),
            Command::Checkpoint(mode) => {
                let kill_after = mode == CkptMode::KillAfter || self.cfg.kill_after_ckpt;
                match self.start_checkpoint(kill_after, now, &mut out) {
                    Ok(_) if mode == CkptMode::Async => {
                        out.push(reply(self, CommandStatus::Success, None))
                    }
                    Ok(_) => self
                        .in_flight
                        .as_mut()
                        .expect("just started")
                        .waiters
                        .push(id),
                    Err((status, why)) => {
                        info!("checkpoint command refused: {why}");
                        out.push(reply(self, status, Some(why)));
                    }
                }
            }
            Command::SetInterval(secs) => {
                self.interval = secs;
                self.interval_fixed = true;
                if self.in_flight.is_none() && !self.peers.is_empty() {
                    self.arm_timer(now.at);
                }
                info!(interval = secs, "checkpoint interval set");
                out.push(reply(self, CommandStatus::Success, None));
            }
            Command::Kill => {
                info!(
                    peers = self.peers.len(),
                    "killing the computation on request"
                );
                out.push(Action::Broadcast(
                    self.peers.keys().copied().collect(),
                    CoordMsg::Kill,
                ));
                out.push(reply(self, CommandStatus::Success, None));
            }
            Command::Quit => {
                info!(
                    peers = self.peers.len(),
                    "quit requested: killing the computation and exiting"
                );
                out.push(Action::Broadcast(
                    self.peers.keys().copied().collect(),
                    CoordMsg::Kill,
                ));
                out.push(reply(self, CommandStatus::Success, None));
                self.exit(ExitReason::Quit, &mut out);
            }
        }
        out
    }

    /// Timers: interval checkpoints, `--timeout`, `--stale-timeout`. Call about once a second.
    pub fn tick(&mut self, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(t) = self.cfg.timeout
            && now.at >= self.started_at + t
        {
            info!("--timeout of {}s reached; exiting", t.as_secs());
            self.exit(ExitReason::Timeout, &mut out);
            return out;
        }
        if let Some(t) = self.cfg.stale_timeout
            && self.peers.is_empty()
            && now.at >= self.empty_since + t
        {
            info!("no process for {}s (--stale-timeout); exiting", t.as_secs());
            self.exit(ExitReason::StaleTimeout, &mut out);
            return out;
        }
        if let Some(due) = self.next_ckpt
            && now.at >= due
        {
            // If the computation is busy the timer stays due and we retry on the next tick.
            match self.start_checkpoint(self.cfg.kill_after_ckpt, now, &mut out) {
                Ok(g) => info!(generation = g, "interval checkpoint"),
                Err((_, why)) => debug!("interval checkpoint postponed: {why}"),
            }
        }
        out
    }
}
