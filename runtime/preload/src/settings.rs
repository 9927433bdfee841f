//! What `dmtcp_launch` passes to every process through the environment, read once at start.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// Fds the runtime keeps for itself, high enough to stay clear of the program's own.
pub const COORD_FD: i32 = 821;
pub const LOG_FD: i32 = 822;

/// Not SIGUSR1/SIGUSR2 (programs use them) and not glibc's internal SIGRTMIN..+2.
pub const DEFAULT_CKPT_SIGNAL: i32 = 62;

/// Set by the exec wrapper for the program it execs: `<pid>` of the process keeping its
/// coordinator connection (a vfork child or a foreign pid must not adopt it).
pub const EXEC_HANDOFF_ENV: &str = "DMTCP_EXEC_HANDOFF";
/// The process identity carried across exec (hex postcard of the `Assignment`).
pub const IDENTITY_ENV: &str = "DMTCP_IDENTITY";

#[derive(Debug, Clone)]
pub struct Settings {
    pub coord_host: String,
    pub coord_port: u16,
    pub interval: Option<u32>,
    pub ckpt_dir: String,
    pub ckpt_signal: i32,
    pub gzip: bool,
    pub quiet: bool,
    pub debug: bool,
    /// `DMTCP_*` variables and `LD_PRELOAD` as launched, re-injected into exec'd programs.
    pub inherited_env: Vec<(OsString, OsString)>,
}

impl Settings {
    /// None when the process was not started under `dmtcp_launch` (the library stays inert).
    pub fn from_env() -> Option<Settings> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let coord_port = var("DMTCP_COORD_PORT")?.parse().ok()?;
        let inherited_env = std::env::vars_os()
            .filter(|(k, _)| {
                let k = k.as_encoded_bytes();
                (k.starts_with(b"DMTCP_") || k == b"LD_PRELOAD")
                    && k != EXEC_HANDOFF_ENV.as_bytes()
                    && k != IDENTITY_ENV.as_bytes()
            })
            .collect();
        let cwd = std::env::current_dir()
            .map(|p| OsString::from(p).into_vec())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_else(|_| ".".into());
        Some(Settings {
            coord_host: var("DMTCP_COORD_HOST").unwrap_or_else(|| "127.0.0.1".into()),
            coord_port,
            interval: var("DMTCP_CHECKPOINT_INTERVAL").and_then(|v| v.parse().ok()),
            ckpt_dir: var("DMTCP_CHECKPOINT_DIR").unwrap_or(cwd),
            ckpt_signal: var("DMTCP_SIGCKPT")
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_CKPT_SIGNAL),
            gzip: var("DMTCP_GZIP").is_none_or(|v| v != "0"),
            quiet: var("DMTCP_QUIET").is_some_and(|v| v != "0"),
            debug: var("DMTCP_LOG").is_some_and(|v| v.contains("debug") || v.contains("trace")),
            inherited_env,
        })
    }
}
