//! Events and their data, as safe types.

use crate::abi::RawEventData;
use std::ffi::CStr;

/// The runtime's events (`DmtcpEvent_t`). "Pre" events run in plugin registration order,
/// "post" events ([`Event::is_post`]) in reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
/// The numbers are part of the stable ABI: never renumber, only append.
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
    pub const ALL: [Event; 14] = [
        Event::Init,
        Event::Exit,
        Event::AtforkPrepare,
        Event::AtforkParent,
        Event::AtforkChild,
        Event::PreExec,
        Event::PostExec,
        Event::ThreadStart,
        Event::ThreadExit,
        Event::PreSuspend,
        Event::PreCheckpoint,
        Event::Resume,
        Event::Restart,
        Event::ThreadResume,
    ];

    pub fn from_raw(n: u32) -> Option<Event> {
        Event::ALL.into_iter().find(|e| *e as u32 == n)
    }

    /// The name used in `include/dmtcp.h` without its `DMTCP_EVENT_` prefix.
    pub fn c_name(self) -> &'static str {
        match self {
            Event::Init => "INIT",
            Event::Exit => "EXIT",
            Event::AtforkPrepare => "ATFORK_PREPARE",
            Event::AtforkParent => "ATFORK_PARENT",
            Event::AtforkChild => "ATFORK_CHILD",
            Event::PreExec => "PRE_EXEC",
            Event::PostExec => "POST_EXEC",
            Event::ThreadStart => "THREAD_START",
            Event::ThreadExit => "THREAD_EXIT",
            Event::PreSuspend => "PRESUSPEND",
            Event::PreCheckpoint => "PRECHECKPOINT",
            Event::Resume => "RESUME",
            Event::Restart => "RESTART",
            Event::ThreadResume => "THREAD_RESUME",
        }
    }

    /// Runs in reverse registration order (lower layers restore first).
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
}

/// What came with an event; fields that do not apply are zero or `None`.
#[derive(Debug, Clone, Copy)]
pub struct EventData {
    raw: RawEventData,
}

impl EventData {
    pub fn new(raw: RawEventData) -> EventData {
        EventData { raw }
    }

    fn has(&self, end: usize) -> bool {
        self.raw.size as usize >= end
    }

    /// The checkpoint generation (PreSuspend .. Restart).
    pub fn generation(&self) -> u32 {
        if self.has(8) { self.raw.generation } else { 0 }
    }

    /// The parent's pid (AtforkChild).
    pub fn parent_pid(&self) -> i32 {
        if self.has(12) { self.raw.pid } else { 0 }
    }

    /// The thread's tid (ThreadStart, ThreadExit, ThreadResume).
    pub fn tid(&self) -> i32 {
        if self.has(16) { self.raw.tid } else { 0 }
    }

    /// The program about to be executed (PreExec).
    pub fn path(&self) -> Option<&CStr> {
        if !self.has(size_of::<RawEventData>()) || self.raw.path.is_null() {
            return None;
        }
        // SAFETY: the runtime passes a NUL-terminated path valid during the hook.
        Some(unsafe { CStr::from_ptr(self.raw.path) })
    }
}
