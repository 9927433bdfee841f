//! SysV IPC objects (shared memory, semaphores, message queues) across checkpoint and restart.
//!
//! Strategy (docs/checkpoint-restart.md, "SysV and POSIX IPC"): ids stay exact instead of being
//! virtualized. The `shmget`/`semget`/`msgget` wrappers below remember the ids the program
//! obtained (fork inherits the list with the memory); attached segments are also found in
//! `/proc/self/maps`. At checkpoint, while every process is frozen, each object is described
//! into the `sysv-ipc` image section (semaphore values, queued messages copied with
//! `MSG_COPY`, so the queue is left untouched). `dmtcp_restart` recreates the objects in a
//! fresh IPC namespace with the same ids (`/proc/sys/kernel/*_next_id`) before the processes
//! come back; here, at restart, each process attaches its segments again over the private
//! copies the restorer made (`SHM_REMAP`), so the memory is shared again.

mod undo;

pub use undo::{ENV as UNDO_ENV, export as export_undo};

use dmtcp_image::sysv_ipc::{SysvMessage, SysvMsgQueue, SysvObjects, SysvSem, SysvShm};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

const KIND_SHM: u64 = 1;
const KIND_SEM: u64 = 2;
const KIND_MSG: u64 = 3;

/// Ids the program obtained, as `kind << 32 | id` (0 = free slot). Fixed-size and lock-free:
/// the wrappers may run anywhere, even in a signal handler.
static KNOWN: [AtomicU64; 256] = [const { AtomicU64::new(0) }; 256];

fn remember(kind: u64, id: i32) {
    let v = kind << 32 | id as u32 as u64;
    for slot in &KNOWN {
        match slot.compare_exchange(0, v, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(cur) if cur == v => return,
            Err(_) => {}
        }
    }
    crate::warn!("more than 256 SysV IPC ids; id {id} will not be checkpointed");
}

fn known(kind: u64) -> Vec<i32> {
    KNOWN
        .iter()
        .map(|s| s.load(Ordering::Acquire))
        .filter(|v| v >> 32 == kind)
        .map(|v| v as u32 as i32)
        .collect()
}

#[unsafe(no_mangle)]
pub extern "C" fn shmget(key: libc::key_t, size: libc::size_t, flg: libc::c_int) -> libc::c_int {
    let real: extern "C" fn(libc::key_t, libc::size_t, libc::c_int) -> libc::c_int =
        crate::real_fn!("shmget");
    let id = real(key, size, flg);
    if id >= 0 {
        remember(KIND_SHM, id);
    }
    id
}

#[unsafe(no_mangle)]
pub extern "C" fn semget(key: libc::key_t, nsems: libc::c_int, flg: libc::c_int) -> libc::c_int {
    let real: extern "C" fn(libc::key_t, libc::c_int, libc::c_int) -> libc::c_int =
        crate::real_fn!("semget");
    let id = real(key, nsems, flg);
    if id >= 0 {
        remember(KIND_SEM, id);
    }
    id
}

#[unsafe(no_mangle)]
pub extern "C" fn msgget(key: libc::key_t, flg: libc::c_int) -> libc::c_int {
    let real: extern "C" fn(libc::key_t, libc::c_int) -> libc::c_int = crate::real_fn!("msgget");
    let id = real(key, flg);
    if id >= 0 {
        remember(KIND_MSG, id);
    }
    id
}

/// # Safety
/// Same contract as semop(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn semop(
    id: libc::c_int,
    sops: *mut libc::sembuf,
    n: libc::size_t,
) -> libc::c_int {
    // SAFETY: semop is semtimedop without a timeout.
    unsafe { semtimedop(id, sops, n, std::ptr::null()) }
}

/// Operations with `SEM_UNDO` are tracked (`undo.rs`); the others go straight to the kernel.
///
/// # Safety
/// Same contract as semtimedop(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn semtimedop(
    id: libc::c_int,
    sops: *mut libc::sembuf,
    n: libc::size_t,
    timeout: *const libc::timespec,
) -> libc::c_int {
    type Real = unsafe extern "C" fn(
        libc::c_int,
        *mut libc::sembuf,
        libc::size_t,
        *const libc::timespec,
    ) -> libc::c_int;
    let real: Real = crate::real_fn!("semtimedop");
    // SAFETY: the caller passes `n` operations at `sops`.
    let undo = !sops.is_null()
        && unsafe { std::slice::from_raw_parts(sops, n) }
            .iter()
            .any(|o| o.sem_flg & libc::SEM_UNDO as i16 != 0);
    if !undo {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { real(id, sops, n, timeout) };
    }
    // The set must be saved with the images for its adjustments to come back.
    remember(KIND_SEM, id);
    // SAFETY: as above, with the operations checked non-null.
    unsafe { undo::tracked(id, sops, n, timeout) }
}

/// `semctl` is variadic; its fourth argument (`union semun`, one register) is passed along
/// as an integer, which is how x86-64 and aarch64 pass it. `SETVAL`/`SETALL` clear the undo
/// adjustments of what they set, as the kernel does.
///
/// # Safety
/// Same contract as semctl(2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn semctl(
    id: libc::c_int,
    num: libc::c_int,
    cmd: libc::c_int,
    arg: libc::c_ulong,
) -> libc::c_int {
    type Real =
        unsafe extern "C" fn(libc::c_int, libc::c_int, libc::c_int, libc::c_ulong) -> libc::c_int;
    let real: Real = crate::real_fn!("semctl");
    const IPC_64: libc::c_int = 0x100;
    let clears = match cmd & !IPC_64 {
        libc::SETVAL => Some(u16::try_from(num).ok()),
        libc::SETALL | libc::IPC_RMID => Some(None),
        _ => None,
    };
    let Some(which) = clears else {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { real(id, num, cmd, arg) };
    };
    // Under the checkpoint lock, so a checkpoint sees the value and the adjustments agree.
    crate::ckpt_lock::enter();
    // SAFETY: as above.
    let r = unsafe { real(id, num, cmd, arg) };
    let e = std::io::Error::last_os_error();
    if r != -1 {
        undo::reset(id, which);
    }
    crate::ckpt_lock::leave();
    if let Some(code) = e.raw_os_error() {
        // SAFETY: errno is this thread's own variable.
        unsafe { *libc::__errno_location() = code };
    }
    r
}

/// A segment attached in this process, to attach again at the same address after restart.
#[derive(Debug, Clone, Copy)]
struct Attached {
    id: i32,
    start: u64,
    writable: bool,
    removed: bool,
}

/// Saved with the memory (a static), so it is there again in the restored process.
static ATTACHED: Mutex<Vec<Attached>> = Mutex::new(Vec::new());

const SHM_DEST: u32 = 0o1000;
const MSG_COPY: i32 = 0o40000;
const PAGE: u64 = 4096;

/// Describes every SysV object this process knows, while the whole computation is frozen.
/// Returns the section's bytes, or None when there is nothing to save.
pub fn capture(maps: &[super::maps::Mapping]) -> Option<Vec<u8>> {
    undo::capture();
    for id in undo::set_ids() {
        remember(KIND_SEM, id);
    }
    let mut objs = SysvObjects::default();
    let mut attached = Vec::new();
    let mut shm_ids = known(KIND_SHM);
    for m in maps.iter().filter(|m| m.path.starts_with("/SYSV")) {
        let id = m.inode as i32;
        if !shm_ids.contains(&id) {
            shm_ids.push(id);
        }
        let Some(ds) = shm_stat(id) else { continue };
        let whole = (ds.shm_segsz as u64).div_ceil(PAGE) * PAGE;
        if m.offset == 0 && m.len() == whole {
            attached.push(Attached {
                id,
                start: m.start,
                writable: m.write,
                removed: ds.shm_perm.mode as u32 & SHM_DEST != 0,
            });
        } else {
            crate::warn!(
                "SysV segment {id} is only partly mapped at {:#x}; it comes back as a private copy",
                m.start
            );
        }
    }
    for id in shm_ids {
        let Some(ds) = shm_stat(id) else { continue };
        let mine = attached.iter().any(|a| a.id == id);
        // Nobody has it attached: its bytes are nowhere in the images, save them here. Another
        // process's `shm_copy` running now counts as an attach, so this may see 1 and save
        // nothing; the first to look saw 0, and restart takes the bytes from any copy.
        let content = (!mine && ds.shm_nattch == 0).then(|| shm_copy(id, ds.shm_segsz));
        objs.shm.push(SysvShm {
            id,
            key: ds.shm_perm.__key,
            mode: ds.shm_perm.mode as u32 & 0o777,
            size: ds.shm_segsz as u64,
            removed: ds.shm_perm.mode as u32 & SHM_DEST != 0,
            content: content.flatten(),
        });
    }
    for id in known(KIND_SEM) {
        if let Some(s) = sem_capture(id) {
            objs.sem.push(s);
        }
    }
    for id in known(KIND_MSG) {
        if let Some(q) = msg_capture(id) {
            objs.msg.push(q);
        }
    }
    *ATTACHED.lock().unwrap_or_else(|e| e.into_inner()) = attached;
    (!objs.is_empty()).then(|| objs.to_bytes())
}

fn shm_stat(id: i32) -> Option<libc::shmid_ds> {
    // SAFETY: IPC_STAT into a zeroed local.
    unsafe {
        let mut ds: libc::shmid_ds = std::mem::zeroed();
        (libc::shmctl(id, libc::IPC_STAT, &mut ds) == 0).then_some(ds)
    }
}

fn shm_copy(id: i32, size: usize) -> Option<Vec<u8>> {
    // SAFETY: a temporary read-only attach, copied and detached.
    unsafe {
        let p = libc::shmat(id, std::ptr::null(), libc::SHM_RDONLY);
        if p as isize == -1 {
            return None;
        }
        let v = std::slice::from_raw_parts(p.cast::<u8>(), size).to_vec();
        libc::shmdt(p);
        Some(v)
    }
}

fn sem_capture(id: i32) -> Option<SysvSem> {
    // SAFETY: IPC_STAT and GETALL into buffers of the right sizes (semun passed as a pointer,
    // which is how the C union is passed on x86-64).
    unsafe {
        let mut ds: libc::semid_ds = std::mem::zeroed();
        if libc::semctl(id, 0, libc::IPC_STAT, &mut ds as *mut libc::semid_ds) != 0 {
            return None;
        }
        let mut values = vec![0u16; ds.sem_nsems as usize];
        if libc::semctl(id, 0, libc::GETALL, values.as_mut_ptr()) != 0 {
            return None;
        }
        Some(SysvSem {
            id,
            key: ds.sem_perm.__key,
            mode: ds.sem_perm.mode as u32 & 0o777,
            values,
        })
    }
}

fn msg_capture(id: i32) -> Option<SysvMsgQueue> {
    // SAFETY: IPC_STAT into a zeroed local.
    let ds = unsafe {
        let mut ds: libc::msqid_ds = std::mem::zeroed();
        if libc::msgctl(id, libc::IPC_STAT, &mut ds) != 0 {
            return None;
        }
        ds
    };
    // A message fits in the queue, so msg_qbytes bounds its size.
    let cap = ds.msg_qbytes as usize;
    let mut buf = vec![0u8; 8 + cap];
    let mut messages = Vec::new();
    for i in 0..ds.msg_qnum as i64 {
        // SAFETY: MSG_COPY copies message number i without removing it; buf holds the long
        // type and `cap` bytes.
        let n = unsafe {
            libc::msgrcv(
                id,
                buf.as_mut_ptr().cast(),
                cap,
                i,
                libc::IPC_NOWAIT | MSG_COPY | libc::MSG_NOERROR,
            )
        };
        if n < 0 {
            crate::warn!(
                "cannot copy message {i} of SysV queue {id}: {} (kernel without MSG_COPY?)",
                std::io::Error::last_os_error()
            );
            break;
        }
        let mtype = i64::from_ne_bytes(buf[..8].try_into().unwrap_or_default());
        messages.push(SysvMessage {
            mtype,
            data: buf[8..8 + n as usize].to_vec(),
        });
    }
    Some(SysvMsgQueue {
        id,
        key: ds.msg_perm.__key,
        mode: ds.msg_perm.mode as u32 & 0o777,
        qbytes: ds.msg_qbytes as u64,
        messages,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SysvError {
    #[error("cannot attach SysV shared memory segment {id} again at {addr:#x}: {err}")]
    Attach {
        id: i32,
        addr: u64,
        err: std::io::Error,
    },
}

/// At restart, before any program thread runs: `dmtcp_restart` recreated the segments with
/// their ids; map each one again over the private copy at its old address. Then the
/// semaphore undo adjustments of this process are recreated (`undo.rs`).
pub fn reattach() -> Result<(), SysvError> {
    let list = ATTACHED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for a in list {
        let flags = libc::SHM_REMAP | if a.writable { 0 } else { libc::SHM_RDONLY };
        // SAFETY: replaces our own mapping of the segment's size at that address.
        let p = unsafe { libc::shmat(a.id, a.start as *const libc::c_void, flags) };
        if p as isize == -1 {
            return Err(SysvError::Attach {
                id: a.id,
                addr: a.start,
                err: std::io::Error::last_os_error(),
            });
        }
    }
    // The semaphore sets are back with their values: recreate this process's adjustments.
    // A failure leaves the program running, only without that adjustment (warning).
    for e in undo::restore() {
        crate::warn!("{e}");
    }
    Ok(())
}

/// After every process attached again (global restart barrier): segments that had been marked
/// for removal are marked again, so they vanish with their last detach as before.
pub fn remove_again() {
    let list = ATTACHED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for a in list.iter().filter(|a| a.removed) {
        // SAFETY: IPC_RMID takes no buffer. Several processes may do it; later ones fail.
        unsafe { libc::shmctl(a.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}
