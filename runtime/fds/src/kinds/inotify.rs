//! inotify: watches (path, mask) re-added with the same watch descriptors.
//!
//! fdinfo gives each watch's inode but not its path. Paths come from [`note_watch`] (fed by the
//! runtime's `inotify_add_watch` wrapper); when none was noted, or the noted name now points
//! elsewhere, the inode is looked up in the noted path's directory or under the search roots.
//! Events queued but not yet read are not preserved.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{FdError, Result};
use crate::fdinfo::kdev_to_st_dev;
use crate::install::RestoreCtx;
use crate::scan::FdDesc;
use crate::{SaveOptions, sys};

static NOTED: Mutex<BTreeMap<(RawFd, i32), String>> = Mutex::new(BTreeMap::new());

/// Records the path a watch was added with (called after a successful `inotify_add_watch`).
pub fn note_watch(fd: RawFd, wd: i32, path: &str) {
    NOTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((fd, wd), path.to_string());
}

/// Forgets every noted watch of `fd` (when the program closes it).
pub fn forget_fd(fd: RawFd) {
    NOTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(f, _), _| *f != fd);
}

fn noted(fd: RawFd, wd: i32) -> Option<String> {
    NOTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(fd, wd))
        .cloned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    pub wd: i32,
    pub mask: u32,
    /// None when the watched inode could not be found by name: the watch is dropped at restore.
    pub path: Option<String>,
    pub ino: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub flags: i32,
    pub watches: Vec<Watch>,
}

pub fn save(d: &FdDesc, opts: &SaveOptions) -> Result<State> {
    let watches = d
        .info
        .inotify
        .iter()
        .map(|w| {
            let key = (kdev_to_st_dev(w.sdev), w.ino);
            let path = resolve(
                noted(d.fd, w.wd).as_deref(),
                key,
                &opts.inotify_search_roots,
            );
            Watch {
                wd: w.wd,
                mask: w.mask,
                path,
                ino: w.ino,
            }
        })
        .collect();
    Ok(State {
        flags: d.flags(),
        watches,
    })
}

fn identity(path: &str) -> Option<(u64, u64)> {
    let m = std::fs::symlink_metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

/// Finds a path for inode `key` = (st_dev, st_ino).
fn resolve(noted: Option<&str>, key: (u64, u64), roots: &[String]) -> Option<String> {
    if let Some(p) = noted {
        if identity(p) == Some(key) {
            return Some(p.to_string());
        }
        let parent = std::path::Path::new(p).parent()?.to_str()?.to_string();
        if let Some(found) = search(&[parent], key, 1) {
            return Some(found);
        }
    }
    search(roots, key, 4)
}

/// Breadth-first search for an entry with identity `key`, bounded in depth and entries.
fn search(roots: &[String], key: (u64, u64), max_depth: usize) -> Option<String> {
    const MAX_ENTRIES: usize = 20_000;
    let mut queue: VecDeque<(String, usize)> = roots.iter().map(|r| (r.clone(), 0)).collect();
    let mut seen = 0;
    while let Some((dir, depth)) = queue.pop_front() {
        if identity(&dir) == Some(key) {
            return Some(dir);
        }
        let Ok(names) = sys::list_dir(&dir) else {
            continue;
        };
        for name in names {
            seen += 1;
            if seen > MAX_ENTRIES {
                return None;
            }
            let path = if dir.ends_with('/') {
                format!("{dir}{name}")
            } else {
                format!("{dir}/{name}")
            };
            let Ok(m) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if (m.dev(), m.ino()) == key {
                return Some(path);
            }
            if m.is_dir() && depth + 1 < max_depth {
                queue.push_back((path, depth + 1));
            }
        }
    }
    None
}

pub fn restore(s: &State, target: RawFd, cloexec: bool, ctx: &mut RestoreCtx) -> Result<()> {
    let fd = sys::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK)
        .map_err(FdError::sys(target, "inotify_init1"))?;
    let fd = ctx.fresh(fd, target)?;
    let raw = fd.as_raw_fd();
    let mut watches: Vec<&Watch> = s.watches.iter().collect();
    watches.sort_by_key(|w| w.wd);
    for w in watches {
        let Some(path) = &w.path else {
            ctx.report.warn(format!(
                "fd {target}: inotify watch {} (inode {}) dropped: its path is unknown",
                w.wd, w.ino
            ));
            continue;
        };
        // Watch descriptors are allocated cyclically: adding and removing the watch moves the
        // counter on until the kernel hands out the saved number.
        loop {
            let got = match sys::inotify_add_watch(raw, path, w.mask) {
                Ok(got) => got,
                Err(e) => {
                    ctx.report.warn(format!(
                        "fd {target}: inotify watch {} on {path} dropped: {e}",
                        w.wd
                    ));
                    break;
                }
            };
            if got == w.wd {
                break;
            }
            if got > w.wd {
                ctx.report.warn(format!(
                    "fd {target}: inotify watch on {path} came back as {got} instead of {}",
                    w.wd
                ));
                break;
            }
            sys::inotify_rm_watch(raw, got).map_err(FdError::sys(target, "inotify_rm_watch"))?;
        }
    }
    // Each removal queued an IN_IGNORED event the program must not see.
    let mut buf = vec![0u8; 4096];
    while matches!(sys::read(raw, &mut buf), Ok(n) if n > 0) {}
    ctx.set_status_flags(raw, s.flags)?;
    ctx.install(fd, target, cloexec)
}
