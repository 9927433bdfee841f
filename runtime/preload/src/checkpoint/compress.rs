//! Parallel compression for the image writer.
//!
//! The writer (the forked child, or the frozen process itself) cuts the saved bytes into
//! frames and clones compression *worker processes* of itself ([`worker_clones`]): each shares
//! the same copy-on-write snapshot and owns private copies of the zstd context and buffers
//! made before the clone.
//!
//! Workers take frame numbers from a shared counter, compress the frame into a slot of a
//! `MAP_SHARED` ring made before they were cloned, and mark the slot ready; the writer appends
//! frames in stream order and frees their slots. A frame a worker could not shrink is marked
//! raw and the writer writes it from its own copy of the memory. In adaptive mode the writer,
//! whenever it would wait for a compressor, claims a frame further ahead to store raw: the disk
//! then sets the pace instead of the compressors (larger image, shorter checkpoint).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use dmtcp_image::writer::FrameInfo;
use dmtcp_image::{EncodedFrame, FrameEncoder, ImageWriter};

use super::worker_clones::{self, SharedMap, reap};
use std::io::{self, Write};

/// How frames are stored (`DMTCP_GZIP`: `0`, `1` or `adaptive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Off,
    On,
    /// Compress, but store frames raw while the compressors are behind the disk.
    Adaptive,
}

/// The writer's settings, read from the environment before the program is frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// `DMTCP_GZIP=adaptive` (`DMTCP_GZIP=0` is the runtime's `gzip` setting).
    pub adaptive: bool,
    /// Compression worker processes (`DMTCP_CKPT_THREADS`, default: the CPUs this process may
    /// run on). 1 compresses in the writer itself.
    pub workers: usize,
    /// zstd level of compressed frames (`DMTCP_ZSTD_LEVEL`, -7..=19, default
    /// [`dmtcp_image::DEFAULT_LEVEL`]): negative levels trade ratio for speed.
    pub level: i32,
    /// Start writeback of the image while it is written, so the final fsync is short
    /// (`DMTCP_CKPT_WRITEBACK=0` turns it off, to measure).
    pub early_writeback: bool,
    /// Test hook (`DMTCP_TEST_CKPT_WORKER_CRASH=G`): in checkpoint generation G, the worker
    /// that takes frame 1 kills itself. `write` keeps it only for that generation.
    pub crash_generation: Option<u64>,
}

impl Tuning {
    pub fn from_env() -> Tuning {
        let var = |k: &str| std::env::var(k).ok();
        let workers = var("DMTCP_CKPT_THREADS")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n >= 1)
            .unwrap_or_else(available_cpus)
            .min(MAX_WORKERS);
        Tuning {
            adaptive: var("DMTCP_GZIP").is_some_and(|v| v.eq_ignore_ascii_case("adaptive")),
            workers,
            level: var("DMTCP_ZSTD_LEVEL")
                .and_then(|v| v.trim().parse::<i32>().ok())
                .filter(|l| LEVELS.contains(l))
                .unwrap_or(dmtcp_image::DEFAULT_LEVEL),
            early_writeback: var("DMTCP_CKPT_WRITEBACK").is_none_or(|v| v.trim() != "0"),
            crash_generation: var("DMTCP_TEST_CKPT_WORKER_CRASH").and_then(|v| v.parse().ok()),
        }
    }
}

const MAX_WORKERS: usize = 64;
/// Accepted `DMTCP_ZSTD_LEVEL` values: zstd's negative levels below -7 barely compress.
const LEVELS: std::ops::RangeInclusive<i32> = -7..=19;

fn available_cpus() -> usize {
    // SAFETY: sched_getaffinity into a zeroed local set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            (libc::CPU_COUNT(&set) as usize).max(1)
        } else {
            1
        }
    }
}

/// A contiguous piece of saved memory and where its bytes start in the image's raw stream.
#[derive(Debug, Clone, Copy)]
pub struct Piece {
    pub addr: u64,
    pub len: u64,
    pub stream: u64,
}

/// The raw stream (pieces in declaration order) cut into frames of `frame_size` bytes.
pub struct Plan {
    pub pieces: Vec<Piece>,
    pub total: u64,
    pub frame_size: u64,
}

impl Plan {
    pub fn new(frame_size: usize) -> Plan {
        Plan {
            pieces: Vec::new(),
            total: 0,
            frame_size: frame_size as u64,
        }
    }

    pub fn push(&mut self, addr: u64, len: u64) {
        self.pieces.push(Piece {
            addr,
            len,
            stream: self.total,
        });
        self.total += len;
    }

    pub fn frames(&self) -> u64 {
        self.total.div_ceil(self.frame_size)
    }

    /// The memory of frame `k`, piece by piece, in stream order.
    fn slices(&self, k: u64) -> impl Iterator<Item = &[u8]> + '_ {
        let start = k * self.frame_size;
        let end = (start + self.frame_size).min(self.total);
        let first = self.pieces.partition_point(|p| p.stream + p.len <= start);
        self.pieces[first..]
            .iter()
            .take_while(move |p| p.stream < end)
            .map(move |p| {
                let from = start.max(p.stream) - p.stream;
                let to = end.min(p.stream + p.len) - p.stream;
                // SAFETY: pieces are readable memory of this process's snapshot, which nothing
                // changes or unmaps while the image is written (frozen program, or a private
                // forked copy), so the bytes live as long as the plan is used.
                unsafe {
                    std::slice::from_raw_parts((p.addr + from) as *const u8, (to - from) as usize)
                }
            })
    }

    fn gather(&self, k: u64, buf: &mut Vec<u8>) {
        buf.clear();
        for s in self.slices(k) {
            buf.extend_from_slice(s);
        }
    }

    fn write_raw<W: Write>(&self, k: u64, w: &mut ImageWriter<W>) -> dmtcp_image::Result<()> {
        let slices: Vec<&[u8]> = self.slices(k).collect();
        w.append_raw_pieces(&slices)
    }
}

/// Raw bytes saved so far and in all, for the progress report (shared with the parent).
#[repr(C)]
#[derive(Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub total: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    #[error("{0}")]
    Image(#[from] dmtcp_image::ImageError),
    #[error("cannot set up compression workers: {0}")]
    Setup(io::Error),
    #[error("compression worker process {pid} died ({why}) before its frame was ready")]
    WorkerDied { pid: i32, why: String },
    #[error("a compression worker failed on frame {0}")]
    WorkerFailed(u32),
}

/// Writes every frame of `plan` into `w`, compressing with `level` as `mode` says.
pub fn write_frames<W: Write>(
    plan: &Plan,
    w: &mut ImageWriter<W>,
    mode: Compression,
    level: i32,
    tuning: &Tuning,
    progress: Option<&Progress>,
) -> Result<(), CompressError> {
    if let Some(p) = progress {
        p.total.store(plan.total, Ordering::Relaxed);
        p.done.store(0, Ordering::Relaxed);
    }
    let frames = plan.frames();
    let note = |k: u64| {
        if let Some(p) = progress {
            let end = ((k + 1) * plan.frame_size).min(plan.total);
            p.done.store(end, Ordering::Relaxed);
        }
    };
    if mode == Compression::Off {
        for k in 0..frames {
            plan.write_raw(k, w)?;
            note(k);
        }
        return Ok(());
    }
    let mut encoder = FrameEncoder::new(Some(level))?;
    let mut buf = Vec::with_capacity(plan.frame_size as usize);
    let mut encoded = EncodedFrame::with_capacity(plan.frame_size as usize);
    if tuning.workers <= 1 || frames < 2 {
        for k in 0..frames {
            plan.gather(k, &mut buf);
            encoder.encode_into(&buf, &mut encoded)?;
            w.append_frame(&encoded)?;
            note(k);
        }
        return Ok(());
    }
    let workers = tuning.workers.min(frames as usize);
    let ring = Ring::map(frames as u32, 2 * workers, plan.frame_size as usize)
        .map_err(CompressError::Setup)?;
    let mut pids = Vec::with_capacity(workers);
    for _ in 0..workers {
        let spawned = worker_clones::spawn(|| {
            let ok = worker(plan, &ring, &mut encoder, &mut buf, &mut encoded, tuning);
            if ok { 0 } else { 1 }
        });
        match spawned {
            Ok(pid) => pids.push(pid),
            Err(err) => {
                ring.abort();
                reap(&pids, true);
                return Err(CompressError::Setup(err));
            }
        }
    }
    let r = drain(plan, w, &ring, &pids, mode, &note);
    if r.is_err() {
        ring.abort();
    }
    reap(&pids, r.is_err());
    r
}

/// The writer's side: frames in stream order, from the ring or raw from memory.
fn drain<W: Write>(
    plan: &Plan,
    w: &mut ImageWriter<W>,
    ring: &Ring,
    pids: &[i32],
    mode: Compression,
    note: &dyn Fn(u64),
) -> Result<(), CompressError> {
    let frames = plan.frames() as u32;
    for k in 0..frames {
        let slot = ring.slot(k);
        let mut waits = 0u32;
        loop {
            let claim = ring.claim(k).load(Ordering::Acquire);
            if claim == BY_WRITER {
                plan.write_raw(u64::from(k), w)?;
                break;
            }
            let state = slot.state.load(Ordering::Acquire);
            if state == READY && slot.frame.load(Ordering::Acquire) == k {
                // SAFETY: READY: the worker is done with the slot's head and data.
                let info = unsafe { *slot.info.get() };
                if info.zstd {
                    // SAFETY: as above; the worker filled `stored_len` bytes.
                    let data = unsafe { ring.data(k, info.stored_len as usize) };
                    w.append_stored(&info, data)?;
                } else {
                    plan.write_raw(u64::from(k), w)?;
                }
                break;
            }
            if state == FAILED {
                return Err(CompressError::WorkerFailed(
                    slot.frame.load(Ordering::Acquire),
                ));
            }
            if mode == Compression::Adaptive {
                // The next frame is not ready: rather than let the disk idle, store one raw.
                if claim == UNCLAIMED
                    && ring
                        .claim(k)
                        .compare_exchange(UNCLAIMED, BY_WRITER, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    continue;
                }
                let j = ring.ctl().next.fetch_add(1, Ordering::AcqRel);
                if j < u64::from(frames) {
                    let _ = ring.claim(j as u32).compare_exchange(
                        UNCLAIMED,
                        BY_WRITER,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                }
            }
            futex_wait(
                &slot.state,
                state,
                if mode == Compression::Adaptive { 4 } else { 50 },
            );
            waits += 1;
            if waits.is_multiple_of(16)
                && let Some(e) = dead_worker(pids)
            {
                return Err(e);
            }
        }
        slot.state.store(EMPTY, Ordering::Release);
        ring.ctl().consumed.store(k + 1, Ordering::Release);
        futex_wake(&ring.ctl().consumed);
        note(u64::from(k));
    }
    Ok(())
}

/// A compression worker's loop; false after a failure (reported in the slot).
fn worker(
    plan: &Plan,
    ring: &Ring,
    encoder: &mut FrameEncoder,
    buf: &mut Vec<u8>,
    encoded: &mut EncodedFrame,
    tuning: &Tuning,
) -> bool {
    let frames = plan.frames();
    let slots = ring.slots as u32;
    loop {
        if ring.ctl().abort.load(Ordering::Acquire) != 0 {
            return false;
        }
        let k = ring.ctl().next.fetch_add(1, Ordering::AcqRel);
        if k >= frames {
            return true;
        }
        let k = k as u32;
        // The slot is free once the writer has appended frame k - slots.
        loop {
            let c = ring.ctl().consumed.load(Ordering::Acquire);
            if c + slots > k {
                break;
            }
            if ring.ctl().abort.load(Ordering::Acquire) != 0 {
                return false;
            }
            futex_wait(&ring.ctl().consumed, c, 100);
        }
        if ring
            .claim(k)
            .compare_exchange(UNCLAIMED, BY_WORKER, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue; // The writer stores this one raw.
        }
        if tuning.crash_generation.is_some() && k == 1 {
            // SAFETY: the test hook: this worker dies as if killed.
            unsafe { libc::raise(libc::SIGKILL) };
        }
        let slot = ring.slot(k);
        plan.gather(u64::from(k), buf);
        let info = encoder
            .encode_into(buf, encoded)
            .and_then(|()| FrameInfo::of(encoded));
        let Ok(mut info) = info else {
            slot.frame.store(k, Ordering::Release);
            slot.state.store(FAILED, Ordering::Release);
            futex_wake(&slot.state);
            return false;
        };
        if info.zstd {
            // SAFETY: slot k is ours until we mark it ready; the capacity fits any frame.
            unsafe { ring.data_mut(k, encoded.stored().len()) }.copy_from_slice(encoded.stored());
        } else {
            // Raw: the writer writes the bytes from its own copy of the memory.
            info.stored_len = info.raw_len;
        }
        // SAFETY: as above; the writer reads `info` only after seeing READY.
        unsafe { *slot.info.get() = info };
        slot.frame.store(k, Ordering::Release);
        slot.state.store(READY, Ordering::Release);
        futex_wake(&slot.state);
    }
}

/// A worker that failed (non-zero exit) or was killed while the writer still needs frames.
fn dead_worker(pids: &[i32]) -> Option<CompressError> {
    pids.iter().find_map(|&pid| {
        let (code, status) = worker_clones::ended(pid)?;
        // A worker that found no frame left exits with status 0 while others still work.
        if code == libc::CLD_EXITED && status == 0 {
            return None;
        }
        let why = if code == libc::CLD_EXITED {
            format!("exit status {status}")
        } else {
            format!("signal {status}")
        };
        Some(CompressError::WorkerDied { pid, why })
    })
}

const UNCLAIMED: u32 = 0;
const BY_WORKER: u32 = 1;
const BY_WRITER: u32 = 2;

const EMPTY: u32 = 0;
const READY: u32 = 1;
const FAILED: u32 = 2;

#[repr(C)]
struct Control {
    /// The next frame number to hand out.
    next: AtomicU64,
    /// Frames the writer has appended (a futex word).
    consumed: AtomicU32,
    abort: AtomicU32,
}

#[repr(C)]
struct Slot {
    state: AtomicU32,
    frame: AtomicU32,
    /// Written by the worker that owns the slot before it marks it READY.
    info: core::cell::UnsafeCell<FrameInfo>,
}

/// The shared memory: control words, one claim word per frame, slot heads, slot data.
struct Ring {
    map: SharedMap,
    frames: u32,
    slots: usize,
    claims_at: usize,
    slots_at: usize,
    data_at: usize,
    data_cap: usize,
}

impl Ring {
    fn map(frames: u32, slots: usize, frame_size: usize) -> io::Result<Ring> {
        let page = 4096;
        let claims_at = 64;
        let slots_at = (claims_at + frames as usize * 4).next_multiple_of(64);
        let data_at = (slots_at + slots * std::mem::size_of::<Slot>()).next_multiple_of(page);
        let data_cap = FrameEncoder::out_capacity(frame_size).next_multiple_of(page);
        // Zero-filled: every word starts at 0.
        let map = SharedMap::new(data_at + slots * data_cap)?;
        Ok(Ring {
            map,
            frames,
            slots,
            claims_at,
            slots_at,
            data_at,
            data_cap,
        })
    }

    fn ctl(&self) -> &Control {
        // SAFETY: the mapping starts with a zero-initialised Control (all atomics).
        unsafe { &*(self.map.base as *const Control) }
    }

    fn claim(&self, k: u32) -> &AtomicU32 {
        assert!(k < self.frames);
        // SAFETY: one aligned u32 per frame inside the mapping.
        unsafe { &*(self.map.base.add(self.claims_at + 4 * k as usize) as *const AtomicU32) }
    }

    fn slot(&self, k: u32) -> &Slot {
        let i = k as usize % self.slots;
        // SAFETY: slot heads are aligned, inside the mapping, and start zeroed (valid values).
        unsafe {
            &*(self
                .map
                .base
                .add(self.slots_at + i * std::mem::size_of::<Slot>()) as *const Slot)
        }
    }

    /// # Safety
    /// The slot of frame `k` must be READY for frame `k` (its owner is done writing).
    unsafe fn data(&self, k: u32, len: usize) -> &[u8] {
        let i = k as usize % self.slots;
        assert!(len <= self.data_cap);
        // SAFETY: inside the mapping; the caller guarantees nobody writes it now.
        unsafe {
            std::slice::from_raw_parts(self.map.base.add(self.data_at + i * self.data_cap), len)
        }
    }

    /// # Safety
    /// The caller must own the slot of frame `k` (claimed it and the writer freed the slot).
    #[allow(clippy::mut_from_ref)]
    unsafe fn data_mut(&self, k: u32, len: usize) -> &mut [u8] {
        let i = k as usize % self.slots;
        assert!(len <= self.data_cap);
        // SAFETY: inside the mapping; the caller guarantees exclusive use of the slot.
        unsafe {
            std::slice::from_raw_parts_mut(self.map.base.add(self.data_at + i * self.data_cap), len)
        }
    }

    fn abort(&self) {
        self.ctl().abort.store(1, Ordering::Release);
        futex_wake(&self.ctl().consumed);
    }
}

/// Waits (shared futex: the word is in memory shared between processes) while `word` holds
/// `val`, at most `ms` milliseconds.
fn futex_wait(word: &AtomicU32, val: u32, ms: u64) {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT on a live aligned word with a relative timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            val,
            &ts as *const libc::timespec,
        )
    };
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a live aligned word.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
}
