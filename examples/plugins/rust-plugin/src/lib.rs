//! Example plugin written with the `dmtcp-plugin` crate.
//!
//! It numbers the processes of the computation through the coordinator's key-value store at
//! `Init`, counts the checkpoints this process took part in, keeps that count in its image
//! section (`plugin:rust-example`) and reads it back after `Resume` and `Restart`. Each event
//! is appended as one line to the file named by `DMTCP_EXAMPLE_LOG` (if set):
//! `rust <EVENT> member=<n> gen=<generation> saved=<count from the section>`.
//!
//! Load it with `dmtcp_launch --with-plugin libdmtcp_example_rust_plugin.so prog`.

use dmtcp_plugin::{Event, EventData, Level, dmtcp_plugin, kvdb, log, protect_fd, section};
use std::ffi::CString;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, Ordering};

const SECTION: &str = "rust-example";

static LOG_FD: AtomicI32 = AtomicI32::new(-1);
static MEMBER: AtomicI64 = AtomicI64::new(0);
static CHECKPOINTS: AtomicU32 = AtomicU32::new(0);

/// Writes one line with a single write(2) from a stack buffer: no allocation, so it is fine
/// while the program is frozen.
fn line(event: Event, data: &EventData, saved: Option<u32>) {
    let fd = LOG_FD.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 160];
    let mut w = &mut buf[..];
    let _ = write!(
        w,
        "rust {} member={} gen={}",
        event.c_name(),
        MEMBER.load(Ordering::Relaxed),
        data.generation()
    );
    if let Some(s) = saved {
        let _ = write!(w, " saved={s}");
    }
    let _ = writeln!(w);
    let n = 160 - w.len();
    // SAFETY: writing our stack buffer to our own append-only fd.
    unsafe { libc::write(fd, buf.as_ptr().cast(), n) };
}

/// The log's path, read once at `Init`.
static LOG_PATH: OnceLock<CString> = OnceLock::new();

/// Opens the log (at `Init`, and again at `Restart`: the runtime leaves protected fds alone,
/// so it does not recreate them in the restarted process).
fn open_log() {
    let Some(path) = LOG_PATH.get() else {
        return;
    };
    // SAFETY: open with a valid path; the fd is ours (and protected below).
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd >= 0 {
        LOG_FD.store(fd, Ordering::Relaxed);
        let _ = protect_fd(fd);
    }
}

fn load_count() -> Option<u32> {
    match section::load(SECTION) {
        Ok(Some(b)) if b.len() == 4 => Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        Ok(_) => None,
        Err(e) => {
            log(
                Level::Warning,
                &format!("rust-example: cannot load my section: {e}"),
            );
            None
        }
    }
}

fn hook(event: Event, data: &EventData) {
    match event {
        Event::Init => {
            if let Some(p) = std::env::var_os("DMTCP_EXAMPLE_LOG")
                && let Ok(p) = CString::new(p.into_encoded_bytes())
            {
                let _ = LOG_PATH.set(p);
            }
            open_log();
            match kvdb::incr("rust-example", b"members", 1) {
                Ok(n) => MEMBER.store(n, Ordering::Relaxed),
                Err(e) => log(
                    Level::Warning,
                    &format!("rust-example: no member number: {e}"),
                ),
            }
            line(event, data, None);
        }
        Event::PreCheckpoint => {
            let n = CHECKPOINTS.fetch_add(1, Ordering::Relaxed) + 1;
            if let Err(e) = section::save(SECTION, &n.to_le_bytes()) {
                log(
                    Level::Warning,
                    &format!("rust-example: cannot save my section: {e}"),
                );
            }
            line(event, data, None);
        }
        Event::Resume => line(event, data, load_count()),
        Event::Restart => {
            open_log();
            line(event, data, load_count());
        }
        Event::ThreadResume | Event::ThreadStart | Event::ThreadExit => {}
        _ => line(event, data, None),
    }
}

dmtcp_plugin! {
    name: "rust-example",
    description: "counts checkpoints in its image section and logs its events",
    hook: hook,
}
