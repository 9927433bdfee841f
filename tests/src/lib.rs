//! The end-to-end test harness shared by every test that runs the real tools.
//!
//! A test builds an [`Env`]: a fresh work dir owned by the unprivileged test user (`dmtcptest`
//! when the suite runs as root, else the current user) that also serves as that user's `HOME`,
//! so coordinator secrets and registries of parallel tests never mix. Through it the test runs
//! tools and programs as that user ([`Cmd`]), starts coordinators ([`Coordinator`]), reads
//! `dmtcp_command --json` ([`Status`]) and waits with timeouts whose failure messages include
//! the coordinator logs and the programs' output. Everything the test started is killed (by
//! pid or process group, never by name) when the `Env` is dropped.

pub mod coordinator;
pub mod coverage_support;
pub mod engine_support;
pub mod env;
pub mod failure_support;
pub mod hosts;
pub mod pid_modes;
pub mod process;
pub mod programs;
pub mod pty;
pub mod reaper;
pub mod status;
pub mod tools;
pub mod user;
pub mod wait;
pub mod workdir;

pub use coordinator::Coordinator;
pub use env::Env;
pub use process::{Cmd, Output, Spawned};
pub use status::Status;
pub use tools::Tools;
pub use user::TestUser;
pub use wait::wait_for;
pub use workdir::WorkDir;

use std::time::Duration;

/// Default timeout for a tool invocation that should be quick (`dmtcp_command`, a short program).
pub const QUICK: Duration = Duration::from_secs(15);
/// Default timeout for a computation to reach a state (peers joined, program finished).
pub const LONG: Duration = Duration::from_secs(20);
