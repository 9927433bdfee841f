//! Round-trip tests: each builds fds in a forked child, saves, closes everything, restores at
//! the same numbers and checks what a program would observe; the exit code reports.

mod anon;
mod files;
mod misc;
mod pipes;
mod ptys;
mod table_codec;
mod unsupported;

use std::io::Read;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::sys;
use crate::sys::testonly::{close, close_range, exit_now, fork, wait_pid};
use crate::{FdTable, RestoreOptions, RestoreReport, SaveOptions, list_fds, restore_all, save_fds};

/// The child's report pipe lives above every fd a test uses.
const REPORT_FD_MIN: RawFd = 900;

pub type TestResult = Result<(), String>;

/// Runs `body` in a forked child with only fds 0-2 open, failing the test with the child's
/// message if it fails or panics.
pub fn in_child(name: &str, body: impl FnOnce() -> TestResult) {
    let (r, w) = sys::pipe2(libc::O_CLOEXEC).unwrap();
    let w = {
        let high = sys::dup_above(w.as_raw_fd(), REPORT_FD_MIN).unwrap();
        drop(w);
        high
    };
    let pid = fork().unwrap();
    if pid == 0 {
        let wfd = w.into_raw_fd();
        close_range(3, (REPORT_FD_MIN - 1) as u32).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(body));
        let (code, msg) = match outcome {
            Ok(Ok(())) => (0, String::new()),
            Ok(Err(m)) => (1, m),
            Err(p) => {
                let m = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                (2, format!("panicked: {m}"))
            }
        };
        let _ = sys::write(wfd, msg.as_bytes());
        exit_now(code);
    }
    drop(w);
    let mut msg = String::new();
    let mut file = std::fs::File::from(r);
    let _ = file.read_to_string(&mut msg);
    let status = wait_pid(pid).unwrap();
    remove_temp_dirs(pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{name}: child failed (status {status:#x}): {msg}"
    );
}

/// The test's fds: everything between stdio and the report pipe.
pub fn test_fds() -> Vec<RawFd> {
    list_fds()
        .unwrap()
        .into_iter()
        .filter(|&fd| (3..REPORT_FD_MIN).contains(&fd))
        .collect()
}

/// Saves the test's fds, runs the table through its encoding, closes them all, runs
/// `between` (changes made while "the program is gone"), then restores.
pub fn roundtrip_with(
    save: &SaveOptions,
    restore: &RestoreOptions,
    between: impl FnOnce() -> TestResult,
) -> Result<(FdTable, RestoreReport), String> {
    let fds = test_fds();
    let table = save_fds(&fds, save).map_err(|e| format!("save: {e}"))?;
    let table = FdTable::from_bytes(&table.to_bytes()).map_err(|e| format!("decode: {e}"))?;
    for &fd in &fds {
        close(fd).map_err(|e| format!("close {fd}: {e}"))?;
    }
    if !test_fds().is_empty() {
        return Err(format!("fds still open after closing: {:?}", test_fds()));
    }
    between()?;
    let report = restore_all(&table, restore).map_err(|e| format!("restore: {e}"))?;
    Ok((table, report))
}

pub fn roundtrip() -> Result<(FdTable, RestoreReport), String> {
    roundtrip_with(&SaveOptions::default(), &RestoreOptions::default(), || {
        Ok(())
    })
}

/// Moves an owned fd to exactly `target` (the test's chosen number).
pub fn place(fd: impl Into<OwnedFd>, target: RawFd) -> RawFd {
    let fd: OwnedFd = fd.into();
    if fd.as_raw_fd() != target {
        sys::dup3(fd.as_raw_fd(), target, 0).unwrap();
    } else {
        let _ = fd.into_raw_fd();
    }
    target
}

/// A pipe with its read end at `r` and its write end at `w`.
pub fn pipe_at(r: RawFd, w: RawFd) {
    let (pr, pw) = sys::pipe2(0).unwrap();
    let hr = sys::dup_above(pr.as_raw_fd(), 100).unwrap();
    let hw = sys::dup_above(pw.as_raw_fd(), 100).unwrap();
    drop((pr, pw));
    place(hr, r);
    place(hw, w);
}

pub fn cloexec(fd: RawFd) -> bool {
    sys::fcntl(fd, libc::F_GETFD, 0).unwrap() & libc::FD_CLOEXEC != 0
}

pub fn status_flags(fd: RawFd) -> i32 {
    sys::fcntl(fd, libc::F_GETFL, 0).unwrap()
}

pub fn link(fd: RawFd) -> String {
    sys::readlink(&format!("/proc/self/fd/{fd}")).unwrap()
}

pub fn read_n(fd: RawFd, n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    let got = sys::read(fd, &mut buf).map_err(|e| format!("read fd {fd}: {e}"))?;
    buf.truncate(got);
    Ok(buf)
}

/// Removes the child's temp dirs (named after its pid, see `temp_dir`).
fn remove_temp_dirs(pid: libc::pid_t) {
    let prefix = format!("dmtcp-fds-test-{pid}-");
    for e in std::fs::read_dir("/tmp").into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A fresh directory for one test, removed by `in_child` when the child is done.
pub fn temp_dir(tag: &str) -> String {
    let dir = format!("/tmp/dmtcp-fds-test-{}-{tag}", std::process::id());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Checks a condition, with a message naming what differed.
#[macro_export]
macro_rules! check_eq {
    ($a:expr, $b:expr, $($what:tt)+) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err(format!("{}: got {:?}, want {:?}", format!($($what)+), a, b));
        }
    }};
}
