//! Shared memory between the restarted processes (`MAP_SHARED|MAP_ANONYMOUS` kept across
//! `fork`, memfd mappings): every shared object found in the images becomes one memfd,
//! created here before the process tree is forked and filled from the first image holding it.
//! Each process then maps its regions of that object from the inherited memfd, so the
//! processes share the memory again instead of getting private copies.

use crate::images::Checked;
use dmtcp_image::{ImageError, RegionFlags, RegionMeta};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Objects by (device, inode) of their shmem inode.
pub struct SharedObjects {
    pub objects: BTreeMap<(u64, u64), OwnedFd>,
}

#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("cannot create shared memory for {what}: {err}")]
    Create { what: String, err: std::io::Error },
    #[error("{0}")]
    Image(#[from] ImageError),
}

/// A region of shared anonymous memory, of a memfd or of an unlinked POSIX shm segment (not
/// SysV, which has its own keys).
pub fn is_shared_object(m: &RegionMeta) -> bool {
    let unlinked_posix_shm = m.path.starts_with("/dev/shm/") && m.path.ends_with(" (deleted)");
    m.flags.has(RegionFlags::SHARED)
        && (m.flags.has(RegionFlags::SHMEM) || unlinked_posix_shm)
        && m.inode != 0
}

pub fn key(m: &RegionMeta) -> (u64, u64) {
    (m.dev, m.inode)
}

/// Creates and fills one memfd per shared object of `images`.
pub fn prepare(images: &[&Checked]) -> Result<SharedObjects, ShmError> {
    let mut size: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for c in images {
        for r in c
            .image
            .regions()
            .iter()
            .filter(|r| is_shared_object(&r.meta))
        {
            let e = size.entry(key(&r.meta)).or_default();
            *e = (*e).max(r.meta.offset + r.meta.len);
        }
    }
    let mut objects = BTreeMap::new();
    for (k, len) in size {
        let what = format!("shared object {}:{}", k.0, k.1);
        let err = |err| ShmError::Create {
            what: what.clone(),
            err,
        };
        // SAFETY: memfd_create with a constant name; the fd is owned below.
        let fd = unsafe { libc::memfd_create(c"dmtcp-shared".as_ptr(), 0) };
        if fd < 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sizing our own memfd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len as i64) } != 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        // Fill from the first image that has a region of this object.
        'fill: for c in images {
            for (i, r) in c.image.regions().iter().enumerate() {
                if !is_shared_object(&r.meta) || key(&r.meta) != k {
                    continue;
                }
                // SAFETY: a shared mapping of our own memfd, unmapped below.
                let p = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        r.meta.len as usize,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_SHARED,
                        fd.as_raw_fd(),
                        r.meta.offset as i64,
                    )
                };
                if p == libc::MAP_FAILED {
                    return Err(err(std::io::Error::last_os_error()));
                }
                // SAFETY: the mapping is `len` bytes and ours until unmapped.
                let buf =
                    unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), r.meta.len as usize) };
                let res = c
                    .image
                    .read_region_into(dmtcp_image::RegionId(i as u32), buf);
                // SAFETY: unmapping what we mapped.
                unsafe { libc::munmap(p, r.meta.len as usize) };
                res?;
                break 'fill;
            }
        }
        objects.insert(k, fd);
    }
    Ok(SharedObjects { objects })
}
