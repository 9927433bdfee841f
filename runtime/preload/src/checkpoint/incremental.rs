//! Incremental checkpoints (`DMTCP_INCREMENTAL=1`, `dmtcp_launch --incremental`): a
//! generation stores only the frames whose bytes changed since this process's previous image,
//! and refers to the older images for the rest (format version 2, `dmtcp_image::chain`).
//!
//! Files, all in the checkpoint directory: the newest generation is the usual
//! `ckpt_<prog>_<upid>.dmtcp`; before writing generation N, the previous image is hard-linked
//! as `ckpt_<prog>_<upid>.dmtcp.g<N-1>` (the rename of the new image then replaces only the
//! main name), and the new image refers to those `.g<k>` names. They do not end in `.dmtcp`,
//! so `dmtcp_restart --restartdir` never mistakes them for a process of the newest generation;
//! each is a restartable image of its generation while its own parents exist.
//!
//! Retention runs here, in the image writer of each process (each process's chain is its own),
//! after its new image is written: of the `.g<k>` files it keeps the newest
//! `DMTCP_KEEP_GENERATIONS` (default 1), every image they or the new image refer to, and
//! deletes the rest. `DMTCP_FULL_EVERY=K` (default 8, 0 = never) writes a full image when the
//! oldest bytes the new one would refer to are K generations old, which bounds both how many
//! files a chain holds and how far back a restart reads.

use super::dirty::{self, CleanView, Mode};
use dmtcp_image::chain::{encode_parents, parents_of};
use dmtcp_image::{Basis, DeltaWriter, Image, ImageError, ImageWriter, PARENTS_SECTION};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The settings, read once from the environment dmtcp_launch passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub keep: u64,
    pub full_every: u64,
    /// Where the writer learns which frames changed without reading them (forked writes
    /// only; `DMTCP_DIRTY_TRACKING`, see `dirty`). Frames it does not vouch for are hashed.
    pub tracking: Mode,
}

pub fn settings() -> Option<Settings> {
    static S: OnceLock<Option<Settings>> = OnceLock::new();
    *S.get_or_init(|| {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if var("DMTCP_INCREMENTAL").is_none_or(|v| v == "0") {
            return None;
        }
        let num = |k: &str, d: u64| var(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        Some(Settings {
            keep: num("DMTCP_KEEP_GENERATIONS", 1).max(1),
            full_every: num("DMTCP_FULL_EVERY", 8),
            tracking: Mode::from_env(),
        })
    })
}

/// The state of one incremental image being written.
pub struct Incremental {
    dir: String,
    file_name: String,
    settings: Settings,
    delta: DeltaWriter,
    stage: Stage,
    stack: std::ops::Range<u64>,
    /// What vouches for unchanged frames.
    source: Source,
    /// When `prepare` started and how long it took (for the debug log).
    started: std::time::Instant,
    prepare_ms: f64,
}

/// The generation whose snapshot this process's soft-dirty bits are relative to (0: none).
/// Set by the parent right after forking the writer of that generation, so a writer child
/// inherits the value of the previous checkpoint.
static SOFT_DIRTY_BASE: AtomicU64 = AtomicU64::new(0);

/// Written after clearing the bits, to check that the kernel tracks them at all (without
/// CONFIG_MEM_SOFT_DIRTY, clear_refs accepts "4" and the bit simply stays 0).
static PROBE: AtomicU64 = AtomicU64::new(0);
/// The kernel was seen not to track soft-dirty bits: never try again.
static UNSUPPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// In the parent, right after the writer child was forked (the program still frozen, this
/// thread between the fork and here touching only its stack): clears the soft-dirty bits so
/// that the next checkpoint can tell which pages changed since this snapshot.
pub fn after_fork(generation: u64) {
    if !settings().is_some_and(|s| s.tracking == Mode::SoftDirty)
        || UNSUPPORTED.load(Ordering::Relaxed)
    {
        return;
    }
    // SAFETY: open/write/pread/close of procfs files with static paths; no allocation.
    let ok = unsafe {
        let fd = libc::open(
            c"/proc/self/clear_refs".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        let mut ok = fd >= 0 && libc::write(fd, b"4".as_ptr().cast(), 1) == 1;
        if fd >= 0 {
            libc::close(fd);
        }
        PROBE.fetch_add(1, Ordering::SeqCst);
        let pm = libc::open(
            c"/proc/self/pagemap".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        let mut e = 0u64;
        let at = (std::ptr::addr_of!(PROBE) as u64 / 4096 * 8) as libc::off_t;
        ok &= pm >= 0
            && libc::pread(pm, std::ptr::addr_of_mut!(e).cast(), 8, at) == 8
            && e & (1 << 55) != 0;
        if pm >= 0 {
            libc::close(pm);
        }
        ok
    };
    if !ok {
        UNSUPPORTED.store(true, Ordering::Relaxed);
        crate::debug!("soft-dirty bits are not tracked by this kernel: hashing every frame");
    }
    SOFT_DIRTY_BASE.store(if ok { generation } else { 0 }, Ordering::Release);
}

impl Incremental {
    /// Prepares generation `generation` of `<dir>/<file_name>`: links the previous image into
    /// the chain and loads what the new image may refer to. None when incremental checkpoints
    /// are off. A previous image that is absent or unreadable gives a full image. Call it
    /// after reading the memory map, on the thread that writes (its buffer and stack must
    /// not be, or be known to be, memory being saved).
    pub fn prepare(
        dir: &str,
        file_name: &str,
        generation: u64,
        level: Option<i32>,
    ) -> Result<Option<Incremental>, ImageError> {
        let Some(settings) = settings() else {
            return Ok(None);
        };
        let started = std::time::Instant::now();
        let basis = previous(dir, file_name, generation, settings);
        let source = basis.as_ref().map_or(Source::None, |b| {
            Source::of(settings.tracking, generation, b)
        });
        let stage = Stage::map().map_err(|e| ImageError::Io {
            context: "mapping the incremental writer's buffer",
            source: e,
        })?;
        Ok(Some(Incremental {
            dir: dir.to_string(),
            file_name: file_name.to_string(),
            settings,
            delta: DeltaWriter::new(basis, level)?,
            stage,
            stack: own_stack(),
            source,
            started,
            prepare_ms: started.elapsed().as_secs_f64() * 1e3,
        }))
    }

    /// The header section listing the parents (absent for a full image).
    pub fn parents_section(&self) -> Option<(&'static str, Vec<u8>)> {
        let b = self.delta.basis()?;
        Some((PARENTS_SECTION, encode_parents(b.parents())))
    }

    /// Appends the frames of every piece `(address, length)` of saved memory, in the order
    /// their runs were declared in `w`.
    pub fn write_pieces<W: Write>(
        &mut self,
        pieces: impl Iterator<Item = (u64, u64)>,
        w: &mut ImageWriter<W>,
    ) -> Result<(), ImageError> {
        let pieces: Vec<(u64, u64)> = pieces.collect();
        self.hash_ahead(&pieces);
        for (addr, len) in pieces {
            // SAFETY: pieces are readable memory of this process's snapshot, which nothing
            // unmaps while the image is written (frozen program, or a private forked copy).
            // They may cover this writer's own stack and heap buffers: `append_staged`
            // copies what it stores into `stage` (mapped after the memory map was read)
            // first, and the stack before comparing it.
            let data = unsafe { std::slice::from_raw_parts(addr as *const u8, len as usize) };
            let source = &self.source;
            let mut clean = |a: u64, l: u64| source.clean(a, l);
            let unchanged: Option<&mut dyn FnMut(u64, u64) -> bool> =
                source.vouches().then_some(&mut clean);
            self.delta.append_staged(
                w,
                addr,
                data,
                self.stage.bytes(),
                self.stack.clone(),
                unchanged,
            )?;
        }
        self.log();
        Ok(())
    }

    /// Prepares the comparison of the frames of `pieces` that the basis holds at the same
    /// address and length, away from this thread's stack (re-read when they are appended):
    /// those the dirty source saw written are marked changed (stored without being read
    /// twice), those it does not vouch for are checksummed ahead on several processes.
    fn hash_ahead(&mut self, pieces: &[(u64, u64)]) {
        let Some(basis) = self.delta.basis() else {
            return;
        };
        let workers = super::compress::Tuning::from_env().workers;
        let t0 = std::time::Instant::now();
        let mut written = 0usize;
        let frames: Vec<(u64, u32, bool)> = pieces
            .iter()
            .flat_map(|&(a, l)| self.delta.frames_of(a, l))
            .filter(|&(at, len)| {
                let end = at + u64::from(len);
                !(at < self.stack.end && self.stack.start < end)
                    && basis.frame_at(at, len).is_some()
                    && !self.source.clean(at, u64::from(len))
            })
            .map(|(at, len)| (at, len, self.source.written(at, u64::from(len))))
            .inspect(|f| written += usize::from(f.2))
            .collect();
        let to_hash: Vec<(u64, u32)> = frames
            .iter()
            .filter(|f| !f.2)
            .map(|&(a, l, _)| (a, l))
            .collect();
        if to_hash.len() > 1 && workers <= 1 && written == 0 {
            return; // Nothing gained: the writer hashes them in line.
        }
        let mut sums = super::parallel_hash::checksums(&to_hash, workers).into_iter();
        let known = frames
            .into_iter()
            .map(|(a, l, w)| (a, l, if w { None } else { sums.next() }))
            .collect();
        self.delta.set_known_checksums(known);
        crate::debug!(
            "incremental image: {written} frames seen written, {} hashed ahead by {} \
             process(es) in {:.0} ms",
            to_hash.len(),
            super::parallel_hash::processes(&to_hash, workers),
            t0.elapsed().as_secs_f64() * 1e3
        );
    }

    /// Logs what the image stored (debug).
    pub fn log(&self) {
        let s = self.delta.stats;
        crate::debug!(
            "incremental image ({}): {} new frames ({} bytes), {} references ({} bytes, {} unread); \
             {:.0} ms since preparing ({:.0} ms)",
            self.source.name(),
            s.new_frames,
            s.new_bytes,
            s.ref_frames,
            s.ref_bytes,
            s.unread_frames,
            self.started.elapsed().as_secs_f64() * 1e3,
            self.prepare_ms
        );
    }

    /// Deletes the chain files no kept generation needs (after the new image is written).
    pub fn prune(&self) {
        let new_parents = self.delta.basis().map(|b| b.parents().to_vec());
        prune(
            Path::new(&self.dir),
            &self.file_name,
            self.settings.keep,
            new_parents
                .unwrap_or_default()
                .iter()
                .map(|p| p.file.clone()),
        );
    }
}

/// What vouches that a frame did not change since the basis's snapshot.
enum Source {
    /// Nothing: every frame is hashed.
    None,
    /// `/proc/self/pagemap`, whose soft-dirty bits are relative to the basis's snapshot.
    SoftDirty(std::fs::File),
    /// The pages written since the previous scan (the forked writer's copy).
    Uffd(CleanView),
}

impl Source {
    fn of(mode: Mode, generation: u64, basis: &Basis) -> Source {
        let basis_gen = basis.parents()[0].generation;
        match mode {
            Mode::Off => Source::None,
            Mode::SoftDirty => {
                // Only a basis written from the snapshot the bits were cleared at qualifies.
                let base = SOFT_DIRTY_BASE.load(Ordering::Acquire);
                (base != 0 && basis_gen == base)
                    .then(|| std::fs::File::open("/proc/self/pagemap").ok())
                    .flatten()
                    .map_or(Source::None, Source::SoftDirty)
            }
            Mode::Uffd => {
                dirty::clean_view(generation, basis_gen).map_or(Source::None, Source::Uffd)
            }
        }
    }

    fn vouches(&self) -> bool {
        !matches!(self, Source::None)
    }

    fn clean(&self, addr: u64, len: u64) -> bool {
        match self {
            Source::None => false,
            Source::SoftDirty(f) => clean(f, addr, len),
            Source::Uffd(v) => v.clean(addr, len),
        }
    }

    /// Whether the source saw a page of the frame written (so it changed, most likely).
    fn written(&self, addr: u64, len: u64) -> bool {
        match self {
            Source::Uffd(v) => v.written(addr, len),
            _ => false,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Source::None => "hashed",
            Source::SoftDirty(_) => "soft-dirty",
            Source::Uffd(_) => "uffd-wp",
        }
    }
}

/// One frame of memory mapped for the writer alone (not part of the saved memory map).
struct Stage {
    addr: *mut u8,
}

impl Stage {
    const LEN: usize = dmtcp_image::delta::DELTA_FRAME as usize;

    fn map() -> std::io::Result<Stage> {
        // SAFETY: a new private anonymous mapping, owned by the returned value.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Stage { addr: p.cast() })
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is LEN bytes, readable and writable, and only borrowed through
        // `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.addr, Self::LEN) }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in `map`, no longer borrowed.
        unsafe { libc::munmap(self.addr.cast(), Self::LEN) };
    }
}

/// Whether no page of `addr..addr+len` (at most 1 MiB) has its soft-dirty bit (55) set.
fn clean(pagemap: &std::fs::File, addr: u64, len: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let mut entries = [0u8; 8 * 256];
    let n = (len.div_ceil(4096) as usize).min(256);
    let buf = &mut entries[..8 * n];
    if pagemap.read_exact_at(buf, addr / 4096 * 8).is_err() {
        return false;
    }
    buf.chunks_exact(8)
        .all(|e| u64::from_le_bytes(e.try_into().unwrap_or_default()) & (1 << 55) == 0)
}

/// The mapping holding this thread's stack (the writer changes it while saving it).
fn own_stack() -> std::ops::Range<u64> {
    let here = 0u8;
    let at = std::ptr::addr_of!(here) as u64;
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    for l in maps.lines() {
        let Some((range, _)) = l.split_once(' ') else {
            continue;
        };
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        if let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
            && (a..b).contains(&at)
        {
            return a..b;
        }
    }
    // Unknown: treat everything as volatile (every frame is copied before it is compared).
    0..u64::MAX
}

/// `ckpt_x.dmtcp.g7`.
fn chain_name(file_name: &str, generation: u64) -> String {
    format!("{file_name}.g{generation}")
}

/// Links the committed previous image as a chain file and makes it the basis, unless the
/// chain is due for a full image.
fn previous(dir: &str, file_name: &str, generation: u64, s: Settings) -> Option<Basis> {
    let main = Path::new(dir).join(file_name);
    let prev = match Image::open_path(&main) {
        Ok(i) => i,
        Err(e) => {
            if main.exists() {
                crate::warn!(
                    "incremental checkpoint: {}: {e}; writing a full image",
                    main.display()
                );
            }
            return None;
        }
    };
    let prev_gen = prev.header().process.generation;
    if prev_gen >= generation {
        return None;
    }
    let name = chain_name(file_name, prev_gen);
    if let Err(e) = link_as(&main, &Path::new(dir).join(&name)) {
        crate::warn!("incremental checkpoint: cannot link {name}: {e}; writing a full image");
        return None;
    }
    let basis = Basis::from_previous(&prev, &name);
    let oldest = basis.oldest_generation().unwrap_or(prev_gen);
    if s.full_every > 0 && generation - oldest >= s.full_every {
        return None;
    }
    Some(basis)
}

/// Hard-links `from` as `to`, replacing a different file of that name atomically.
fn link_as(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let a = std::fs::metadata(from)?;
    if let Ok(b) = std::fs::metadata(to)
        && (a.dev(), a.ino()) == (b.dev(), b.ino())
    {
        return Ok(());
    }
    let tmp = to.with_extension(format!("link{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::fs::hard_link(from, &tmp)?;
    std::fs::rename(&tmp, to)
}

/// Keeps the `keep` newest chain files of `file_name`, every file they or `also` refer to,
/// and deletes the other chain files.
fn prune(dir: &Path, file_name: &str, keep: u64, also: impl Iterator<Item = String>) {
    let prefix = format!("{file_name}.g");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut chain: Vec<(u64, String)> = entries
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let g = n.strip_prefix(&prefix)?.parse().ok()?;
            Some((g, n))
        })
        .collect();
    chain.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
    let mut needed: HashSet<String> = also.collect();
    for (_, n) in chain.iter().take(keep as usize) {
        needed.insert(n.clone());
        let parents = std::fs::File::open(dir.join(n))
            .ok()
            .and_then(|f| dmtcp_image::read_header(&f).ok())
            .and_then(|h| parents_of(&h).ok())
            .unwrap_or_default();
        needed.extend(parents.into_iter().map(|p| p.file));
    }
    for (_, n) in chain.iter().skip(keep as usize) {
        if !needed.contains(n) {
            crate::debug!("incremental checkpoint: pruning {n}");
            let _ = std::fs::remove_file(dir.join(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_the_newest_and_what_they_refer_to() {
        let dir = std::env::temp_dir().join(format!("dmtcp-prune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for g in 1..=5 {
            std::fs::write(dir.join(chain_name("a.dmtcp", g)), b"not an image").unwrap();
        }
        std::fs::write(dir.join("a.dmtcp"), b"x").unwrap();
        std::fs::write(dir.join("b.dmtcp.g1"), b"x").unwrap();
        prune(&dir, "a.dmtcp", 2, ["a.dmtcp.g2".to_string()].into_iter());
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "a.dmtcp",
                "a.dmtcp.g2",
                "a.dmtcp.g4",
                "a.dmtcp.g5",
                "b.dmtcp.g1"
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
