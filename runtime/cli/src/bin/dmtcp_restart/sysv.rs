//! SysV IPC objects at restart: recreated with their old ids in a fresh IPC namespace, before
//! the process tree is forked (so every restored process sees them).
//!
//! The ids stay exact: the init of the restart's user namespace holds CAP_SYS_ADMIN and
//! CAP_CHECKPOINT_RESTORE there, so it may create an IPC namespace owned by it and write
//! `/proc/sys/kernel/{shm,sem,msg}_next_id` before each `*get`. The restored runtime library
//! then attaches each segment again at its old address (preload `checkpoint/sysv.rs`).

use crate::images::Checked;
use dmtcp_image::sysv_ipc::{SYSV_IPC_SECTION, SysvMsgQueue, SysvObjects, SysvSem, SysvShm};
use dmtcp_image::{ImageError, RegionFlags, RegionId};
use std::io;

#[derive(Debug, thiserror::Error)]
pub enum SysvError {
    #[error("{image}: the SysV IPC section is damaged: {err}")]
    Section { image: String, err: postcard::Error },
    #[error(
        "the images hold SysV IPC objects, whose ids can only be restored in a user namespace ({0}); restart where unprivileged user namespaces are allowed"
    )]
    NoNamespace(io::Error),
    #[error("cannot create an IPC namespace for the SysV objects: {0}")]
    Unshare(io::Error),
    #[error("cannot choose the id of SysV {what} {id} (/proc/sys/kernel/{what}_next_id): {err}")]
    NextId {
        what: &'static str,
        id: i32,
        err: io::Error,
    },
    #[error("cannot recreate SysV {what} {id}: {err}")]
    Create {
        what: &'static str,
        id: i32,
        err: io::Error,
    },
    #[error("SysV {what} {id} came back as id {got}")]
    WrongId {
        what: &'static str,
        id: i32,
        got: i32,
    },
    #[error("cannot fill SysV segment {id}: {err}")]
    Fill { id: i32, err: ImageError },
}

/// Every SysV object saved in `images` (first copy of each id).
pub fn collect(images: &[&Checked]) -> Result<SysvObjects, SysvError> {
    let mut all = SysvObjects::default();
    for c in images {
        if let Some(b) = c.image.header().section(SYSV_IPC_SECTION) {
            let o = SysvObjects::from_bytes(b).map_err(|err| SysvError::Section {
                image: c.path.display().to_string(),
                err,
            })?;
            all.merge(o);
        }
    }
    Ok(all)
}

/// Without the restart's pid namespace (virtual ids): enters a user namespace of our own
/// (same uid and gid inside), whose capabilities let [`recreate`] choose the ids.
pub fn enter_user_namespace() -> Result<(), SysvError> {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    // SAFETY: unshare of this single-threaded process's user namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        return Err(SysvError::NoNamespace(last_err()));
    }
    let write = |f: &str, v: String| std::fs::write(format!("/proc/self/{f}"), v);
    write("setgroups", "deny".into())
        .and_then(|()| write("uid_map", format!("{uid} {uid} 1")))
        .and_then(|()| write("gid_map", format!("{gid} {gid} 1")))
        .map_err(SysvError::NoNamespace)
}

/// Enters a fresh IPC namespace and recreates `objs` there with their ids. Runs in the init of
/// the restart's user namespace, before any restored process exists.
pub fn recreate(objs: &SysvObjects, images: &[&Checked]) -> Result<(), SysvError> {
    // SAFETY: unshare of this single-threaded process's IPC namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWIPC) } != 0 {
        return Err(SysvError::Unshare(io::Error::last_os_error()));
    }
    for s in &objs.shm {
        create_shm(s, images)?;
    }
    for s in &objs.sem {
        create_sem(s)?;
    }
    for q in &objs.msg {
        create_msg(q)?;
    }
    tracing::debug!(
        "recreated {} SysV segment(s), {} semaphore set(s), {} message queue(s)",
        objs.shm.len(),
        objs.sem.len(),
        objs.msg.len()
    );
    Ok(())
}

fn last_err() -> io::Error {
    io::Error::last_os_error()
}

fn next_id(what: &'static str, id: i32) -> Result<(), SysvError> {
    std::fs::write(format!("/proc/sys/kernel/{what}_next_id"), id.to_string())
        .map_err(|err| SysvError::NextId { what, id, err })
}

fn check_id(what: &'static str, id: i32, got: i32) -> Result<(), SysvError> {
    if got < 0 {
        return Err(SysvError::Create {
            what,
            id,
            err: last_err(),
        });
    }
    if got != id {
        return Err(SysvError::WrongId { what, id, got });
    }
    Ok(())
}

fn create_shm(s: &SysvShm, images: &[&Checked]) -> Result<(), SysvError> {
    next_id("shm", s.id)?;
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | s.mode as i32;
    // SAFETY: plain shmget.
    let got = unsafe { libc::shmget(s.key, s.size as usize, flags) };
    check_id("shm", s.id, got)?;
    // SAFETY: a temporary attach of the new segment, detached below.
    let p = unsafe { libc::shmat(s.id, std::ptr::null(), 0) };
    if p as isize == -1 {
        return Err(SysvError::Create {
            what: "shm",
            id: s.id,
            err: last_err(),
        });
    }
    let size = s.size as usize;
    // SAFETY: the attach spans the segment's size.
    let seg = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), size) };
    let r = fill_shm(s, seg, images);
    // SAFETY: detaching our temporary attach.
    unsafe { libc::shmdt(p) };
    r
}

/// The bytes come from the first image that had the segment attached, else from the section.
fn fill_shm(s: &SysvShm, seg: &mut [u8], images: &[&Checked]) -> Result<(), SysvError> {
    if let Some(c) = &s.content {
        let n = c.len().min(seg.len());
        seg[..n].copy_from_slice(&c[..n]);
        return Ok(());
    }
    for c in images {
        for (i, r) in c.image.regions().iter().enumerate() {
            let m = &r.meta;
            if !m.flags.has(RegionFlags::SYSV_SHM) || m.inode != s.id as u32 as u64 {
                continue;
            }
            let mut buf = vec![0u8; m.len as usize];
            c.image
                .read_region_into(RegionId(i as u32), &mut buf)
                .map_err(|err| SysvError::Fill { id: s.id, err })?;
            let off = m.offset as usize;
            if off < seg.len() {
                let n = (seg.len() - off).min(buf.len());
                seg[off..off + n].copy_from_slice(&buf[..n]);
            }
            return Ok(());
        }
    }
    Ok(())
}

fn create_sem(s: &SysvSem) -> Result<(), SysvError> {
    next_id("sem", s.id)?;
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | s.mode as i32;
    // SAFETY: plain semget.
    let got = unsafe { libc::semget(s.key, s.values.len() as i32, flags) };
    check_id("sem", s.id, got)?;
    let mut values = s.values.clone();
    // SAFETY: SETALL reads one u16 per semaphore of the set (semun passed as a pointer).
    if unsafe { libc::semctl(s.id, 0, libc::SETALL, values.as_mut_ptr()) } != 0 {
        return Err(SysvError::Create {
            what: "sem",
            id: s.id,
            err: last_err(),
        });
    }
    Ok(())
}

fn create_msg(q: &SysvMsgQueue) -> Result<(), SysvError> {
    next_id("msg", q.id)?;
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | q.mode as i32;
    // SAFETY: plain msgget.
    let got = unsafe { libc::msgget(q.key, flags) };
    check_id("msg", q.id, got)?;
    // SAFETY: IPC_STAT/IPC_SET on our new queue with a zeroed local.
    unsafe {
        let mut ds: libc::msqid_ds = std::mem::zeroed();
        if libc::msgctl(q.id, libc::IPC_STAT, &mut ds) == 0 && ds.msg_qbytes as u64 != q.qbytes {
            ds.msg_qbytes = q.qbytes as _;
            if libc::msgctl(q.id, libc::IPC_SET, &mut ds) != 0 {
                tracing::warn!(
                    "SysV queue {}: cannot set its byte limit back to {}: {}",
                    q.id,
                    q.qbytes,
                    last_err()
                );
            }
        }
    }
    for m in &q.messages {
        let mut buf = Vec::with_capacity(8 + m.data.len());
        buf.extend_from_slice(&m.mtype.to_ne_bytes());
        buf.extend_from_slice(&m.data);
        // SAFETY: buf holds the long type followed by the message's bytes.
        let r = unsafe { libc::msgsnd(q.id, buf.as_ptr().cast(), m.data.len(), libc::IPC_NOWAIT) };
        if r != 0 {
            return Err(SysvError::Create {
                what: "msg",
                id: q.id,
                err: last_err(),
            });
        }
    }
    Ok(())
}
