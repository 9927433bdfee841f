//! Errors of saving and restoring fds; each renders as one line naming the fd.

use std::io;
use std::os::fd::RawFd;

#[derive(Debug, thiserror::Error)]
pub enum FdError {
    /// A kind that cannot be checkpointed (io_uring, userfaultfd, perf_event, bpf, ...).
    #[error("fd {fd} is {what}, which cannot be checkpointed; {hint}")]
    Unsupported {
        fd: RawFd,
        what: String,
        hint: String,
    },

    #[error("fd {fd}: {op} failed: {source}")]
    Sys {
        fd: RawFd,
        op: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("fd {fd}: cannot parse /proc/self/fdinfo/{fd}: {detail}")]
    FdInfo { fd: RawFd, detail: String },

    /// The file an fd referred to is gone at restore.
    #[error(
        "fd {fd}: file {path} no longer exists; restore it, or restart from the directory it was in"
    )]
    Missing { fd: RawFd, path: String },

    /// The checkpoint holds the file's contents but the file on disk differs.
    #[error(
        "fd {fd}: file {path} changed since the checkpoint and its saved copy would overwrite it; \
         pass --allow-file-overwrite to replace it (the current file is kept as a .bk copy)"
    )]
    Changed { fd: RawFd, path: String },

    /// The table contradicts itself (a dup of an fd that is not in it, two ends claiming one
    /// pipe, ...): a damaged or hand-made table.
    #[error("fd {fd}: inconsistent fd table: {why}")]
    Inconsistent { fd: RawFd, why: String },
}

impl FdError {
    pub(crate) fn sys(fd: RawFd, op: &'static str) -> impl FnOnce(io::Error) -> FdError {
        move |source| FdError::Sys { fd, op, source }
    }

    /// [`FdError::sys`] for reopening the saved `path` of `fd`: a file that no longer exists
    /// is [`FdError::Missing`].
    pub(crate) fn reopen<'a>(
        fd: RawFd,
        path: &'a str,
        op: &'static str,
    ) -> impl FnOnce(io::Error) -> FdError + 'a {
        move |source| match source.raw_os_error() {
            Some(libc::ENOENT) => FdError::Missing {
                fd,
                path: path.to_string(),
            },
            _ => FdError::Sys { fd, op, source },
        }
    }

    /// The fd number the error is about.
    pub fn fd(&self) -> RawFd {
        match self {
            FdError::Unsupported { fd, .. }
            | FdError::Sys { fd, .. }
            | FdError::FdInfo { fd, .. }
            | FdError::Missing { fd, .. }
            | FdError::Changed { fd, .. }
            | FdError::Inconsistent { fd, .. } => *fd,
        }
    }
}

pub type Result<T, E = FdError> = std::result::Result<T, E>;
