//! `/proc/<pid>/...` and `/proc/<pid>/task/<tid>/...` in path arguments: the program names
//! processes and threads by their virtual ids, `/proc` by real ones. The path is rewritten
//! into a stack buffer before the real call; `readlink("/proc/self")` (and `thread-self`)
//! answers with virtual ids.

use super::real::real;
use super::table::{active, to_real, to_virtual};
use libc::{c_char, c_int, mode_t, size_t, ssize_t};

const MAX: usize = 4096;

/// A rewritten path (NUL-terminated) or nothing to rewrite.
struct Buf {
    bytes: [u8; MAX],
    len: usize,
}

impl Buf {
    fn push(&mut self, b: &[u8]) -> bool {
        if self.len + b.len() >= MAX {
            return false;
        }
        self.bytes[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
        true
    }

    fn push_id(&mut self, id: i32) -> bool {
        let mut tmp = [0u8; 12];
        let mut i = tmp.len();
        let mut v = id as u32;
        loop {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&tmp[i..])
    }
}

/// Splits a leading decimal id off `s` when it is a whole path component.
fn leading_id(s: &[u8]) -> Option<(i32, &[u8])> {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 9 || (n < s.len() && s[n] != b'/') {
        return None;
    }
    let v = s[..n].iter().fold(0i32, |a, &c| a * 10 + (c - b'0') as i32);
    Some((v, &s[n..]))
}

/// The path with virtual ids replaced by real ones, or None when nothing changes.
fn rewrite(path: &[u8], out: &mut Buf) -> bool {
    let Some(rest) = path.strip_prefix(b"/proc/") else {
        return false;
    };
    out.len = 0;
    let mut changed = false;
    out.push(b"/proc/");
    let rest = if let Some((v, tail)) = leading_id(rest) {
        let r = to_real(v);
        changed |= r != v;
        out.push_id(r);
        tail
    } else if let Some(tail) = rest.strip_prefix(b"self") {
        out.push(b"self");
        tail
    } else {
        return false;
    };
    let rest = if let Some(tail) = rest.strip_prefix(b"/task/")
        && let Some((v, tail)) = leading_id(tail)
    {
        let r = to_real(v);
        changed |= r != v;
        out.push(b"/task/");
        out.push_id(r);
        tail
    } else {
        rest
    };
    changed && out.push(rest) && out.push(b"\0")
}

/// Runs `f` with `path` or its rewritten form.
fn with_path<R>(path: *const c_char, f: impl FnOnce(*const c_char) -> R) -> R {
    if !active() || path.is_null() {
        return f(path);
    }
    // SAFETY: the caller passes a NUL-terminated path.
    let bytes = unsafe { core::ffi::CStr::from_ptr(path) }.to_bytes();
    let mut buf = Buf {
        bytes: [0; MAX],
        len: 0,
    };
    if rewrite(bytes, &mut buf) {
        f(buf.bytes.as_ptr().cast())
    } else {
        f(path)
    }
}

macro_rules! path_wrapper {
    ($name:ident, ($($arg:ident: $ty:ty),*), $ret:ty) => {
        /// # Safety
        /// As the libc function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char $(, $arg: $ty)*) -> $ret {
            let f: unsafe extern "C" fn(*const c_char $(, $ty)*) -> $ret = real!($name);
            // SAFETY: forwarding the caller's arguments with an equivalent path.
            with_path(path, |p| unsafe { f(p $(, $arg)*) })
        }
    };
}

macro_rules! at_wrapper {
    ($name:ident, ($($arg:ident: $ty:ty),*), $ret:ty) => {
        /// # Safety
        /// As the libc function of the same name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(dirfd: c_int, path: *const c_char $(, $arg: $ty)*) -> $ret {
            let f: unsafe extern "C" fn(c_int, *const c_char $(, $ty)*) -> $ret = real!($name);
            // SAFETY: forwarding the caller's arguments with an equivalent path.
            with_path(path, |p| unsafe { f(dirfd, p $(, $arg)*) })
        }
    };
}

// `open` is variadic; on x86-64 the optional mode is read like a fixed third argument.
path_wrapper!(open, (flags: c_int, mode: mode_t), c_int);
path_wrapper!(open64, (flags: c_int, mode: mode_t), c_int);
path_wrapper!(__open_2, (flags: c_int), c_int);
path_wrapper!(__open64_2, (flags: c_int), c_int);
at_wrapper!(openat, (flags: c_int, mode: mode_t), c_int);
at_wrapper!(openat64, (flags: c_int, mode: mode_t), c_int);
path_wrapper!(fopen, (mode: *const c_char), *mut libc::FILE);
path_wrapper!(fopen64, (mode: *const c_char), *mut libc::FILE);
path_wrapper!(opendir, (), *mut libc::DIR);
path_wrapper!(stat, (buf: *mut libc::stat), c_int);
path_wrapper!(stat64, (buf: *mut libc::stat64), c_int);
path_wrapper!(lstat, (buf: *mut libc::stat), c_int);
path_wrapper!(lstat64, (buf: *mut libc::stat64), c_int);
path_wrapper!(access, (mode: c_int), c_int);
at_wrapper!(faccessat, (mode: c_int, flags: c_int), c_int);
at_wrapper!(fstatat, (buf: *mut libc::stat, flags: c_int), c_int);
at_wrapper!(fstatat64, (buf: *mut libc::stat64, flags: c_int), c_int);

/// `readlink`: the path is translated, and the links that name this process or thread by its
/// real id (`/proc/self`, `/proc/thread-self`) answer with the virtual ones.
///
/// # Safety
/// As `readlink(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn readlink(path: *const c_char, buf: *mut c_char, size: size_t) -> ssize_t {
    let f: unsafe extern "C" fn(*const c_char, *mut c_char, size_t) -> ssize_t = real!(readlink);
    // SAFETY: forwarding with an equivalent path.
    let n = with_path(path, |p| unsafe { f(p, buf, size) });
    if n <= 0 || !active() || buf.is_null() {
        return n;
    }
    // SAFETY: the caller's NUL-terminated path.
    let p = unsafe { core::ffi::CStr::from_ptr(path) }.to_bytes();
    let p = p.strip_suffix(b"/").unwrap_or(p);
    if p != b"/proc/self" && p != b"/proc/thread-self" {
        return n;
    }
    // SAFETY: the kernel wrote `n` bytes into the caller's buffer.
    let got = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), n as usize) };
    let mut out = Buf {
        bytes: [0; MAX],
        len: 0,
    };
    let Some((pid, rest)) = leading_id(got) else {
        return n;
    };
    out.push_id(to_virtual(pid));
    if let Some(tail) = rest.strip_prefix(b"/task/")
        && let Some((tid, tail)) = leading_id(tail)
    {
        out.push(b"/task/");
        out.push_id(to_virtual(tid));
        out.push(tail);
    } else {
        out.push(rest);
    }
    // readlink truncates silently to the buffer's size.
    let len = out.len.min(size);
    // SAFETY: at most `size` bytes into the caller's buffer.
    unsafe { core::ptr::copy_nonoverlapping(out.bytes.as_ptr(), buf.cast::<u8>(), len) };
    len as ssize_t
}
