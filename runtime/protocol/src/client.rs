//! The blocking client side of the hello, shared by the runtime library and the tools.

use crate::auth::{self, Secret, SecretError};
use crate::frame::{self, FrameError};
use crate::message::*;
use crate::{MAGIC, PROTOCOL_VERSION};
use serde::{Serialize, de::DeserializeOwned};
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no coordinator at {addr}: {source}")]
    NotFound { addr: String, source: io::Error },
    #[error(
        "{addr} does not speak the coordinator protocol (is it another service, or a DMTCP C++ coordinator?)"
    )]
    NotACoordinator { addr: String },
    #[error(
        "coordinator at {addr} speaks protocol version {theirs}, this tool speaks {ours}: use tools from the same installation"
    )]
    VersionMismatch {
        addr: String,
        theirs: u32,
        ours: u32,
    },
    #[error(
        "coordinator at {addr} belongs to uid {owner}, not to you (uid {me}); start your own with --new-coordinator or another port"
    )]
    ForeignUser { addr: String, owner: u32, me: u32 },
    #[error("coordinator at {addr}: {source}")]
    Secret {
        addr: String,
        #[source]
        source: SecretError,
    },
    #[error("coordinator at {addr} refused the connection: {message}")]
    Rejected {
        addr: String,
        reason: RejectReason,
        message: String,
    },
    #[error("coordinator at {addr} failed to prove it knows the computation's secret")]
    Impostor { addr: String },
    #[error("coordinator at {addr}: {source}")]
    Frame { addr: String, source: FrameError },
}

impl ClientError {
    /// True when nothing listens at the address (DMTCP's `DMT_COORD_NOT_FOUND`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::NotFound { .. })
    }
}

/// An authenticated connection to a coordinator.
pub struct Connection {
    pub stream: TcpStream,
    pub addr: String,
    pub coord_id: String,
    pub secret: Secret,
    pub owner_uid: u32,
}

impl Connection {
    /// Connects to `host:port` and performs the hello for `role`.
    /// Returns the connection and, for workers, their assignment.
    pub fn open(
        host: &str,
        port: u16,
        role: Role,
        timeout: Option<Duration>,
    ) -> Result<(Connection, Option<Assignment>), ClientError> {
        let addr = format!("{host}:{port}");
        let stream = connect(&addr, timeout)?;
        Self::handshake(stream, addr, role)
    }

    /// Performs the hello over an already connected stream.
    pub fn handshake(
        mut stream: TcpStream,
        addr: String,
        role: Role,
    ) -> Result<(Connection, Option<Assignment>), ClientError> {
        let fe = |source| ClientError::Frame {
            addr: addr.clone(),
            source,
        };
        let _ = stream.set_nodelay(true);
        let hello: ServerHello = match frame::read_frame(&mut stream) {
            Ok(h) => h,
            Err(FrameError::Io(source)) => return Err(fe(FrameError::Io(source))),
            Err(FrameError::Closed) => return Err(fe(FrameError::Closed)),
            Err(_) => return Err(ClientError::NotACoordinator { addr }),
        };
        if hello.magic != MAGIC {
            return Err(ClientError::NotACoordinator { addr });
        }
        if hello.version != PROTOCOL_VERSION {
            return Err(ClientError::VersionMismatch {
                addr,
                theirs: hello.version,
                ours: PROTOCOL_VERSION,
            });
        }
        let me = auth::my_uid();
        let secret = match auth::load_secret(&hello.coord_id) {
            Ok(s) => s,
            Err(_) if hello.owner_uid != me => {
                return Err(ClientError::ForeignUser {
                    addr,
                    owner: hello.owner_uid,
                    me,
                });
            }
            Err(source) => return Err(ClientError::Secret { addr, source }),
        };
        let nonce = auth::random_bytes::<32>().map_err(|source| ClientError::Secret {
            addr: addr.clone(),
            source,
        })?;
        let reply = ClientHello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            uid: me,
            proof: secret.client_proof(&hello.nonce),
            nonce,
            role,
        };
        frame::write_frame(&mut stream, &reply).map_err(fe)?;
        match frame::read_frame::<HelloReply>(&mut stream).map_err(fe)? {
            HelloReply::Welcome(w) => {
                if !secret.verify_server(&nonce, &w.proof) {
                    return Err(ClientError::Impostor { addr });
                }
                let conn = Connection {
                    stream,
                    addr,
                    coord_id: hello.coord_id,
                    secret,
                    owner_uid: hello.owner_uid,
                };
                Ok((conn, w.assignment))
            }
            HelloReply::Rejected(r) => Err(ClientError::Rejected {
                addr,
                reason: r.reason,
                message: r.message,
            }),
        }
    }

    pub fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), FrameError> {
        frame::write_frame(&mut self.stream, msg)
    }

    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, FrameError> {
        frame::read_frame(&mut self.stream)
    }

    /// Sends one command and waits for its reply (`dmtcp_command`).
    pub fn command(
        host: &str,
        port: u16,
        cmd: Command,
        timeout: Option<Duration>,
    ) -> Result<CommandReply, ClientError> {
        let (mut conn, _) = Self::open(host, port, Role::Command, timeout)?;
        let addr = conn.addr.clone();
        // A blocking checkpoint may take as long as the images take to write.
        let _ = conn.stream.set_read_timeout(None);
        conn.send(&cmd).map_err(|source| ClientError::Frame {
            addr: addr.clone(),
            source,
        })?;
        conn.recv()
            .map_err(|source| ClientError::Frame { addr, source })
    }
}

fn connect(addr: &str, timeout: Option<Duration>) -> Result<TcpStream, ClientError> {
    let not_found = |source| ClientError::NotFound {
        addr: addr.to_string(),
        source,
    };
    let addrs: Vec<_> = addr.to_socket_addrs().map_err(not_found)?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "host name did not resolve");
    for a in addrs {
        let r = match timeout {
            Some(t) => TcpStream::connect_timeout(&a, t),
            None => TcpStream::connect(a),
        };
        match r {
            Ok(s) => {
                let _ = s.set_read_timeout(timeout);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(not_found(last))
}
