//! The tokio layer: accept loop, one task per connection, one task owning the [`Computation`].
//!
//! Connection tasks do the hello and turn frames into [`Event`]s; the central task feeds them to
//! the state machine and carries out its [`Action`]s. Each peer has an unbounded channel of
//! pre-encoded frames drained by its own writer task, so a broadcast to 10,000 peers encodes
//! the message once and never waits on a slow peer.

use crate::computation::{
    Action, CmdId, CompConfig, Computation, ConnId, ExitReason, Joining, Now,
};
use crate::framing::{read_frame, write_frame};
use crate::handshake::{self, HELLO_TIMEOUT};
use crate::outbox::{Frame, Outbox};
use dmtcp_protocol::auth::{self, SecretError};
use dmtcp_protocol::frame::{self, FrameError};
use dmtcp_protocol::registry::{self, CoordinatorEntry};
use dmtcp_protocol::{
    ClientHello, Command, CommandReply, HelloReply, MAGIC, PROTOCOL_VERSION, Rejected, Role,
    Secret, ServerHello, Welcome, WorkerMsg,
};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("cannot register the coordinator in {dir}: {source}")]
    Register { dir: String, source: io::Error },
    #[error("listening socket: {0}")]
    Listener(io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
}

enum Event {
    Join {
        conn: ConnId,
        joining: Joining,
        observed_addr: String,
        /// Peer and our own address of the connection (IPv4-mapped addresses unmapped).
        route: (IpAddr, IpAddr),
        proof: [u8; 32],
        out: Outbox,
    },
    Msg {
        conn: ConnId,
        msg: WorkerMsg,
    },
    Gone {
        conn: ConnId,
    },
    Command {
        cmd: Command,
        reply: oneshot::Sender<CommandReply>,
    },
}

/// What every connection task needs to know.
struct Ctx {
    coord_id: String,
    secret: Secret,
    owner_uid: u32,
    /// Published instead of 127.0.0.1 for local peers.
    routable: Option<IpAddr>,
    events: mpsc::Sender<Event>,
    /// Held by tasks that write to clients; the shutdown waits for them to finish.
    /// Weak, so idle connections do not hold the shutdown up; upgraded by writers.
    flush_guard: mpsc::WeakSender<()>,
}

/// A coordinator ready to serve: secret stored, registered, socket listening.
pub struct Server {
    listener: std::net::TcpListener,
    coord_id: String,
    secret: Secret,
    comp: CompConfig,
    port: u16,
    console: bool,
}

impl Server {
    /// Creates the identity and secret of a new coordinator around a listening socket and
    /// registers it. The secret file exists before the first connection is accepted.
    pub fn new(listener: std::net::TcpListener, comp: CompConfig) -> Result<Server, ServerError> {
        let port = listener.local_addr().map_err(ServerError::Listener)?.port();
        let coord_id = auth::new_coord_id()?;
        let secret = Secret::generate()?;
        auth::store_secret(&coord_id, &secret)?;
        let entry = CoordinatorEntry {
            coord_id: coord_id.clone(),
            hostname: dmtcp_protocol::ids::hostname(),
            port,
            pid: std::process::id() as i32,
        };
        registry::register(&entry).map_err(|source| ServerError::Register {
            dir: auth::secret_dir().display().to_string(),
            source,
        })?;
        let comp = CompConfig {
            coord_port: port,
            ..comp
        };
        Ok(Server {
            listener,
            coord_id,
            secret,
            comp,
            port,
            console: false,
        })
    }

    /// Reads DMTCP's one-letter commands from stdin (when it is a terminal).
    pub fn with_console(mut self, on: bool) -> Server {
        self.console = on;
        self
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn coord_id(&self) -> &str {
        &self.coord_id
    }

    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// Runs until quit, a timeout, the last peer leaving (with `--exit-on-last`), SIGTERM or
    /// SIGINT; then unregisters.
    pub fn run(self) -> Result<ExitReason, ServerError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let result = rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate()).map_err(ServerError::Runtime)?;
            let mut int = signal(SignalKind::interrupt()).map_err(ServerError::Runtime)?;
            let mut hup = signal(SignalKind::hangup()).map_err(ServerError::Runtime)?;
            let stop = async move {
                tokio::select! {
                    _ = term.recv() => info!("SIGTERM: exiting"),
                    _ = int.recv() => info!("SIGINT: exiting"),
                    _ = hup.recv() => info!("SIGHUP: exiting"),
                }
            };
            self.serve(stop).await
        });
        // The console's stdin read may still block a pool thread: do not wait for it.
        rt.shutdown_background();
        result
    }

    /// Serves inside an existing tokio runtime until the computation ends or `stop` completes.
    pub async fn serve(self, stop: impl Future<Output = ()>) -> Result<ExitReason, ServerError> {
        let coord_id = self.coord_id.clone();
        let result = self.serve_inner(stop).await;
        registry::unregister(&coord_id);
        result
    }

    async fn serve_inner(self, stop: impl Future<Output = ()>) -> Result<ExitReason, ServerError> {
        self.listener
            .set_nonblocking(true)
            .map_err(ServerError::Listener)?;
        let listener =
            tokio::net::TcpListener::from_std(self.listener).map_err(ServerError::Listener)?;
        let (events_tx, events_rx) = mpsc::channel(8192);
        let (flush_guard, mut flushed) = mpsc::channel::<()>(1);
        let ctx = Arc::new(Ctx {
            coord_id: self.coord_id,
            secret: self.secret,
            owner_uid: auth::my_uid(),
            routable: routable_ip(),
            events: events_tx,
            flush_guard: flush_guard.downgrade(),
        });
        let accept = tokio::spawn(accept_loop(listener, ctx.clone()));
        let console = self
            .console
            .then(|| tokio::spawn(console(ctx.events.clone())));
        drop(ctx);
        let comp = Computation::new(self.comp, Now::real());
        let reason = tokio::select! {
            r = central(comp, events_rx) => r,
            _ = stop => ExitReason::Signal,
        };
        accept.abort();
        let _ = accept.await;
        if let Some(c) = console {
            c.abort();
        }
        // Queued frames (a quit's reply, kills) go out before the process ends.
        drop(flush_guard);
        let _ = tokio::time::timeout(Duration::from_secs(2), flushed.recv()).await;
        Ok(reason)
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, ctx: Arc<Ctx>) {
    let next = AtomicU64::new(1);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let conn = next.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(connection(stream, peer, conn, ctx.clone()));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning; clients wait in the backlog.
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads commands typed at the coordinator's terminal and prints the replies.
async fn console(events: mpsc::Sender<Event>) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let cmd = match crate::console::parse(&line) {
            Ok(c) => c,
            Err(text) => {
                if !text.is_empty() {
                    println!("{text}");
                }
                continue;
            }
        };
        let (tx, rx) = oneshot::channel();
        if events
            .send(Event::Command { cmd, reply: tx })
            .await
            .is_err()
        {
            return;
        }
        if let Ok(reply) = rx.await {
            println!("{}", crate::console::render(cmd, &reply));
        }
    }
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The address a peer connected from, as it should be published: IPv4 when mapped, and for a
/// loopback peer this host's routable address (peers on other hosts cannot reach 127.0.0.1).
fn observed(peer: SocketAddr, routable: Option<IpAddr>) -> String {
    let ip = match peer.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    match routable {
        Some(r) if ip.is_loopback() => r.to_string(),
        _ => ip.to_string(),
    }
}

/// The first IPv4 address of an interface that is up and not loopback.
pub fn routable_ip() -> Option<IpAddr> {
    use nix::net::if_::InterfaceFlags;
    nix::ifaddrs::getifaddrs().ok()?.find_map(|ifa| {
        let up = ifa.flags.contains(InterfaceFlags::IFF_UP)
            && !ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK);
        let v4 = ifa.address?.as_sockaddr_in()?.ip();
        up.then_some(IpAddr::V4(v4))
    })
}

async fn connection(stream: TcpStream, peer: SocketAddr, conn: ConnId, ctx: Arc<Ctx>) {
    let _ = stream.set_nodelay(true);
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(e) => return debug!(%peer, "connection lost at once: {e}"),
    };
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let Ok(nonce) = auth::random_bytes::<32>() else {
        return error!("no randomness for a hello nonce; dropping {peer}");
    };
    let hello = ServerHello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        coord_id: ctx.coord_id.clone(),
        owner_uid: ctx.owner_uid,
        nonce,
    };
    if write_frame(&mut wr, &hello).await.is_err() {
        return;
    }
    let client: ClientHello = match tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut rd)).await {
        Err(_) => return warn!(%peer, "refused: no hello within {}s", HELLO_TIMEOUT.as_secs()),
        Ok(Err(FrameError::Closed)) => return debug!(%peer, "closed before its hello"),
        Ok(Err(e)) => return warn!(%peer, "refused: not a DMTCP client ({e})"),
        Ok(Ok(h)) => h,
    };
    let checked = handshake::check_hello(&client, &nonce, &ctx.secret, ctx.owner_uid)
        .and_then(|()| handshake::check_peer_owner(peer, local, ctx.owner_uid));
    if let Err(rejected) = checked {
        return refuse(&mut wr, peer, rejected).await;
    }
    let proof = ctx.secret.server_proof(&client.nonce);
    let joining = match client.role {
        Role::Command => return command(rd, wr, peer, proof, &ctx).await,
        Role::Worker(h) => Joining::Worker(h),
        Role::Restart(h) => Joining::Restart(h),
    };
    let (out, writer) = Outbox::new(wr, ctx.flush_guard.upgrade());
    tokio::spawn(writer);
    let join = Event::Join {
        conn,
        joining,
        observed_addr: observed(peer, ctx.routable),
        route: (unmapped(peer.ip()), unmapped(local.ip())),
        proof,
        out,
    };
    if ctx.events.send(join).await.is_err() {
        return; // Shutting down.
    }
    loop {
        match read_frame::<WorkerMsg>(&mut rd).await {
            Ok(msg) => {
                if ctx.events.send(Event::Msg { conn, msg }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                if !matches!(e, FrameError::Closed) {
                    warn!(peer = conn, "dropping connection: {e}");
                }
                let _ = ctx.events.send(Event::Gone { conn }).await;
                return;
            }
        }
    }
}

async fn refuse(wr: &mut OwnedWriteHalf, peer: SocketAddr, rejected: Rejected) {
    warn!(%peer, reason = ?rejected.reason, "refused: {}", rejected.message);
    let _ = write_frame(wr, &HelloReply::Rejected(rejected)).await;
    let _ = wr.shutdown().await;
}

/// A `dmtcp_command` connection: one command, one reply (maybe after a whole checkpoint).
async fn command(
    mut rd: BufReader<OwnedReadHalf>,
    mut wr: OwnedWriteHalf,
    peer: SocketAddr,
    proof: [u8; 32],
    ctx: &Ctx,
) {
    let _guard = ctx.flush_guard.upgrade();
    if write_frame(
        &mut wr,
        &HelloReply::Welcome(Welcome {
            proof,
            assignment: None,
        }),
    )
    .await
    .is_err()
    {
        return;
    }
    let cmd: Command = match tokio::time::timeout(HELLO_TIMEOUT, read_frame(&mut rd)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return debug!(%peer, "command connection closed: {e}"),
        Err(_) => return warn!(%peer, "command connection sent no command; closed"),
    };
    debug!(%peer, ?cmd, "command");
    let (reply_tx, reply_rx) = oneshot::channel();
    if ctx
        .events
        .send(Event::Command {
            cmd,
            reply: reply_tx,
        })
        .await
        .is_err()
    {
        return;
    }
    if let Ok(reply) = reply_rx.await {
        let _ = write_frame(&mut wr, &reply).await;
        let _ = wr.shutdown().await;
    }
}

/// The state of the central task: the computation and the way to reach each client.
struct Central {
    comp: Computation,
    peers: HashMap<ConnId, Outbox>,
    commands: HashMap<CmdId, oneshot::Sender<CommandReply>>,
    next_cmd: CmdId,
}

impl Central {
    fn handle(&mut self, ev: Event) -> Vec<Action> {
        match ev {
            Event::Join {
                conn,
                joining,
                observed_addr,
                route,
                proof,
                out,
            } => {
                match self.comp.join(conn, joining, observed_addr, Now::real()) {
                    Ok(a) => {
                        self.comp.note_route(route.0, route.1);
                        let w = Welcome {
                            proof,
                            assignment: Some(a),
                        };
                        out.send(frame::encode(&HelloReply::Welcome(w)).into());
                        self.peers.insert(conn, out);
                    }
                    Err(r) => {
                        warn!(peer = conn, reason = ?r.reason, "refused: {}", r.message);
                        out.send(frame::encode(&HelloReply::Rejected(r)).into());
                    }
                }
                Vec::new()
            }
            Event::Msg { conn, msg } => self.comp.message(conn, msg, Now::real()),
            Event::Gone { conn } => {
                self.peers.remove(&conn);
                self.comp.disconnect(conn, Now::real())
            }
            Event::Command { cmd, reply } => {
                let id = self.next_cmd;
                self.next_cmd += 1;
                self.commands.insert(id, reply);
                self.comp.command(id, cmd, Now::real())
            }
        }
    }

    /// Carries out actions in order; returns the exit reason if one says to stop.
    fn execute(&mut self, actions: Vec<Action>) -> Option<ExitReason> {
        for action in actions {
            match action {
                Action::Send(conn, msg) => {
                    if let Some(out) = self.peers.get(&conn) {
                        out.send(frame::encode(&msg).into());
                    }
                }
                Action::Broadcast(to, msg) => {
                    let f: Frame = frame::encode(&msg).into();
                    for conn in to {
                        if let Some(out) = self.peers.get(&conn) {
                            out.send(f.clone());
                        }
                    }
                }
                Action::Disconnect(conn) => {
                    self.peers.remove(&conn);
                }
                Action::Reply(id, reply) => {
                    if let Some(tx) = self.commands.remove(&id) {
                        let _ = tx.send(*reply);
                    }
                }
                Action::WriteRestartScript(script) => match script.write() {
                    Ok(path) => info!("restart script: {}", path.display()),
                    Err(e) => error!(
                        "cannot write the restart script in {}: {e}",
                        script.dir.display()
                    ),
                },
                Action::Exit(reason) => {
                    info!(?reason, "coordinator exiting");
                    return Some(reason);
                }
            }
        }
        None
    }
}

/// The task that owns the computation. Events are taken in batches so a burst of arrivals
/// costs one wake-up.
async fn central(comp: Computation, mut events: mpsc::Receiver<Event>) -> ExitReason {
    let mut c = Central {
        comp,
        peers: HashMap::new(),
        commands: HashMap::new(),
        next_cmd: 1,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(1024);
    loop {
        tokio::select! {
            n = events.recv_many(&mut batch, 1024) => {
                if n == 0 {
                    return ExitReason::Signal;
                }
                for ev in batch.drain(..) {
                    let actions = c.handle(ev);
                    if let Some(reason) = c.execute(actions) {
                        return reason;
                    }
                }
            }
            _ = tick.tick() => {
                let actions = c.comp.tick(Now::real());
                if let Some(reason) = c.execute(actions) {
                    return reason;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_peers_are_published_with_a_routable_address() {
        let r = Some(IpAddr::from([10, 1, 2, 3]));
        assert_eq!(observed("127.0.0.1:5".parse().unwrap(), r), "10.1.2.3");
        assert_eq!(observed("127.0.0.1:5".parse().unwrap(), None), "127.0.0.1");
        assert_eq!(
            observed("[::ffff:192.168.1.9]:5".parse().unwrap(), r),
            "192.168.1.9"
        );
        assert_eq!(observed("192.168.1.9:5".parse().unwrap(), r), "192.168.1.9");
        if let Some(ip) = routable_ip() {
            assert!(!ip.is_loopback());
        }
    }
}
