//! Options (DMTCP's names) and configuration files, merged into [`Settings`].
//!
//! Precedence, lowest first: built-in defaults, `/etc/dmtcp/coordinator.toml`,
//! `$HOME/.config/dmtcp/coordinator.toml`, `--config FILE`, environment variables, options.

use clap::Parser;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// DMTCP's default for `--stale-timeout`: 8 hours.
pub const DEFAULT_STALE_TIMEOUT: u64 = 8 * 3600;
pub const SITE_CONFIG: &str = "/etc/dmtcp/coordinator.toml";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "dmtcp_coordinator",
    version,
    about = "Coordinates the checkpoints of one computation (DMTCP-compatible).",
    after_help = "Configuration files (same keys as the long options, e.g. `interval = 60`): \
                  /etc/dmtcp/coordinator.toml, ~/.config/dmtcp/coordinator.toml, --config FILE."
)]
pub struct Options {
    /// Port to listen on (0 = any free port) [default: 7779]
    #[arg(
        short = 'p',
        long = "coord-port",
        visible_alias = "port",
        env = "DMTCP_COORD_PORT",
        value_name = "PORT"
    )]
    pub coord_port: Option<u16>,
    /// Write the port number to FILE once listening
    #[arg(long, value_name = "FILE")]
    pub port_file: Option<PathBuf>,
    /// Directory for checkpoint images (overrides the processes' own setting)
    #[arg(long, env = "DMTCP_CHECKPOINT_DIR", value_name = "DIR")]
    pub ckptdir: Option<PathBuf>,
    /// Exit when the last process of the computation exits
    #[arg(long)]
    pub exit_on_last: bool,
    /// Checkpoint every SECS seconds (0 = only on request)
    #[arg(
        short = 'i',
        long,
        env = "DMTCP_CHECKPOINT_INTERVAL",
        value_name = "SECS"
    )]
    pub interval: Option<u32>,
    /// Run in the background; returns once the coordinator listens
    #[arg(long)]
    pub daemon: bool,
    /// Log only warnings and errors
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the log to FILE instead of stderr
    #[arg(long, value_name = "FILE")]
    pub coord_logfile: Option<PathBuf>,
    /// Exit after SECS seconds
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Exit after SECS seconds without processes (0 = never) [default: 28800]
    #[arg(long, value_name = "SECS")]
    pub stale_timeout: Option<u64>,
    /// Kill the computation after each checkpoint
    #[arg(long)]
    pub kill_after_ckpt: bool,
    /// Read settings from this TOML file too
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Adopt an already listening socket on this fd (used by dmtcp_launch)
    #[arg(long, hide = true, value_name = "N")]
    pub listen_fd: Option<i32>,
    /// Address to listen on [default: 0.0.0.0]
    #[arg(long, value_name = "ADDR")]
    pub listen_host: Option<String>,
}

/// The keys of a configuration file.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileConfig {
    pub coord_port: Option<u16>,
    pub port_file: Option<PathBuf>,
    pub ckptdir: Option<PathBuf>,
    pub exit_on_last: Option<bool>,
    pub interval: Option<u32>,
    pub quiet: Option<bool>,
    pub coord_logfile: Option<PathBuf>,
    pub timeout: Option<u64>,
    pub stale_timeout: Option<u64>,
    pub kill_after_ckpt: Option<bool>,
    pub listen_host: Option<String>,
}

impl FileConfig {
    /// `other`'s keys win.
    fn overlay(self, other: FileConfig) -> FileConfig {
        FileConfig {
            coord_port: other.coord_port.or(self.coord_port),
            port_file: other.port_file.or(self.port_file),
            ckptdir: other.ckptdir.or(self.ckptdir),
            exit_on_last: other.exit_on_last.or(self.exit_on_last),
            interval: other.interval.or(self.interval),
            quiet: other.quiet.or(self.quiet),
            coord_logfile: other.coord_logfile.or(self.coord_logfile),
            timeout: other.timeout.or(self.timeout),
            stale_timeout: other.stale_timeout.or(self.stale_timeout),
            kill_after_ckpt: other.kill_after_ckpt.or(self.kill_after_ckpt),
            listen_host: other.listen_host.or(self.listen_host),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}

/// Everything the coordinator runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub port: u16,
    pub port_file: Option<PathBuf>,
    pub ckptdir: Option<PathBuf>,
    pub exit_on_last: bool,
    pub interval: Option<u32>,
    pub daemon: bool,
    pub quiet: bool,
    pub logfile: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub stale_timeout: Option<Duration>,
    pub kill_after_ckpt: bool,
    pub listen_fd: Option<i32>,
    pub listen_host: String,
}

/// Reads one configuration file; a missing optional file is an empty one.
pub fn read_config(path: &Path, required: bool) -> Result<FileConfig, SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(FileConfig::default());
        }
        Err(source) => {
            return Err(SettingsError::Read {
                path: path.into(),
                source,
            });
        }
    };
    toml::from_str(&text).map_err(|e| SettingsError::Parse {
        path: path.into(),
        message: e.message().to_string(),
    })
}

/// The configuration files in increasing precedence.
pub fn config_files(opts: &Options) -> Vec<(PathBuf, bool)> {
    let mut files = vec![(PathBuf::from(SITE_CONFIG), false)];
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        files.push((
            Path::new(&home).join(".config/dmtcp/coordinator.toml"),
            false,
        ));
    }
    if let Some(c) = &opts.config {
        files.push((c.clone(), true));
    }
    files
}

impl Settings {
    pub fn resolve(opts: Options) -> Result<Settings, SettingsError> {
        let mut file = FileConfig::default();
        for (path, required) in config_files(&opts) {
            file = file.overlay(read_config(&path, required)?);
        }
        Ok(Settings::merge(opts, file))
    }

    /// Options over file settings over defaults.
    pub fn merge(o: Options, f: FileConfig) -> Settings {
        let secs = Duration::from_secs;
        let stale = o
            .stale_timeout
            .or(f.stale_timeout)
            .unwrap_or(DEFAULT_STALE_TIMEOUT);
        Settings {
            port: o
                .coord_port
                .or(f.coord_port)
                .unwrap_or(dmtcp_protocol::DEFAULT_PORT),
            port_file: o.port_file.or(f.port_file),
            ckptdir: o.ckptdir.or(f.ckptdir),
            exit_on_last: o.exit_on_last || f.exit_on_last.unwrap_or(false),
            interval: o.interval.or(f.interval),
            daemon: o.daemon,
            quiet: o.quiet || f.quiet.unwrap_or(false),
            logfile: o.coord_logfile.or(f.coord_logfile),
            timeout: o.timeout.or(f.timeout).map(secs),
            stale_timeout: (stale > 0).then(|| secs(stale)),
            kill_after_ckpt: o.kill_after_ckpt || f.kill_after_ckpt.unwrap_or(false),
            listen_fd: o.listen_fd,
            listen_host: o
                .listen_host
                .or(f.listen_host)
                .unwrap_or_else(|| "0.0.0.0".into()),
        }
    }
}

/// Logs through `tracing` to stderr or `logfile`: info by default, warnings with `quiet`,
/// anything with `DMTCP_LOG=<filter>`.
pub fn init_logging(quiet: bool, logfile: Option<&Path>) -> std::io::Result<()> {
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DMTCP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match logfile {
        Some(p) => {
            let f = std::fs::File::options().create(true).append(true).open(p)?;
            let _ = builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .try_init();
        }
        None => {
            use std::io::IsTerminal;
            let ansi = std::io::stderr().is_terminal();
            let _ = builder
                .with_ansi(ansi)
                .with_writer(std::io::stderr)
                .try_init();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("dmtcp_coordinator").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn clap_definition_is_consistent() {
        Options::command().debug_assert();
    }

    #[test]
    fn defaults_match_dmtcp() {
        let s = Settings::merge(parse(&[]), FileConfig::default());
        assert_eq!(s.port, 7779);
        assert_eq!(s.stale_timeout, Some(Duration::from_secs(8 * 3600)));
        assert_eq!(s.listen_host, "0.0.0.0");
        assert!(!s.exit_on_last && !s.daemon && s.interval.is_none());
    }

    #[test]
    fn options_win_over_files_and_files_stack() {
        let site: FileConfig =
            toml::from_str("interval = 60\ncoord-port = 9000\nexit-on-last = true").unwrap();
        let user: FileConfig = toml::from_str("interval = 30\nstale-timeout = 0").unwrap();
        let f = site.overlay(user);
        let s = Settings::merge(parse(&["-p", "0", "--ckptdir", "/ck"]), f.clone());
        assert_eq!((s.port, s.interval, s.exit_on_last), (0, Some(30), true));
        assert_eq!(s.stale_timeout, None);
        assert_eq!(s.ckptdir, Some(PathBuf::from("/ck")));
        let s = Settings::merge(parse(&["-i", "5", "--port", "1234"]), f);
        assert_eq!((s.port, s.interval), (1234, Some(5)));
    }

    #[test]
    fn unknown_config_key_and_missing_config_are_one_line_errors() {
        assert!(toml::from_str::<FileConfig>("intervall = 3").is_err());
        let e = read_config(Path::new("/nonexistent/c.toml"), true).unwrap_err();
        assert!(e.to_string().starts_with("cannot read /nonexistent/c.toml"));
        assert_eq!(
            read_config(Path::new("/nonexistent/c.toml"), false).unwrap(),
            FileConfig::default()
        );
    }

    #[test]
    fn bad_options_are_refused() {
        let bad = |a: &[&str]| {
            Options::try_parse_from(std::iter::once("x").chain(a.iter().copied())).is_err()
        };
        assert!(bad(&["--bogus"]));
        assert!(bad(&["-p", "99999"]));
        assert!(bad(&["-i", "soon"]));
    }
}
