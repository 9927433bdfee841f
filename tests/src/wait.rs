//! Polling with a deadline and a failure message that says what was awaited and what was seen.

use std::time::{Duration, Instant};

/// Polls `probe` every 50 ms until it returns `Some`, for at most `timeout`. On timeout the
/// test fails with `what` and the text from `context` (logs, last value seen).
#[track_caller]
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
    context: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
