//! A progress bar for loading memory at restart, drawn only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// `None` when stderr is not a terminal or messages are off.
    pub fn for_stderr(quiet: bool) -> Option<Progress> {
        if quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "dmtcp_restart: loading memory {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Some(Progress { bar })
    }

    pub fn start(&self, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    pub fn add(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    /// Erases the bar (the program takes over the terminal).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
