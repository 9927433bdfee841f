//! `/proc/self/maps`, parsed by hand (the procfs crate mis-parses `[vvar_vclock]`), and page
//! residency from `/proc/self/pagemap`.

use super::dirty::pagemap_scan::{self, PageRegion, ScanError};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
    pub offset: u64,
    pub dev: u64,
    pub inode: u64,
    /// The pathname column: a file, `[heap]`, `[stack]`, `[vdso]`, ... or empty.
    pub path: String,
}

impl Mapping {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// The kernel's own pages, never saved: the restorer moves the new kernel's copies instead.
    pub fn is_kernel_special(&self) -> bool {
        matches!(
            self.path.as_str(),
            "[vdso]" | "[vvar]" | "[vvar_vclock]" | "[vsyscall]"
        )
    }

    /// Backed by a regular file that still exists (not `(deleted)`, not `/dev/zero`, memfd...).
    pub fn is_file(&self) -> bool {
        self.path.starts_with('/') && !self.path.ends_with(" (deleted)") && self.inode != 0
    }

    /// Private anonymous memory: never-touched pages read as zero, so residency decides.
    pub fn is_private_anon(&self) -> bool {
        !self.shared && (self.path.is_empty() || self.path.starts_with('['))
    }
}

/// Parses one line; None for a line that does not look like a mapping.
pub fn parse_line(line: &str) -> Option<Mapping> {
    let mut rest = line;
    let mut field = || {
        let t = rest.trim_start_matches(' ');
        let end = t.find(' ').unwrap_or(t.len());
        let (f, r) = t.split_at(end);
        rest = r;
        f
    };
    let range = field();
    let perms = field().as_bytes().to_vec();
    let offset = field();
    let dev = field();
    let inode = field();
    let path = rest.trim_start_matches(' ').to_string();
    let (s, e) = range.split_once('-')?;
    let (maj, min) = dev.split_once(':')?;
    if perms.len() < 4 {
        return None;
    }
    let maj = u64::from_str_radix(maj, 16).ok()?;
    let min = u64::from_str_radix(min, 16).ok()?;
    Some(Mapping {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        read: perms[0] == b'r',
        write: perms[1] == b'w',
        exec: perms[2] == b'x',
        shared: perms[3] == b's',
        offset: u64::from_str_radix(offset, 16).ok()?,
        dev: libc::makedev(maj as u32, min as u32),
        inode: inode.parse().ok()?,
        path,
    })
}

pub fn parse(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_line).collect()
}

pub fn read_self() -> io::Result<Vec<Mapping>> {
    Ok(parse(&std::fs::read_to_string("/proc/thread-self/maps")?))
}

const PAGE: u64 = 4096;
const PRESENT: u64 = 1 << 63;
const SWAPPED: u64 = 1 << 62;

/// Page residency of this process's memory: `PAGEMAP_SCAN` where the kernel has it (runs of
/// resident pages, ~4x faster at 2 GiB), else one pagemap entry per page.
pub struct Pagemap {
    file: std::fs::File,
    buf: Vec<u64>,
    regions: Vec<PageRegion>,
    /// Cleared when the kernel has no `PAGEMAP_SCAN`.
    scan: bool,
}

impl Pagemap {
    pub fn open() -> io::Result<Self> {
        Ok(Pagemap {
            file: std::fs::File::open("/proc/thread-self/pagemap")?,
            buf: vec![0; 8192],
            regions: vec![PageRegion::default(); 512],
            scan: true,
        })
    }

    /// Calls `f(first_page_offset, len)` for each run of resident (present or swapped) pages
    /// in `[start, end)`, offsets relative to `start`.
    pub fn resident_runs(
        &mut self,
        start: u64,
        end: u64,
        f: impl FnMut(u64, u64) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut runs = Runs::default();
        if self.scan {
            let fd = self.file.as_raw_fd();
            match pagemap_scan::resident(fd, start, end, &mut self.regions, |s, e| {
                runs.add(s - start, e - s)
            }) {
                Ok(()) => return runs.each(f),
                Err(ScanError::Unsupported(_)) => self.scan = false,
                Err(_) => {}
            }
            runs = Runs::default();
        }
        let mut page = start / PAGE;
        let last = end / PAGE;
        while page < last {
            let n = ((last - page) as usize).min(self.buf.len());
            // SAFETY: viewing the u64 buffer as bytes for the read.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut(self.buf.as_mut_ptr().cast::<u8>(), n * 8)
            };
            self.file.read_exact_at(bytes, page * 8)?;
            for (i, &e) in self.buf[..n].iter().enumerate() {
                if e & (PRESENT | SWAPPED) != 0 {
                    runs.add((page + i as u64) * PAGE - start, PAGE);
                }
            }
            page += n as u64;
        }
        runs.each(f)
    }
}

/// Runs of pages, adjacent ones merged.
#[derive(Default)]
struct Runs(Vec<(u64, u64)>);

impl Runs {
    fn add(&mut self, off: u64, len: u64) {
        match self.0.last_mut() {
            Some((s, l)) if *s + *l == off => *l += len,
            _ => self.0.push((off, len)),
        }
    }

    fn each(self, mut f: impl FnMut(u64, u64) -> io::Result<()>) -> io::Result<()> {
        self.0.into_iter().try_for_each(|(s, l)| f(s, l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs_of(pm: &mut Pagemap, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut v = Vec::new();
        pm.resident_runs(start, end, |o, l| {
            v.push((o, l));
            Ok(())
        })
        .unwrap();
        v
    }

    #[test]
    fn scan_and_per_page_reads_find_the_same_runs() {
        let len = 64 * PAGE as usize;
        // SAFETY: a fresh private anonymous mapping, ours alone.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        let base = p as u64;
        for page in [0u64, 1, 2, 7, 20, 21, 63] {
            // SAFETY: inside the mapping above.
            unsafe { *((base + page * PAGE) as *mut u8) = 1 };
        }
        let want = vec![
            (0, 3 * PAGE),
            (7 * PAGE, PAGE),
            (20 * PAGE, 2 * PAGE),
            (63 * PAGE, PAGE),
        ];
        let mut pm = Pagemap::open().unwrap();
        assert_eq!(runs_of(&mut pm, base, base + len as u64), want);
        pm.scan = false;
        assert_eq!(runs_of(&mut pm, base, base + len as u64), want);
        // SAFETY: unmapping what we mapped.
        unsafe { libc::munmap(p, len) };
    }
}
