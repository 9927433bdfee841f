//! Virtual process and thread ids (DESIGN.md §5, the strategy for machines without
//! unprivileged pid namespaces; `dmtcp_launch --pid-mode=virtual`).
//!
//! A process's virtual pid is its real pid at launch (or fork), and a thread's virtual tid its
//! first real tid; nothing is translated until a restart in virtual mode. Such a restart
//! gives every process and thread new real ids: each process publishes its (virtual, new
//! real) pairs in the coordinator's key-value store before `DMT:RESTART` and reads everyone's
//! after it ([`sync`]); from then on the wrappers ([`wrappers`], [`syscall`],
//! [`proc_paths`], [`siginfo`]) translate in every call that takes or returns an id.
//!
//! glibc keeps the real tid in each thread descriptor (`pthread_kill`, `raise` use it through
//! internal system calls); the restart recreates threads with `CLONE_PARENT_SETTID` on that
//! word, so it holds the new real tid while `gettid()` answers the virtual one.
//!
//! New processes after a restart: a child whose real pid is a virtual pid still in use exits
//! at once and the parent's `fork` forks again (DMTCP's answer); a table entry whose real id
//! the kernel hands out again belonged to a task that is gone and is dropped.

pub mod children;
pub mod lock_owner;
pub mod popen;
pub mod proc_paths;
pub mod real;
pub mod siginfo;
pub mod sync;
pub mod syscall;
pub mod table;
pub mod wrappers;

use dmtcp_restorer::sys;

/// In the atfork child handler, before anything else: a child whose pid is taken leaves
/// (its parent reaps it and forks again, see `wrappers::fork`).
pub fn on_fork_child() {
    if table::classify_new(sys::getpid()) == table::NewId::Taken {
        sys::exit_group(0);
    }
    lock_owner::forget(sys::gettid());
}

/// First thing in a thread the program created after a restart: a real tid that is a virtual
/// id in use cannot be refused like a fork's pid (the thread runs already), so the thread gets
/// a virtual tid of its own instead (see `table::add_fresh`).
pub fn on_new_thread() {
    let t = sys::gettid();
    lock_owner::forget(t);
    if table::classify_new(t) == table::NewId::Taken {
        let v = table::add_fresh(t);
        crate::debug!("new thread's tid {t} is a virtual id in use; its virtual tid is {v}");
    }
}

/// Carries the table through `exec` (and into programs a member spawns): `v:r,v:r,...`.
pub const TABLE_ENV: &str = "DMTCP_VIDS";

/// The table as the value of [`TABLE_ENV`], or None when no translation is in force.
pub fn export() -> Option<String> {
    if !table::active() {
        return None;
    }
    let mut pairs = vec![(0, 0); table::CAPACITY];
    let n = table::snapshot(&mut pairs);
    let mut s = String::new();
    for (v, r) in &pairs[..n] {
        if !s.is_empty() {
            s.push(',');
        }
        s.push_str(&format!("{v}:{r}"));
    }
    Some(s)
}

/// In the library constructor, before anything asks for an id: resolves the wrapped
/// functions and takes the table handed over by the program that exec'd or spawned this one.
pub fn import_from_env() {
    real::resolve_all();
    let Ok(value) = std::env::var(TABLE_ENV) else {
        return;
    };
    // SAFETY: the constructor runs before the program's main, with no other thread of ours.
    unsafe { std::env::remove_var(TABLE_ENV) };
    let pairs: Vec<(i32, i32)> = value
        .split(',')
        .filter_map(|p| {
            let (v, r) = p.split_once(':')?;
            Some((v.parse().ok()?, r.parse().ok()?))
        })
        .collect();
    table::replace(&pairs);
}
