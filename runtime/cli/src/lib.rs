//! Pieces shared by the command-line tools: where things are installed, the coordinator
//! address from options and environment, logging, and one-line error exits.

use std::path::PathBuf;

pub mod elf;
pub mod launch;
pub mod pidns;

/// Default coordinator host when neither `-h` nor `DMTCP_COORD_HOST` is given.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// The directory holding the running binary; the runtime library and the restorer sit beside
/// it in a build tree (`target/release`) or in `../lib/dmtcp` of an installation.
pub fn install_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Finds a file shipped with the tools (`libdmtcp.so`, `dmtcp_coordinator`, ...).
pub fn find_shipped(name: &str) -> Option<PathBuf> {
    let dir = install_dir();
    [dir.join(name), dir.join("../lib/dmtcp").join(name)]
        .into_iter()
        .find(|p| p.exists())
}

/// Coordinator host: option, then `DMTCP_COORD_HOST`, then 127.0.0.1.
pub fn coord_host(opt: Option<String>) -> String {
    opt.or_else(|| {
        std::env::var("DMTCP_COORD_HOST")
            .ok()
            .filter(|s| !s.is_empty())
    })
    .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

/// Coordinator port from an option or `DMTCP_COORD_PORT` (DMTCP also reads `DMTCP_PORT`).
pub fn coord_port(opt: Option<u16>) -> Result<Option<u16>, String> {
    if opt.is_some() {
        return Ok(opt);
    }
    for var in ["DMTCP_COORD_PORT", "DMTCP_PORT"] {
        if let Ok(v) = std::env::var(var) {
            if v.is_empty() {
                continue;
            }
            return v
                .parse()
                .map(Some)
                .map_err(|_| format!("{var}={v} is not a port number"));
        }
    }
    Ok(None)
}

/// Logs to stderr, filtered by `DMTCP_LOG` (e.g. `DMTCP_LOG=debug`); warnings only by default.
pub fn init_logging(quiet: bool) {
    let default = if quiet { "error" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DMTCP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The name this tool was run as (for messages).
pub fn tool_name() -> String {
    std::env::args()
        .next()
        .and_then(|a| a.rsplit('/').next().map(String::from))
        .unwrap_or_else(|| "dmtcp".into())
}

/// Prints `<tool>: <message>` as one line on stderr and exits with `code`.
pub fn die(code: i32, msg: impl std::fmt::Display) -> ! {
    eprintln!("{}: {msg}", tool_name());
    std::process::exit(code)
}
