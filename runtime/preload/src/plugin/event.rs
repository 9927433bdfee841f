//! The events of the plugin ABI (`DmtcpEvent_t` and `DmtcpEventData_t` in `include/dmtcp.h`):
//! the SDK's own types, so the runtime and plugins built with it cannot disagree on a number
//! or a field.

pub use dmtcp_plugin::Event;
pub use dmtcp_plugin::RawEventData as EventData;

/// Events delivered on the thread that owns the coordinator connection (the constructor before
/// the checkpoint thread starts, or the checkpoint thread itself): barriers and the key-value
/// store are usable from their hooks.
pub fn owns_session(e: Event) -> bool {
    matches!(
        e,
        Event::Init | Event::PreSuspend | Event::PreCheckpoint | Event::Resume | Event::Restart
    )
}

/// Global barriers are collective over the checkpoint cycle only: at `Init` the other
/// processes are not at any barrier.
pub fn allows_barrier(e: Event) -> bool {
    owns_session(e) && e != Event::Init
}
