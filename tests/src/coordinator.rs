//! A `dmtcp_coordinator` started by a test on a free port (`--coord-port 0 --port-file F`).

use crate::process::{Output, Spawned};
use crate::wait::wait_for;
use std::path::PathBuf;
use std::time::Duration;

pub struct Coordinator {
    pub port: u16,
    pub port_file: PathBuf,
    proc: Spawned,
}

impl Coordinator {
    /// Waits until the coordinator wrote its port file (it listens by then).
    #[track_caller]
    pub(crate) fn started(mut proc: Spawned, port_file: PathBuf) -> Coordinator {
        let (_, err_path) = proc.output_paths();
        let port = wait_for(
            "the coordinator to write its port file",
            Duration::from_secs(10),
            || {
                if let Some(st) = proc.try_status() {
                    panic!(
                        "dmtcp_coordinator exited early with {st:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                        proc.stdout_so_far(),
                        proc.stderr_so_far()
                    );
                }
                std::fs::read_to_string(&port_file)
                    .ok()?
                    .trim()
                    .parse::<u16>()
                    .ok()
            },
            || {
                let log = std::fs::read_to_string(&err_path).unwrap_or_default();
                format!("coordinator log:\n{log}")
            },
        );
        Coordinator {
            port,
            port_file,
            proc,
        }
    }

    pub fn pid(&self) -> i32 {
        self.proc.pid()
    }

    /// Everything the coordinator printed so far.
    pub fn log(&self) -> String {
        format!("{}{}", self.proc.stdout_so_far(), self.proc.stderr_so_far())
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.proc.try_status().is_none()
    }

    /// Waits for the coordinator to exit on its own.
    #[track_caller]
    pub fn wait_exit(self, timeout: Duration) -> Output {
        self.proc.wait(timeout)
    }

    pub fn signal(&self, sig: i32) {
        self.proc.signal(sig);
    }
}
