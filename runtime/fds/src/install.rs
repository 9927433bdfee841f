//! Restore-side context: options, the report, and putting a new object at its fd number.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};

use crate::error::{FdError, Result};
use crate::sys;

/// How files are treated at restore (see docs/fds.md, "File policy").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Replace a file whose saved copy differs from the one on disk (`--allow-file-overwrite`);
    /// the current file is renamed to `<path>.<unix-time>.bk` first.
    pub allow_file_overwrite: bool,
    /// Truncate writable files that grew since the checkpoint back to their checkpointed size,
    /// so data written after the checkpoint is not kept twice. Default on, as in DMTCP.
    pub truncate_grown_files: bool,
    /// A write-only file that is missing at restore is re-created empty instead of failing.
    pub recreate_missing_write_only: bool,
    /// Fds 0, 1 and 2 that lead outside the computation (a terminal not in the table, a pipe
    /// whose other end was in another process) are left as the restart command has them, as
    /// DMTCP does, instead of reopening the old terminal or creating a pipe nobody reads.
    pub inherit_stdio: bool,
    /// Fds 0, 1 and 2 are always those of the restart command, whatever they were (DMTCP's
    /// behaviour, so `dmtcp_restart ... > new.log` works). The runtime turns it on
    /// ([`RestoreOptions::from_env`]) unless `DMTCP_RESTORE_STDIO=1`, with which stdio
    /// redirected to files at launch comes back to those files.
    pub inherit_all_stdio: bool,
    /// Inodes of pipes shared with other processes of the computation (the cross-process
    /// layer rejoins them): restored even at fds 0-2, where the stdio rules would inherit
    /// the restart command's fd instead (`a | b` in a checkpointed shell).
    pub shared_pipes: Vec<u64>,
    /// Fds whose open file description (or pty) another process of the computation restores
    /// and passes on (the cross-process layer installs them, and their dups, afterwards):
    /// left alone here, even at fds 0-2, and listed in [`RestoreReport::handed_over`].
    pub handed_over: Vec<RawFd>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            allow_file_overwrite: false,
            truncate_grown_files: true,
            recreate_missing_write_only: true,
            inherit_stdio: true,
            inherit_all_stdio: false,
            shared_pipes: Vec::new(),
            handed_over: Vec::new(),
        }
    }
}

/// A pipe end created at restore for a pipe whose other end lived in another process. The
/// cross-process layer passes it to that process (SCM_RIGHTS) or drops it.
#[derive(Debug)]
pub struct OrphanPipeEnd {
    /// The pipe's inode at checkpoint time: the key both processes saved.
    pub inode: u64,
    /// True when `fd` is the write end (the process restored the read end).
    pub write_end: bool,
    pub fd: OwnedFd,
}

/// What restore did besides recreating fds: things a caller or user should know.
#[derive(Debug, Default)]
pub struct RestoreReport {
    /// One line each: files that changed, watches dropped, ticks that could not be set...
    pub warnings: Vec<String>,
    /// Fds left as they were (stdio inherited from the restart command, and dups of those
    /// the restoring process did not have open).
    pub inherited: Vec<RawFd>,
    /// Socket fds (and their dups): recognised, restored by the socket layer.
    pub sockets: Vec<RawFd>,
    pub orphan_pipe_ends: Vec<OrphanPipeEnd>,
    /// Fds of `RestoreOptions::handed_over` and their dups, left for the cross-process layer.
    pub handed_over: Vec<RawFd>,
    /// (epoll fd, registration) pairs whose target is a socket: to be added with
    /// `EPOLL_CTL_ADD` once the socket layer has restored it.
    pub deferred_epoll: Vec<(RawFd, crate::kinds::epoll::Target)>,
}

impl RestoreReport {
    pub(crate) fn warn(&mut self, msg: String) {
        tracing::warn!("{msg}");
        self.warnings.push(msg);
    }
}

/// State shared by the kind modules during one `restore_all`.
pub struct RestoreCtx<'a> {
    pub opts: &'a RestoreOptions,
    pub report: RestoreReport,
    /// New objects are moved to numbers >= this before being placed, so a fresh fd never sits
    /// on a number that is still to be restored.
    pub scratch_min: RawFd,
    /// pty index at checkpoint → fd number of its restored master.
    pub pty_masters: HashMap<u32, RawFd>,
    /// memfd inode at checkpoint → fd number of its first restored description.
    pub memfds: HashMap<u64, RawFd>,
}

impl<'a> RestoreCtx<'a> {
    pub fn new(opts: &'a RestoreOptions, scratch_min: RawFd) -> Self {
        RestoreCtx {
            opts,
            report: RestoreReport::default(),
            scratch_min,
            pty_masters: HashMap::new(),
            memfds: HashMap::new(),
        }
    }

    /// Moves a freshly created fd above every number in the table.
    pub fn fresh(&self, fd: OwnedFd, target: RawFd) -> Result<OwnedFd> {
        if fd.as_raw_fd() >= self.scratch_min {
            return Ok(fd);
        }
        sys::dup_above(fd.as_raw_fd(), self.scratch_min).map_err(FdError::sys(target, "F_DUPFD"))
    }

    /// Places `fd` at number `target` with the saved close-on-exec flag.
    pub fn install(&self, fd: OwnedFd, target: RawFd, cloexec: bool) -> Result<()> {
        if fd.as_raw_fd() == target {
            let flag = if cloexec { libc::FD_CLOEXEC } else { 0 };
            sys::fcntl(target, libc::F_SETFD, flag).map_err(FdError::sys(target, "F_SETFD"))?;
            let _ = fd.into_raw_fd();
            return Ok(());
        }
        let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
        sys::dup3(fd.as_raw_fd(), target, flags).map_err(FdError::sys(target, "dup3"))
    }

    /// Sets the file status flags (O_NONBLOCK, O_APPEND, ...) of a restored description.
    pub fn set_status_flags(&self, fd: RawFd, flags: i32) -> Result<()> {
        sys::fcntl(fd, libc::F_SETFL, flags)
            .map(drop)
            .map_err(FdError::sys(fd, "F_SETFL"))
    }
}
