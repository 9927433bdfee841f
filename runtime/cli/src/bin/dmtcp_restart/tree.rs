//! Rebuilding the process tree: every restored process is created by the restored process that
//! was its parent (by fork, or with its exact pid in a pid namespace), and takes back its
//! session and process group, so `waitpid`, `getppid` and job control work as before.

use crate::images::Checked;
use dmtcp_restorer::abi::{ZOMBIES_SECTION, Zombie};

/// Parent-child links between the images, by their checkpoint-time pids (same host only).
pub struct Tree {
    /// For each image, the images whose parent it was.
    pub children: Vec<Vec<usize>>,
    /// Images whose parent is not among the images.
    pub roots: Vec<usize>,
}

pub fn build(images: &[Checked]) -> Tree {
    let ids: Vec<(i32, i32, String)> = images
        .iter()
        .map(|c| {
            let p = &c.image.header().process;
            (p.pid, p.ppid, p.hostname.clone())
        })
        .collect();
    let mut children = vec![Vec::new(); images.len()];
    let mut roots = Vec::new();
    for (i, (_, ppid, host)) in ids.iter().enumerate() {
        match ids.iter().position(|(pid, _, h)| pid == ppid && h == host) {
            Some(p) if p != i => children[p].push(i),
            _ => roots.push(i),
        }
    }
    Tree { children, roots }
}

/// Image section written when fd 0 was the process's controlling terminal and came from
/// outside the computation (runtime/preload/src/checkpoint/shared_fds.rs).
const TERMINAL_SECTION: &str = "terminal";

/// Takes back the session and process group of the checkpointed process. With exact pids the
/// saved ids are valid as they are; otherwise only leadership can be restored.
///
/// A session leader whose controlling terminal was the user's comes back in the session of
/// the terminal `dmtcp_restart` runs in (as a process group of its own) when that terminal is
/// our controlling terminal: a new session could not take a terminal another session owns,
/// and the restored process would have no job control. The restored runtime then makes it
/// the foreground group (docs/fds.md, Terminals).
pub fn restore_session(c: &Checked, exact: bool) {
    let p = &c.image.header().process;
    let outer_tty = c.image.header().section(TERMINAL_SECTION).is_some();
    // SAFETY: plain process-attribute calls on ourselves; failures leave us where we are.
    unsafe {
        if p.sid == p.pid && outer_tty && libc::tcgetsid(0) >= 0 {
            libc::setpgid(0, 0);
        } else if p.sid == p.pid {
            libc::setsid();
        } else if p.pgid == p.pid {
            libc::setpgid(0, 0);
        } else if exact && p.pgid > 0 {
            libc::setpgid(0, p.pgid);
        }
    }
}

/// Recreates the zombie children the process had at checkpoint time (exited, not yet reaped):
/// each is a child with the saved pid that ends at once the way the original did, so the
/// program's `waitpid` finds it with the same status. With virtual ids it gets a new pid;
/// the returned (saved, new) pairs go into the program's id table.
pub fn recreate_zombies(c: &Checked, exact: bool) -> Vec<(i32, i32)> {
    let mut moved = Vec::new();
    let Some(section) = c.image.header().section(ZOMBIES_SECTION) else {
        return moved;
    };
    for z in Zombie::parse(section) {
        // Without exact pids the zombie gets a new one: the pair (saved, new) goes to the
        // virtual-id table (see main.rs, publish_moved_ids).
        let r = if exact {
            dmtcp_cli::pidns::fork_with_pid(z.pid).map_err(|e| e.to_string())
        } else {
            // SAFETY: single-threaded; the child only ends like the zombie did.
            match unsafe { libc::fork() } {
                -1 => Err(std::io::Error::last_os_error().to_string()),
                p => Ok(p),
            }
        };
        match r {
            Ok(0) => end_like(z),
            Ok(p) if !exact => moved.push((z.pid, p)),
            Ok(_) => {}
            Err(e) => tracing::warn!(pid = z.pid, "cannot recreate an unreaped child: {e}"),
        }
    }
    moved
}

/// Ends this process as the zombie `z` ended. The restarting parent has SIGCHLD at its
/// default (ignored without a handler), so no stray signal reaches the restored program.
fn end_like(z: Zombie) -> ! {
    // SAFETY: plain process calls in a fresh single-threaded child that is about to end.
    unsafe {
        if z.code == libc::CLD_EXITED {
            libc::_exit(z.status);
        }
        // Killed (or dumped core): die of the same signal, without writing a core file.
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::signal(z.status, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, z.status);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), z.status);
        libc::_exit(128 + z.status);
    }
}
