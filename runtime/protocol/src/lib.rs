//! The coordinator protocol: identities, messages, framing and authentication.
//!
//! Every connection starts with the coordinator's [`ServerHello`] (magic, version, a nonce), the
//! client's [`ClientHello`] proving knowledge of the computation's secret, and a [`Welcome`] or
//! [`Rejected`]. After that the connection carries [`WorkerMsg`]/[`CoordMsg`] for processes of the
//! computation, or one [`Command`]/[`CommandReply`] exchange for `dmtcp_command`.
//! Frames are a little-endian `u32` length followed by a postcard-encoded message.

pub mod auth;
pub mod client;
pub mod frame;
pub mod ids;
pub mod message;
pub mod registry;

pub use auth::{Secret, SecretError};
pub use client::{ClientError, Connection};
pub use frame::{FrameError, MAX_FRAME};
pub use ids::{CompId, UniquePid, WorkerState};
pub use message::*;

/// First bytes of every hello, so a stray client (or a DMTCP C++ peer) is recognised at once.
pub const MAGIC: [u8; 8] = *b"DMTCPRS\n";
/// Bumped on any incompatible change of the messages below.
pub const PROTOCOL_VERSION: u32 = 1;
/// DMTCP's default coordinator port.
pub const DEFAULT_PORT: u16 = 7779;
