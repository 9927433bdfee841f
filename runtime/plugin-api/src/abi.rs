//! The C ABI of `include/dmtcp.h`: the descriptor and the event data, bit for bit.

use crate::event::{Event, EventData};
use libc::c_char;

/// `DMTCP_PLUGIN_API_VERSION`.
pub const API_VERSION: u32 = 1;

/// `DmtcpEventData_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawEventData {
    pub size: u32,
    pub generation: u32,
    pub pid: i32,
    pub tid: i32,
    pub path: *const c_char,
}

impl RawEventData {
    /// Data of the current layout (`size` set) with every field zero.
    pub fn empty() -> RawEventData {
        RawEventData {
            size: size_of::<RawEventData>() as u32,
            generation: 0,
            pid: 0,
            tid: 0,
            path: core::ptr::null(),
        }
    }

    pub fn with_generation(generation: u32) -> RawEventData {
        RawEventData {
            generation,
            ..RawEventData::empty()
        }
    }

    pub fn with_tid(tid: i32) -> RawEventData {
        RawEventData {
            tid,
            ..RawEventData::empty()
        }
    }
}

/// `DmtcpPluginDescriptor_t`.
#[repr(C)]
pub struct Descriptor {
    pub api_version: u32,
    pub name: *const c_char,
    pub description: *const c_char,
    pub event_hook: Option<unsafe extern "C" fn(u32, *const RawEventData)>,
}

// SAFETY: the descriptor is immutable and its pointers point to static strings and code.
unsafe impl Sync for Descriptor {}

/// Runs a Rust hook for a raw event. Unknown events (from a newer runtime) are skipped.
///
/// # Safety
/// `data` is null or points to a `DmtcpEventData_t` valid during the call.
pub unsafe fn run_hook(event: u32, data: *const RawEventData, hook: fn(Event, &EventData)) {
    let Some(event) = Event::from_raw(event) else {
        return;
    };
    if event == Event::Init {
        // Resolve the services now, outside any frozen window (dlsym may take locks).
        crate::services::runtime_present();
    }
    let empty = RawEventData {
        size: 0,
        generation: 0,
        pid: 0,
        tid: 0,
        path: core::ptr::null(),
    };
    // SAFETY: guaranteed by the caller.
    let raw = if data.is_null() {
        empty
    } else {
        unsafe { *data }
    };
    let data = EventData::new(raw);
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(event, &data))).is_err() {
        crate::services::log(
            crate::Level::Error,
            &format!("plugin hook panicked at {event:?}"),
        );
    }
}
