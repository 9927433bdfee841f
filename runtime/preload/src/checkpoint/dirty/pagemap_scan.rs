//! The `PAGEMAP_SCAN` ioctl of `/proc/self/pagemap` (Linux 6.7): lists the pages of a range
//! written since they were last write-protected and write-protects them again, atomically;
//! or the pages of a range that are resident. Everything here runs between the scan and the
//! writer's fork: it allocates nothing and writes only the caller's buffers (memory that is
//! not tracked) and the stack.

/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: libc::c_ulong = 0xc060_6610;
/// Write-protect the pages reported.
const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
/// Fail (EPERM) on a mapping not registered for asynchronous write-protection, rather than
/// skipping it silently (its writes would go unseen).
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
/// The page's uffd-wp bit is clear: written (or populated) since it was protected.
const PAGE_IS_WRITTEN: u64 = 1 << 1;
/// In memory.
const PAGE_IS_PRESENT: u64 = 1 << 3;
/// Swapped out (or any other non-present pte, such as a uffd-wp marker).
const PAGE_IS_SWAPPED: u64 = 1 << 4;

#[repr(C)]
struct ScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// One run of pages the kernel reports (`struct page_region`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct PageRegion {
    pub start: u64,
    pub end: u64,
    pub categories: u64,
}

/// Why a range could not be scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    /// The kernel has no `PAGEMAP_SCAN` (or not this use of it): never try again.
    Unsupported(i32),
    /// This range cannot be tracked (a mapping in it is not registered, ...).
    Range(i32),
    /// More written blocks than `out` holds.
    Full,
}

/// Dirty blocks: sorted, disjoint `(start, end)` runs aligned to the block size.
pub struct Runs<'a> {
    pub runs: &'a mut [(u64, u64)],
    pub len: usize,
    /// Block size (a power of two): written pages are widened to whole blocks, which bounds
    /// the runs by the number of blocks whatever the pattern of writes.
    pub block: u64,
}

impl Runs<'_> {
    /// Adds `[start, end)` widened to blocks; addresses come in ascending order.
    fn push(&mut self, start: u64, end: u64) -> Result<(), ScanError> {
        let s = start & !(self.block - 1);
        let e = end.div_ceil(self.block) * self.block;
        if self.len > 0 {
            let last = &mut self.runs[self.len - 1];
            if s <= last.1 {
                last.1 = last.1.max(e);
                return Ok(());
            }
        }
        let slot = self.runs.get_mut(self.len).ok_or(ScanError::Full)?;
        *slot = (s, e);
        self.len += 1;
        Ok(())
    }
}

/// Reports the pages of `[start, end)` written since the previous scan into `out` (widened)
/// and write-protects them. `pagemap` is an fd of `/proc/self/pagemap`, `vec` the kernel's
/// output buffer.
pub fn scan(
    pagemap: i32,
    start: u64,
    end: u64,
    vec: &mut [PageRegion],
    out: &mut Runs<'_>,
) -> Result<(), ScanError> {
    let query = Query {
        flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
        category_mask: PAGE_IS_WRITTEN,
        category_anyof_mask: 0,
        return_mask: PAGE_IS_WRITTEN,
    };
    walk(pagemap, start, end, &query, vec, |r| {
        out.push(r.start, r.end)
    })
}

/// Calls `f(start, end)` for each run of pages of `[start, end)` that are present or swapped
/// out (runs in ascending order; a present run and a swapped one may touch). Much cheaper than
/// reading `pagemap` itself: no entry per page crosses to user space. Note: a uffd-wp marker
/// on a hole counts as swapped (the kernel sees a non-present pte), so this is for memory that
/// has none, such as the forked writer's copy (the fork drops them).
pub fn resident(
    pagemap: i32,
    start: u64,
    end: u64,
    vec: &mut [PageRegion],
    mut f: impl FnMut(u64, u64),
) -> Result<(), ScanError> {
    let query = Query {
        flags: 0,
        category_mask: 0,
        category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
        return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
    };
    walk(pagemap, start, end, &query, vec, |r| {
        f(r.start, r.end);
        Ok(())
    })
}

/// What one walk asks of `PAGEMAP_SCAN`.
struct Query {
    flags: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// Runs `PAGEMAP_SCAN` over `[start, end)` (as many calls as `vec` needs) and hands every
/// region reported to `each`, in ascending order.
fn walk(
    pagemap: i32,
    start: u64,
    end: u64,
    q: &Query,
    vec: &mut [PageRegion],
    mut each: impl FnMut(&PageRegion) -> Result<(), ScanError>,
) -> Result<(), ScanError> {
    let mut at = start;
    while at < end {
        let mut arg = ScanArg {
            size: std::mem::size_of::<ScanArg>() as u64,
            flags: q.flags,
            start: at,
            end,
            walk_end: 0,
            vec: vec.as_mut_ptr() as u64,
            vec_len: vec.len() as u64,
            max_pages: 0,
            category_inverted: 0,
            category_mask: q.category_mask,
            category_anyof_mask: q.category_anyof_mask,
            return_mask: q.return_mask,
        };
        // SAFETY: PAGEMAP_SCAN reads `arg` and writes at most `vec_len` regions into `vec`.
        let n = unsafe { libc::ioctl(pagemap, PAGEMAP_SCAN, &mut arg) };
        if n < 0 {
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return Err(match e {
                libc::ENOTTY | libc::EINVAL | libc::EOPNOTSUPP => ScanError::Unsupported(e),
                _ => ScanError::Range(e),
            });
        }
        for r in &vec[..(n as usize).min(vec.len())] {
            each(r)?;
        }
        if arg.walk_end <= at {
            // No progress: never loop forever on a kernel that does not advance.
            return Err(ScanError::Range(0));
        }
        at = arg.walk_end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<ScanArg>(), 96);
        assert_eq!(std::mem::size_of::<PageRegion>(), 24);
        let iowr: libc::c_ulong = (3 << 30) | (96 << 16) | ((b'f' as libc::c_ulong) << 8) | 16;
        assert_eq!(PAGEMAP_SCAN, iowr);
    }

    #[test]
    fn written_pages_widen_to_blocks_and_merge() {
        let mut buf = [(0, 0); 3];
        let mut r = Runs {
            runs: &mut buf,
            len: 0,
            block: 1 << 20,
        };
        r.push(0x10_1000, 0x10_2000).unwrap();
        r.push(0x10_5000, 0x20_0000).unwrap();
        r.push(0x20_0000, 0x20_1000).unwrap();
        r.push(0x50_0000, 0x50_1000).unwrap();
        r.push(0x70_0000, 0x70_1000).unwrap();
        assert_eq!(r.len, 3);
        assert_eq!(
            buf,
            [
                (0x10_0000, 0x30_0000),
                (0x50_0000, 0x60_0000),
                (0x70_0000, 0x80_0000)
            ]
        );
        let mut r = Runs {
            runs: &mut buf,
            len: 3,
            block: 1 << 20,
        };
        assert_eq!(r.push(0x90_0000, 0x90_1000), Err(ScanError::Full));
    }
}
