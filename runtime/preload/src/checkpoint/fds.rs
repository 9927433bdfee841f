//! The program's file descriptors: described while the program is frozen, recreated at
//! restart before any thread runs again (the per-kind work is in `dmtcp-fds`).
//!
//! The table lives in a static of this library, so it is saved with the memory and is there
//! again in the restored process; no image section is needed.

use super::shared_fds::{self, SharedError};
use super::sockets::{self, SocketError};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum FdsError {
    #[error("{0}")]
    Fds(#[from] dmtcp_fds::FdError),
    #[error("{0}")]
    Shared(#[from] SharedError),
    #[error("{0}")]
    Sockets(#[from] SocketError),
}

static TABLE: Mutex<Option<dmtcp_fds::FdTable>> = Mutex::new(None);

/// Saves every fd of the program except the runtime's and plugins' protected ones. Pipes are
/// drained and refilled, so the running program loses nothing; pipes and FIFOs shared with
/// other processes are drained only by their elected leader (`shared_fds`).
pub fn capture(generation: u32) -> Result<(), FdsError> {
    let protected = crate::plugin::protected_fds();
    let fds: Vec<i32> = match dmtcp_fds::list_fds() {
        Ok(fds) => fds
            .into_iter()
            // POSIX message queues are saved by `posix_mq`.
            .filter(|fd| !protected.contains(fd) && !super::posix_mq::is_mq(*fd))
            .collect(),
        Err(e) => {
            shared_fds::elect_absent().map_err(SharedError::from)?;
            sockets::absent().map_err(SocketError::from)?;
            return Err(e.into());
        }
    };
    let mut opts = dmtcp_fds::SaveOptions::from_env();
    let not_mine = match shared_fds::elect(generation, &fds) {
        Ok(n) => n,
        Err(e) => {
            sockets::absent().map_err(SocketError::from)?;
            return Err(e.into());
        }
    };
    opts.skip_drain = not_mine.pipes;
    opts.skip_pty_data = not_mine.ptys;
    // Sockets between processes of the computation are drained (and refilled at resume).
    sockets::checkpoint(generation, &fds)?;
    let table = dmtcp_fds::save_fds(&fds, &opts)?;
    *TABLE.lock().unwrap_or_else(|e| e.into_inner()) = Some(table);
    Ok(())
}

/// Recreates the saved fds at their numbers, then rejoins pipes, descriptions and ptys shared
/// with other processes and takes back the controlling terminal.
/// Warnings (a file that changed, a watch dropped) go to the log; an fd that cannot be
/// recreated is an error the restart cannot survive.
pub fn restore() -> Result<(), FdsError> {
    let table = TABLE.lock().unwrap_or_else(|e| e.into_inner()).take();
    let mut orphans = Vec::new();
    let mut report_kept = None;
    if let Some(table) = &table {
        let mut opts = dmtcp_fds::RestoreOptions::from_env();
        opts.shared_pipes = shared_fds::shared_pipe_inodes();
        opts.handed_over = shared_fds::handed_over_fds();
        let mut report = dmtcp_fds::restore_all(table, &opts)?;
        for w in &report.warnings {
            crate::warn!("{w}");
        }
        orphans = std::mem::take(&mut report.orphan_pipe_ends);
        report_kept = Some(report);
    }
    shared_fds::rejoin(table.as_ref(), orphans)?;
    sockets::restart(table.as_ref(), report_kept.as_ref())?;
    Ok(())
}
