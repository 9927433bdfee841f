//! The events of the plugin ABI (`DmtcpEvent_t` and `DmtcpEventData_t` in `include/dmtcp.h`).
//!
//! The numbers are part of the stable ABI: never renumber, only append.

use libc::c_char;

#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The runtime joined the coordinator (library constructor, before `main`).
    Init = 1,
    /// The process exits normally (`exit` or return from `main`).
    Exit = 2,
    AtforkPrepare = 3,
    AtforkParent = 4,
    AtforkChild = 5,
    /// About to `exec` a new program (`data.path`).
    PreExec = 6,
    /// In the new program after `exec`, right after its `Init`.
    PostExec = 7,
    /// A new program thread starts (in that thread, before its start routine).
    ThreadStart = 8,
    /// A program thread ends (in that thread).
    ThreadExit = 9,
    /// A checkpoint begins; program threads still run.
    PreSuspend = 10,
    /// Every program thread is frozen; the image is about to be written.
    PreCheckpoint = 11,
    /// The image is written; threads are about to run again.
    Resume = 12,
    /// The process was restored from an image; threads are about to run again.
    Restart = 13,
    /// Run by every program thread as it leaves the frozen state (resume or restart).
    ThreadResume = 14,
}

impl Event {
    /// "Post" events run in reverse registration order, so lower layers restore first.
    pub fn is_post(self) -> bool {
        matches!(
            self,
            Event::Exit
                | Event::AtforkParent
                | Event::AtforkChild
                | Event::PostExec
                | Event::ThreadExit
                | Event::Resume
                | Event::Restart
                | Event::ThreadResume
        )
    }

    /// Events delivered on the thread that owns the coordinator connection (the constructor
    /// before the checkpoint thread starts, or the checkpoint thread itself): barriers and the
    /// key-value store are usable from their hooks.
    pub fn owns_session(self) -> bool {
        matches!(
            self,
            Event::Init | Event::PreSuspend | Event::PreCheckpoint | Event::Resume | Event::Restart
        )
    }

    /// Global barriers are collective over the checkpoint cycle only: at `Init` the other
    /// processes are not at any barrier.
    pub fn allows_barrier(self) -> bool {
        self.owns_session() && self != Event::Init
    }
}

/// What comes with an event. `size` lets a plugin built against an older header check which
/// fields exist; fields that do not apply to an event are zero or null.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EventData {
    pub size: u32,
    /// PreSuspend .. Restart: the checkpoint generation.
    pub generation: u32,
    /// AtforkChild: the parent's pid.
    pub pid: i32,
    /// ThreadStart, ThreadExit, ThreadResume: the thread's kernel tid.
    pub tid: i32,
    /// PreExec: the program about to be executed (may be null).
    pub path: *const c_char,
}

impl EventData {
    pub fn empty() -> EventData {
        EventData {
            size: size_of::<EventData>() as u32,
            generation: 0,
            pid: 0,
            tid: 0,
            path: core::ptr::null(),
        }
    }

    pub fn with_generation(generation: u32) -> EventData {
        EventData {
            generation,
            ..EventData::empty()
        }
    }

    pub fn with_tid(tid: i32) -> EventData {
        EventData {
            tid,
            ..EventData::empty()
        }
    }
}
