//! `dmtcp_coordinator`: one server per computation.
//!
//! The logic lives in [`computation`], a synchronous state machine that returns the actions to
//! take; [`server`] is the thin tokio layer around it (accept loop, one task per connection,
//! one task owning the state). [`handshake`] authenticates every connection.

pub mod computation;
pub mod kv;
pub mod restart_script;

pub use computation::{Action, CompConfig, Computation, ExitReason, Joining, Now};
