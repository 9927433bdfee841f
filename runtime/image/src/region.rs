//! The region table: one entry per saved mapping and how its content is stored.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Index of a region in the table, as returned by the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RegionId(pub u32);

/// Protection bits of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Prot(pub u8);

impl Prot {
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const EXEC: u8 = 4;
    pub const ALL: u8 = 7;

    /// From the `rwxp` column of `/proc/<pid>/maps`.
    pub fn from_maps(perms: &str) -> Prot {
        let b = perms.as_bytes();
        let bit = |i: usize, c: u8, v: u8| if b.get(i) == Some(&c) { v } else { 0 };
        Prot(bit(0, b'r', Self::READ) | bit(1, b'w', Self::WRITE) | bit(2, b'x', Self::EXEC))
    }

    pub fn readable(self) -> bool {
        self.0 & Self::READ != 0
    }
    pub fn writable(self) -> bool {
        self.0 & Self::WRITE != 0
    }
    pub fn executable(self) -> bool {
        self.0 & Self::EXEC != 0
    }
}

impl fmt::Display for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |set: bool, ch: char| if set { ch } else { '-' };
        write!(
            f,
            "{}{}{}",
            c(self.readable(), 'r'),
            c(self.writable(), 'w'),
            c(self.executable(), 'x')
        )
    }
}

/// Kind bits of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RegionFlags(pub u32);

impl RegionFlags {
    /// `MAP_SHARED` (otherwise private).
    pub const SHARED: u32 = 1 << 0;
    /// Not backed by a file.
    pub const ANONYMOUS: u32 = 1 << 1;
    /// A thread's or the main stack.
    pub const STACK: u32 = 1 << 2;
    /// The brk heap.
    pub const HEAP: u32 = 1 << 3;
    /// `MAP_GROWSDOWN`.
    pub const GROWSDOWN: u32 = 1 << 4;
    /// Backed by a file that was deleted while mapped.
    pub const DELETED: u32 = 1 << 5;
    /// System V shared memory.
    pub const SYSV_SHM: u32 = 1 << 6;
    /// A memfd or `MAP_SHARED|MAP_ANONYMOUS` (shmem) mapping.
    pub const SHMEM: u32 = 1 << 7;
    /// Belongs to the checkpoint runtime itself.
    pub const RUNTIME: u32 = 1 << 8;
    const NAMES: [(u32, &'static str); 9] = [
        (Self::SHARED, "shared"),
        (Self::ANONYMOUS, "anon"),
        (Self::STACK, "stack"),
        (Self::HEAP, "heap"),
        (Self::GROWSDOWN, "growsdown"),
        (Self::DELETED, "deleted"),
        (Self::SYSV_SHM, "sysv-shm"),
        (Self::SHMEM, "shmem"),
        (Self::RUNTIME, "runtime"),
    ];

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    /// Names of the set bits (unknown bits as hex), e.g. `["anon", "heap"]`.
    pub fn names(self) -> Vec<String> {
        let mut out: Vec<String> = Self::NAMES
            .iter()
            .filter(|(b, _)| self.has(*b))
            .map(|(_, n)| n.to_string())
            .collect();
        let known = Self::NAMES.iter().fold(0, |a, (b, _)| a | b);
        if self.0 & !known != 0 {
            out.push(format!("{:#x}", self.0 & !known));
        }
        out
    }
}

/// What the caller knows about a mapping (one line of `/proc/<pid>/maps`, refined).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RegionMeta {
    pub start: u64,
    pub len: u64,
    pub prot: Prot,
    pub flags: RegionFlags,
    /// Pathname column of maps: a file path, `[heap]`, `[stack]`, or empty.
    pub path: String,
    /// File offset of the mapping.
    pub offset: u64,
    /// Device number (`makedev(major, minor)`) and inode of the backing file, 0 when none.
    pub dev: u64,
    pub inode: u64,
}

impl RegionMeta {
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// A run of saved bytes inside a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Offset of the run within the region.
    pub offset: u64,
    pub len: u64,
    /// Position of the run's bytes in the image's raw data stream (the concatenation of all
    /// frames' decoded bytes).
    pub stream_offset: u64,
}

/// Reference to an unmodified file whose content stands for the region's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FileRef {
    pub path: String,
    pub inode: u64,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

impl FileRef {
    /// Records `path`'s current identity (inode, size, mtime).
    pub fn from_path(path: &str) -> std::io::Result<FileRef> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok(FileRef {
            path: path.to_string(),
            inode: m.ino(),
            size: m.size(),
            mtime_ns: m
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.mtime_nsec()),
        })
    }

    /// Whether the file still is the one recorded; `Err` says what changed, for a restart
    /// error such as "/usr/lib/x.so changed since the checkpoint (size 10 -> 12)".
    pub fn check_unchanged(&self) -> Result<(), String> {
        let now = FileRef::from_path(&self.path).map_err(|e| format!("{}: {e}", self.path))?;
        let what = if now.inode != self.inode {
            format!("inode {} -> {}", self.inode, now.inode)
        } else if now.size != self.size {
            format!("size {} -> {}", self.size, now.size)
        } else if now.mtime_ns != self.mtime_ns {
            "modification time differs".to_string()
        } else {
            return Ok(());
        };
        Err(format!(
            "{} changed since the checkpoint ({what})",
            self.path
        ))
    }
}

/// How a region's content is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Storage {
    /// Nothing saved: every page reads as zero (never touched).
    Zero,
    /// Saved runs; bytes outside every run are zero.
    Pages(Vec<Run>),
    /// The content is the referenced file's bytes at `meta.offset`; nothing saved.
    File(FileRef),
}

/// One entry of the region table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub meta: RegionMeta,
    pub storage: Storage,
}

impl Region {
    /// Number of saved bytes (0 for zero and file-backed regions).
    pub fn saved_bytes(&self) -> u64 {
        match &self.storage {
            Storage::Pages(runs) => runs.iter().map(|r| r.len).sum(),
            _ => 0,
        }
    }

    /// `0x7f..-0x7f.. [heap]`: how messages name a region.
    pub fn describe(&self) -> String {
        let name = if self.meta.path.is_empty() {
            "[anon]"
        } else {
            &self.meta.path
        };
        format!("{:#x}-{:#x} {}", self.meta.start, self.meta.end(), name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prot_from_maps_and_display() {
        assert_eq!(Prot::from_maps("r-xp"), Prot(Prot::READ | Prot::EXEC));
        assert_eq!(Prot::from_maps("rw-s").to_string(), "rw-");
        assert_eq!(Prot::from_maps("---p").to_string(), "---");
    }

    #[test]
    fn file_refs_notice_changes() {
        let p = std::env::temp_dir().join(format!("dmtcp-fileref-{}", std::process::id()));
        let ps = p.to_str().unwrap();
        std::fs::write(&p, b"hello").unwrap();
        let r = FileRef::from_path(ps).unwrap();
        assert_eq!(r.size, 5);
        assert_eq!(r.check_unchanged(), Ok(()));
        std::fs::write(&p, b"hello world").unwrap();
        let e = r.check_unchanged().unwrap_err();
        assert!(
            e.ends_with("changed since the checkpoint (size 5 -> 11)"),
            "{e}"
        );
        std::fs::remove_file(&p).unwrap();
        assert!(r.check_unchanged().unwrap_err().contains("No such file"));
    }

    #[test]
    fn flag_names_include_unknown_bits() {
        let f = RegionFlags(RegionFlags::ANONYMOUS | RegionFlags::HEAP | 1 << 20);
        assert_eq!(f.names(), vec!["anon", "heap", "0x100000"]);
    }
}
