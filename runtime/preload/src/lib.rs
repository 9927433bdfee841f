//! `libdmtcp.so`: the runtime library preloaded into every process of a computation.
//!
//! At load time it joins the coordinator (or, after `exec`, resumes the membership of the
//! process it replaced), starts the checkpoint thread, and follows `fork` and `exec` so every
//! descendant stays a member. Without `DMTCP_COORD_PORT` in the environment it does nothing.

mod alloc;
mod api;
mod checkpoint;
mod ckpt_lock;
mod ckpt_thread;
mod exec;
mod execl;
mod fork;
mod log;
mod plugin;
mod raw_lock;
mod real;
mod session;
mod settings;
mod sleep;
mod spawn;
mod vids;
mod waits;

use alloc::RuntimeHeap;

/// All of the runtime's Rust allocations; never the program's malloc (see `alloc.rs`).
#[global_allocator]
pub(crate) static HEAP: RuntimeHeap = RuntimeHeap::new();

pub(crate) mod runtime {
    use crate::settings::Settings;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicI32, Ordering};

    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    static PID: AtomicI32 = AtomicI32::new(0);

    pub fn settings() -> Option<&'static Settings> {
        SETTINGS.get()
    }

    pub fn set_settings(s: Settings) -> &'static Settings {
        SETTINGS.get_or_init(|| s)
    }

    /// The coordinator given by the last restart, if it differs from the launch settings.
    static COORDINATOR: std::sync::Mutex<Option<(String, u16)>> = std::sync::Mutex::new(None);

    /// Where the coordinator is now: as launched, or as the last restart said.
    pub fn coordinator() -> Option<(String, u16)> {
        let s = settings()?;
        // try_lock: in a fork child the lock may have been held by a thread that is gone.
        let moved = COORDINATOR.try_lock().ok().and_then(|c| c.clone());
        Some(moved.unwrap_or_else(|| (s.coord_host.clone(), s.coord_port)))
    }

    /// After a restart: children forked or exec'd from now on join this coordinator.
    pub fn set_coordinator(host: String, port: u16) {
        *COORDINATOR.lock().unwrap_or_else(|e| e.into_inner()) = Some((host, port));
    }

    /// Remembers our pid; a vfork child shares our memory but not our pid.
    pub fn note_pid() {
        // SAFETY: getpid cannot fail.
        PID.store(unsafe { libc::getpid() }, Ordering::Relaxed);
    }

    pub fn is_original_pid() -> bool {
        // SAFETY: getpid cannot fail.
        PID.load(Ordering::Relaxed) == unsafe { libc::getpid() }
    }
}

fn start() {
    let Some(settings) = settings::Settings::from_env() else {
        return;
    };
    // Before any id is asked for (the exec hand-over below compares pids).
    vids::import_from_env();
    // A posix_spawn child whose pid is a virtual id in use leaves now (its parent retries).
    vids::children::exit_if_spawned_taken();
    log::init(settings.debug, settings.quiet);
    std::panic::set_hook(Box::new(|info| error!("internal error: {info}")));
    let settings = runtime::set_settings(settings);
    runtime::note_pid();
    fork::install();

    let handoff = std::env::var(settings::EXEC_HANDOFF_ENV).ok();
    let identity = std::env::var(settings::IDENTITY_ENV).ok();
    // SAFETY: the constructor runs before the program's main, with no other thread of ours.
    unsafe {
        std::env::remove_var(settings::EXEC_HANDOFF_ENV);
        std::env::remove_var(settings::IDENTITY_ENV);
    }
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() }.to_string();
    let resumed = handoff.as_deref() == Some(me.as_str()) && session::coord_fd_is_open();
    if resumed {
        let assignment = identity
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| postcard::from_bytes::<dmtcp_protocol::Assignment>(&b).ok());
        *session::IDENTITY.lock().unwrap_or_else(|e| e.into_inner()) = assignment;
        // The connection came through exec without close-on-exec; set it again.
        // SAFETY: a flag of our own protected fd.
        unsafe { libc::fcntl(settings::COORD_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
        let progname = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
        if let Err(e) = session::send(&dmtcp_protocol::WorkerMsg::Exec {
            progname: progname.trim_end().to_string(),
        }) {
            warn!("cannot reach the coordinator after exec: {e}");
            return;
        }
        debug!("resumed membership after exec");
    } else {
        match session::join(settings, None) {
            Ok(a) => debug!("joined as {} (virtual pid {})", a.upid, a.virtual_pid),
            Err(e) => {
                warn!("{e}; the program runs without checkpoints");
                return;
            }
        }
    }
    // Before the checkpoint thread exists: INIT hooks may use the coordinator connection.
    plugin::start(resumed);
    checkpoint::init(settings.ckpt_signal);
    ckpt_thread::spawn();
}

extern "C" fn init(_argc: i32, _argv: *const *const u8, _envp: *const *const u8) {
    start();
}

#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn(i32, *const *const u8, *const *const u8) = init;
