//! A simulated process of a computation: the real protocol over tokio, for the integration
//! tests and the benchmark (thousands of these fit in one process).

use crate::framing::{read_frame, write_frame};
use dmtcp_protocol::frame::FrameError;
use dmtcp_protocol::{
    Assignment, ClientHello, Command, CommandReply, CoordMsg, HelloReply, MAGIC, PROTOCOL_VERSION,
    Rejected, Role, Secret, ServerHello, WorkerHello, WorkerMsg, auth,
};
use std::net::SocketAddr;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    #[error("frame: {0}")]
    Frame(#[from] FrameError),
    #[error("refused: {0:?}")]
    Rejected(Rejected),
    #[error("the coordinator's proof is wrong")]
    Impostor,
}

/// A connected, welcomed client.
pub struct SimClient {
    pub rd: BufReader<OwnedReadHalf>,
    pub wr: OwnedWriteHalf,
    pub assignment: Option<Assignment>,
}

/// A worker hello with made-up but distinct identity.
pub fn worker_role(n: u32) -> Role {
    Role::Worker(WorkerHello {
        hostname: "simhost".into(),
        progname: format!("sim{n}"),
        real_pid: 100_000 + n as i32,
        real_ppid: 1,
        parent: None,
        interval: None,
    })
}

impl SimClient {
    /// Connects and performs the hello with `secret` (which may be wrong, for tests).
    pub async fn connect(
        addr: SocketAddr,
        secret: &Secret,
        role: Role,
    ) -> Result<SimClient, SimError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (rd, mut wr) = stream.into_split();
        let mut rd = BufReader::new(rd);
        let hello: ServerHello = read_frame(&mut rd).await?;
        let nonce = auth::random_bytes::<32>().expect("randomness");
        let client = ClientHello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            uid: auth::my_uid(),
            proof: secret.client_proof(&hello.nonce),
            nonce,
            role,
        };
        write_frame(&mut wr, &client).await?;
        match read_frame::<HelloReply>(&mut rd).await? {
            HelloReply::Welcome(w) => {
                if !secret.verify_server(&nonce, &w.proof) {
                    return Err(SimError::Impostor);
                }
                Ok(SimClient {
                    rd,
                    wr,
                    assignment: w.assignment,
                })
            }
            HelloReply::Rejected(r) => Err(SimError::Rejected(r)),
        }
    }

    pub async fn send(&mut self, msg: &WorkerMsg) -> Result<(), SimError> {
        Ok(write_frame(&mut self.wr, msg).await?)
    }

    /// Reaches barrier `name` (the release comes as a later [`CoordMsg`]).
    pub async fn barrier(&mut self, name: &str) -> Result<(), SimError> {
        self.send(&WorkerMsg::Barrier { name: name.into() }).await
    }

    pub async fn recv(&mut self) -> Result<CoordMsg, SimError> {
        Ok(read_frame(&mut self.rd).await?)
    }

    pub async fn close(mut self) {
        let _ = self.wr.shutdown().await;
    }
}

/// One `dmtcp_command` exchange.
pub async fn command(
    addr: SocketAddr,
    secret: &Secret,
    cmd: Command,
) -> Result<CommandReply, SimError> {
    let mut c = SimClient::connect(addr, secret, Role::Command).await?;
    write_frame(&mut c.wr, &cmd).await?;
    Ok(read_frame(&mut c.rd).await?)
}
