//! `dmtcp_launch`: start a program under checkpoint control.
//!
//! Finds or starts the coordinator (race-free: when it starts one it binds the port itself and
//! hands the listening socket to the coordinator), puts the runtime library in `LD_PRELOAD`
//! in front of the user's own, passes settings through `DMTCP_*` variables and execs the program.

use crate::{coord_host, coord_port, die, find_shipped};
use clap::{ArgAction, Parser};
use dmtcp_protocol::{ClientError, Command, Connection, DEFAULT_PORT, Role};
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "dmtcp_launch",
    version,
    about = "Start a program under checkpoint control",
    disable_help_flag = true,
    override_usage = "dmtcp_launch [OPTIONS] <program> [args...]"
)]
pub struct LaunchArgs {
    #[command(flatten)]
    pub coord: CoordArgs,
    /// Directory for checkpoint images (env DMTCP_CHECKPOINT_DIR; default: current directory).
    #[arg(short = 'c', long = "ckptdir", value_name = "DIR")]
    pub ckptdir: Option<PathBuf>,
    /// Signal used internally to freeze threads (env DMTCP_SIGCKPT; default 62).
    #[arg(long = "ckpt-signal", value_name = "SIGNUM")]
    pub ckpt_signal: Option<i32>,
    /// Extra plugin libraries, colon-separated (env DMTCP_PLUGIN).
    #[arg(long = "with-plugin", value_name = "LIB[:LIB...]")]
    pub with_plugin: Option<String>,
    /// Compress images (the default; env DMTCP_GZIP=1).
    #[arg(long = "gzip", overrides_with = "no_gzip")]
    pub gzip: bool,
    /// Store images uncompressed (env DMTCP_GZIP=0).
    #[arg(long = "no-gzip", overrides_with = "gzip")]
    pub no_gzip: bool,
    /// Incremental images: store only what changed since the previous generation (env
    /// DMTCP_INCREMENTAL=1; DMTCP_KEEP_GENERATIONS, DMTCP_FULL_EVERY tune retention).
    #[arg(long = "incremental")]
    pub incremental: bool,
    /// With --incremental: older generations kept restartable (env DMTCP_KEEP_GENERATIONS;
    /// default 1).
    #[arg(long = "keep-generations", value_name = "N", requires = "incremental")]
    pub keep_generations: Option<u32>,
    /// With --incremental: write a full image once the oldest data referred to is K
    /// generations old (env DMTCP_FULL_EVERY; default 8, 0 = never).
    #[arg(long = "full-every", value_name = "K", requires = "incremental")]
    pub full_every: Option<u32>,
    /// Save the contents of open files with the checkpoint (env DMTCP_CKPT_OPEN_FILES).
    #[arg(long = "ckpt-open-files")]
    pub ckpt_open_files: bool,
    /// Directory for temporary files (env DMTCP_TMPDIR).
    #[arg(short = 't', long = "tmpdir", value_name = "DIR")]
    pub tmpdir: Option<PathBuf>,
    /// How restart gives back process and thread ids: exact in a pid namespace, or virtual
    /// ids translated by the runtime (env DMTCP_PID_MODE; default auto).
    #[arg(long = "pid-mode", value_name = "MODE", value_enum)]
    pub pid_mode: Option<crate::pidns::PidMode>,
    /// Fewer messages (env DMTCP_QUIET).
    #[arg(short = 'q', long = "quiet", action = ArgAction::SetTrue)]
    pub quiet: bool,
    /// Print help.
    #[arg(long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
    /// The program and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM"
    )]
    pub program: Vec<OsString>,
}

/// The coordinator options `dmtcp_launch` and `dmtcp_restart` share (DMTCP's names).
#[derive(clap::Args, Debug, Clone)]
pub struct CoordArgs {
    /// Coordinator host (env DMTCP_COORD_HOST, default 127.0.0.1).
    #[arg(short = 'h', long = "coord-host", value_name = "HOST")]
    pub host: Option<String>,
    /// Coordinator port (env DMTCP_COORD_PORT, default 7779; 0 = any free port).
    #[arg(short = 'p', long = "coord-port", value_name = "PORT")]
    pub port: Option<u16>,
    /// Write the coordinator's port to this file.
    #[arg(long = "port-file", value_name = "FILE")]
    pub port_file: Option<PathBuf>,
    /// Join an existing coordinator; fail if there is none.
    #[arg(
        short = 'j',
        long = "join-coordinator",
        conflicts_with = "new_coordinator"
    )]
    pub join: bool,
    /// Start a new coordinator; fail if the port is taken.
    #[arg(long = "new-coordinator")]
    pub new_coordinator: bool,
    /// Join the coordinator if one runs, else start one (the default).
    #[arg(long = "any-coordinator")]
    pub any_coordinator: bool,
    /// Checkpoint every SECONDS (env DMTCP_CHECKPOINT_INTERVAL; 0 = only on request).
    #[arg(short = 'i', long = "interval", value_name = "SECONDS")]
    pub interval: Option<u32>,
    /// Log file of an auto-started coordinator.
    #[arg(long = "coord-logfile", value_name = "FILE")]
    pub coord_logfile: Option<PathBuf>,
}

impl CoordArgs {
    /// The interval asked for: `-i`, else `DMTCP_CHECKPOINT_INTERVAL`.
    pub fn interval(&self) -> Option<u32> {
        self.interval.or_else(|| {
            std::env::var("DMTCP_CHECKPOINT_INTERVAL")
                .ok()
                .and_then(|v| v.parse().ok())
        })
    }

    /// Finds or starts the coordinator these options describe and writes `--port-file`;
    /// any problem is one line and exit 1.
    pub fn connect(&self, quiet: bool) -> CoordinatorHandle {
        let host = coord_host(self.host.clone());
        let port = coord_port(self.port).unwrap_or_else(|e| die(1, e));
        let mode = if self.join {
            CoordMode::Join
        } else if self.new_coordinator {
            CoordMode::New
        } else {
            CoordMode::Any
        };
        let coord = find_or_start(
            mode,
            &host,
            port,
            self.interval(),
            self.coord_logfile.as_deref(),
            quiet,
        )
        .unwrap_or_else(|e| die(1, e));
        if let Some(f) = &self.port_file
            && let Err(e) = std::fs::write(f, format!("{}\n", coord.port))
        {
            die(
                1,
                format_args!("cannot write port file {}: {e}", f.display()),
            );
        }
        coord
    }
}

/// How to find the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordMode {
    Join,
    New,
    Any,
}

/// A coordinator we can talk to: where it is, and the secret for the processes we start.
pub struct CoordinatorHandle {
    pub host: String,
    pub port: u16,
    pub secret_env: String,
    pub interval: u32,
    /// We started it (auto-start).
    pub started: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error(
        "no coordinator at {host}:{port} (start one with dmtcp_coordinator, or drop --join-coordinator)"
    )]
    NoCoordinator { host: String, port: u16 },
    #[error("port {port} is in use{holder}; stop it or choose another port with -p (0 = any)")]
    PortInUse { port: u16, holder: String },
    #[error(
        "no coordinator at {host}:{port} and {host} is not this host, so none can be started here"
    )]
    RemoteHost { host: String, port: u16 },
    #[error("cannot start the coordinator: {0}")]
    Spawn(String),
}

fn status(
    host: &str,
    port: u16,
) -> Result<(Connection, dmtcp_protocol::CommandReply), ClientError> {
    let (mut conn, _) = Connection::open(host, port, Role::Command, Some(Duration::from_secs(10)))?;
    let fe = |source| ClientError::Frame {
        addr: format!("{host}:{port}"),
        source,
    };
    conn.send(&Command::Status).map_err(fe)?;
    let reply = conn.recv().map_err(fe)?;
    Ok((conn, reply))
}

fn handle_from(host: &str, port: u16, started: bool) -> Result<CoordinatorHandle, LaunchError> {
    let (conn, reply) = status(host, port)?;
    Ok(CoordinatorHandle {
        host: host.to_string(),
        port,
        secret_env: conn.secret.env_value(&conn.coord_id),
        interval: reply.interval,
        started,
    })
}

/// Binds the coordinator port on every address, so peers on other hosts can reach it.
fn bind(host: &str, port: u16) -> Result<TcpListener, LaunchError> {
    // Auto-start only makes sense when the coordinator host is this machine.
    let local = TcpListener::bind((host, 0)).is_ok();
    if !local {
        return Err(LaunchError::RemoteHost {
            host: host.into(),
            port,
        });
    }
    TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)).map_err(|_| {
        LaunchError::PortInUse {
            port,
            holder: dmtcp_coordinator::port_holder(port)
                .map(|h| format!(" by {h}"))
                .unwrap_or_default(),
        }
    })
}

/// Starts `dmtcp_coordinator` on an already listening socket and waits until it serves.
pub fn start_coordinator(
    listener: TcpListener,
    interval: Option<u32>,
    logfile: Option<&Path>,
    extra: &[&str],
) -> Result<u16, LaunchError> {
    let port = listener
        .local_addr()
        .map_err(|e| LaunchError::Spawn(e.to_string()))?
        .port();
    let exe = find_shipped("dmtcp_coordinator").ok_or_else(|| {
        LaunchError::Spawn("dmtcp_coordinator not found beside dmtcp_launch".into())
    })?;
    let mut cmd = std::process::Command::new(exe);
    // Exit with the computation, and do not linger if no process ever joins (e.g. a static
    // program that never loads the runtime).
    cmd.args([
        "--listen-fd",
        "3",
        "--exit-on-last",
        "--stale-timeout",
        "600",
        "--daemon",
        "-q",
    ]);
    cmd.arg("--coord-port").arg(port.to_string());
    if let Some(i) = interval {
        cmd.arg("--interval").arg(i.to_string());
    }
    if let Some(f) = logfile {
        cmd.arg("--coord-logfile").arg(f);
    }
    cmd.args(extra);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    // Our own settings must not leak into the coordinator.
    cmd.env_remove("LD_PRELOAD").env_remove("DMTCP_SECRET");
    let fd = listener.as_raw_fd();
    // SAFETY: only async-signal-safe dup2 between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep close-on-exec: clear it explicitly then.
            let r = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let st = cmd
        .status()
        .map_err(|e| LaunchError::Spawn(e.to_string()))?;
    if !st.success() {
        return Err(LaunchError::Spawn(format!(
            "dmtcp_coordinator exited with {st}"
        )));
    }
    Ok(port)
}

/// Finds or starts the coordinator according to `mode`.
pub fn find_or_start(
    mode: CoordMode,
    host: &str,
    port: Option<u16>,
    interval: Option<u32>,
    logfile: Option<&Path>,
    quiet: bool,
) -> Result<CoordinatorHandle, LaunchError> {
    let explicit = port.is_some();
    let port = port.unwrap_or(DEFAULT_PORT);
    if mode != CoordMode::New && port != 0 {
        match handle_from(host, port, false) {
            Ok(h) => return Ok(h),
            Err(LaunchError::Client(e)) if e.is_not_found() => {
                if mode == CoordMode::Join {
                    return Err(LaunchError::NoCoordinator {
                        host: host.into(),
                        port,
                    });
                }
            }
            // Someone else's coordinator (or another service) on the default port: start
            // our own on a free port rather than fail, as the embedded default promises.
            Err(LaunchError::Client(e)) if !explicit && mode == CoordMode::Any => {
                tracing::debug!("default port unusable: {e}");
                if !quiet {
                    eprintln!(
                        "dmtcp_launch: port {port} is taken ({e}); starting a coordinator on a free port"
                    );
                }
                return start_and_connect(host, 0, interval, logfile, quiet);
            }
            Err(e) => return Err(e),
        }
    }
    start_and_connect(host, port, interval, logfile, quiet)
}

fn start_and_connect(
    host: &str,
    port: u16,
    interval: Option<u32>,
    logfile: Option<&Path>,
    quiet: bool,
) -> Result<CoordinatorHandle, LaunchError> {
    let listener = bind(host, port)?;
    let port = start_coordinator(listener, interval, logfile, &[])?;
    // On the default port everything finds it; elsewhere the user needs to know where it is.
    if !quiet && port != DEFAULT_PORT {
        eprintln!(
            "{}: started a coordinator on port {port} (dmtcp_command -p {port})",
            crate::tool_name()
        );
    }
    handle_from(host, port, true)
}

/// Resolves a program name like a shell does; None if it cannot be found.
fn resolve_program(name: &OsString) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.as_os_str().as_encoded_bytes().contains(&b'/') {
        return p.exists().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(p))
        .find(|c| c.is_file())
}

/// Is the program a Python interpreter, or a script run by one?
fn is_python(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.starts_with("python") {
        return true;
    }
    let mut head = [0u8; 128];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    head[..n].starts_with(b"#!")
        && head[..n]
            .split(|&c| c == b'\n')
            .next()
            .is_some_and(|l| String::from_utf8_lossy(l).contains("python"))
}

/// The directory of the `dmtcp` Python module: installed beside the library, or in the source
/// tree of a build.
fn python_module_dir() -> Option<PathBuf> {
    find_shipped("python/dmtcp.py")
        .and_then(|p| p.parent().map(PathBuf::from))
        .or_else(|| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../python");
            src.join("dmtcp.py").exists().then_some(src)
        })
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

pub fn main() {
    let args = LaunchArgs::parse();
    let quiet = args.quiet || env_flag("DMTCP_QUIET");
    crate::init_logging(quiet);
    let prog = &args.program[0];
    let Some(prog_path) = resolve_program(prog) else {
        die(
            127,
            format_args!("{}: command not found", prog.to_string_lossy()),
        );
    };
    if crate::elf::linkage(&prog_path) == crate::elf::Linkage::Static {
        die(
            1,
            format_args!(
                "{} is statically linked; the runtime cannot be loaded into it \
                 (relink it dynamically; see docs/unsupported.md)",
                prog_path.display()
            ),
        );
    }
    let Some(lib) = find_shipped("libdmtcp.so") else {
        die(
            1,
            "libdmtcp.so not found beside dmtcp_launch; is the installation complete?",
        );
    };
    if let Some(sig) = args.ckpt_signal
        && (!(1..=64).contains(&sig) || sig == libc::SIGKILL || sig == libc::SIGSTOP)
    {
        die(
            1,
            format_args!("--ckpt-signal {sig} is not a usable signal"),
        );
    }
    let interval = args.coord.interval();
    let coord = args.coord.connect(quiet);

    let ckptdir = args
        .ckptdir
        .clone()
        .or_else(|| {
            std::env::var_os("DMTCP_CHECKPOINT_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| ".".into()));
    let ckptdir = std::path::absolute(&ckptdir).unwrap_or(ckptdir);
    if !ckptdir.is_dir() {
        die(
            1,
            format_args!("checkpoint directory {} does not exist", ckptdir.display()),
        );
    }

    let mut preload: Vec<String> = Vec::new();
    let plugins = args
        .with_plugin
        .clone()
        .or_else(|| std::env::var("DMTCP_PLUGIN").ok());
    for p in plugins
        .iter()
        .flat_map(|p| p.split(':'))
        .filter(|p| !p.is_empty())
    {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.into());
        if !abs.exists() {
            die(1, format_args!("plugin {p} not found"));
        }
        preload.push(abs.to_string_lossy().into_owned());
    }
    preload.push(lib.to_string_lossy().into_owned());
    if let Ok(user) = std::env::var("LD_PRELOAD")
        && !user.is_empty()
    {
        preload.push(user);
    }

    let mut cmd = std::process::Command::new(&prog_path);
    cmd.arg0(prog).args(&args.program[1..]);
    cmd.env("LD_PRELOAD", preload.join(":"))
        .env("DMTCP_COORD_HOST", &coord.host)
        .env("DMTCP_COORD_PORT", coord.port.to_string())
        .env(dmtcp_protocol::auth::SECRET_ENV, &coord.secret_env)
        .env("DMTCP_CHECKPOINT_DIR", &ckptdir);
    if let Some(i) = interval {
        cmd.env("DMTCP_CHECKPOINT_INTERVAL", i.to_string());
    }
    if let Some(s) = args.ckpt_signal {
        cmd.env("DMTCP_SIGCKPT", s.to_string());
    }
    if args.no_gzip {
        cmd.env("DMTCP_GZIP", "0");
    } else if args.gzip {
        cmd.env("DMTCP_GZIP", "1");
    }
    if args.incremental {
        cmd.env("DMTCP_INCREMENTAL", "1");
    }
    if let Some(n) = args.keep_generations {
        cmd.env("DMTCP_KEEP_GENERATIONS", n.to_string());
    }
    if let Some(k) = args.full_every {
        cmd.env("DMTCP_FULL_EVERY", k.to_string());
    }
    if args.ckpt_open_files {
        cmd.env("DMTCP_CKPT_OPEN_FILES", "1");
    }
    if let Some(t) = &args.tmpdir {
        cmd.env("DMTCP_TMPDIR", t);
    }
    if quiet {
        cmd.env("DMTCP_QUIET", "1");
    }
    // Decided once, here: every image of the computation records it for the restart.
    let pid_mode = args
        .pid_mode
        .or_else(crate::pidns::PidMode::from_env)
        .unwrap_or(crate::pidns::PidMode::Auto)
        .resolve();
    tracing::info!("process ids: {} mode", pid_mode.as_str());
    cmd.env(crate::pidns::PID_MODE_ENV, pid_mode.as_str());
    if let Some(p) = &plugins {
        cmd.env("DMTCP_PLUGIN", p);
    }
    // `import dmtcp` works in Python programs; other programs' environment stays untouched.
    if is_python(&prog_path)
        && let Some(dir) = python_module_dir()
    {
        let mut path = std::env::var_os("PYTHONPATH")
            .filter(|p| !p.is_empty())
            .unwrap_or_default();
        if !path.is_empty() {
            path.push(":");
        }
        path.push(dir.as_os_str());
        cmd.env("PYTHONPATH", path);
    }
    let err = cmd.exec();
    let code = if err.kind() == std::io::ErrorKind::PermissionDenied {
        126
    } else {
        127
    };
    if coord.started {
        // Nobody will ever join the coordinator we started for this program.
        let _ = Connection::command(
            &coord.host,
            coord.port,
            Command::Quit,
            Some(Duration::from_secs(5)),
        );
    }
    die(code, format_args!("{}: {err}", prog.to_string_lossy()));
}
