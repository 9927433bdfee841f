//! The runtime's services, found in the preloaded `libdmtcp.so` at run time.
//!
//! They are looked up once with `dlsym` (at the `Init` event, or at first use), so a plugin
//! links without the runtime and its unit tests run without it; without the runtime every
//! service answers [`Error::NotEnabled`].

use libc::{c_char, c_int, c_void, size_t, ssize_t};
use std::ffi::CString;
use std::sync::OnceLock;

/// A failed service call (the `DMTCP_ERR_*` codes of `include/dmtcp.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the checkpoint runtime is not loaded in this process")]
    NotEnabled,
    #[error("not allowed from this thread or event (see docs/plugins.md)")]
    WrongContext,
    #[error("the coordinator connection failed")]
    Coordinator,
    #[error("not found")]
    NotFound,
    #[error("invalid argument (a NUL byte in a name?)")]
    Invalid,
    #[error("the stored value is not a number")]
    NotANumber,
    #[error("too large")]
    TooLarge,
    #[error("unknown runtime error {0}")]
    Other(i64),
}

impl Error {
    fn from_code(code: i64) -> Error {
        match code {
            -1 => Error::NotEnabled,
            -2 => Error::WrongContext,
            -3 => Error::Coordinator,
            -4 => Error::NotFound,
            -5 => Error::Invalid,
            -6 => Error::NotANumber,
            -7 => Error::TooLarge,
            n => Error::Other(n),
        }
    }
}

fn check(code: i64) -> Result<i64, Error> {
    if code < 0 {
        Err(Error::from_code(code))
    } else {
        Ok(code)
    }
}

/// A variable-length value from a service that fills `buf` and returns the value's full
/// length (or a negative error code): called again with a buffer that large when it did not
/// fit. `None` when the service says not found.
fn read_growing(mut fill: impl FnMut(&mut [u8]) -> ssize_t) -> Result<Option<Vec<u8>>, Error> {
    let mut buf = vec![0u8; 256];
    loop {
        match check(fill(&mut buf) as i64) {
            Ok(n) if n as usize <= buf.len() => {
                buf.truncate(n as usize);
                return Ok(Some(buf));
            }
            Ok(n) => buf.resize(n as usize, 0),
            Err(Error::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// Log levels of [`log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error = 0,
    Warning = 1,
    Info = 2,
    Debug = 3,
}

type Str = *const c_char;
type Buf = *const c_void;

fn lookup(name: &std::ffi::CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym over the global scope with a NUL-terminated name.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// Declares the table of service functions and its resolver from one list.
macro_rules! services_table {
    ($($field:ident = $sym:literal: $ty:ty),* $(,)?) => {
        struct Table {
            $($field: $ty),*
        }

        fn resolve() -> Option<Table> {
            // SAFETY: each symbol is defined by libdmtcp.so with the C signature of its field
            // (include/dmtcp.h); a missing one makes the whole table absent.
            unsafe {
                Some(Table { $($field: core::mem::transmute::<*mut c_void, $ty>(lookup($sym)?)),* })
            }
        }
    };
}

type NumFn = unsafe extern "C" fn(Str, Buf, size_t, i64, *mut i64) -> c_int;

services_table! {
    global_barrier = c"dmtcp_global_barrier": unsafe extern "C" fn(Str) -> c_int,
    local_barrier = c"dmtcp_local_barrier": unsafe extern "C" fn(Str) -> c_int,
    kvdb_set = c"dmtcp_kvdb_set": unsafe extern "C" fn(Str, Buf, size_t, Buf, size_t) -> c_int,
    kvdb_get = c"dmtcp_kvdb_get":
        unsafe extern "C" fn(Str, Buf, size_t, *mut c_void, size_t) -> ssize_t,
    kvdb_incr = c"dmtcp_kvdb_incr": NumFn,
    kvdb_min = c"dmtcp_kvdb_min": NumFn,
    kvdb_max = c"dmtcp_kvdb_max": NumFn,
    plugin_save = c"dmtcp_plugin_save": unsafe extern "C" fn(Str, Buf, size_t) -> c_int,
    plugin_load = c"dmtcp_plugin_load": unsafe extern "C" fn(Str, *mut c_void, size_t) -> ssize_t,
    vid_register = c"dmtcp_vid_register": unsafe extern "C" fn(Str, i64) -> i64,
    vid_to_real = c"dmtcp_vid_to_real": unsafe extern "C" fn(Str, i64) -> i64,
    vid_to_virtual = c"dmtcp_vid_to_virtual": unsafe extern "C" fn(Str, i64) -> i64,
    vid_update = c"dmtcp_vid_update": unsafe extern "C" fn(Str, i64, i64) -> c_int,
    vid_unregister = c"dmtcp_vid_unregister": unsafe extern "C" fn(Str, i64) -> c_int,
    protect_fd = c"dmtcp_protect_fd": unsafe extern "C" fn(c_int) -> c_int,
    unprotect_fd = c"dmtcp_unprotect_fd": unsafe extern "C" fn(c_int) -> c_int,
    is_protected_fd = c"dmtcp_is_protected_fd": unsafe extern "C" fn(c_int) -> c_int,
    log = c"dmtcp_log": unsafe extern "C" fn(c_int, Str),
}

fn table() -> Option<&'static Table> {
    static TABLE: OnceLock<Option<Table>> = OnceLock::new();
    TABLE.get_or_init(resolve).as_ref()
}

fn services() -> Result<&'static Table, Error> {
    table().ok_or(Error::NotEnabled)
}

fn cstr(s: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::Invalid)
}

/// Runs `f` with `s` as a C string; short names are copied to the stack, so hooks that run
/// while the program is frozen do not need the program's malloc for them.
fn with_cstr<R>(s: &str, f: impl FnOnce(*const c_char) -> R) -> Result<R, Error> {
    if s.as_bytes().contains(&0) {
        return Err(Error::Invalid);
    }
    let mut buf = [0u8; 256];
    if s.len() < buf.len() {
        buf[..s.len()].copy_from_slice(s.as_bytes());
        return Ok(f(buf.as_ptr().cast()));
    }
    let c = cstr(s)?;
    Ok(f(c.as_ptr()))
}

/// Is the runtime loaded (the services usable)?
pub fn runtime_present() -> bool {
    table().is_some()
}

/// Waits until every process of the computation reaches the barrier `name` (from
/// PreSuspend, PreCheckpoint, Resume and Restart hooks).
pub fn barrier(name: &str) -> Result<(), Error> {
    let t = services()?;
    // SAFETY: a valid C string for the duration of the call.
    check(with_cstr(name, |n| unsafe { (t.global_barrier)(n) })? as i64).map(drop)
}

/// The node-local barrier (every process of the computation calls it).
pub fn local_barrier(name: &str) -> Result<(), Error> {
    let t = services()?;
    // SAFETY: as above.
    check(with_cstr(name, |n| unsafe { (t.local_barrier)(n) })? as i64).map(drop)
}

/// The coordinator's key-value store (from Init, PreSuspend, PreCheckpoint, Resume and
/// Restart hooks). Put a [`barrier`] between the processes' sets and their gets.
pub mod kvdb {
    use super::*;

    pub fn set(db: &str, key: &[u8], value: &[u8]) -> Result<(), Error> {
        let t = services()?;
        // SAFETY: valid buffers for the given lengths.
        let r = with_cstr(db, |db| unsafe {
            (t.kvdb_set)(
                db,
                key.as_ptr().cast(),
                key.len(),
                value.as_ptr().cast(),
                value.len(),
            )
        })?;
        check(r as i64).map(drop)
    }

    /// The value of `key`, or `None` when absent.
    pub fn get(db: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let t = services()?;
        let db = cstr(db)?;
        read_growing(|buf| {
            // SAFETY: `buf` is writable for its length.
            unsafe {
                (t.kvdb_get)(
                    db.as_ptr(),
                    key.as_ptr().cast(),
                    key.len(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            }
        })
    }

    fn numeric(pick: fn(&Table) -> NumFn, db: &str, key: &[u8], v: i64) -> Result<i64, Error> {
        let t = services()?;
        let mut out = 0i64;
        // SAFETY: valid buffers and a writable result.
        let r = with_cstr(db, |db| unsafe {
            pick(t)(db, key.as_ptr().cast(), key.len(), v, &mut out)
        })?;
        check(r as i64).map(|_| out)
    }

    /// Adds `delta` (absent counts as 0); returns the new value.
    pub fn incr(db: &str, key: &[u8], delta: i64) -> Result<i64, Error> {
        numeric(|t| t.kvdb_incr, db, key, delta)
    }

    /// Keeps the minimum; returns it.
    pub fn min(db: &str, key: &[u8], value: i64) -> Result<i64, Error> {
        numeric(|t| t.kvdb_min, db, key, value)
    }

    /// Keeps the maximum; returns it.
    pub fn max(db: &str, key: &[u8], value: i64) -> Result<i64, Error> {
        numeric(|t| t.kvdb_max, db, key, value)
    }
}

/// This plugin's section of the checkpoint image (`plugin:<name>`).
pub mod section {
    use super::*;

    /// Saves `data` (from a PreSuspend or PreCheckpoint hook).
    pub fn save(name: &str, data: &[u8]) -> Result<(), Error> {
        let t = services()?;
        // SAFETY: valid buffers for the given lengths.
        let r = with_cstr(name, |n| unsafe {
            (t.plugin_save)(n, data.as_ptr().cast(), data.len())
        })?;
        check(r as i64).map(drop)
    }

    /// The section saved at the checkpoint this process resumed or restarted from.
    pub fn load(name: &str) -> Result<Option<Vec<u8>>, Error> {
        let t = services()?;
        let name = cstr(name)?;
        // SAFETY: `buf` is writable for its length.
        read_growing(|buf| unsafe {
            (t.plugin_load)(name.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        })
    }
}

/// A named table of virtual ids (ids >= 0) kept by the runtime and saved with the process.
#[derive(Debug, Clone)]
pub struct VidTable {
    name: CString,
}

impl VidTable {
    pub fn new(name: &str) -> Result<VidTable, Error> {
        Ok(VidTable { name: cstr(name)? })
    }

    /// Registers `real`; returns its virtual id (the real one when free).
    pub fn register(&self, real: i64) -> Result<i64, Error> {
        let t = services()?;
        // SAFETY: a valid C string.
        check(unsafe { (t.vid_register)(self.name.as_ptr(), real) })
    }

    pub fn to_real(&self, virt: i64) -> Result<i64, Error> {
        let t = services()?;
        // SAFETY: a valid C string.
        check(unsafe { (t.vid_to_real)(self.name.as_ptr(), virt) })
    }

    pub fn to_virtual(&self, real: i64) -> Result<i64, Error> {
        let t = services()?;
        // SAFETY: a valid C string.
        check(unsafe { (t.vid_to_virtual)(self.name.as_ptr(), real) })
    }

    /// Re-points `virt` at `new_real` (after restart).
    pub fn update(&self, virt: i64, new_real: i64) -> Result<(), Error> {
        let t = services()?;
        // SAFETY: a valid C string.
        check(unsafe { (t.vid_update)(self.name.as_ptr(), virt, new_real) } as i64).map(drop)
    }

    pub fn unregister(&self, virt: i64) -> Result<(), Error> {
        let t = services()?;
        // SAFETY: a valid C string.
        check(unsafe { (t.vid_unregister)(self.name.as_ptr(), virt) } as i64).map(drop)
    }
}

/// Marks `fd` as the plugin's own: checkpoint and restart leave it alone.
pub fn protect_fd(fd: i32) -> Result<(), Error> {
    let t = services()?;
    // SAFETY: plain integer argument.
    check(unsafe { (t.protect_fd)(fd) } as i64).map(drop)
}

pub fn unprotect_fd(fd: i32) -> Result<(), Error> {
    let t = services()?;
    // SAFETY: plain integer argument.
    check(unsafe { (t.unprotect_fd)(fd) } as i64).map(drop)
}

pub fn is_protected_fd(fd: i32) -> Result<bool, Error> {
    let t = services()?;
    // SAFETY: plain integer argument.
    Ok(unsafe { (t.is_protected_fd)(fd) } == 1)
}

/// One line in the runtime's log; without the runtime, on stderr.
pub fn log(level: Level, msg: &str) {
    let line = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    match table() {
        // SAFETY: a valid C string.
        Some(t) => unsafe { (t.log)(level as c_int, line.as_ptr()) },
        None => eprintln!("{msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service holding `value`: copies what fits, returns the full length.
    fn serve(value: &[u8], buf: &mut [u8]) -> ssize_t {
        let n = value.len().min(buf.len());
        buf[..n].copy_from_slice(&value[..n]);
        value.len() as ssize_t
    }

    #[test]
    fn read_growing_retries_with_the_full_length() {
        let value: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let mut calls = Vec::new();
        let got = read_growing(|buf| {
            calls.push(buf.len());
            serve(&value, buf)
        });
        assert_eq!(got, Ok(Some(value)));
        assert_eq!(calls, [256, 1000]);
        assert_eq!(
            read_growing(|buf| serve(b"abc", buf)),
            Ok(Some(b"abc".to_vec()))
        );
        assert_eq!(read_growing(|buf| serve(b"", buf)), Ok(Some(Vec::new())));
    }

    #[test]
    fn read_growing_maps_not_found_and_errors() {
        assert_eq!(read_growing(|_| -4), Ok(None));
        assert_eq!(read_growing(|_| -3), Err(Error::Coordinator));
        assert_eq!(read_growing(|_| -99), Err(Error::Other(-99)));
    }
}
