//! The ordered list of plugins and the dispatch of events to them.
//!
//! Order: the libraries of `DMTCP_PLUGIN` in the order given, then the runtime's built-in
//! subsystems in the order they register. "Pre" events run front to back, "post" events back to
//! front (see [`Event::is_post`]), so built-ins save last and restore first.

use super::event::{Event, EventData};
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, Ordering};
use libc::c_char;
use std::ffi::{CStr, CString};
use std::sync::RwLock;

/// The ABI version this runtime implements (`DMTCP_PLUGIN_API_VERSION`).
pub const API_VERSION: u32 = 1;
/// The symbol every plugin library exports.
pub const DESCRIPTOR_SYMBOL: &CStr = c"dmtcp_plugin_descriptor";

pub type CHook = unsafe extern "C" fn(event: u32, data: *const EventData);
pub type RustHook = fn(Event, &EventData);

/// `DmtcpPluginDescriptor_t`.
#[repr(C)]
pub struct Descriptor {
    pub api_version: u32,
    pub name: *const c_char,
    pub description: *const c_char,
    pub event_hook: Option<CHook>,
}

#[derive(Clone, Copy)]
enum Hook {
    C(CHook),
    Rust(RustHook),
}

struct Entry {
    name: String,
    hook: Hook,
}

struct Registry {
    /// From `DMTCP_PLUGIN`, registered first.
    user: Vec<Entry>,
    builtin: Vec<Entry>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    user: Vec::new(),
    builtin: Vec::new(),
});
/// Fast path: most processes have no plugin at all.
static ANY: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The event whose hooks this thread is running, for the services' checks.
    static CURRENT: Cell<Option<Event>> = const { Cell::new(None) };
}

/// The event this thread is dispatching, if any.
pub fn current_event() -> Option<Event> {
    CURRENT.with(|c| c.get())
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "plugin {0} is not loaded in this process (dmtcp_launch --with-plugin puts it in LD_PRELOAD)"
    )]
    NotLoaded(String),
    #[error("{0} does not export dmtcp_plugin_descriptor(); it is not a plugin")]
    NoDescriptor(String),
    #[error("{path} needs plugin API version {wanted}; this runtime implements {API_VERSION}")]
    Version { path: String, wanted: u32 },
    #[error("{0} returned an incomplete descriptor (no event hook)")]
    NoHook(String),
}

/// Registers a built-in subsystem (after every user plugin, whenever it is called).
pub fn register_builtin(name: &str, hook: RustHook) {
    let mut r = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    r.builtin.push(Entry {
        name: name.to_string(),
        hook: Hook::Rust(hook),
    });
    ANY.store(true, Ordering::Release);
}

/// Finds each library of `list` (colon-separated paths, `DMTCP_PLUGIN`) among the loaded
/// objects and registers its descriptor, in order. Returns the names registered.
pub fn load_user_plugins(list: &str) -> Vec<Result<String, LoadError>> {
    let mut results = Vec::new();
    for path in list.split(':').filter(|p| !p.is_empty()) {
        let r = load_one(path);
        if let Ok(entry) = &r {
            crate::debug!("plugin {} registered from {path}", entry.name);
        }
        results.push(r.map(|entry| {
            let name = entry.name.clone();
            let mut reg = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
            reg.user.push(entry);
            ANY.store(true, Ordering::Release);
            name
        }));
    }
    results
}

fn load_one(path: &str) -> Result<Entry, LoadError> {
    // dmtcp_launch passes the paths as given; the loader knows the absolute one (it also
    // matches by inode, but an absolute path is unambiguous after a chdir).
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.into());
    let c = CString::new(abs.as_os_str().as_encoded_bytes())
        .map_err(|_| LoadError::NotLoaded(path.into()))?;
    // SAFETY: RTLD_NOLOAD only looks up an already loaded object; it runs no constructor.
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_NOW) };
    if handle.is_null() {
        return Err(LoadError::NotLoaded(path.into()));
    }
    // SAFETY: looking up a symbol in the handle just obtained (the object itself comes first).
    let sym = unsafe { libc::dlsym(handle, DESCRIPTOR_SYMBOL.as_ptr()) };
    if sym.is_null() {
        return Err(LoadError::NoDescriptor(path.into()));
    }
    // SAFETY: the ABI fixes the symbol's type: `const DmtcpPluginDescriptor_t *(void)`.
    let get: unsafe extern "C" fn() -> *const Descriptor = unsafe { core::mem::transmute(sym) };
    // SAFETY: calling the plugin's descriptor function as the ABI specifies.
    let d = unsafe { get() };
    if d.is_null() {
        return Err(LoadError::NoDescriptor(path.into()));
    }
    // SAFETY: a non-null descriptor points to a static struct of the plugin.
    let d = unsafe { &*d };
    if d.api_version == 0 || d.api_version > API_VERSION {
        return Err(LoadError::Version {
            path: path.into(),
            wanted: d.api_version,
        });
    }
    let hook = d.event_hook.ok_or_else(|| LoadError::NoHook(path.into()))?;
    let name = if d.name.is_null() {
        path.to_string()
    } else {
        // SAFETY: the descriptor's name is a NUL-terminated string.
        unsafe { CStr::from_ptr(d.name) }
            .to_string_lossy()
            .into_owned()
    };
    Ok(Entry {
        name,
        hook: Hook::C(hook),
    })
}

/// The registered plugins' names in registration order (users, then built-ins).
pub fn names() -> Vec<String> {
    let r = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    r.user
        .iter()
        .chain(r.builtin.iter())
        .map(|e| e.name.clone())
        .collect()
}

/// Runs every plugin's hook for `event`, in the order the event calls for.
///
/// Allocation-free and lock-free apart from a read lock on the registry, so the checkpoint
/// path may call it inside the frozen window and each thread may call it from its signal
/// handler (`ThreadResume`). A hook that itself dispatches (a nested event) is allowed.
pub fn dispatch(event: Event, data: &EventData) {
    if !ANY.load(Ordering::Acquire) {
        return;
    }
    let prev = CURRENT.with(|c| c.replace(Some(event)));
    {
        let r = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
        let run = |e: &Entry| match e.hook {
            // SAFETY: the hook comes from a descriptor that promised this signature; `data`
            // lives across the call.
            Hook::C(f) => unsafe { f(event as u32, data) },
            Hook::Rust(f) => f(event, data),
        };
        if event.is_post() {
            r.builtin
                .iter()
                .rev()
                .chain(r.user.iter().rev())
                .for_each(run);
        } else {
            r.user.iter().chain(r.builtin.iter()).for_each(run);
        }
    }
    CURRENT.with(|c| c.set(prev));
}

/// Is any plugin (user or built-in) registered?
pub fn has_plugins() -> bool {
    ANY.load(Ordering::Acquire)
}
