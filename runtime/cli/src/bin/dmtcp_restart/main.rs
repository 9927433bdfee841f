//! `dmtcp_restart`: restart processes from checkpoint images.
//!
//! For each image (one process per image; the first is this process, the others forked
//! children): validate it fully, join a coordinator as a restarting process, decompress the
//! saved memory into staging mappings, load the freestanding restorer into the hole and jump
//! to it. The restorer rebuilds the address space and enters the restored runtime library,
//! which recreates the threads and finishes the restart with the coordinator.

mod hole;
mod images;
mod lazy;
mod pager;
mod progress;
mod shm;
mod stage;
mod sysv;
mod tree;
mod uffd;

use clap::{ArgAction, Parser};
use dmtcp_cli::launch::CoordArgs;
use dmtcp_cli::pidns::PidMode;
use dmtcp_cli::{die, find_shipped};
use dmtcp_protocol::{
    Assignment, Connection, CoordMsg, KvOp, KvRequest, RestartHello, Role, WorkerMsg,
};
use dmtcp_restorer::abi::{
    HOLE_LEN, HOLE_START, KernelArea, RESTART_EXACT_TIDS, RESTART_LAZY, Range,
};
use std::os::fd::IntoRawFd;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// When this command started: the start-up path logs each step's elapsed time (debug level,
/// `DMTCP_LOG=debug`) so the fixed cost of a restart can be broken down.
static STARTED: OnceLock<Instant> = OnceLock::new();

/// Logs that the start-up path reached `step`, with the milliseconds since the command began.
fn mark(step: &str) {
    let ms = STARTED.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3;
    tracing::debug!(elapsed_ms = format_args!("{ms:.1}"), "restart: {step}");
}

/// The runtime's protected descriptors (see runtime/preload/src/settings.rs).
const COORD_FD: i32 = 821;
const LOG_FD: i32 = 822;
const ASSIGNMENT_SECTION: &str = "assignment";
const PID_NAMESPACE_SECTION: &str = "pid-namespace";
/// The launch's `--pid-mode`, recorded by the runtime (runtime/preload/src/vids/sync.rs).
const PID_MODE_SECTION: &str = "pid-mode";

#[derive(Parser, Debug)]
#[command(
    name = "dmtcp_restart",
    version,
    about = "Restart processes from checkpoint images",
    disable_help_flag = true,
    override_usage = "dmtcp_restart [OPTIONS] <IMAGE>... | dmtcp_restart [OPTIONS] --restartdir DIR"
)]
struct Args {
    #[command(flatten)]
    coord: CoordArgs,
    /// Directory for later checkpoint images.
    #[arg(short = 'c', long = "ckptdir", value_name = "DIR")]
    ckptdir: Option<PathBuf>,
    /// Restart the newest complete generation of images in DIR.
    #[arg(long = "restartdir", value_name = "DIR")]
    restartdir: Option<PathBuf>,
    /// Directory for temporary files (accepted for compatibility).
    #[arg(short = 't', long = "tmpdir", value_name = "DIR")]
    tmpdir: Option<PathBuf>,
    /// Restart images owned by another user, and skip other strict checks.
    #[arg(long = "no-strict-checking")]
    no_strict_checking: bool,
    /// How many processes the whole computation has, when this command restarts only some of
    /// them (the others on other hosts); the restart script passes it. Default: the images given.
    #[arg(long = "computation-size", value_name = "N")]
    computation_size: Option<u32>,
    /// Ids after restart: exact in a new pid namespace, or virtual (translated); default:
    /// the mode the computation was launched with (env DMTCP_PID_MODE).
    #[arg(long = "pid-mode", value_name = "MODE", value_enum)]
    pid_mode: Option<PidMode>,
    /// Lazy restart (env DMTCP_LAZY_RESTART=1): start the program at once and load its large
    /// memory regions on first touch and in the background (userfaultfd); falls back to a
    /// full load where userfaultfd is not available.
    #[arg(long = "lazy")]
    lazy: bool,
    /// Fewer messages (env DMTCP_QUIET).
    #[arg(short = 'q', long = "quiet", action = ArgAction::SetTrue)]
    quiet: bool,
    /// Print help.
    #[arg(long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// The images to restart.
    #[arg(value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// This process's [vvar], [vvar_vclock], [vdso] (current addresses).
fn own_kernel_areas() -> [KernelArea; 3] {
    let mut out = [KernelArea::default(); 3];
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    for line in maps.lines() {
        let i = if line.ends_with("[vvar]") {
            0
        } else if line.ends_with("[vvar_vclock]") {
            1
        } else if line.ends_with("[vdso]") {
            2
        } else {
            continue;
        };
        let range = line.split(' ').next().unwrap_or("");
        let (s, e) = range.split_once('-').unwrap_or(("0", "0"));
        let s = u64::from_str_radix(s, 16).unwrap_or(0);
        let e = u64::from_str_radix(e, 16).unwrap_or(0);
        out[i] = KernelArea {
            current: s,
            target: 0,
            len: e.saturating_sub(s),
        };
    }
    out
}

fn own_fingerprint(k: &[KernelArea; 3]) -> [u8; 48] {
    let v = &k[2];
    let bytes: &[u8] = if v.len == 0 {
        &[]
    } else {
        // SAFETY: our own [vdso] mapping is readable.
        unsafe { std::slice::from_raw_parts(v.current as *const u8, v.len as usize) }
    };
    dmtcp_restorer::abi::vdso_fingerprint(k, bytes)
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn main() {
    STARTED.get_or_init(Instant::now);
    let args = Args::parse();
    let quiet = args.quiet || env_flag("DMTCP_QUIET");
    dmtcp_cli::init_logging(quiet);
    let paths = match &args.restartdir {
        Some(dir) => images::from_restartdir(dir).unwrap_or_else(|e| die(1, e)),
        None if args.images.is_empty() => die(
            2,
            "no image given: dmtcp_restart IMAGE... or dmtcp_restart --restartdir DIR",
        ),
        None => args.images.clone(),
    };
    let kernel = own_kernel_areas();
    let fp = own_fingerprint(&kernel);
    let mut checked = Vec::new();
    for p in &paths {
        let p = std::path::absolute(p).unwrap_or_else(|_| p.clone());
        checked
            .push(images::check(&p, !args.no_strict_checking, &fp).unwrap_or_else(|e| die(1, e)));
    }
    // Every frame is verified before the coordinator hears of us: here for a computation of
    // several processes (none may start if one image is bad), while staging for a single one.
    if checked.len() > 1 {
        for c in &checked {
            if let Err(e) = c.image.verify_all() {
                die(1, format_args!("{}: {e}", c.path.display()));
            }
        }
    }

    mark("images checked");
    let coord = args.coord.connect(quiet);
    mark("coordinator found or started");
    // SAFETY: single-threaded at this point.
    unsafe { std::env::set_var(dmtcp_protocol::auth::SECRET_ENV, &coord.secret_env) };

    let num_peers = checked.len() as u32;
    if let Some(n) = args.computation_size
        && n < num_peers
    {
        die(
            1,
            format_args!("--computation-size {n} is smaller than the {num_peers} images given"),
        );
    }
    let mut choice = id_choice(&args, &checked, quiet);
    let tree = tree::build(&checked);
    // Created before the tree is forked, so every restored process inherits them.
    let shared = shm::prepare(&checked.iter().collect::<Vec<_>>()).unwrap_or_else(|e| die(1, e));
    let ipc = sysv::collect(&checked.iter().collect::<Vec<_>>()).unwrap_or_else(|e| die(1, e));
    if !ipc.is_empty() && choice == IdChoice::TryExact {
        // SysV objects are recreated on different sides of the namespace in the two modes:
        // decide before, with a probe.
        choice = if dmtcp_cli::pidns::available() {
            IdChoice::Exact
        } else {
            IdChoice::Virtual
        };
    }
    if !ipc.is_empty() && choice == IdChoice::Virtual {
        // Virtual ids: a user namespace of our own still lets the SysV ids be exact.
        sysv::enter_user_namespace().unwrap_or_else(|e| die(1, e));
        sysv::recreate(&ipc, &checked.iter().collect::<Vec<_>>()).unwrap_or_else(|e| die(1, e));
    }
    let exact = enter_namespace(choice);
    tracing::info!(
        "process ids: {} mode",
        if exact { "namespace" } else { "virtual" }
    );
    mark("pid mode chosen (namespace entered in namespace mode)");
    let ctx = Ctx {
        shared: &shared,
        args: &args,
        host: &coord.host,
        port: coord.port,
        num_peers,
        exact,
    };
    let mut slots: Vec<Option<images::Checked>> = checked.into_iter().map(Some).collect();
    if exact {
        if !ipc.is_empty() {
            let all: Vec<&images::Checked> = slots.iter().flatten().collect();
            sysv::recreate(&ipc, &all).unwrap_or_else(|e| die(1, e));
        }
        // We are pid 1 of the new namespace: every root gets its own pid, the last one is
        // waited for by this init.
        let n = tree.roots.len();
        for (k, &r) in tree.roots.iter().enumerate() {
            let pid = slots[r]
                .as_ref()
                .map_or(0, |c| c.image.header().process.pid);
            if k + 1 == n {
                match dmtcp_cli::pidns::spawn_with_pid(pid, || {
                    restart_tree(r, &mut slots, &tree, &ctx)
                }) {
                    Ok(never) => match never {},
                    Err(e) => die(1, e),
                }
            }
            match dmtcp_cli::pidns::fork_with_pid(pid) {
                Ok(0) => restart_tree(r, &mut slots, &tree, &ctx),
                Ok(_) => {}
                Err(e) => die(1, e),
            }
        }
        die(1, "no image to restart");
    }
    let n = tree.roots.len();
    for (k, &r) in tree.roots.iter().enumerate() {
        if k + 1 == n {
            restart_tree(r, &mut slots, &tree, &ctx);
        }
        // SAFETY: single-threaded; the child continues with its own subtree only.
        match unsafe { libc::fork() } {
            0 => restart_tree(r, &mut slots, &tree, &ctx),
            -1 => die(
                1,
                format_args!("cannot fork: {}", std::io::Error::last_os_error()),
            ),
            _ => {}
        }
    }
    die(1, "no image to restart")
}

/// How the restart gives ids back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdChoice {
    /// A fresh pid namespace with the saved ids.
    Exact,
    /// New real ids, translated by the runtime.
    Virtual,
    /// Auto mode: a namespace if one can be made. Tried for real when it is needed rather than
    /// probed first, which cost a fork and a throw-away namespace on every restart.
    TryExact,
}

/// Enters the pid namespace for `choice`; returns whether ids are exact.
fn enter_namespace(choice: IdChoice) -> bool {
    match choice {
        IdChoice::Virtual => false,
        IdChoice::Exact => {
            dmtcp_cli::pidns::enter().unwrap_or_else(|e| die(1, e));
            true
        }
        IdChoice::TryExact => match dmtcp_cli::pidns::enter() {
            Ok(()) => true,
            // unshare failed and changed nothing: this process is as it was.
            Err(dmtcp_cli::pidns::NsError::Unshare(e)) => {
                tracing::debug!("no pid namespace here ({e}): virtual ids");
                false
            }
            Err(e) => die(1, e),
        },
    }
}

/// Exact ids (a fresh pid namespace) or virtual ones (new real ids, translated by the runtime).
/// The mode comes from `--pid-mode`, else the environment, else the images (the launch's
/// choice), else auto. Namespace mode where namespaces are off: an error when asked for here,
/// virtual ids (with a note) when only recorded at launch.
fn id_choice(args: &Args, checked: &[images::Checked], quiet: bool) -> IdChoice {
    let recorded = checked.iter().find_map(|c| {
        let b = c.image.header().section(PID_MODE_SECTION)?;
        PidMode::parse(std::str::from_utf8(b).ok()?)
    });
    let launched_in_ns = checked
        .iter()
        .any(|c| c.image.header().section(PID_NAMESPACE_SECTION).is_some());
    let asked = args.pid_mode.or_else(PidMode::from_env);
    let mode = asked.or(recorded).unwrap_or(PidMode::Auto);
    let possible = || launched_in_ns || dmtcp_cli::pidns::available();
    match mode {
        PidMode::Virtual => IdChoice::Virtual,
        PidMode::Auto if launched_in_ns => IdChoice::Exact,
        PidMode::Auto => IdChoice::TryExact,
        PidMode::Namespace if possible() => IdChoice::Exact,
        PidMode::Namespace if asked.is_some() => die(
            1,
            "--pid-mode=namespace: user namespaces are not available here (use --pid-mode=virtual)",
        ),
        PidMode::Namespace => {
            if !quiet {
                eprintln!(
                    "dmtcp_restart: user namespaces are not available here; using virtual ids"
                );
            }
            IdChoice::Virtual
        }
    }
}

/// Threads decompressing an image. With exact ids in a namespace shared by several restored
/// processes, extra tasks would take pid numbers a sibling must recreate: decode on one
/// thread there (the processes still decode in parallel with each other).
fn decode_threads(exact: bool, num_peers: u32) -> usize {
    if exact && num_peers > 1 {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
}

/// What every restarting process needs besides its image.
struct Ctx<'a> {
    shared: &'a shm::SharedObjects,
    args: &'a Args,
    host: &'a str,
    port: u16,
    num_peers: u32,
    exact: bool,
}

/// Creates the processes of the images below `idx` (as its children), then restarts `idx` in
/// this process.
fn restart_tree(
    idx: usize,
    slots: &mut [Option<images::Checked>],
    tree: &tree::Tree,
    ctx: &Ctx,
) -> ! {
    // Session and group first: the children created below inherit them, and a child of its
    // parent's group can only join it once the parent has it back.
    if let Some(c) = slots[idx].as_ref() {
        tree::restore_session(c, ctx.exact);
    }
    for &child in &tree.children[idx] {
        let pid = slots[child]
            .as_ref()
            .map_or(0, |c| c.image.header().process.pid);
        let r = if ctx.exact {
            dmtcp_cli::pidns::fork_with_pid(pid).unwrap_or_else(|e| die(1, e))
        } else {
            // SAFETY: single-threaded; the child continues with its own subtree only.
            unsafe { libc::fork() }
        };
        match r {
            0 => restart_tree(child, slots, tree, ctx),
            -1 => die(
                1,
                format_args!("cannot fork: {}", std::io::Error::last_os_error()),
            ),
            _ => {}
        }
    }
    let c = slots[idx]
        .take()
        .unwrap_or_else(|| die(1, "no image to restart"));
    // The other processes' images (open files) must not leak into the restored program: its
    // next checkpoint would save them as its fds, and fail once a new image replaced them.
    slots.iter_mut().for_each(|s| drop(s.take()));
    let moved = tree::recreate_zombies(&c, ctx.exact);
    // A fork may have moved nothing, but each process reads its own kernel pages.
    let kernel = own_kernel_areas();
    mark("process forked");
    restart_one(c, ctx, &kernel, &moved)
}

/// Virtual ids: processes this restart created with new pids on behalf of the program (its
/// unreaped children) join the virtual-id table the restored processes read after
/// `DMT:RESTART` (key-value db `dmtcp:vids`, see runtime/preload/src/vids/sync.rs).
fn publish_moved_ids(conn: &mut Connection, pairs: &[(i32, i32)]) {
    let bytes: Vec<u8> = pairs
        .iter()
        .flat_map(|&(v, r)| v.to_le_bytes().into_iter().chain(r.to_le_bytes()))
        .collect();
    let mut ask = |id: u64, key: Vec<u8>, op: KvOp| -> Option<Vec<u8>> {
        let req = KvRequest {
            id,
            db: "dmtcp:vids".into(),
            key,
            op,
        };
        conn.send(&WorkerMsg::Kv(req)).ok()?;
        loop {
            match conn.recv::<CoordMsg>().ok()? {
                CoordMsg::Kv(r) if r.id == id => return r.result.ok().flatten(),
                other => tracing::debug!("ignored while publishing ids: {other:?}"),
            }
        }
    };
    let n = ask(1, b"n".to_vec(), KvOp::IncrBy(1))
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse::<u64>().ok());
    match n {
        Some(n) => {
            ask(2, format!("e:{n}").into_bytes(), KvOp::Set(bytes));
        }
        None => tracing::warn!("cannot publish the new pids of recreated children"),
    }
}

/// The lazy restart could not start (no userfaultfd here): loads the lazy regions now.
fn load_now(
    c: &images::Checked,
    staged: &stage::Staged,
    threads: usize,
    progress: Option<&progress::Progress>,
    name: &str,
    quiet: bool,
    e: lazy::LazyError,
) {
    if !quiet {
        eprintln!(
            "dmtcp_restart: {name}: lazy restart is not possible: {e}; loading all memory now"
        );
    }
    let mut wanted = vec![false; staged.staging_of.len()];
    for &i in &staged.lazy {
        wanted[i] = true;
    }
    stage::fill(c, &staged.staging_of, &wanted, threads, progress)
        .unwrap_or_else(|e| die(1, format_args!("{name}: {e}")));
}

fn restart_one(c: images::Checked, ctx: &Ctx, kernel: &[KernelArea; 3], moved: &[(i32, i32)]) -> ! {
    let (args, host, port, num_peers, exact, shared) = (
        ctx.args,
        ctx.host,
        ctx.port,
        ctx.num_peers,
        ctx.exact,
        ctx.shared,
    );
    let name = c.path.display().to_string();
    let h = c.image.header().clone();
    let assignment: Assignment = h
        .section(ASSIGNMENT_SECTION)
        .and_then(|b| postcard::from_bytes(b).ok())
        .unwrap_or_else(|| {
            die(
                1,
                format_args!("{name}: the image has no process identity section"),
            )
        });
    // Where things must be in the restored process besides its regions.
    let mut reserved: Vec<(Range, &str)> = vec![(
        Range {
            start: HOLE_START,
            end: HOLE_START + HOLE_LEN,
        },
        "the restorer hole",
    )];
    let mut kernel_plan = [KernelArea::default(); 3];
    let names = ["[vvar]", "[vvar_vclock]", "[vdso]"];
    for i in 0..3 {
        let saved = c.layout.kernel[i];
        if saved.len != kernel[i].len {
            die(
                1,
                format_args!(
                    "{name}: the {} size differs from this kernel's; restart on the kernel that wrote the image",
                    names[i]
                ),
            );
        }
        kernel_plan[i] = KernelArea {
            current: kernel[i].current,
            target: saved.target,
            len: saved.len,
        };
        if saved.len != 0 {
            reserved.push((
                Range {
                    start: saved.target,
                    end: saved.target + saved.len,
                },
                names[i],
            ));
        }
    }
    let quiet = args.quiet || env_flag("DMTCP_QUIET");
    // One bar per terminal: with several processes restarting, their bars would interleave.
    let progress = if num_peers == 1 {
        progress::Progress::for_stderr(quiet)
    } else {
        None
    };
    let threads = decode_threads(exact, num_peers);
    let opts = stage::Options {
        threads,
        lazy: args.lazy || env_flag("DMTCP_LAZY_RESTART"),
        progress: progress.as_ref(),
    };
    let staged = stage::stage(&c, &reserved, shared, &opts)
        .unwrap_or_else(|e| die(1, format_args!("{name}: {e}")));
    mark("memory staged");
    let mut paged = false;
    if !staged.lazy.is_empty() {
        match lazy::start(&c, &staged, exact, quiet) {
            Ok(()) => paged = true,
            Err(e) => load_now(&c, &staged, threads, progress.as_ref(), &name, quiet, e),
        }
        mark("pager started");
    }
    let restorer = find_shipped("dmtcp_restorer").unwrap_or_else(|| {
        die(
            1,
            "dmtcp_restorer not found beside dmtcp_restart; is the installation complete?",
        )
    });
    let entry = hole::load_restorer(&restorer).unwrap_or_else(|e| die(1, e));
    mark("restorer loaded");

    // The image is staged and verified: now join the coordinator.
    let hello = RestartHello {
        hostname: dmtcp_protocol::ids::hostname(),
        progname: h.process.program.clone(),
        // SAFETY: getpid cannot fail.
        real_pid: unsafe { libc::getpid() },
        upid: assignment.upid,
        virtual_pid: assignment.virtual_pid,
        comp_id: assignment.comp_id,
        num_peers: args.computation_size.unwrap_or(num_peers),
        generation: assignment.generation,
        interval: args.coord.interval(),
    };
    let (mut conn, welcome) = Connection::open(
        host,
        port,
        Role::Restart(hello),
        Some(Duration::from_secs(30)),
    )
    .unwrap_or_else(|e| die(1, format_args!("{name}: {e}")));
    mark("joined the coordinator");
    let mut new_assignment = welcome.unwrap_or_else(|| die(1, "the coordinator sent no identity"));
    new_assignment.generation = new_assignment.generation.max(assignment.generation);
    let assignment_bytes = postcard::to_stdvec(&new_assignment).unwrap_or_default();
    if !moved.is_empty() {
        publish_moved_ids(&mut conn, moved);
    }

    let mut keep = staged.staging.clone();
    keep.push(Range {
        start: HOLE_START,
        end: HOLE_START + HOLE_LEN,
    });
    for k in kernel.iter().filter(|k| k.len != 0) {
        keep.push(Range {
            start: k.current,
            end: k.current + k.len,
        });
    }
    keep.sort_by_key(|r| r.start);
    let ckpt_dir = args
        .ckptdir
        .as_ref()
        .map(|d| {
            std::path::absolute(d)
                .unwrap_or_else(|_| d.clone())
                .to_string_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    let flags = if exact { RESTART_EXACT_TIDS } else { 0 } | if paged { RESTART_LAZY } else { 0 };
    let image_path = c.path.to_string_lossy().into_owned();
    let plan = hole::Plan {
        keep,
        moves: &staged.moves,
        kernel: kernel_plan,
        mm: c.layout.has_mm.then_some(c.layout.mm),
        auxv: &c.layout.auxv[..c.layout.auxv_len],
        entry: h.entry,
        flags,
        assignment: &assignment_bytes,
        ckpt_dir: ckpt_dir.as_bytes(),
        image: image_path.as_bytes(),
        coord_host: host.as_bytes(),
        coord_port: port,
        log_fd: LOG_FD,
    };
    let args_addr = hole::write_args(&plan).unwrap_or_else(|e| die(1, e));
    drop(c);
    // The shared objects this process maps were dup'ed for the restorer; the rest must not
    // leak into the program's descriptor table.
    for fd in shared.objects.values() {
        // SAFETY: closing our inherited copies; `shared` is not used after the jump.
        unsafe { libc::close(std::os::fd::AsRawFd::as_raw_fd(fd)) };
    }

    // The restored runtime finds its coordinator connection and log at the protected fds.
    let fd = conn.stream.into_raw_fd();
    // SAFETY: moving descriptors onto the runtime's reserved numbers.
    unsafe {
        libc::dup3(fd, COORD_FD, libc::O_CLOEXEC);
        libc::close(fd);
        libc::dup3(2, LOG_FD, libc::O_CLOEXEC);
    }
    mark("entering the restorer");
    tracing::debug!("entering the restorer for {image_path}");
    // SAFETY: the hole holds the restorer and its arguments; we are single-threaded.
    unsafe { hole::jump(entry, args_addr) }
}

#[cfg(test)]
mod tests {
    use super::Args;
    use clap::{CommandFactory, Parser};

    #[test]
    fn options_are_consistent_and_dmtcp_compatible() {
        Args::command().debug_assert();
        let a = Args::try_parse_from([
            "dmtcp_restart",
            "-h",
            "node1",
            "-p",
            "7780",
            "-j",
            "-i",
            "60",
            "--ckptdir",
            "/c",
            "--no-strict-checking",
            "a.dmtcp",
            "b.dmtcp",
        ])
        .unwrap();
        assert_eq!(a.coord.host.as_deref(), Some("node1"));
        assert_eq!(
            (a.coord.port, a.coord.join, a.coord.interval),
            (Some(7780), true, Some(60))
        );
        assert!(a.no_strict_checking);
        assert_eq!(a.images.len(), 2);
        assert!(Args::try_parse_from(["dmtcp_restart", "-j", "--new-coordinator", "x"]).is_err());
    }
}
