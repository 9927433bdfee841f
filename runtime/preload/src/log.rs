//! Diagnostics on a protected copy of stderr.
//!
//! Deliberately not `tracing`: these lines are written from fork handlers and around exec,
//! where nothing may allocate or take a lock another thread could hold. Lines are formatted
//! into a stack buffer and written with one `write(2)`.

use crate::settings::LOG_FD;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

static DEBUG: AtomicBool = AtomicBool::new(false);
static QUIET: AtomicBool = AtomicBool::new(false);

/// Keeps a copy of stderr at `LOG_FD`, so a program that closes fd 2 does not silence us.
pub fn init(debug: bool, quiet: bool) {
    DEBUG.store(debug, Ordering::Relaxed);
    QUIET.store(quiet, Ordering::Relaxed);
    // SAFETY: dup3 onto our reserved fd number; failure only means we log nowhere.
    unsafe { libc::dup3(2, LOG_FD, libc::O_CLOEXEC) };
}

pub fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

pub fn emit(level: &str, args: fmt::Arguments<'_>) {
    if QUIET.load(Ordering::Relaxed) && level != "error" {
        return;
    }
    let mut line = Line {
        buf: [0; 512],
        len: 0,
    };
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    let _ = write!(line, "dmtcp[{pid}]: {level}: ");
    let _ = line.write_fmt(args);
    if line.len == line.buf.len() {
        line.len -= 1;
    }
    line.buf[line.len] = b'\n';
    // SAFETY: writing our own stack buffer to our own fd.
    unsafe { libc::write(LOG_FD, line.buf.as_ptr().cast(), line.len + 1) };
}

#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => {
        if $crate::log::debug_enabled() { $crate::log::emit("debug", format_args!($($t)*)) }
    };
}

#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log::emit("warning", format_args!($($t)*)) };
}

#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log::emit("error", format_args!($($t)*)) };
}
