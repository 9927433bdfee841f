//! Write plugins for the checkpoint runtime in safe Rust.
//!
//! A plugin is a `cdylib` that names itself with [`dmtcp_plugin!`] and receives the runtime's
//! [`Event`]s in one hook; from the hook it may use the runtime's services ([`barrier`],
//! [`kvdb`], [`section`], [`VidTable`], [`protect_fd`], [`log`]). Load it with
//! `dmtcp_launch --with-plugin path/to/libmyplugin.so prog`.
//!
//! ```ignore
//! use dmtcp_plugin::{Event, EventData, dmtcp_plugin, log, Level};
//!
//! fn hook(event: Event, data: &EventData) {
//!     if event == Event::Restart {
//!         log(Level::Info, &format!("restarted from generation {}", data.generation()));
//!     }
//! }
//!
//! dmtcp_plugin! { name: "hello", description: "says hello after restart", hook: hook }
//! ```
//!
//! The same ABI is described for C in `include/dmtcp.h`; docs/plugins.md is the guide
//! (event order, which services each event allows, what a hook must not do while the
//! process is frozen).

mod abi;
mod event;
mod services;

pub use abi::{API_VERSION, Descriptor, RawEventData};
pub use event::{Event, EventData};
pub use services::{
    Error, Level, VidTable, barrier, is_protected_fd, kvdb, local_barrier, log, protect_fd,
    runtime_present, section, unprotect_fd,
};

#[doc(hidden)]
pub mod __private {
    pub use crate::abi::run_hook;
}

/// Exports the plugin descriptor (`dmtcp_plugin_descriptor`) of this library.
///
/// `hook` is a `fn(Event, &EventData)`; a panic in it is caught and logged, never unwound
/// into the runtime.
#[macro_export]
macro_rules! dmtcp_plugin {
    (name: $name:expr, description: $desc:expr, hook: $hook:path $(,)?) => {
        const _: () = {
            unsafe extern "C" fn __dmtcp_event_hook(event: u32, data: *const $crate::RawEventData) {
                // SAFETY: the runtime passes a valid event data pointer (or null).
                unsafe { $crate::__private::run_hook(event, data, $hook) }
            }
            static __DMTCP_DESCRIPTOR: $crate::Descriptor = $crate::Descriptor {
                api_version: $crate::API_VERSION,
                name: concat!($name, "\0").as_ptr().cast(),
                description: concat!($desc, "\0").as_ptr().cast(),
                event_hook: Some(__dmtcp_event_hook),
            };
            #[unsafe(no_mangle)]
            pub extern "C" fn dmtcp_plugin_descriptor() -> *const $crate::Descriptor {
                &__DMTCP_DESCRIPTOR
            }
        };
    };
}
