//! `dmtcp_command -bc` on a terminal: a progress bar of the checkpoint under way (raw memory
//! bytes saved over all processes), fed by asking the coordinator for its status on a second
//! connection while the first waits for the checkpoint's end.

use dmtcp_protocol::{Command, Connection};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(250);

pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Watcher {
    /// Starts polling, or `None` when stderr is not a terminal (scripts and logs get no bar).
    pub fn start(host: &str, port: u16) -> Option<Watcher> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let host = host.to_string();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || poll(&host, port, &flag));
        Some(Watcher { stop, thread })
    }

    /// Stops polling and erases the bar.
    pub fn finish(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
    }
}

fn poll(host: &str, port: u16, stop: &AtomicBool) {
    let mut bar: Option<ProgressBar> = None;
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(POLL);
        if stop.load(Ordering::Acquire) {
            break;
        }
        let Ok(reply) = Connection::command(host, port, Command::Status, Some(POLL * 4)) else {
            continue;
        };
        let Some(p) = reply.progress.filter(|p| p.total > 0) else {
            continue;
        };
        let b = bar.get_or_insert_with(|| {
            let b = ProgressBar::with_draw_target(Some(p.total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "dmtcp_command: checkpoint {msg} {bar:30} {bytes}/{total_bytes} \
                 {binary_bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            b.set_style(style);
            b
        });
        b.set_length(p.total);
        b.set_position(p.done.min(p.total));
        b.set_message(format!(
            "{} ({}/{} images)",
            p.generation, p.processes_done, p.processes
        ));
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}
