//! `dmtcp_coordinator`: one server per computation.
//!
//! The logic lives in [`computation`], a synchronous state machine that returns the actions to
//! take; [`server`] is the thin tokio layer around it (accept loop, one task per connection,
//! one task owning the state). [`handshake`] decides who may talk to it, [`settings`] reads the
//! options and configuration files, [`daemon`] detaches it.

pub mod computation;
pub mod console;
pub mod daemon;
pub mod framing;
pub mod handshake;
pub mod kv;
pub mod listen;
pub mod outbox;
pub mod procnet;
pub mod restart_script;
pub mod server;
pub mod settings;
pub mod sim;
pub mod sock_diag;

pub use computation::{Action, CompConfig, Computation, ExitReason, Joining, Now};
pub use procnet::port_holder;
pub use server::{Server, ServerError};
