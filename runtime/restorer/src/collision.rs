//! Naming what is in the way. When a region cannot be placed because something already sits
//! at its address (`EEXIST` from `MAP_FIXED_NOREPLACE`), the message is only useful with the
//! occupant's line from `/proc/self/maps` (a library, the vdso, a stack, the staging area).

use crate::sys;

/// The first line of `maps` (complete lines of `/proc/<pid>/maps`) whose range overlaps
/// `start..end`.
pub fn overlapping(maps: &[u8], start: u64, end: u64) -> Option<&[u8]> {
    maps.split(|&b| b == b'\n').find(|line| {
        let Some(dash) = line.iter().position(|&b| b == b'-') else {
            return false;
        };
        let space = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        match (
            hex(&line[..dash]),
            hex(line.get(dash + 1..space).unwrap_or(&[])),
        ) {
            (Some(lo), Some(hi)) => lo < end && start < hi,
            _ => false,
        }
    })
}

fn hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |v, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some(v << 4 | d as u64)
    })
}

/// Writes "  in the way: <maps line>" to `log_fd` for the mapping that overlaps the range,
/// reading `/proc/self/maps` in pieces (no allocation here).
pub fn report(log_fd: i32, start: u64, len: u64) {
    // SAFETY: opening a constant NUL-terminated path read-only.
    let fd = unsafe { sys::syscall2(sys::SYS_OPEN, c"/proc/self/maps".as_ptr() as usize, 0) };
    if sys::is_err(fd) {
        return;
    }
    let mut buf = [0u8; 8192];
    let mut have = 0;
    loop {
        // SAFETY: reading into the free tail of our buffer.
        let n = unsafe {
            sys::syscall3(
                sys::SYS_READ,
                fd as usize,
                buf[have..].as_mut_ptr() as usize,
                buf.len() - have,
            )
        };
        if n <= 0 {
            break;
        }
        have += n as usize;
        // Only complete lines are searched; the partial last one moves to the front.
        let complete = buf[..have]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        if let Some(line) = overlapping(&buf[..complete], start, start + len) {
            sys::write_all(log_fd, b"  in the way: ");
            sys::write_all(log_fd, line);
            sys::write_all(log_fd, b"\n");
            break;
        }
        buf.copy_within(complete..have, 0);
        have -= complete;
        if have == buf.len() {
            break; // a line longer than the buffer: give up quietly
        }
    }
    // SAFETY: closing the descriptor opened above.
    unsafe { sys::syscall1(sys::SYS_CLOSE, fd as usize) };
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &[u8] = b"555555554000-555555556000 r--p 00000000 fe:01 1 /usr/bin/cat\n\
7ffff7fc1000-7ffff7fc5000 r--p 00000000 00:00 0 [vvar]\n\
7ffff7fc5000-7ffff7fc7000 r-xp 00000000 00:00 0 [vdso]\n";

    #[test]
    fn finds_the_occupant() {
        let l = overlapping(MAPS, 0x7fff_f7fc_6000, 0x7fff_f7fc_8000).unwrap();
        assert!(l.ends_with(b"[vdso]"), "{}", String::from_utf8_lossy(l));
        let l = overlapping(MAPS, 0x5555_5555_0000, 0x5555_5555_5000).unwrap();
        assert!(l.ends_with(b"/usr/bin/cat"));
    }

    #[test]
    fn touching_is_not_overlapping() {
        assert!(overlapping(MAPS, 0x5555_5555_6000, 0x5555_5555_7000).is_none());
        assert!(overlapping(MAPS, 0x7fff_f7fc_0000, 0x7fff_f7fc_1000).is_none());
        assert!(overlapping(b"garbage\n-\nzz-yy x\n", 0, u64::MAX).is_none());
    }
}
