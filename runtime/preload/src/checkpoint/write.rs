//! Writing this process's image while every other thread is frozen: the region table from
//! `/proc/self/maps`, the saved pages (only resident ones for anonymous memory), the header
//! with everything restart must match or restore, then fsync. The rename into place
//! ([`commit`]) waits until every process of the computation has written its image.

use super::compress::{self, Compression, Plan, Progress, Tuning};
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
    #[error("cannot write the image {path}: {err}")]
    Compress {
        path: String,
        err: compress::CompressError,
    },
}

/// Everything the writer needs, prepared before the program is frozen.
pub struct Job {
    pub dir: String,
    pub file_name: String,
    pub compress: bool,
    /// Workers and adaptive storage (`DMTCP_CKPT_THREADS`, `DMTCP_GZIP=adaptive`).
    pub tuning: Tuning,
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
    /// Time spent writing the image (maps, pages, metadata) and in its fsync.
    pub write_ns: u64,
    pub sync_ns: u64,
}

/// Nanoseconds on the monotonic clock (a vDSO call: no lock, fine while frozen).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into a local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
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

/// Writes the image to `<dir>/<file>.part` and fsyncs it; `progress` (when given) follows the
/// saved bytes, for the coordinator's progress report. A failed write leaves no `.part`.
pub fn write_image(job: &Job, progress: Option<&Progress>) -> Result<Written, WriteError> {
    let r = write_part(job, progress);
    if r.is_err() {
        let _ = std::fs::remove_file(format!("{}/{}.part", job.dir, job.file_name));
    }
    r
}

fn write_part(job: &Job, progress: Option<&Progress>) -> Result<Written, WriteError> {
    let t0 = now_ns();
    let mut maps = maps::read_self().map_err(WriteError::Maps)?;
    // In the forked writer: shared memory as it was when the computation froze.
    super::shared_snapshot::swap_in(&mut maps);
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
    let tuning = Tuning {
        crash_generation: (job.tuning.crash_generation).filter(|&g| g == job.identity.generation),
        ..job.tuning
    };
    let mode = match (job.compress, job.tuning.adaptive) {
        (false, _) => Compression::Off,
        (true, false) => Compression::On,
        (true, true) => Compression::Adaptive,
    };
    let opts = WriterOptions {
        level: (mode != Compression::Off).then_some(tuning.level),
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
    let file = Writeback::new(file, tuning.early_writeback);
    let mut w = ImageWriter::new(BufWriter::with_capacity(1 << 20, file), &header, opts)
        .map_err(fmt_err)?;
    let mut pagemap = Pagemap::open().map_err(io_err)?;
    let mut plan = Plan::new(opts.frame_size);
    let mut unreadable = Vec::new();
    let mut declared = Ok(());
    for m in &maps {
        if m.is_kernel_special() || in_hole(m) || m.len() == 0 {
            continue;
        }
        declared = w
            .add_region(region_meta(m))
            .map_err(fmt_err)
            .and_then(|id| {
                plan_region(&mut w, id, m, &mut pagemap, &mut plan, &mut unreadable).map_err(|e| {
                    match e {
                        SaveError::Io(err) => io_err(err),
                        SaveError::Image(err) => fmt_err(err),
                    }
                })
            });
        if declared.is_err() {
            break;
        }
    }
    let written = declared.and_then(|()| match inc.as_mut() {
        Some(inc) => inc
            .write_pieces(plan.pieces.iter().map(|p| (p.addr, p.len)), &mut w)
            .map_err(fmt_err),
        None => compress::write_frames(&plan, &mut w, mode, tuning.level, &tuning, progress)
            .map_err(|err| WriteError::Compress {
                path: part.clone(),
                err,
            }),
    });
    for (m, prot) in unreadable {
        // SAFETY: restoring the protection `plan_region` changed.
        unsafe { libc::mprotect(m.start as *mut _, m.len() as usize, prot) };
    }
    written?;
    let (bw, stats) = w.finish().map_err(fmt_err)?;
    let file = bw.into_inner().map_err(|e| io_err(e.into_error()))?.file;
    let t1 = now_ns();
    file.sync_all().map_err(io_err)?;
    drop(file);
    if let Some(inc) = &inc {
        inc.prune();
    }
    let t2 = now_ns();
    Ok(Written {
        path: final_path,
        bytes: stats.file_bytes,
        write_ns: t1 - t0,
        sync_ns: t2 - t1,
    })
}

/// The image file, with writeback of each finished [`WRITEBACK_CHUNK`] started at once
/// (`sync_file_range`): the disk writes while the compressors work, and the final fsync only
/// waits for the tail instead of the whole image sitting dirty in the page cache until then.
struct Writeback {
    file: std::fs::File,
    on: bool,
    written: u64,
    started: u64,
}

const WRITEBACK_CHUNK: u64 = 8 << 20;

impl Writeback {
    fn new(file: std::fs::File, on: bool) -> Self {
        Writeback {
            file,
            on,
            written: 0,
            started: 0,
        }
    }
}

impl Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.on && self.written - self.started >= WRITEBACK_CHUNK {
            use std::os::fd::AsRawFd;
            // SAFETY: sync_file_range on our own open file: it only queues the range's dirty
            // pages for writing (no wait); a failure here shows again at the final fsync.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.started as libc::off64_t,
                    (self.written - self.started) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
            self.started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
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

/// Declares the pages of `m` that carry information and adds them to `plan`: resident ones for
/// anonymous memory, every page inside the file for file mappings (their untouched pages are
/// the file's bytes). A mapping without read access is made readable until the image is
/// written (listed in `unreadable` with its protection, to restore).
fn plan_region<W: Write>(
    w: &mut ImageWriter<W>,
    id: RegionId,
    m: &Mapping,
    pagemap: &mut Pagemap,
    plan: &mut Plan,
    unreadable: &mut Vec<(Mapping, i32)>,
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
    if !m.read {
        let prot = (m.write as i32 * libc::PROT_WRITE) | (m.exec as i32 * libc::PROT_EXEC);
        // SAFETY: temporarily adding read access to one of our own mappings.
        let r =
            unsafe { libc::mprotect(m.start as *mut _, m.len() as usize, prot | libc::PROT_READ) };
        if r != 0 {
            return Ok(()); // Not readable at all (a special mapping): keep its metadata only.
        }
        unreadable.push((m.clone(), prot));
    }
    for (off, len) in runs {
        w.add_run(id, off, len).map_err(SaveError::Image)?;
        plan.push(m.start + off, len);
    }
    Ok(())
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
