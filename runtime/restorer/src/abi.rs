//! What `dmtcp_restart`, the restorer and the restored runtime library hand to each other.
//!
//! All of it lives in the restorer hole: a range the checkpointed process reserved (PROT_NONE)
//! and never saved, so it is free in every image's address layout. `dmtcp_restart` loads the
//! restorer's code at the start of the hole, writes a [`RestorerArgs`] block and its tables
//! after it, and jumps to the restorer on a stack at the top of the hole.

/// Where the hole is. The restorer binary is linked at this address (see build.rs).
pub const HOLE_START: u64 = 0x3f00_0000_0000;
/// 64 MiB: restorer code, the argument block, parking for the vdso, and a stack.
pub const HOLE_LEN: u64 = 64 << 20;
/// The restorer's code and data: `[HOLE_START, HOLE_START + CODE_MAX)`.
pub const CODE_MAX: u64 = 8 << 20;
/// The argument block and its tables.
pub const ARGS_OFFSET: u64 = 8 << 20;
pub const ARGS_MAX: u64 = 24 << 20;
/// Where the kernel's vvar/vdso pages wait while the address space is rebuilt.
pub const PARK_OFFSET: u64 = 32 << 20;
pub const PARK_MAX: u64 = 8 << 20;
/// The stack used by the restorer and by the restart entry until threads leave it.
pub const STACK_OFFSET: u64 = 48 << 20;
pub const STACK_LEN: u64 = 16 << 20;

pub const RESTORER_MAGIC: u64 = 0x524f_5453_4552_4d44; // "DMRESTOR"
pub const RESTART_MAGIC: u64 = 0x5452_4154_5352_4d44; // "DMSTRAT R"

/// Exit status of a restart that failed after the point of no return.
pub const EXIT_RESTORE_FAILED: i32 = 99;

/// A half-open address range.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

/// One region of the image: its content waits in `staging` (or nowhere, for a region with no
/// saved pages) and moves to `target`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct RegionMove {
    /// Address of the staging mapping holding the content, 0 to map fresh zero pages.
    pub staging: u64,
    pub target: u64,
    pub len: u64,
    /// PROT_* of the region.
    pub prot: u64,
    /// Extra mmap flags for fresh mappings (MAP_GROWSDOWN, MAP_NORESERVE).
    pub map_flags: u64,
    /// An open descriptor of the region's file, or -1: the region is mapped from the file
    /// (so `/proc/self/maps` names it again) and only the pages that differ from the file
    /// are copied from staging. The restorer closes it.
    pub fd: i64,
    pub file_offset: u64,
    /// Non-zero: `MAP_SHARED` (writes reach the file), else `MAP_PRIVATE`.
    pub shared: u64,
}

/// One of the kernel's special mappings ([vvar], [vvar_vclock], [vdso]): where it is now and
/// where the checkpointed program expects it. `len == 0` when absent.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelArea {
    pub current: u64,
    pub target: u64,
    pub len: u64,
}

/// `struct prctl_mm_map` (linux/prctl.h): the memory descriptor's layout fields.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct MmMap {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    pub auxv: u64,
    pub auxv_size: u32,
    /// `u32::MAX`: leave `/proc/self/exe` alone (changing it needs privilege).
    pub exe_fd: u32,
}

/// The restorer's input, at `HOLE_START + ARGS_OFFSET`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RestorerArgs {
    pub magic: u64,
    /// Where to write a one-line error before exiting.
    pub log_fd: i64,
    /// Sorted ranges that must survive the great unmapping (hole, staging, kernel areas).
    pub keep: u64,
    pub n_keep: u64,
    /// `RegionMove` table, in address order.
    pub moves: u64,
    pub n_moves: u64,
    pub kernel: [KernelArea; 3],
    /// Non-zero: apply `mm` with `prctl(PR_SET_MM, PR_SET_MM_MAP)`.
    pub set_mm: u64,
    pub mm: MmMap,
    /// The restored runtime's restart entry, called as `entry(entry_arg)` on the hole stack.
    pub entry: u64,
    pub entry_arg: u64,
}

/// `RestartInfo::flags`: recreate threads with their checkpoint-time tids (`clone3` set_tid),
/// which works inside the fresh pid namespace the launcher made.
pub const RESTART_EXACT_TIDS: u64 = 1;
/// `RestartInfo::flags`: some regions were left to a lazy-restart pager (userfaultfd), so the
/// runtime must hold forks and checkpoints until they are loaded. Without it the runtime knows
/// at once that nothing is pending, instead of scanning `/proc/self/smaps` on every restart.
pub const RESTART_LAZY: u64 = 2;

/// What the restored runtime library learns from `dmtcp_restart`, at `entry_arg`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RestartInfo {
    pub magic: u64,
    pub flags: u64,
    /// postcard bytes of the coordinator's `Assignment` for the restarted process.
    pub assignment: u64,
    pub assignment_len: u64,
    /// A new checkpoint directory (`--ckptdir`), empty for none.
    pub ckpt_dir: u64,
    pub ckpt_dir_len: u64,
    /// The image this process was restarted from.
    pub image: u64,
    pub image_len: u64,
    /// The coordinator the restarted process now belongs to (appended fields: older
    /// runtimes read only the prefix).
    pub coord_host: u64,
    pub coord_host_len: u64,
    pub coord_port: u64,
}

/// Largest `/proc/self/auxv` kept (the kernel's saved auxv is smaller).
pub const AUXV_MAX: usize = 512;
/// Name of the image header section holding a [`SavedLayout`].
pub const LAYOUT_SECTION: &str = "layout";

/// What the checkpointed process's address space looked like beyond its regions: the hole,
/// the kernel's special pages, the memory descriptor's fields and the auxiliary vector.
/// Stored in the image header as little-endian u64 words followed by the auxv bytes.
#[derive(Debug, Clone, Copy)]
pub struct SavedLayout {
    pub hole: Range,
    /// [vvar], [vvar_vclock], [vdso]; `target` is the saved address.
    pub kernel: [KernelArea; 3],
    pub has_mm: bool,
    pub mm: MmMap,
    pub auxv: [u8; AUXV_MAX],
    pub auxv_len: usize,
}

impl Default for SavedLayout {
    fn default() -> Self {
        SavedLayout {
            hole: Range::default(),
            kernel: [KernelArea::default(); 3],
            has_mm: false,
            mm: MmMap::default(),
            auxv: [0; AUXV_MAX],
            auxv_len: 0,
        }
    }
}

const LAYOUT_VERSION: u64 = 1;
const LAYOUT_WORDS: usize = 1 + 2 + 6 + 12 + 1;

impl SavedLayout {
    /// Bytes needed by [`encode`](Self::encode).
    pub fn encoded_len(&self) -> usize {
        LAYOUT_WORDS * 8 + self.auxv_len
    }

    fn words(&self) -> [u64; LAYOUT_WORDS] {
        let m = &self.mm;
        let k = &self.kernel;
        [
            LAYOUT_VERSION,
            self.hole.start,
            self.hole.end,
            k[0].target,
            k[0].len,
            k[1].target,
            k[1].len,
            k[2].target,
            k[2].len,
            self.has_mm as u64,
            m.start_code,
            m.end_code,
            m.start_data,
            m.end_data,
            m.start_brk,
            m.brk,
            m.start_stack,
            m.arg_start,
            m.arg_end,
            m.env_start,
            m.env_end,
            self.auxv_len as u64,
        ]
    }

    /// Writes the encoding into `out` (at least `encoded_len()` bytes); returns its length.
    pub fn encode(&self, out: &mut [u8]) -> usize {
        let mut at = 0;
        for w in self.words() {
            out[at..at + 8].copy_from_slice(&w.to_le_bytes());
            at += 8;
        }
        out[at..at + self.auxv_len].copy_from_slice(&self.auxv[..self.auxv_len]);
        at + self.auxv_len
    }

    /// Decodes; None for anything malformed.
    pub fn decode(b: &[u8]) -> Option<SavedLayout> {
        if b.len() < LAYOUT_WORDS * 8 {
            return None;
        }
        let w = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(x)
        };
        if w(0) != LAYOUT_VERSION {
            return None;
        }
        let auxv_len = w(21) as usize;
        if auxv_len > AUXV_MAX || b.len() != LAYOUT_WORDS * 8 + auxv_len {
            return None;
        }
        let mut s = SavedLayout {
            hole: Range {
                start: w(1),
                end: w(2),
            },
            has_mm: w(9) != 0,
            mm: MmMap {
                start_code: w(10),
                end_code: w(11),
                start_data: w(12),
                end_data: w(13),
                start_brk: w(14),
                brk: w(15),
                start_stack: w(16),
                arg_start: w(17),
                arg_end: w(18),
                env_start: w(19),
                env_end: w(20),
                auxv: 0,
                auxv_size: 0,
                exe_fd: u32::MAX,
            },
            auxv_len,
            ..SavedLayout::default()
        };
        for (i, k) in s.kernel.iter_mut().enumerate() {
            *k = KernelArea {
                current: 0,
                target: w(3 + 2 * i),
                len: w(4 + 2 * i),
            };
        }
        s.auxv[..auxv_len].copy_from_slice(&b[LAYOUT_WORDS * 8..]);
        Some(s)
    }
}

/// Identifies the kernel's vdso/vvar layout and vdso code: the sizes of [vvar], [vvar_vclock]
/// and [vdso], their offsets relative to [vvar] (or the first present), and an FNV-1a hash of
/// the vdso's bytes. A restored libc keeps calling into the vdso at its saved address, so
/// restart needs an identical vdso.
pub fn vdso_fingerprint(kernel: &[KernelArea; 3], vdso: &[u8]) -> [u8; 48] {
    let base = kernel
        .iter()
        .filter(|k| k.len != 0)
        .map(|k| k.current)
        .min()
        .unwrap_or(0);
    let rel = |k: &KernelArea| {
        if k.len == 0 {
            u64::MAX
        } else {
            k.current - base
        }
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in vdso {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let words = [
        kernel[0].len,
        kernel[1].len,
        kernel[2].len,
        rel(&kernel[1]),
        rel(&kernel[2]),
        h,
    ];
    let mut out = [0u8; 48];
    for (i, w) in words.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trip_and_rejects_damage() {
        let mut s = SavedLayout {
            hole: Range {
                start: HOLE_START,
                end: HOLE_START + HOLE_LEN,
            },
            ..Default::default()
        };
        s.kernel[2] = KernelArea {
            current: 0,
            target: 0x7fff_1000,
            len: 0x2000,
        };
        s.has_mm = true;
        s.mm.brk = 0x5555_0000;
        s.auxv_len = 3;
        s.auxv[..3].copy_from_slice(b"abc");
        let mut buf = [0u8; 1024];
        let n = s.encode(&mut buf);
        assert_eq!(n, s.encoded_len());
        let d = SavedLayout::decode(&buf[..n]).unwrap();
        assert_eq!(
            (d.kernel[2].target, d.kernel[2].len, d.mm.brk),
            (0x7fff_1000, 0x2000, 0x5555_0000)
        );
        assert_eq!(&d.auxv[..d.auxv_len], b"abc");
        assert!(SavedLayout::decode(&buf[..n - 1]).is_none());
        buf[0] = 9;
        assert!(SavedLayout::decode(&buf[..n]).is_none());
    }
}

/// `struct clone_args` of `clone3` (linux/sched.h), for the restart path and the namespace
/// init that create tasks with chosen tids.
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

/// Name of the image header section listing the process's zombie children: children that had
/// exited but were not yet reaped at checkpoint time. Restart recreates each (same pid where
/// pids are exact) so the program's `waitpid` still finds it with its status.
pub const ZOMBIES_SECTION: &str = "zombies";

/// One zombie child: its pid and how it ended, as `waitid` reports it (`si_code` is
/// `CLD_EXITED`, `CLD_KILLED` or `CLD_DUMPED`; `si_status` the exit code or signal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zombie {
    pub pid: i32,
    pub code: i32,
    pub status: i32,
}

impl Zombie {
    pub const LEN: usize = 12;

    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..4].copy_from_slice(&self.pid.to_le_bytes());
        b[4..8].copy_from_slice(&self.code.to_le_bytes());
        b[8..12].copy_from_slice(&self.status.to_le_bytes());
        b
    }

    /// Every whole record in `section`.
    pub fn parse(section: &[u8]) -> impl Iterator<Item = Zombie> + '_ {
        section.chunks_exact(Self::LEN).map(|c| {
            let word = |i: usize| i32::from_le_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
            Zombie {
                pid: word(0),
                code: word(4),
                status: word(8),
            }
        })
    }
}
