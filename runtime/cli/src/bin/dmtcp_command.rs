//! `dmtcp_command`: sends one command to a computation's coordinator and prints DMTCP's text or
//! JSON answer, with DMTCP's options, spellings (`-bc`, `kc`, `s`, `-i5`, `-p7779`) and exit codes,
//! so existing job scripts keep working.
//!
//! Exit codes: 0 success; 1 usage errors (bad option, missing value); 2 when the coordinator is
//! not found, refuses us, or cannot carry out the command (DMTCP's codes). With `--json` every
//! outcome, including usage errors, is one JSON object on stdout (usage errors then exit 2).

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};
use dmtcp_protocol::{
    CkptMode, ClientError, Command, CommandReply, CommandStatus, Connection, DEFAULT_PORT,
    WorkerInfo, registry,
};
use std::fmt::Write as _;
use std::time::Duration;

#[path = "dmtcp_command/progress.rs"]
mod progress;

/// DMTCP's usage text (shown by `--help` and on usage errors with no other explanation).
const USAGE: &str = "\
Usage:  dmtcp_command [OPTIONS] COMMAND [COMMAND...]
Send a command to the dmtcp_coordinator remotely.

Options:

  -h, --coord-host HOSTNAME (environment variable DMTCP_COORD_HOST)
              Hostname where dmtcp_coordinator is run (default: localhost)
  -p, --coord-port PORT_NUM (environment variable DMTCP_COORD_PORT)
              Port where dmtcp_coordinator is run (default: 7779)
  --help
              Print this message and exit.
  --version
              Print version information and exit.
  --json
              Print machine-readable JSON output for supported commands.

Commands for Coordinator:
    -s, --status:          Print status message
    -l, --list:            List connected clients
    -c, --checkpoint:      Checkpoint all nodes
    -bc, --bcheckpoint:    Checkpoint all nodes, dmtcp_command blocks until done
    -kc, --kcheckpoint     Checkpoint all nodes, kill all nodes when done
    -i, --interval <val>   Update ckpt interval to <val> seconds (0=never)
    -k, --kill             Kill all nodes
    -q, --quit             Kill all nodes and quit

If no coordinator answers on the default port and no port was given, the one coordinator of
this user running on this host (started on a free port by dmtcp_launch) is used.
";

/// How long to wait for a coordinator to accept and greet us.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(
    name = "dmtcp_command",
    version,
    disable_help_flag = true,
    disable_version_flag = true,
    override_help = USAGE
)]
struct Cli {
    /// Hostname where dmtcp_coordinator runs.
    #[arg(
        short = 'h',
        long = "coord-host",
        alias = "host",
        value_name = "HOSTNAME"
    )]
    coord_host: Option<String>,
    /// Port where dmtcp_coordinator runs.
    #[arg(
        short = 'p',
        long = "coord-port",
        alias = "port",
        value_name = "PORT_NUM"
    )]
    coord_port: Option<u16>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    #[arg(long)]
    version: bool,
    /// Accepted for old job scripts; there is nothing extra to silence.
    #[arg(long, hide = true)]
    quiet: bool,
    #[arg(short = 's', long)]
    status: bool,
    #[arg(short = 'l', long)]
    list: bool,
    #[arg(short = 'c', long)]
    checkpoint: bool,
    #[arg(long)]
    bcheckpoint: bool,
    #[arg(long)]
    kcheckpoint: bool,
    #[arg(short = 'i', long, value_name = "SECONDS")]
    interval: Option<u32>,
    #[arg(short = 'k', long)]
    kill: bool,
    #[arg(short = 'q', long)]
    quit: bool,
}

/// The one command a call performs (DMTCP keeps the last one given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Status,
    List,
    Checkpoint(CkptMode),
    Interval(u32),
    Kill,
    Quit,
}

impl Request {
    /// DMTCP's `CoordinatorCmd` name, used in the JSON `command` field.
    fn dmt_name(self) -> &'static str {
        match self {
            Request::Status => "DMT_STATUS",
            Request::List => "DMT_LIST",
            Request::Checkpoint(CkptMode::Async) => "DMT_CHECKPOINT",
            Request::Checkpoint(CkptMode::Blocking) => "DMT_BLOCKING_CKPT",
            Request::Checkpoint(CkptMode::KillAfter) => "DMT_KILL_AFTER_CKPT",
            Request::Interval(_) => "DMT_UPDATE_CKPT_INTERVAL",
            Request::Kill => "DMT_KILL",
            Request::Quit => "DMT_QUIT",
        }
    }

    fn to_command(self) -> Command {
        match self {
            Request::Status => Command::Status,
            Request::List => Command::List,
            Request::Checkpoint(mode) => Command::Checkpoint(mode),
            Request::Interval(secs) => Command::SetInterval(secs),
            Request::Kill => Command::Kill,
            Request::Quit => Command::Quit,
        }
    }
}

/// Rewrites DMTCP's spellings into the long options clap knows: DMTCP strips any number of
/// leading dashes from a command (`s`, `-s`, `--s`), has two-letter "short" options (`-bc`,
/// `-kc`) and their aliases (`-ck`, `-K`, `-xc`), and glues values (`-i5`, `-p7779`).
fn normalize(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let has_next = i + 1 < args.len();
        let mut push_with_value = |name: &str, out: &mut Vec<String>| {
            out.push(name.to_string());
            if has_next {
                out.push(args[i + 1].clone());
                i += 1;
            }
        };
        match a {
            "--json" | "--help" | "--version" | "--quiet" => out.push(a.to_string()),
            // DMTCP: `-h` alone at the end asks for help, otherwise it names the host.
            "-h" if !has_next => out.push("--help".into()),
            "h" | "?" => out.push("--help".into()),
            "-h" | "--coord-host" | "--host" => push_with_value("--coord-host", &mut out),
            "-p" | "--coord-port" | "--port" => push_with_value("--coord-port", &mut out),
            _ if a.starts_with("--coord-host=")
                || a.starts_with("--coord-port=")
                || a.starts_with("--host=")
                || a.starts_with("--port=")
                || a.starts_with("--interval=") =>
            {
                out.push(a.to_string())
            }
            _ if a.starts_with("-p") && a[2..].starts_with(|c: char| c.is_ascii_digit()) => {
                out.push(format!("--coord-port={}", &a[2..]))
            }
            _ => {
                let word = a.trim_start_matches('-');
                let long = match word {
                    "s" | "status" => Some("--status"),
                    "l" | "list" => Some("--list"),
                    "c" | "checkpoint" => Some("--checkpoint"),
                    "bc" | "bcheckpoint" | "B" => Some("--bcheckpoint"),
                    "kc" | "Kc" | "ck" | "K" | "kcheckpoint" | "xc" | "xcheckpoint" => {
                        Some("--kcheckpoint")
                    }
                    "k" | "kill" => Some("--kill"),
                    "q" | "quit" => Some("--quit"),
                    _ => None,
                };
                if let Some(long) = long {
                    out.push(long.into());
                } else if word == "i" || word == "interval" {
                    push_with_value("--interval", &mut out);
                } else if word.starts_with('i')
                    && word[1..].starts_with(|c: char| c.is_ascii_digit())
                {
                    out.push(format!("--interval={}", &word[1..]));
                } else {
                    out.push(a.to_string());
                }
            }
        }
        i += 1;
    }
    out
}

/// Usage problems found while reading the command line.
#[derive(Debug, thiserror::Error)]
enum UsageError {
    #[error("{0}")]
    Clap(String),
    #[error("no command given")]
    NoCommand,
    #[error("{var}={value} is not a port number")]
    BadPortEnv { var: &'static str, value: String },
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Help,
    Version { json: bool },
    Run(Options),
}

#[derive(Debug, PartialEq, Eq)]
struct Options {
    host: Option<String>,
    port: Option<u16>,
    json: bool,
    request: Request,
}

fn parse(args: &[String]) -> Result<Parsed, UsageError> {
    let argv: Vec<String> = std::iter::once("dmtcp_command".to_string())
        .chain(normalize(args))
        .collect();
    let matches = match Cli::command().try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => return Ok(Parsed::Help),
        Err(e) => return Err(UsageError::Clap(first_line(&e.render().to_string()))),
    };
    let cli = Cli::from_arg_matches(&matches).map_err(|e| UsageError::Clap(e.to_string()))?;
    if cli.version {
        return Ok(Parsed::Version { json: cli.json });
    }
    // DMTCP keeps the last command of the line: pick the flag given last.
    let candidates: [(&str, bool, Request); 8] = [
        ("status", cli.status, Request::Status),
        ("list", cli.list, Request::List),
        (
            "checkpoint",
            cli.checkpoint,
            Request::Checkpoint(CkptMode::Async),
        ),
        (
            "bcheckpoint",
            cli.bcheckpoint,
            Request::Checkpoint(CkptMode::Blocking),
        ),
        (
            "kcheckpoint",
            cli.kcheckpoint,
            Request::Checkpoint(CkptMode::KillAfter),
        ),
        (
            "interval",
            cli.interval.is_some(),
            Request::Interval(cli.interval.unwrap_or(0)),
        ),
        ("kill", cli.kill, Request::Kill),
        ("quit", cli.quit, Request::Quit),
    ];
    let request = candidates
        .iter()
        .filter(|(_, given, _)| *given)
        .max_by_key(|(id, _, _)| matches.indices_of(id).and_then(|i| i.max()).unwrap_or(0))
        .map(|(_, _, r)| *r)
        .ok_or(UsageError::NoCommand)?;
    Ok(Parsed::Run(Options {
        host: cli.coord_host,
        port: cli.coord_port,
        json: cli.json,
        request,
    }))
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string()
}

/// Where the coordinator is, and how DMTCP would print it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// Shown in the output (`localhost` by default, as DMTCP).
    display_host: String,
    /// Used to connect.
    connect_host: String,
    port: u16,
    /// The text after `Port:` in DMTCP's status output.
    port_text: String,
    /// The port came from `-p` or the environment (no registry fallback, DMTCP's "check port").
    port_given: bool,
    /// The host is this machine, so the per-user registry of coordinators applies.
    local: bool,
    /// Our coordinators on other ports when the choice was ambiguous (named in the error).
    others: Vec<u16>,
}

fn resolve_target(
    host_opt: Option<String>,
    port_opt: Option<u16>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Target, UsageError> {
    let env_nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
    let host = host_opt
        .or_else(|| env_nonempty("DMTCP_COORD_HOST"))
        .or_else(|| env_nonempty("DMTCP_HOST"));
    let (port, port_text, port_given) = match port_opt {
        Some(p) => (p, p.to_string(), true),
        None => {
            let from_env = ["DMTCP_COORD_PORT", "DMTCP_PORT"]
                .into_iter()
                .find_map(|var| env_nonempty(var).map(|v| (var, v)));
            match from_env {
                Some((var, value)) => match value.trim().parse::<u16>() {
                    Ok(p) => (p, value, true),
                    Err(_) => return Err(UsageError::BadPortEnv { var, value }),
                },
                None => (
                    DEFAULT_PORT,
                    format!("{DEFAULT_PORT} (default port)"),
                    false,
                ),
            }
        }
    };
    let local = match host.as_deref() {
        None => true,
        Some(h) => {
            h == "localhost"
                || h.starts_with("127.")
                || h == "::1"
                || h == dmtcp_protocol::ids::hostname()
        }
    };
    let display_host = host.clone().unwrap_or_else(|| "localhost".into());
    let connect_host = host.unwrap_or_else(|| dmtcp_cli::DEFAULT_HOST.to_string());
    Ok(Target {
        display_host,
        connect_host,
        port,
        port_text,
        port_given,
        local,
        others: Vec::new(),
    })
}

/// Sends the request, falling back to this user's only registered coordinator when nothing of
/// ours answers on the default port.
fn send(target: &mut Target, request: Request) -> Result<CommandReply, ClientError> {
    let first = Connection::command(
        &target.connect_host,
        target.port,
        request.to_command(),
        Some(CONNECT_TIMEOUT),
    );
    let retry = matches!(
        first,
        Err(ClientError::NotFound { .. } | ClientError::ForeignUser { .. })
    );
    if !retry || target.port_given || !target.local {
        return first;
    }
    let mine: Vec<_> = registry::live_on_this_host()
        .into_iter()
        .filter(|e| e.port != target.port)
        .collect();
    let [entry] = mine.as_slice() else {
        target.others = mine.iter().map(|e| e.port).collect();
        return first;
    };
    tracing::debug!(port = entry.port, "using the registered coordinator");
    target.port = entry.port;
    target.port_text = entry.port.to_string();
    Connection::command(
        &target.connect_host,
        target.port,
        request.to_command(),
        Some(CONNECT_TIMEOUT),
    )
}

/// A JSON object written field by field, in order, as DMTCP's `Json` builder does.
struct JsonObject(String);

impl JsonObject {
    fn new() -> Self {
        JsonObject(String::from("{"))
    }

    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        escape_into(&mut self.0, k);
        self.0.push(':');
    }

    fn str(mut self, k: &str, v: &str) -> Self {
        self.key(k);
        escape_into(&mut self.0, v);
        self
    }

    fn num(mut self, k: &str, v: impl std::fmt::Display) -> Self {
        self.key(k);
        let _ = write!(self.0, "{v}");
        self
    }

    fn bool(self, k: &str, v: bool) -> Self {
        self.num(k, v)
    }

    /// A nested object (a key DMTCP does not print: only ever added after its keys).
    fn object(mut self, k: &str, v: JsonObject) -> Self {
        self.key(k);
        self.0.push_str(&v.finish());
        self
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The outcome of one call, in DMTCP's `CoordinatorCmdStatus` terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    NotRunning,
    NotFound,
    /// Not in DMTCP: a checkpoint was attempted and a process failed to write its image.
    CkptFailed,
    /// Not in DMTCP: the coordinator refused us (another user's, wrong secret, ...).
    Refused,
}

impl Outcome {
    fn dmt_name(self) -> &'static str {
        match self {
            Outcome::Success => "DMT_COORD_SUCCESS",
            Outcome::NotRunning => "DMT_COORD_NOT_RUNNING",
            Outcome::NotFound => "DMT_COORD_NOT_FOUND",
            Outcome::CkptFailed => "DMT_COORD_CKPT_FAILED",
            Outcome::Refused => "DMT_COORD_REFUSED",
        }
    }

    fn of(status: CommandStatus) -> Self {
        match status {
            CommandStatus::Success => Outcome::Success,
            CommandStatus::NotRunning | CommandStatus::NoPeers => Outcome::NotRunning,
            CommandStatus::Failed => Outcome::CkptFailed,
        }
    }
}

fn json_head(command: &str, status: &str, host: &str, port: u16) -> JsonObject {
    JsonObject::new()
        .num("schema_version", 1)
        .str("command", command)
        .str("command_status", status)
        .str("coordinator_host", host)
        .num("coordinator_port", port)
}

/// DMTCP's `--list` table (`DmtcpCoordinator::printList`).
fn worker_table(workers: &[WorkerInfo]) -> String {
    let mut o = String::from(
        "Client List:\n#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE, BARRIER\n",
    );
    for w in workers {
        let _ = writeln!(
            o,
            "{}, {}[{}:{}]@{}, {}, WorkerState::{}, {}",
            w.number,
            w.progname,
            w.virtual_pid,
            w.real_pid,
            w.hostname,
            w.upid,
            w.state,
            w.barrier.as_deref().unwrap_or("")
        );
    }
    o
}

/// The JSON object printed for a successful reply.
fn success_json(request: Request, target: &Target, reply: &CommandReply) -> String {
    let head = json_head(
        request.dmt_name(),
        Outcome::Success.dmt_name(),
        &target.display_host,
        target.port,
    );
    let obj = match request {
        Request::Status => head
            .num("num_peers", reply.num_peers)
            .bool("running", reply.running)
            .num("checkpoint_interval", reply.interval),
        Request::List => head.str("workers", &worker_table(&reply.workers)),
        Request::Checkpoint(_) => head.num("num_peers", reply.num_peers),
        Request::Interval(_) => head.num("checkpoint_interval", reply.interval),
        Request::Kill | Request::Quit => head,
    };
    // Not in DMTCP: the last checkpoint's phases (longest over its processes), after DMTCP's
    // keys so those stay byte-identical.
    let with_phases = matches!(
        request,
        Request::Status | Request::Checkpoint(CkptMode::Blocking | CkptMode::KillAfter)
    );
    match reply
        .last_checkpoint
        .as_ref()
        .and_then(|c| c.phases.map(|p| (c, p)))
    {
        Some((c, p)) if with_phases => {
            let ms = |us: u64| us as f64 / 1000.0;
            obj.object(
                "phases",
                JsonObject::new()
                    .num("generation", c.generation)
                    .num("suspend_ms", ms(p.suspend_us))
                    .num("drain_ms", ms(p.drain_us))
                    .num("write_ms", ms(p.write_us))
                    .num("sync_ms", ms(p.sync_us))
                    .num("resume_ms", ms(p.resume_us))
                    .num("total_ms", c.duration_ms),
            )
        }
        _ => obj,
    }
    .finish()
}

/// The text printed on stdout for a successful reply.
fn success_text(request: Request, target: &Target, reply: &CommandReply) -> String {
    let mut o = String::new();
    match request {
        Request::Status | Request::List => {
            let _ = writeln!(
                o,
                "Coordinator:\n  Host: {}\n  Port: {}",
                target.display_host, target.port_text
            );
            if request == Request::Status {
                let _ = writeln!(o, "Status...\n  NUM_PEERS={}", reply.num_peers);
                let _ = writeln!(o, "  RUNNING={}", if reply.running { "yes" } else { "no" });
                if reply.interval != 0 {
                    let _ = writeln!(o, "  CKPT_INTERVAL={}", reply.interval);
                } else {
                    o.push_str("  CKPT_INTERVAL=0 (checkpoint manually)\n");
                }
            } else {
                o.push_str(&worker_table(&reply.workers));
            }
        }
        Request::Interval(secs) => {
            let _ = writeln!(o, "Interval changed to {secs}");
        }
        Request::Checkpoint(_) | Request::Kill | Request::Quit => {}
    }
    o
}

/// The one-line message on stderr for a failure in text mode.
fn failure_text(outcome: Outcome, target: &Target, reply: Option<&CommandReply>) -> String {
    match outcome {
        Outcome::NotFound if target.port_given => {
            "Coordinator not found. Please check port and host.".into()
        }
        Outcome::NotFound if !target.others.is_empty() => {
            let ports: Vec<String> = target.others.iter().map(u16::to_string).collect();
            format!(
                "Coordinator not found. Try specifying port with '--port' (yours on this host: {}).",
                ports.join(", ")
            )
        }
        Outcome::NotFound => "Coordinator not found. Try specifying port with '--port'.".into(),
        Outcome::NotRunning => "Error, computation not in running state.  Either a checkpoint is \
                                currently happening or there are no connected processes."
            .into(),
        Outcome::CkptFailed => {
            let why = reply
                .and_then(|r| r.message.clone())
                .unwrap_or_else(|| "a process failed".into());
            format!("Error, checkpoint failed: {why}")
        }
        Outcome::Refused | Outcome::Success => String::new(),
    }
}

fn usage_failure(json: bool, err: &UsageError) -> ! {
    if json {
        let host = ["DMTCP_COORD_HOST", "DMTCP_HOST"]
            .into_iter()
            .find_map(|k| std::env::var(k).ok())
            .unwrap_or_else(|| "localhost".into());
        let obj = json_head(
            "DMT_INVALID_COORDINATOR_COMMAND",
            "DMT_COORD_INVALID_COMMAND",
            &host,
            DEFAULT_PORT,
        );
        println!("{}", obj.finish());
        std::process::exit(2);
    }
    eprintln!(
        "dmtcp_command: {err}. Usage: dmtcp_command [OPTIONS] COMMAND (see dmtcp_command --help)"
    );
    std::process::exit(1);
}

fn main() {
    dmtcp_cli::init_logging(false);
    // Lossy: a non-UTF-8 argument is then reported as an unknown option, not a panic.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let json = args.iter().any(|a| a == "--json");
    if args.is_empty() {
        eprint!("{USAGE}");
        std::process::exit(1);
    }
    let env = |k: &str| std::env::var(k).ok();
    let opts = match parse(&args) {
        Ok(Parsed::Help) if json => {
            let t = resolve_target(None, None, env).ok();
            let port = t.as_ref().map_or(DEFAULT_PORT, |t| t.port);
            let host = t.map_or_else(|| "localhost".into(), |t| t.display_host);
            println!(
                "{}",
                json_head("DMT_HELP", Outcome::Success.dmt_name(), &host, port).finish()
            );
            return;
        }
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            return;
        }
        Ok(Parsed::Version { json: true }) => {
            let v = JsonObject::new()
                .num("schema_version", 1)
                .str("command", "DMT_VERSION")
                .str("command_status", "DMT_COORD_SUCCESS")
                .str("version", &version_text())
                .finish();
            println!("{v}");
            return;
        }
        Ok(Parsed::Version { json: false }) => {
            println!("{}", version_text());
            return;
        }
        Ok(Parsed::Run(o)) => o,
        Err(e) => usage_failure(json, &e),
    };
    let mut target = match resolve_target(opts.host.clone(), opts.port, env) {
        Ok(t) => t,
        Err(e) => usage_failure(opts.json, &e),
    };
    let request = opts.request;
    let watcher = match request {
        Request::Checkpoint(CkptMode::Blocking | CkptMode::KillAfter) if !opts.json => {
            progress::Watcher::start(&target.connect_host, target.port)
        }
        _ => None,
    };
    let sent = send(&mut target, request);
    if let Some(w) = watcher {
        w.finish();
    }
    let (outcome, reply, error) = match sent {
        Ok(reply) => (Outcome::of(reply.status), Some(reply), None),
        Err(e) if e.is_not_found() => (Outcome::NotFound, None, None),
        Err(e) => (Outcome::Refused, None, Some(e)),
    };
    if opts.json {
        match (&reply, outcome) {
            (Some(r), Outcome::Success) => println!("{}", success_json(request, &target, r)),
            _ => println!(
                "{}",
                json_head(
                    request.dmt_name(),
                    outcome.dmt_name(),
                    &target.display_host,
                    target.port
                )
                .finish()
            ),
        }
    } else if let (Some(r), Outcome::Success) = (&reply, outcome) {
        print!("{}", success_text(request, &target, r));
    } else if outcome != Outcome::Refused {
        eprintln!("{}", failure_text(outcome, &target, reply.as_ref()));
    }
    if let Some(e) = error {
        // Refusals are not DMTCP outcomes: say why in one line, also in JSON mode.
        eprintln!("dmtcp_command: {e}");
    }
    std::process::exit(if outcome == Outcome::Success { 0 } else { 2 });
}

fn version_text() -> String {
    format!(
        "dmtcp_command (DMTCP in Rust) {}",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmtcp_protocol::{UniquePid, WorkerState};

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn run(s: &str) -> Options {
        match parse(&args(s)).unwrap() {
            Parsed::Run(o) => o,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dmtcp_spellings_of_every_command() {
        use CkptMode::*;
        let cases = [
            ("-s", Request::Status),
            ("s", Request::Status),
            ("--status", Request::Status),
            ("-l", Request::List),
            ("--list", Request::List),
            ("c", Request::Checkpoint(Async)),
            ("--checkpoint", Request::Checkpoint(Async)),
            ("-bc", Request::Checkpoint(Blocking)),
            ("bc", Request::Checkpoint(Blocking)),
            ("--bcheckpoint", Request::Checkpoint(Blocking)),
            ("-kc", Request::Checkpoint(KillAfter)),
            ("-ck", Request::Checkpoint(KillAfter)),
            ("-K", Request::Checkpoint(KillAfter)),
            ("--kcheckpoint", Request::Checkpoint(KillAfter)),
            ("-i 5", Request::Interval(5)),
            ("-i5", Request::Interval(5)),
            ("i 7", Request::Interval(7)),
            ("--interval 9", Request::Interval(9)),
            ("--interval=11", Request::Interval(11)),
            ("-k", Request::Kill),
            ("--kill", Request::Kill),
            ("-q", Request::Quit),
            ("q", Request::Quit),
        ];
        for (line, want) in cases {
            assert_eq!(run(line).request, want, "{line}");
        }
    }

    #[test]
    fn host_port_and_json_options() {
        let o = run("--json -h node7 -p 1234 -s");
        assert_eq!(
            (o.host.as_deref(), o.port, o.json),
            (Some("node7"), Some(1234), true)
        );
        let o = run("-p7000 s");
        assert_eq!(o.port, Some(7000));
        let o = run("--coord-host a --coord-port 5 --list");
        assert_eq!((o.host.as_deref(), o.port), (Some("a"), Some(5)));
        let o = run("--port 6 --host b -c");
        assert_eq!((o.host.as_deref(), o.port), (Some("b"), Some(6)));
    }

    #[test]
    fn last_command_wins() {
        assert_eq!(run("-s -l").request, Request::List);
        assert_eq!(run("-l -s").request, Request::Status);
        assert_eq!(run("-i 3 -k").request, Request::Kill);
    }

    #[test]
    fn help_version_and_errors() {
        assert_eq!(parse(&args("--help")).unwrap(), Parsed::Help);
        assert_eq!(parse(&args("-h")).unwrap(), Parsed::Help);
        assert_eq!(parse(&args("--json --help")).unwrap(), Parsed::Help);
        assert_eq!(
            parse(&args("--version")).unwrap(),
            Parsed::Version { json: false }
        );
        assert!(matches!(
            parse(&args("--not-a-command")),
            Err(UsageError::Clap(_))
        ));
        assert!(matches!(
            parse(&args("--interval 12x")),
            Err(UsageError::Clap(_))
        ));
        assert!(matches!(parse(&args("-i12x")), Err(UsageError::Clap(_))));
        assert!(matches!(
            parse(&args("-p 70000 -s")),
            Err(UsageError::Clap(_))
        ));
        assert!(matches!(parse(&args("--json")), Err(UsageError::NoCommand)));
        let Err(UsageError::Clap(msg)) = parse(&args("--bogus")) else {
            panic!()
        };
        assert!(!msg.contains('\n') && msg.contains("--bogus"), "{msg}");
    }

    #[test]
    fn target_precedence() {
        let none = |_: &str| None;
        let t = resolve_target(None, None, none).unwrap();
        assert_eq!(
            (t.display_host.as_str(), t.port, t.port_given, t.local),
            ("localhost", 7779, false, true)
        );
        assert_eq!(t.port_text, "7779 (default port)");
        let env = |k: &str| match k {
            "DMTCP_COORD_PORT" => Some("7001".to_string()),
            "DMTCP_COORD_HOST" => Some("remote.example".to_string()),
            _ => None,
        };
        let t = resolve_target(None, None, env).unwrap();
        assert_eq!(
            (t.display_host.as_str(), t.port, t.port_given, t.local),
            ("remote.example", 7001, true, false)
        );
        let t = resolve_target(Some("127.0.0.1".into()), Some(42), env).unwrap();
        assert_eq!(
            (t.connect_host.as_str(), t.port, t.local),
            ("127.0.0.1", 42, true)
        );
        let bad = |k: &str| (k == "DMTCP_COORD_PORT").then(|| "0x1".to_string());
        assert!(matches!(
            resolve_target(None, None, bad),
            Err(UsageError::BadPortEnv { .. })
        ));
        let deprecated = |k: &str| (k == "DMTCP_PORT").then(|| "7100".to_string());
        assert_eq!(resolve_target(None, None, deprecated).unwrap().port, 7100);
    }

    fn reply() -> CommandReply {
        CommandReply {
            status: CommandStatus::Success,
            num_peers: 3,
            running: true,
            interval: 42,
            comp_id: None,
            generation: 0,
            ckpt_dir: None,
            workers: vec![WorkerInfo {
                number: 1,
                progname: "bash".into(),
                virtual_pid: 40000,
                real_pid: 1234,
                hostname: "node1".into(),
                upid: UniquePid {
                    host_id: 0xab,
                    pid: 1234,
                    time_ns: 0xcd,
                },
                state: WorkerState::Running,
                barrier: None,
            }],
            last_checkpoint: None,
            message: None,
            progress: None,
        }
    }

    fn target() -> Target {
        resolve_target(None, None, |_| None).unwrap()
    }

    #[test]
    fn status_json_matches_dmtcp_byte_for_byte() {
        assert_eq!(
            success_json(Request::Status, &target(), &reply()),
            "{\"schema_version\":1,\"command\":\"DMT_STATUS\",\"command_status\":\"DMT_COORD_SUCCESS\",\
             \"coordinator_host\":\"localhost\",\"coordinator_port\":7779,\"num_peers\":3,\
             \"running\":true,\"checkpoint_interval\":42}"
        );
        assert_eq!(
            success_json(
                Request::Interval(7),
                &target(),
                &CommandReply {
                    interval: 7,
                    ..reply()
                }
            ),
            "{\"schema_version\":1,\"command\":\"DMT_UPDATE_CKPT_INTERVAL\",\"command_status\":\
             \"DMT_COORD_SUCCESS\",\"coordinator_host\":\"localhost\",\"coordinator_port\":7779,\
             \"checkpoint_interval\":7}"
        );
        assert_eq!(
            json_head(
                "DMT_CHECKPOINT",
                Outcome::NotRunning.dmt_name(),
                "localhost",
                7779
            )
            .finish(),
            "{\"schema_version\":1,\"command\":\"DMT_CHECKPOINT\",\"command_status\":\
             \"DMT_COORD_NOT_RUNNING\",\"coordinator_host\":\"localhost\",\"coordinator_port\":7779}"
        );
    }

    #[test]
    fn json_escapes_like_dmtcp() {
        let s = json_head(
            "DMT_STATUS",
            Outcome::NotFound.dmt_name(),
            "bad\"host\nname\u{1}",
            1,
        )
        .finish();
        assert!(
            s.contains(r#""coordinator_host":"bad\"host\nname\u0001""#),
            "{s}"
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["coordinator_host"], "bad\"host\nname\u{1}");
    }

    #[test]
    fn list_table_and_status_text() {
        let table = worker_table(&reply().workers);
        assert_eq!(
            table,
            "Client List:\n#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE, BARRIER\n\
             1, bash[40000:1234]@node1, ab-1234-cd, WorkerState::RUNNING, \n"
        );
        assert_eq!(
            success_text(
                Request::Status,
                &target(),
                &CommandReply {
                    interval: 0,
                    ..reply()
                }
            ),
            "Coordinator:\n  Host: localhost\n  Port: 7779 (default port)\nStatus...\n  NUM_PEERS=3\n  \
             RUNNING=yes\n  CKPT_INTERVAL=0 (checkpoint manually)\n"
        );
    }
}
