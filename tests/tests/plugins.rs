//! The plugin layer end to end: plugins found through `--with-plugin`, events delivered in
//! the documented order, the services and their refusals, the Rust crate's example plugin,
//! the C program API examples and the Python module.

use dmtcp_tests::engine_support::{checkpoint_and_kill, images, restart, wait_lines};
use dmtcp_tests::{Cmd, Env, Output, wait_for};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn bin_dir(env: &Env) -> PathBuf {
    let bin = env.dir.join("bin");
    if !bin.exists() {
        std::fs::create_dir(&bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// Compiles `src` (relative to the repository) with `include/` on the path; `shared` makes a
/// plugin library.
#[track_caller]
fn cc(env: &Env, src: &str, out: &str, shared: bool, extra: &[&str]) -> PathBuf {
    let exe = bin_dir(env).join(out);
    let mut cmd = Cmd::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-O1", "-g", "-Wall", "-pthread", "-I"])
        .arg(repo().join("include"));
    if shared {
        cmd = cmd.args(["-shared", "-fPIC"]);
    }
    // Libraries (-l) must follow the source.
    let o = cmd
        .arg("-o")
        .arg(&exe)
        .arg(repo().join(src))
        .args(extra)
        .capture_in(env.dir.harness())
        .run(Duration::from_secs(60));
    assert_eq!(
        o.code(),
        Some(0),
        "compiling {src} failed:\n{}",
        o.describe()
    );
    exe
}

fn event_log_plugin(env: &Env, name: &str) -> PathBuf {
    cc(
        env,
        "examples/plugins/event-log/event_log.c",
        &format!("libevent_{name}.so"),
        true,
        &[&format!("-DPLUGIN_NAME=\"{name}\"")],
    )
}

fn path_list(libs: &[&Path]) -> String {
    libs.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// Event-log lines per pid, in order: "A INIT", ...
fn events_by_pid(log: &Path) -> (Vec<i32>, BTreeMap<i32, Vec<String>>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut order = Vec::new();
    let mut by: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let pid: i32 = f[2].trim_start_matches("pid=").parse().unwrap();
        if !order.contains(&pid) {
            order.push(pid);
        }
        by.entry(pid)
            .or_default()
            .push(format!("{} {}", f[0], f[1]));
    }
    (order, by)
}

fn seq(s: &str) -> Vec<String> {
    s.split(',').map(|x| x.trim().to_string()).collect()
}

#[track_caller]
fn ok(out: &Output) {
    assert_eq!(out.code(), Some(0), "{}", out.describe());
}

#[test]
fn lifecycle_events_reach_plugins_in_registration_order() {
    let env = Env::new("plugin_lifecycle");
    let coord = env.coordinator(&[]);
    let (a, b) = (event_log_plugin(&env, "A"), event_log_plugin(&env, "B"));
    let prog = cc(
        &env,
        "tests/programs/plugin_events.c",
        "plugin_events",
        false,
        &[],
    );
    let log = env.dir.join("events.log");
    let cmd = env
        .launch_joined(coord.port, ["--with-plugin", &path_list(&[&a, &b])])
        .arg(&prog)
        .env("DMTCP_EVENT_LOG", &log);
    let out = env.run(&cmd, LONG);
    ok(&out);
    let (order, by) = events_by_pid(&log);
    assert_eq!(order.len(), 2, "two processes (parent, child): {by:?}");
    // Pre events (INIT, THREAD_START, ATFORK_PREPARE, PRE_EXEC) run A then B; post events
    // (THREAD_EXIT, ATFORK_PARENT/CHILD, POST_EXEC, EXIT) run B then A.
    assert_eq!(
        by[&order[0]],
        seq(
            "A INIT, B INIT, A THREAD_START, B THREAD_START, B THREAD_EXIT, A THREAD_EXIT, \
             A ATFORK_PREPARE, B ATFORK_PREPARE, B ATFORK_PARENT, A ATFORK_PARENT, B EXIT, A EXIT"
        ),
        "parent"
    );
    assert_eq!(
        by[&order[1]],
        seq("B ATFORK_CHILD, A ATFORK_CHILD, A PRE_EXEC, B PRE_EXEC, \
             A INIT, B INIT, B POST_EXEC, A POST_EXEC, B EXIT, A EXIT"),
        "child, then the program it exec'd"
    );
}

#[test]
fn a_library_without_descriptor_is_reported_and_the_program_still_runs() {
    let env = Env::new("plugin_not_a_plugin");
    let coord = env.coordinator(&[]);
    let lib = cc(
        &env,
        "tests/programs/plugin_events.c",
        "libnotaplugin.so",
        true,
        &[],
    );
    let out = env.run(
        &env.launch_joined(coord.port, ["--with-plugin"])
            .arg(&lib)
            .arg("true"),
        LONG,
    );
    ok(&out);
    let err = out.stderr_str();
    assert!(
        err.contains("does not export dmtcp_plugin_descriptor()")
            && err.contains("libnotaplugin.so"),
        "{}",
        out.describe()
    );
}

#[test]
fn key_value_store_at_init_is_shared_by_the_computation() {
    let env = Env::new("plugin_kv_init");
    let coord = env.coordinator(&[]);
    let kv = cc(&env, "tests/programs/plugin_kv.c", "libkv.so", true, &[]);
    let outfile = env.dir.join("kv.out");
    // sh and the two programs it starts each run INIT with the plugin: three members.
    let cmd = env
        .launch_joined(coord.port, ["--with-plugin"])
        .arg(&kv)
        .args(["sh", "-c", "/bin/true & /bin/true & wait"])
        .env("PLUGIN_KV_OUT", &outfile);
    ok(&env.run(&cmd, LONG));
    let text = std::fs::read_to_string(&outfile).unwrap();
    let mut per_pid: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        per_pid
            .entry(f[0].into())
            .or_default()
            .insert(f[1].into(), f[2].parse().unwrap());
    }
    assert_eq!(per_pid.len(), 3, "{text}");
    let mut members: Vec<i64> = per_pid.values().map(|m| m["member"]).collect();
    members.sort();
    assert_eq!(
        members,
        [1, 2, 3],
        "each INIT incremented one shared counter: {text}"
    );
    for (pid, m) in &per_pid {
        let want = [
            ("incr_rc", 0),
            ("min_rc", 0),
            ("max_rc", 0),
            ("lo_le_pid", 1),
            ("hi_ge_pid", 1),
            ("set_rc", 0),
            ("get_len", format!("value-of-{pid}").len() as i64),
            ("get_same", 1),
            ("get_missing", -4),
            ("not_a_number", -6),
            ("barrier_at_init", -2),
            ("save_at_init", -2),
        ];
        for (k, v) in want {
            assert_eq!(m.get(k), Some(&v), "{k} of {pid}: {text}");
        }
    }
}

#[test]
fn services_from_the_program_thread() {
    let env = Env::new("plugin_services");
    let coord = env.coordinator(&[]);
    let prog = cc(
        &env,
        "tests/programs/plugin_services.c",
        "plugin_services",
        false,
        &[],
    );
    let out = env.run(&env.launch_joined(coord.port, [&prog]), LONG);
    ok(&out);
    let got: BTreeMap<String, i64> = out
        .stdout_str()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect();
    let want: BTreeMap<String, i64> = [
        ("api", 1),
        ("kv_from_main", -2),
        ("barrier_from_main", -2),
        ("load_missing", -4),
        ("vid1", 100),
        ("vid2", 200),
        ("vid1_again", 100),
        ("update", 0),
        ("real1", 201),
        ("virt_of_new", 100),
        ("virt_of_old", -4),
        ("vid3", 201),
        ("other_table", -4),
        ("unregister", 0),
        ("real2_gone", -4),
        ("protect", 0),
        ("is_protected_42", 1),
        ("is_protected_43", 0),
        ("is_protected_coord", 1),
        ("unprotect", 0),
        ("is_protected_42_after", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, want, "{}", out.describe());
    let err = out.stderr_str();
    assert!(
        err.contains("warning: plugin_services: a line from dmtcp_log"),
        "{}",
        out.describe()
    );
    assert!(
        err.contains("key-value request refused"),
        "the refusal says why: {}",
        out.describe()
    );
}

#[test]
fn rust_plugin_numbers_members_at_init() {
    let env = Env::new("plugin_rust_init");
    let coord = env.coordinator(&[]);
    let lib = env.tools.path("libdmtcp_example_rust_plugin.so");
    let log = env.dir.join("rust.log");
    let cmd = env
        .launch_joined(coord.port, ["--with-plugin"])
        .arg(&lib)
        .arg("/bin/true")
        .env("DMTCP_EXAMPLE_LOG", &log);
    ok(&env.run(&cmd, LONG));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text, "rust INIT member=1 gen=0\nrust EXIT member=1 gen=0\n");
}

/// Copies runtime/python/dmtcp.py where the test user can read it; returns its directory.
fn python_dir(env: &Env) -> PathBuf {
    let dir = bin_dir(env).join("python");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in [
        "runtime/python/dmtcp.py",
        "examples/plugins/python/selfckpt.py",
    ] {
        let src = repo().join(f);
        std::fs::copy(&src, dir.join(src.file_name().unwrap())).unwrap();
    }
    dir
}

const PY_PROBE: &str = r#"
import dmtcp
print("enabled", dmtcp.is_enabled())
try:
    s = dmtcp.status()
    print("status", s.peers, s.running, s.generation, s.num_checkpoints, s.num_restarts,
          s.ckpt_filename, bool(s.uniquepid), bool(s.computation_id), bool(s.ckpt_dir))
except dmtcp.NotEnabled as e:
    print("status NotEnabled", e)
with dmtcp.checkpoints_delayed():
    with dmtcp.checkpoints_delayed():
        try:
            print("inside", dmtcp.checkpoint())
        except dmtcp.NotEnabled:
            print("inside NotEnabled")
        except dmtcp.CheckpointFailed:
            print("inside refused")
print("after block")
"#;

#[test]
fn python_module_without_the_runtime_says_so() {
    let env = Env::new("plugin_python_plain");
    let dir = python_dir(&env);
    for py in ["/usr/bin/python3", "python3"] {
        let out = env.run(
            &Cmd::new(py)
                .args(["-c", PY_PROBE])
                .env("PYTHONPATH", &dir)
                .capture_in(env.dir.harness()),
            LONG,
        );
        ok(&out);
        let s = out.stdout_str();
        assert!(
            s.starts_with(
                "enabled False\nstatus NotEnabled dmtcp.status() needs the checkpoint runtime"
            ),
            "{py}: {s}"
        );
        assert!(s.ends_with("inside NotEnabled\nafter block\n"), "{py}: {s}");
    }
}

#[test]
fn python_module_under_the_runtime() {
    let env = Env::new("plugin_python_launched");
    let coord = env.coordinator(&[]);
    let dir = python_dir(&env);
    let cmd = env
        .launch_joined(coord.port, ["/usr/bin/python3", "-c", PY_PROBE])
        .env("PYTHONPATH", &dir);
    let out = env.run(&cmd, LONG);
    ok(&out);
    assert_eq!(
        out.stdout_str(),
        "enabled True\nstatus 1 True 0 0 0 None True True True\ninside refused\nafter block\n",
        "{}",
        out.describe()
    );
}

#[test]
fn critical_section_delays_the_checkpoint() {
    let env = Env::new("plugin_critical");
    let coord = env.coordinator(&[]);
    let prog = cc(
        &env,
        "examples/plugins/c-api/critical.c",
        "critical",
        false,
        &[],
    );
    let marker = env.dir.join("inside");
    let ckdir = env.dir.join("ckpt");
    std::fs::create_dir(&ckdir).unwrap();
    std::fs::set_permissions(&ckdir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut p = env.spawn(
        &env.launch_joined(coord.port, ["--ckptdir"])
            .arg(&ckdir)
            .arg(&prog)
            .arg(&marker)
            .arg("4"),
    );
    wait_for(
        "the critical section",
        LONG,
        || marker.exists().then_some(()),
        || env.diagnostics(),
    );
    let images = || count_images(&ckdir);
    let req = env.command(["--coord-port", &coord.port.to_string(), "--checkpoint"]);
    ok(&req);
    // While the program is inside, no image may appear.
    while marker.exists() {
        assert_eq!(
            images(),
            0,
            "an image was written inside the critical section\n{}",
            env.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for(
        "the delayed image",
        LONG,
        || (images() > 0).then_some(()),
        || env.diagnostics(),
    );
    let out = p.wait_timeout(LONG).expect("critical exits");
    ok(&out);
    assert_eq!(
        out.stdout_str(),
        "inside\nleft\nconsistent 400 400\n",
        "{}",
        out.describe()
    );
}

/// Complete images (`*.dmtcp`) anywhere under `dir`.
fn count_images(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_images(&p)
            } else {
                p.extension().is_some_and(|x| x == "dmtcp") as usize
            }
        })
        .sum()
}

/// Lines of an event log without pid/tid: "A PRESUSPEND gen=1".
fn event_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", f[0], f[1], f[4])
        })
        .collect()
}

#[test]
fn checkpoint_events_sections_and_restart_reach_plugins_in_order() {
    let env = Env::new("plugin_ckpt_events");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let (a, b) = (event_log_plugin(&env, "A"), event_log_plugin(&env, "B"));
    let rust = env.tools.path("libdmtcp_example_rust_plugin.so");
    let prog = env.program("ckpt_counter");
    let (log, rlog) = (env.dir.join("events.log"), env.dir.join("rust.log"));
    let cmd = env
        .launch_joined(port, ["--with-plugin", &path_list(&[&a, &b, &rust])])
        .arg(&prog)
        .env("DMTCP_EVENT_LOG", &log)
        .env("DMTCP_EXAMPLE_LOG", &rlog);
    let mut run = env.spawn(&cmd);
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 3);
    ok(&env.command(["--coord-port", &port.to_string(), "--bcheckpoint"]));
    wait_lines(&env, &mut run, "tick", 6);
    checkpoint_and_kill(&env, port, run);

    let got = event_lines(&log);
    let want = seq("A INIT gen=0, B INIT gen=0, \
         A PRESUSPEND gen=1, B PRESUSPEND gen=1, A PRECHECKPOINT gen=1, B PRECHECKPOINT gen=1, \
         B RESUME gen=1, A RESUME gen=1, B THREAD_RESUME gen=0, A THREAD_RESUME gen=0, \
         A PRESUSPEND gen=2, B PRESUSPEND gen=2, A PRECHECKPOINT gen=2, B PRECHECKPOINT gen=2");
    assert_eq!(got, want, "{}", env.diagnostics());
    assert_eq!(
        std::fs::read_to_string(&rlog).unwrap(),
        "rust INIT member=1 gen=0\n\
         rust PRESUSPEND member=1 gen=1\nrust PRECHECKPOINT member=1 gen=1\n\
         rust RESUME member=1 gen=1 saved=1\n\
         rust PRESUSPEND member=1 gen=2\nrust PRECHECKPOINT member=1 gen=2\n"
    );

    let imgs = images(env.dir.path(), "ckpt_counter");
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    let inspect = env.run(&env.tool("dmtcp_inspect").arg(&imgs[0]), LONG);
    ok(&inspect);
    assert!(
        inspect.stdout_str().contains("plugin:rust-example"),
        "the image holds the plugin's section: {}",
        inspect.describe()
    );

    let mut r = restart(&env, port, &imgs[0]);
    wait_lines(&env, &mut r, "tick", 3);
    let after = event_lines(&log);
    assert_eq!(
        after[want.len()..],
        seq("B RESTART gen=2, A RESTART gen=2, B THREAD_RESUME gen=0, A THREAD_RESUME gen=0"),
        "{}",
        env.diagnostics()
    );
    let rust_after = std::fs::read_to_string(&rlog).unwrap();
    assert!(
        rust_after.ends_with("rust RESTART member=1 gen=2 saved=2\n"),
        "the section saved at generation 2 is loaded after restart: {rust_after}"
    );
}

/// Runs `dmtcp_restart` on `image` to the end (for programs that finish after a restart).
fn restart_to_end(env: &Env, port: u16, image: &Path) -> Output {
    let cmd = env
        .tool("dmtcp_restart")
        .args(["--join-coordinator", "--coord-port", &port.to_string()])
        .arg(image);
    env.run(&cmd, LONG)
}

#[test]
fn c_program_checkpoints_itself_and_checks_its_state_after_restart() {
    let env = Env::new("plugin_c_selfckpt");
    let coord = env.coordinator(&[]);
    let prog = cc(
        &env,
        "examples/plugins/c-api/selfckpt.c",
        "selfckpt",
        false,
        &[],
    );
    // Without the runtime the weak symbols answer "not present" and the program still works.
    let plain = env.run(&env.cmd(&prog), LONG);
    ok(&plain);
    assert_eq!(
        plain.stdout_str(),
        "phase1 14999950000\noutcome none\nstate ok\ndone 15000249999\n"
    );
    let out = env.run(&env.launch_joined(coord.port, [&prog]), LONG);
    ok(&out);
    assert_eq!(
        out.stdout_str(),
        "phase1 14999950000\noutcome checkpoint\nstate ok\ndone 15000249999\n"
    );
    let imgs = images(env.dir.path(), "selfckpt");
    assert_eq!(imgs.len(), 1, "{imgs:?}\n{}", env.diagnostics());
    let again = restart_to_end(&env, coord.port, &imgs[0]);
    ok(&again);
    assert_eq!(
        again.stdout_str(),
        "outcome restart\nstate ok\ndone 15000249999\n",
        "{}",
        again.describe()
    );
}

#[test]
fn python_program_checkpoints_itself_and_checks_its_state_after_restart() {
    let env = Env::new("plugin_py_selfckpt");
    let coord = env.coordinator(&[]);
    let dir = python_dir(&env);
    let script = dir.join("selfckpt.py");
    let cmd = env
        .launch_joined(coord.port, ["/usr/bin/python3"])
        .arg(&script)
        .env("PYTHONPATH", &dir);
    let out = env.run(&cmd, LONG);
    ok(&out);
    let lines: Vec<String> = out.stdout_str().lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{}", out.describe());
    assert!(
        lines[0].starts_with("outcome checkpoint state-ok "),
        "{}",
        out.describe()
    );
    assert_eq!(lines[1], "generation 1 checkpoints 1 restarts 0");
    assert_eq!(lines[2], "done 333283340000");
    let imgs = images(env.dir.path(), "python3");
    assert_eq!(imgs.len(), 1, "{imgs:?}\n{}", env.diagnostics());
    let again = restart_to_end(&env, coord.port, &imgs[0]);
    ok(&again);
    let digest = lines[0].rsplit(' ').next().unwrap();
    assert_eq!(
        again.stdout_str(),
        format!(
            "outcome restart state-ok {digest}\ngeneration 1 checkpoints 0 restarts 1\ndone 333283340000\n"
        ),
        "{}",
        again.describe()
    );
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL server of the test user on a private socket directory (no TCP).
struct Postgres {
    conninfo: String,
}

impl Postgres {
    #[track_caller]
    fn start(env: &Env) -> Postgres {
        assert!(
            Path::new(PG_BIN).join("initdb").exists(),
            "PostgreSQL 15 server binaries not found in {PG_BIN}: install Debian's `postgresql` \
             package (tests/run.sh does)"
        );
        let data = env.dir.join("pgdata");
        let sock = env.dir.join("pgsock");
        std::fs::create_dir(&sock).unwrap();
        let _ = std::os::unix::fs::chown(&sock, Some(env.user.uid), Some(env.user.gid));
        let init = env.run(
            &env.cmd(Path::new(PG_BIN).join("initdb"))
                .args(["--auth=trust", "--no-sync", "-D"])
                .arg(&data),
            Duration::from_secs(120),
        );
        ok(&init);
        let port = 20000 + std::process::id() % 20000;
        let opts = format!(
            "-k {} -p {port} -c listen_addresses= -c fsync=off",
            sock.display()
        );
        let start = env.run(
            &env.cmd(Path::new(PG_BIN).join("pg_ctl"))
                .args(["-w", "-t", "60", "-o", &opts, "-l"])
                .arg(env.dir.join("pg.log"))
                .arg("-D")
                .arg(&data)
                .arg("start"),
            Duration::from_secs(90),
        );
        ok(&start);
        Postgres {
            conninfo: format!("host={} port={port} dbname=postgres", sock.display()),
        }
    }

    /// `psql -c query` as the test user; returns the unaligned, tuples-only output.
    fn query(&self, env: &Env, q: &str) -> String {
        let out = env.run(
            &env.cmd("/usr/bin/psql")
                .args(["-X", "-At", "-d", &self.conninfo, "-c", q]),
            LONG,
        );
        ok(&out);
        out.stdout_str().trim().to_string()
    }
}

fn pg_prog(env: &Env) -> (PathBuf, PathBuf) {
    let plugin = cc(
        env,
        "examples/plugins/postgres/pg_reconnect.c",
        "libpg_reconnect.so",
        true,
        &["-I/usr/include/postgresql", "-ldl"],
    );
    let prog = cc(
        env,
        "examples/plugins/postgres/pg_rows.c",
        "pg_rows",
        false,
        &["-I/usr/include/postgresql", "-lpq"],
    );
    (plugin, prog)
}

#[test]
fn postgres_connection_is_closed_at_checkpoint_and_reopened_after_resume() {
    let env = Env::new("plugin_pg_resume");
    let pg = Postgres::start(&env);
    let coord = env.coordinator(&[]);
    let (plugin, prog) = pg_prog(&env);
    let log = env.dir.join("pg-plugin.log");
    let cmd = env
        .launch_joined(coord.port, ["--with-plugin"])
        .arg(&plugin)
        .arg(&prog)
        .args([pg.conninfo.as_str(), "30", "15"])
        .env("PG_RECONNECT_LOG", &log);
    let out = env.run(&cmd, LONG);
    ok(&out);
    let lines: Vec<String> = out.stdout_str().lines().map(String::from).collect();
    assert_eq!(lines.len(), 4, "{}", out.describe());
    assert_eq!(lines[1], "outcome checkpoint");
    assert_ne!(
        lines[0], lines[2],
        "a new server backend after the checkpoint: {lines:?}"
    );
    assert_eq!(lines[3], "rows 30 sum 465 ok");
    let plog = std::fs::read_to_string(&log).unwrap();
    let events: Vec<&str> = plog.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(events, ["disconnected", "resume", "reconnected"], "{plog}");
    assert_eq!(
        pg.query(&env, "SELECT count(*), sum(i) FROM rows"),
        "30|465"
    );
}

#[test]
fn postgres_rows_committed_before_the_checkpoint_survive_and_the_restart_goes_on() {
    let env = Env::new("plugin_pg_restart");
    let pg = Postgres::start(&env);
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let (plugin, prog) = pg_prog(&env);
    // pg_rows prints nothing per row: count rows on the server to know it is under way.
    let cmd = env
        .launch_joined(port, ["--with-plugin"])
        .arg(&plugin)
        .arg(&prog)
        .args([pg.conninfo.as_str(), "80", "0", "50"]);
    let mut run = env.spawn(&cmd);
    env.wait_peers_of(port, 1, &mut run);
    wait_for(
        "10 rows",
        LONG,
        || {
            let n: i64 = pg
                .query(&env, "SELECT count(*) FROM rows")
                .parse()
                .unwrap_or(0);
            (n >= 10).then_some(())
        },
        || env.diagnostics(),
    );
    checkpoint_and_kill(&env, port, run);
    let at_ckpt: i64 = pg.query(&env, "SELECT count(*) FROM rows").parse().unwrap();
    assert!(
        (10..80).contains(&at_ckpt),
        "{at_ckpt} rows at the checkpoint"
    );
    assert_eq!(
        pg.query(&env, "SELECT count(*) = max(i) FROM rows"),
        "t",
        "rows 1..n, no gap"
    );
    let imgs = images(env.dir.path(), "pg_rows");
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    let again = restart_to_end(&env, port, &imgs[0]);
    ok(&again);
    assert!(
        again.stdout_str().ends_with("rows 80 sum 3240 ok\n"),
        "the restarted program reconnected and inserted the rest exactly once: {}",
        again.describe()
    );
    assert_eq!(
        pg.query(&env, "SELECT count(*), sum(i) FROM rows"),
        "80|3240"
    );
}

/// "tick <n> id <id> v0 <a> v1 <b>" lines: (n, id, a, b).
fn sem_ticks(out: &str) -> Vec<(u64, i64, i64, i64)> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 8 && f[0] == "tick").then(|| {
                let n = |i: usize| f[i].parse::<i64>().unwrap();
                (n(1) as u64, n(3), n(5), n(7))
            })
        })
        .collect()
}

#[test]
fn virtual_semaphore_id_survives_a_new_real_id_at_restart() {
    let env = Env::new("plugin_sem_vid");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let plugin = cc(
        &env,
        "examples/plugins/vid-semaphore/sem_vid.c",
        "libsem_vid.so",
        true,
        &["-ldl"],
    );
    let prog = cc(
        &env,
        "examples/plugins/vid-semaphore/sem_counter.c",
        "sem_counter",
        false,
        &[],
    );
    let mut run = env.spawn(
        &env.launch_joined(port, ["--with-plugin"])
            .arg(&plugin)
            .arg(&prog),
    );
    env.wait_peers_of(port, 1, &mut run);
    wait_lines(&env, &mut run, "tick", 5);
    let before = sem_ticks(&checkpoint_and_kill(&env, port, run));
    let (last, id, _, _) = *before.last().unwrap();
    assert!(
        before
            .iter()
            .all(|t| t.1 == id && t.2 == 5 && t.3 == t.0 as i64),
        "{before:?}"
    );
    // The old set disappears, as after a reboot; the restarted program must not notice.
    ok(&env.run(&env.cmd("ipcrm").args(["-s", &id.to_string()]), LONG));

    let imgs = images(env.dir.path(), "sem_counter");
    assert_eq!(imgs.len(), 1, "{imgs:?}");
    let mut r = restart(&env, port, &imgs[0]);
    wait_lines(&env, &mut r, "tick", 5);
    let err = r.stderr_so_far();
    let new_real: i64 = err
        .lines()
        .find_map(|l| l.split(&format!("sem-vid: virtual {id} -> real ")).nth(1))
        .unwrap_or_else(|| panic!("no recreation line: {err}"))
        .trim()
        .parse()
        .unwrap();
    let after = sem_ticks(&checkpoint_and_kill(&env, port, r));
    let _ = env.run(&env.cmd("ipcrm").args(["-s", &new_real.to_string()]), LONG);
    assert_ne!(new_real, id, "the kernel gave the set a new id");
    assert_eq!(
        after.first().map(|t| t.0),
        Some(last + 1),
        "continues: {after:?}"
    );
    assert!(
        after
            .iter()
            .all(|t| t.1 == id && t.2 == 5 && t.3 == t.0 as i64),
        "same virtual id, restored values, working semop after restart: {after:?}"
    );
}

#[test]
fn barriers_order_publish_and_query_across_processes() {
    let env = Env::new("plugin_barriers");
    let coord = env.coordinator(&[]);
    let port = coord.port;
    let plugin = cc(
        &env,
        "tests/programs/plugin_barrier.c",
        "libbarrier.so",
        true,
        &[],
    );
    let prog = env.program("ckpt_counter");
    let outfile = env.dir.join("barrier.out");
    let script = format!("{0} & {0} & wait", prog.display());
    let cmd = env
        .launch_joined(port, ["--with-plugin"])
        .arg(&plugin)
        .args(["sh", "-c", &script])
        .env("PLUGIN_BARRIER_OUT", &outfile);
    let mut run = env.spawn(&cmd);
    env.wait_peers_of(port, 3, &mut run);
    ok(&env.command(["--coord-port", &port.to_string(), "--bcheckpoint"]));
    // -bc returns once the images are written; RESUME hooks run right after.
    let text = wait_for(
        "three RESUME lines",
        LONG,
        || {
            let t = std::fs::read_to_string(&outfile).unwrap_or_default();
            (t.matches(" resume ").count() == 3).then_some(t)
        },
        || env.diagnostics(),
    );
    let mut by_event: BTreeMap<&str, Vec<(i32, &str, i64)>> = BTreeMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        by_event.entry(f[1]).or_default().push((
            f[2].parse().unwrap(),
            f[0],
            f[3].parse().unwrap(),
        ));
    }
    let pids: std::collections::BTreeSet<&str> =
        text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(pids.len(), 3, "sh and its two programs: {text}");
    let max_pid: i64 = pids
        .iter()
        .map(|p| p.parse::<i64>().unwrap())
        .max()
        .unwrap();
    for (event, want) in [("count", 3), ("maxpid", max_pid), ("resume", 0)] {
        let got = &by_event[event];
        assert_eq!(got.len(), 3, "{event}: {text}");
        assert!(
            got.iter().all(|(rc, _, v)| *rc == 0 && *v == want),
            "{event}: every process sees {want} after the barrier: {text}"
        );
    }
}
