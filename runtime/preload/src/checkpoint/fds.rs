//! The program's file descriptors: described while the program is frozen, recreated at
//! restart before any thread runs again (the per-kind work is in `dmtcp-fds`).
//!
//! The table lives in a static of this library, so it is saved with the memory and is there
//! again in the restored process; no image section is needed.

use std::sync::Mutex;

static TABLE: Mutex<Option<dmtcp_fds::FdTable>> = Mutex::new(None);

/// Saves every fd of the program except the runtime's and plugins' protected ones. Pipes are
/// drained and refilled, so the running program loses nothing.
pub fn capture() -> Result<(), dmtcp_fds::FdError> {
    let protected = crate::plugin::protected_fds();
    let fds: Vec<i32> = dmtcp_fds::list_fds()?
        .into_iter()
        .filter(|fd| !protected.contains(fd))
        .collect();
    let table = dmtcp_fds::save_fds(&fds, &dmtcp_fds::SaveOptions::from_env())?;
    *TABLE.lock().unwrap_or_else(|e| e.into_inner()) = Some(table);
    Ok(())
}

/// Recreates the saved fds at their numbers. Warnings (a file that changed, a watch dropped)
/// go to the log; an fd that cannot be recreated is an error the restart cannot survive.
pub fn restore() -> Result<(), dmtcp_fds::FdError> {
    let Some(table) = TABLE.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return Ok(());
    };
    let report = dmtcp_fds::restore_all(&table, &dmtcp_fds::RestoreOptions::from_env())?;
    for w in &report.warnings {
        crate::warn!("{w}");
    }
    Ok(())
}
