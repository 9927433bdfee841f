//! The image header: where the image comes from and what the restart must match.

use serde::{Deserialize, Serialize};

/// Everything known about the checkpointed process before its memory is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Header {
    /// `std::env::consts::ARCH` of the checkpointed process, e.g. `"x86_64"`.
    pub arch: String,
    /// `uname -r` at checkpoint time.
    pub kernel_release: String,
    /// Caller-defined bytes identifying the vdso/vvar layout; restart compares them.
    pub vdso_fingerprint: Vec<u8>,
    /// Page size the region table is aligned to (4096 on x86-64).
    pub page_size: u32,
    /// glibc's rseq registration layout, when the process had one.
    pub rseq: Option<RseqLayout>,
    pub process: ProcessIdentity,
    /// Address the restorer jumps to in the restored runtime library.
    pub entry: u64,
    /// Named opaque sections (threads, signals, fds, plugin state), in writer order.
    pub sections: Vec<Section>,
}

/// glibc's `__rseq_size` / `__rseq_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RseqLayout {
    pub size: u32,
    pub offset: i64,
}

/// Who the process was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProcessIdentity {
    /// Program name (`/proc/self/comm` or argv\[0\]'s basename).
    pub program: String,
    /// Real ids at checkpoint time.
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// The id the program believes it has (equal to `pid` in the namespace strategy).
    pub virtual_pid: i32,
    /// The coordinator-assigned unique process id, as a string.
    pub upid: String,
    /// The computation id, as a string.
    pub comp_id: String,
    /// Checkpoint generation number.
    pub generation: u64,
    pub hostname: String,
    pub uid: u32,
    pub gid: u32,
    /// Checkpoint time, nanoseconds since the Unix epoch.
    pub ckpt_time_ns: u64,
}

/// A named opaque blob that this crate stores but does not interpret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Section {
    pub name: String,
    pub data: Vec<u8>,
}

impl Header {
    /// A header for this machine's architecture and a 4 KiB page, other fields empty.
    pub fn new() -> Self {
        Header {
            arch: std::env::consts::ARCH.to_string(),
            page_size: 4096,
            ..Default::default()
        }
    }

    /// The first section called `name`.
    pub fn section(&self, name: &str) -> Option<&[u8]> {
        self.sections
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.data.as_slice())
    }

    /// Appends a section.
    pub fn push_section(&mut self, name: impl Into<String>, data: Vec<u8>) {
        self.sections.push(Section {
            name: name.into(),
            data,
        });
    }
}
