//! Writing this process's image while every other thread is frozen: the region table from
//! `/proc/self/maps`, the saved pages (only resident ones for anonymous memory), the header
//! with everything restart must match or restore, then fsync. The rename into place
//! ([`commit`]) waits until every process of the computation has written its image.

use super::incremental::Incremental;
use super::layout::{self, in_hole};
use super::maps::{self, Mapping, Pagemap};
use super::threads::{RSEQ_OFFSET, RSEQ_SIZE};
use dmtcp_image::{
    Header, ImageWriter, Prot, RegionFlags, RegionId, RegionMeta, RseqLayout, WriterOptions,
};
use dmtcp_restorer::abi::LAYOUT_SECTION;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::Ordering;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot read this process's memory map: {0}")]
    Maps(io::Error),
    #[error("cannot create the image {path}: {err}")]
    Create { path: String, err: io::Error },
    #[error("cannot write the image {path}: {err}")]
    Io { path: String, err: io::Error },
    #[error("cannot write the image {path}: {err}")]
    Format {
        path: String,
        err: dmtcp_image::ImageError,
    },
}

/// Everything the writer needs, prepared before the program is frozen.
pub struct Job {
    pub dir: String,
    pub file_name: String,
    pub compress: bool,
    pub identity: dmtcp_image::ProcessIdentity,
    /// postcard bytes of the process's coordinator `Assignment` (restart sends it back).
    pub assignment: Vec<u8>,
    pub entry: u64,
    /// Plugins' sections (`plugin:<name>`), saved at `PreCheckpoint`.
    pub sections: Vec<(String, Vec<u8>)>,
    /// The computation runs in its own pid namespace (`DMTCP_PID_NAMESPACE=1`): restart
    /// recreates the exact pid and tids.
    pub pid_namespace: bool,
}

/// Present (empty) when the process ran in a pid namespace of the launcher's.
pub const PID_NAMESPACE_SECTION: &str = "pid-namespace";

pub struct Written {
    /// The final path; the bytes are at `<path>.part` until [`commit`].
    pub path: String,
    pub bytes: u64,
}

/// Renames `<path>.part` into place and makes the rename durable: from now on restart picks
/// this image instead of the previous one.
pub fn commit(w: &Written) -> io::Result<()> {
    std::fs::rename(format!("{}.part", w.path), &w.path)?;
    if let Some(dir) = std::path::Path::new(&w.path).parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes an image that will not be committed.
pub fn discard(w: &Written) {
    let _ = std::fs::remove_file(format!("{}.part", w.path));
}

pub const ASSIGNMENT_SECTION: &str = "assignment";

pub fn write_image(job: &Job) -> Result<Written, WriteError> {
    let maps = maps::read_self().map_err(WriteError::Maps)?;
    let saved = layout::capture(&maps);
    let mut header = Header::new();
    header.kernel_release = kernel_release();
    header.vdso_fingerprint = vdso_fingerprint(&saved.kernel).to_vec();
    let rseq_size = RSEQ_SIZE.load(Ordering::Relaxed);
    if rseq_size > 0 {
        header.rseq = Some(RseqLayout {
            size: rseq_size,
            offset: RSEQ_OFFSET.load(Ordering::Relaxed),
        });
    }
    header.process = job.identity.clone();
    header.entry = job.entry;
    header.push_section(LAYOUT_SECTION, layout::encode(&saved));
    header.push_section(ASSIGNMENT_SECTION, job.assignment.clone());
    if job.pid_namespace {
        header.push_section(PID_NAMESPACE_SECTION, Vec::new());
    }
    for (name, data) in &job.sections {
        header.push_section(name.clone(), data.clone());
    }

    let final_path = format!("{}/{}", job.dir, job.file_name);
    let part = format!("{final_path}.part");
    let io_err = |err| WriteError::Io {
        path: part.clone(),
        err,
    };
    let fmt_err = |err| WriteError::Format {
        path: part.clone(),
        err,
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&part)
        .map_err(|err| WriteError::Create {
            path: part.clone(),
            err,
        })?;
    let opts = WriterOptions {
        level: if job.compress { Some(1) } else { None },
        ..WriterOptions::default()
    };
    let mut inc = Incremental::prepare(
        &job.dir,
        &job.file_name,
        header.process.generation,
        opts.level,
    )
    .map_err(fmt_err)?;
    if let Some((name, data)) = inc.as_ref().and_then(Incremental::parents_section) {
        header.push_section(name, data);
    }
    let mut w = ImageWriter::new(BufWriter::with_capacity(1 << 20, file), &header, opts)
        .map_err(fmt_err)?;
    let mut pagemap = Pagemap::open().map_err(io_err)?;
    for m in &maps {
        if m.is_kernel_special() || in_hole(m) || m.len() == 0 {
            continue;
        }
        let id = w.add_region(region_meta(m)).map_err(fmt_err)?;
        save_region(&mut w, id, m, &mut pagemap, inc.as_mut()).map_err(|e| match e {
            SaveError::Io(err) => io_err(err),
            SaveError::Image(err) => fmt_err(err),
        })?;
    }
    let (bw, stats) = w.finish().map_err(fmt_err)?;
    let file = bw.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)?;
    drop(file);
    if let Some(inc) = &inc {
        inc.log();
        inc.prune();
    }
    Ok(Written {
        path: final_path,
        bytes: stats.file_bytes,
    })
}

fn region_meta(m: &Mapping) -> RegionMeta {
    let mut flags = 0;
    if m.shared {
        flags |= RegionFlags::SHARED;
    }
    if m.path.is_empty() || m.path.starts_with('[') {
        flags |= RegionFlags::ANONYMOUS;
    }
    if m.path == "[stack]" {
        flags |= RegionFlags::STACK | RegionFlags::GROWSDOWN;
    }
    if m.path == "[heap]" {
        flags |= RegionFlags::HEAP;
    }
    if m.path.ends_with(" (deleted)") {
        flags |= RegionFlags::DELETED;
    }
    if m.path.starts_with("/SYSV") {
        flags |= RegionFlags::SYSV_SHM;
    }
    if m.shared && (m.path.starts_with("/dev/zero") || m.path.starts_with("/memfd:")) {
        flags |= RegionFlags::SHMEM;
    }
    let mut prot = 0;
    if m.read {
        prot |= Prot::READ;
    }
    if m.write {
        prot |= Prot::WRITE;
    }
    if m.exec {
        prot |= Prot::EXEC;
    }
    RegionMeta {
        start: m.start,
        len: m.len(),
        prot: Prot(prot),
        flags: RegionFlags(flags),
        path: m.path.clone(),
        offset: m.offset,
        dev: m.dev,
        inode: m.inode,
    }
}

enum SaveError {
    Io(io::Error),
    Image(dmtcp_image::ImageError),
}

const PAGE: u64 = 4096;

/// Saves the pages of `m` that carry information: resident ones for anonymous memory, every
/// page inside the file for file mappings (their untouched pages are the file's bytes).
fn save_region<W: Write>(
    w: &mut ImageWriter<W>,
    id: RegionId,
    m: &Mapping,
    pagemap: &mut Pagemap,
    mut inc: Option<&mut Incremental>,
) -> Result<(), SaveError> {
    let inaccessible = !m.read && !m.write && !m.exec;
    let mut runs: Vec<(u64, u64)> = Vec::new();
    if m.is_private_anon() || inaccessible || m.path.ends_with(" (deleted)") && !m.shared {
        pagemap
            .resident_runs(m.start, m.end, |off, len| {
                runs.push((off, len));
                Ok(())
            })
            .map_err(SaveError::Io)?;
    } else if m.is_file() {
        let size = std::fs::metadata(&m.path).map(|md| md.len()).unwrap_or(0);
        let valid = size.saturating_sub(m.offset).div_ceil(PAGE) * PAGE;
        let len = valid.min(m.len());
        if len > 0 {
            runs.push((0, len));
        }
    } else {
        runs.push((0, m.len()));
    }
    if runs.is_empty() {
        return Ok(());
    }
    let prot = (m.read as i32 * libc::PROT_READ)
        | (m.write as i32 * libc::PROT_WRITE)
        | (m.exec as i32 * libc::PROT_EXEC);
    if !m.read {
        // SAFETY: temporarily adding read access to one of our own mappings.
        let r =
            unsafe { libc::mprotect(m.start as *mut _, m.len() as usize, prot | libc::PROT_READ) };
        if r != 0 {
            return Ok(()); // Not readable at all (a special mapping): keep its metadata only.
        }
    }
    let mut result = Ok(());
    for (off, len) in runs {
        // SAFETY: the range is mapped and readable; the program is frozen, and the only
        // thread writing memory is this one.
        let data =
            unsafe { std::slice::from_raw_parts((m.start + off) as *const u8, len as usize) };
        let r = match inc.as_deref_mut() {
            Some(i) => i.write_run(w, id, m.start, off, data),
            None => w.write_data(id, off, data),
        };
        if let Err(e) = r {
            result = Err(SaveError::Image(e));
            break;
        }
    }
    if !m.read {
        // SAFETY: restoring the protection we changed above.
        unsafe { libc::mprotect(m.start as *mut _, m.len() as usize, prot) };
    }
    result
}

fn kernel_release() -> String {
    // SAFETY: uname into a zeroed local.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::uname(&mut u) };
    // SAFETY: the kernel NUL-terminates the field.
    unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The fingerprint of this kernel's vdso (see `dmtcp_restorer::abi::vdso_fingerprint`).
pub fn vdso_fingerprint(kernel: &[dmtcp_restorer::abi::KernelArea; 3]) -> [u8; 48] {
    let v = &kernel[2];
    let bytes: &[u8] = if v.len == 0 {
        &[]
    } else {
        // SAFETY: the [vdso] mapping is readable code of this process.
        unsafe { std::slice::from_raw_parts(v.current as *const u8, v.len as usize) }
    };
    dmtcp_restorer::abi::vdso_fingerprint(kernel, bytes)
}
