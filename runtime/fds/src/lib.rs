//! File descriptors: what to save for each kind and how to recreate it at the same number.
//!
//! Each kind has a module in [`kinds`] with a serializable `State`, a `save` that runs while
//! the program is frozen and a `restore` that recreates the object in a fresh process at the
//! same fd number, keeping close-on-exec. [`save_all`] lists and saves every fd
//! (`/proc/self/fd`, `/proc/self/fdinfo`), [`restore_all`] brings back a whole [`FdTable`] in an
//! order that respects dependencies (pipes as pairs, pty slaves after masters, epoll
//! registrations last, dups by `dup3`). See docs/fds.md.

pub mod classify;
pub mod error;
pub mod fdinfo;
pub mod install;
pub mod kinds;
pub mod scan;
mod sys;
pub mod table;

pub use classify::{Class, classify};
pub use error::{FdError, Result};
pub use install::{OrphanPipeEnd, RestoreOptions, RestoreReport};
pub use kinds::inotify::{forget_fd as forget_inotify_fd, note_watch};
pub use scan::{FdDesc, PROTECTED_FDS, describe, list_fds, scan};
pub use table::{FdEntry, FdObject, FdTable, restore_all, save_all, save_fds};

/// Options of the save side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveOptions {
    /// Save the contents of every open regular file (`--ckpt-open-files`); deleted files are
    /// always saved.
    pub save_contents: bool,
    /// Directories searched (a few levels deep) for inotify watches whose path was not noted;
    /// empty = the current directory.
    pub inotify_search_roots: Vec<String>,
    /// Inodes of pipes and FIFOs whose data another process saves (the cross-process layer's
    /// elected leader): their data is neither drained nor saved here, so it is not refilled
    /// twice at restart.
    pub skip_drain: Vec<u64>,
    /// pts numbers of ptys whose bytes in flight another process (the one leading the pty)
    /// saves.
    pub skip_pty_data: Vec<u32>,
}

/// Whether a settings variable is set to a true value ("1", "yes", "true").
fn env_flag(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> bool {
    lookup(name).is_some_and(|v| matches!(v.trim(), "1" | "yes" | "true"))
}

impl SaveOptions {
    /// From the launch settings: `DMTCP_CKPT_OPEN_FILES=1` (`dmtcp_launch --ckpt-open-files`).
    pub fn from_env() -> Self {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        SaveOptions {
            save_contents: env_flag(lookup, "DMTCP_CKPT_OPEN_FILES"),
            ..Default::default()
        }
    }
}

impl RestoreOptions {
    /// From the restart settings: `DMTCP_ALLOW_FILE_OVERWRITE=1` (`--allow-file-overwrite`),
    /// `DMTCP_SKIP_TRUNCATE_FILES=1` (keep grown files as they are).
    pub fn from_env() -> Self {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        RestoreOptions {
            allow_file_overwrite: env_flag(lookup, "DMTCP_ALLOW_FILE_OVERWRITE"),
            truncate_grown_files: !env_flag(lookup, "DMTCP_SKIP_TRUNCATE_FILES"),
            inherit_all_stdio: !env_flag(lookup, "DMTCP_RESTORE_STDIO"),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests;
