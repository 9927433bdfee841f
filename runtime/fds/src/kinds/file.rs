//! Regular files: path, flags, offset and identity; contents when deleted or asked for.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::error::{FdError, Result};
use crate::install::RestoreCtx;
use crate::scan::FdDesc;
use crate::{SaveOptions, sys};

/// What identifies the file's version at checkpoint time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub size: i64,
    pub mtime: (i64, i64),
    /// Permission bits, used when the file has to be re-created.
    pub perm: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub path: String,
    /// File status and access flags (O_APPEND, O_NONBLOCK, O_RDWR, ...), no O_CLOEXEC.
    pub flags: i32,
    pub offset: i64,
    pub identity: Identity,
    /// The file was unlinked while open: it is re-created from `contents` and unlinked again.
    pub deleted: bool,
    /// The file's bytes, saved for deleted files and with `save_contents`.
    pub contents: Option<Vec<u8>>,
}

/// Flags that only make sense at creation; the kernel clears most of them after open but a
/// hand-made table could carry them. (`O_TMPFILE` minus `O_DIRECTORY`, which directories keep.)
const CREATION_FLAGS: i32 =
    libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | (libc::O_TMPFILE & !libc::O_DIRECTORY);

const DELETED_SUFFIX: &str = " (deleted)";

pub fn save(d: &FdDesc, opts: &SaveOptions) -> Result<State> {
    let deleted = d.nlink == 0;
    let path = match d.link.strip_suffix(DELETED_SUFFIX) {
        Some(p) if deleted => p.to_string(),
        _ => own_proc_path(&d.link),
    };
    let offset = sys::lseek(d.fd, 0, libc::SEEK_CUR).map_err(FdError::sys(d.fd, "lseek"))?;
    let contents = if deleted || opts.save_contents {
        Some(read_all(d.fd, d.size)?)
    } else {
        None
    };
    Ok(State {
        path,
        flags: d.flags() & !CREATION_FLAGS,
        offset,
        identity: Identity {
            dev: d.dev,
            ino: d.ino,
            size: d.size,
            mtime: d.mtime,
            perm: d.mode & 0o7777,
        },
        deleted,
        contents,
    })
}

/// Reads a file's bytes with `pread`, leaving its offset alone (the fd may be write-only, so a
/// fresh read-only description is opened through /proc when needed).
pub(crate) fn read_all(fd: RawFd, size: i64) -> Result<Vec<u8>> {
    let reopened;
    let src = match sys::fcntl(fd, libc::F_GETFL, 0) {
        Ok(fl) if fl & libc::O_ACCMODE != libc::O_WRONLY => fd,
        _ => {
            reopened = sys::open(
                &format!("/proc/self/fd/{fd}"),
                libc::O_RDONLY | libc::O_CLOEXEC,
                0,
            )
            .map_err(FdError::sys(fd, "reopen for reading"))?;
            reopened.as_raw_fd()
        }
    };
    let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0)];
    let mut done = 0;
    while done < buf.len() {
        let n =
            sys::pread(src, &mut buf[done..], done as i64).map_err(FdError::sys(fd, "pread"))?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

fn write_all_at(fd: RawFd, data: &[u8], target: RawFd) -> Result<()> {
    let mut done = 0;
    while done < data.len() {
        let n =
            sys::pwrite(fd, &data[done..], done as i64).map_err(FdError::sys(target, "pwrite"))?;
        done += n;
    }
    Ok(())
}

pub fn restore(s: &State, target: RawFd, cloexec: bool, ctx: &mut RestoreCtx) -> Result<()> {
    let fd = if s.deleted {
        recreate_deleted(s, target)?
    } else {
        reopen(s, target, ctx)?
    };
    let fd = ctx.fresh(fd, target)?;
    sys::lseek(fd.as_raw_fd(), s.offset, libc::SEEK_SET).map_err(FdError::sys(target, "lseek"))?;
    ctx.install(fd, target, cloexec)
}

fn open_flags(s: &State) -> i32 {
    (s.flags & !CREATION_FLAGS) | libc::O_CLOEXEC
}

fn is_writable(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY
}

fn reopen(s: &State, target: RawFd, ctx: &mut RestoreCtx) -> Result<OwnedFd> {
    let path = s.path.as_str();
    let current = match sys::stat_path(path) {
        Ok(st) => Some(st),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
        Err(e) => {
            return Err(FdError::Sys {
                fd: target,
                op: "stat",
                source: e,
            });
        }
    };
    match (&current, &s.contents) {
        (None, Some(contents)) => create_with(path, s.identity.perm, contents, target)?,
        (None, None) => {
            let write_only = s.flags & libc::O_ACCMODE == libc::O_WRONLY;
            if !(write_only && ctx.opts.recreate_missing_write_only) {
                return Err(FdError::Missing {
                    fd: target,
                    path: s.path.clone(),
                });
            }
            ctx.report.warn(format!(
                "fd {target}: re-created missing write-only file {path}"
            ));
            let fd = sys::open(path, open_flags(s) | libc::O_CREAT, s.identity.perm)
                .map_err(FdError::sys(target, "create"))?;
            return Ok(fd);
        }
        (Some(st), Some(contents)) => {
            let on_disk = {
                let fd = sys::open(path, libc::O_RDONLY | libc::O_CLOEXEC, 0)
                    .map_err(FdError::sys(target, "open for comparison"))?;
                read_all(fd.as_raw_fd(), st.st_size)?
            };
            if on_disk != *contents {
                if !ctx.opts.allow_file_overwrite {
                    return Err(FdError::Changed {
                        fd: target,
                        path: s.path.clone(),
                    });
                }
                let backup = backup_name(path);
                std::fs::rename(path, &backup).map_err(FdError::sys(target, "rename to .bk"))?;
                ctx.report
                    .warn(format!("fd {target}: {path} differed; kept it as {backup}"));
                create_with(path, s.identity.perm, contents, target)?;
            }
        }
        (Some(st), None) => {
            // /proc files have no identity that outlives the process.
            if (st.st_dev, st.st_ino) != (s.identity.dev, s.identity.ino)
                && !path.starts_with("/proc/")
            {
                ctx.report
                    .warn(format!("fd {target}: {path} was replaced by another file"));
            }
            if st.st_size < s.identity.size {
                ctx.report.warn(format!(
                    "fd {target}: {path} shrank from {} to {} bytes since the checkpoint",
                    s.identity.size, st.st_size
                ));
            }
        }
    }
    let fd = sys::open(path, open_flags(s), 0).map_err(FdError::sys(target, "open"))?;
    if s.contents.is_none() && is_writable(s.flags) && ctx.opts.truncate_grown_files {
        let size = sys::fstat(fd.as_raw_fd())
            .map_err(FdError::sys(target, "fstat"))?
            .st_size;
        if size > s.identity.size {
            sys::ftruncate(fd.as_raw_fd(), s.identity.size)
                .map_err(FdError::sys(target, "ftruncate"))?;
            ctx.report.warn(format!(
                "fd {target}: truncated {path} from {size} back to {} bytes",
                s.identity.size
            ));
        }
    }
    Ok(fd)
}

/// `/proc/<this process>/...` as `/proc/self/...`: the file is this process's own, and its pid
/// is another after a restart with virtual ids or on another host. (readlink gives the pid,
/// even for a file opened as /proc/self/....) The real pid comes from /proc/self/stat: with
/// virtual ids, `getpid` and `readlink("/proc/self")` answer with the virtual one.
pub(crate) fn own_proc_path(path: &str) -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let me = stat.split(' ').next().filter(|p| !p.is_empty());
    let rest = me.and_then(|me| {
        path.strip_prefix("/proc/")?
            .strip_prefix(me)?
            .strip_prefix('/')
    });
    match rest {
        Some(rest) => format!("/proc/self/{rest}"),
        None => path.to_string(),
    }
}

fn backup_name(path: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{path}.{secs}.bk")
}

/// Creates `path` (which must not exist) holding `contents`.
fn create_with(path: &str, perm: u32, contents: &[u8], target: RawFd) -> Result<()> {
    let fd = sys::open(
        path,
        libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC,
        perm,
    )
    .map_err(FdError::sys(target, "create"))?;
    write_all_at(fd.as_raw_fd(), contents, target)
}

/// Re-creates a file that was deleted while open: at its old path (then unlinked, so the
/// link reads "<path> (deleted)" as before) or, if that name is taken or its directory is gone,
/// as an O_TMPFILE in the old directory or /tmp.
fn recreate_deleted(s: &State, target: RawFd) -> Result<OwnedFd> {
    let contents = s.contents.as_deref().ok_or_else(|| FdError::Inconsistent {
        fd: target,
        why: format!("deleted file {} has no saved contents", s.path),
    })?;
    let perm = s.identity.perm;
    let flags = open_flags(s);
    if create_with(&s.path, perm, contents, target).is_ok() {
        let fd = sys::open(&s.path, flags, 0).map_err(FdError::sys(target, "open"));
        let unlinked = sys::unlink(&s.path).map_err(FdError::sys(target, "unlink"));
        let fd = fd?;
        unlinked?;
        return Ok(fd);
    }
    let dir = std::path::Path::new(&s.path)
        .parent()
        .and_then(|p| p.to_str())
        .filter(|p| !p.is_empty())
        .unwrap_or("/tmp");
    let tmp = sys::open(dir, libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC, perm)
        .or_else(|_| {
            sys::open(
                "/tmp",
                libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
                perm,
            )
        })
        .map_err(FdError::sys(target, "O_TMPFILE"))?;
    write_all_at(tmp.as_raw_fd(), contents, target)?;
    sys::open(&format!("/proc/self/fd/{}", tmp.as_raw_fd()), flags, 0)
        .map_err(FdError::sys(target, "reopen temp file"))
}

/// `O_PATH` fds, directories and devices: reopened by path.
pub mod by_path {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct State {
        pub path: String,
        pub flags: i32,
        /// Directory position (a cookie for readdir) or device offset; 0 for O_PATH.
        pub offset: i64,
        /// Device number for devices (checked at restore), 0 otherwise.
        pub rdev: u64,
    }

    pub fn save(d: &FdDesc) -> Result<State> {
        let offset = if d.info.flags & libc::O_PATH != 0 {
            0
        } else {
            // Character devices are usually not seekable; their position is meaningless then.
            sys::lseek(d.fd, 0, libc::SEEK_CUR).unwrap_or(0)
        };
        let is_dev = matches!(d.mode & libc::S_IFMT, libc::S_IFCHR | libc::S_IFBLK);
        Ok(State {
            path: super::own_proc_path(&d.link),
            flags: d.flags() & !CREATION_FLAGS,
            offset,
            rdev: if is_dev { d.rdev } else { 0 },
        })
    }

    pub fn restore(s: &State, target: RawFd, cloexec: bool, ctx: &mut RestoreCtx) -> Result<()> {
        let fd = sys::open(&s.path, open_flags_any(s.flags), 0)
            .map_err(FdError::reopen(target, &s.path, "open"))?;
        let fd = ctx.fresh(fd, target)?;
        if s.rdev != 0 {
            let st = sys::fstat(fd.as_raw_fd()).map_err(FdError::sys(target, "fstat"))?;
            if st.st_rdev != s.rdev {
                ctx.report
                    .warn(format!("fd {target}: {} is now a different device", s.path));
            }
        }
        if s.offset != 0 {
            sys::lseek(fd.as_raw_fd(), s.offset, libc::SEEK_SET)
                .map_err(FdError::sys(target, "lseek"))?;
        }
        ctx.install(fd, target, cloexec)
    }

    fn open_flags_any(flags: i32) -> i32 {
        (flags & !CREATION_FLAGS) | libc::O_CLOEXEC | libc::O_NOCTTY
    }
}
