//! `dmtcp_coordinator`: parses options, binds (or adopts) the port, detaches if asked, and runs
//! the server of `dmtcp-coordinator`. Errors are one line and exit 1.

use clap::Parser;
use dmtcp_cli::{die, find_shipped};
use dmtcp_coordinator::daemon::{self, Readiness};
use dmtcp_coordinator::settings::{Options, Settings, init_logging};
use dmtcp_coordinator::{CompConfig, Server, listen};
use std::io::IsTerminal;

fn parse_options() -> Options {
    match Options::try_parse() {
        Ok(o) => o,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // clap's first line names the problem; the usage block would drown it.
            let text = e.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("bad option")
                .trim_start_matches("error: ");
            die(1, format!("{first} (see --help)"))
        }
    }
}

fn main() {
    let settings = Settings::resolve(parse_options()).unwrap_or_else(|e| die(1, e));
    if let Err(e) = init_logging(settings.quiet, settings.logfile.as_deref()) {
        die(1, format!("cannot open the log file: {e}"));
    }
    let listener = match settings.listen_fd {
        Some(fd) => listen::adopt_fd(fd),
        None => listen::bind_port(&settings.listen_host, settings.port),
    }
    .unwrap_or_else(|e| die(1, e));
    // Fork before any thread exists; the parent waits until we are ready.
    let readiness = settings.daemon.then(|| {
        daemon::detach(settings.logfile.as_deref())
            .unwrap_or_else(|e| die(1, format!("cannot detach: {e}")))
    });
    let fail = |readiness: Option<Readiness>, msg: String| -> ! {
        if let Some(r) = readiness {
            r.failed(&msg);
        }
        die(1, msg)
    };
    let host = listen::published_host(&settings.listen_host);
    let comp = CompConfig {
        interval: settings.interval,
        ckpt_dir: settings.ckptdir.as_ref().map(|p| p.display().to_string()),
        kill_after_ckpt: settings.kill_after_ckpt,
        exit_on_last: settings.exit_on_last,
        timeout: settings.timeout,
        stale_timeout: settings.stale_timeout,
        coord_host: host.clone(),
        cwd: std::env::current_dir().unwrap_or_else(|_| "/".into()),
        restart_bin: find_shipped("dmtcp_restart")
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "dmtcp_restart".into()),
        ..CompConfig::default()
    };
    let server = match Server::new(listener, comp) {
        Ok(s) => s,
        Err(e) => fail(readiness, e.to_string()),
    };
    if let Some(path) = &settings.port_file
        && let Err(e) = listen::write_port_file(path, server.port())
    {
        dmtcp_protocol::registry::unregister(server.coord_id());
        fail(
            readiness,
            format!("cannot write port file {}: {e}", path.display()),
        );
    }
    // DMTCP's interactive keys, when run in a terminal.
    let console = !settings.daemon && std::io::stdin().is_terminal();
    let line = format!(
        "dmtcp_coordinator: listening on {host}:{} (coordinator {}, pid {}){}",
        server.port(),
        server.coord_id(),
        std::process::id(),
        if console { "; type ? for commands" } else { "" }
    );
    match readiness {
        Some(r) => r.ready(if settings.quiet { "" } else { &line }),
        None if !settings.quiet => println!("{line}"),
        None => {}
    }
    if let Err(e) = server.with_console(console).run() {
        die(1, e);
    }
}
