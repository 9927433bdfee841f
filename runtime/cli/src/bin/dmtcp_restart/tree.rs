//! Rebuilding the process tree: every restored process is created by the restored process that
//! was its parent (by fork, or with its exact pid in a pid namespace), and takes back its
//! session and process group, so `waitpid`, `getppid` and job control work as before.

use crate::images::Checked;

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

/// Takes back the session and process group of the checkpointed process. With exact pids the
/// saved ids are valid as they are; otherwise only leadership can be restored.
pub fn restore_session(c: &Checked, exact: bool) {
    let p = &c.image.header().process;
    // SAFETY: plain process-attribute calls on ourselves; failures leave us where we are.
    unsafe {
        if p.sid == p.pid {
            libc::setsid();
        } else if p.pgid == p.pid {
            libc::setpgid(0, 0);
        } else if exact && p.pgid > 0 {
            libc::setpgid(0, p.pgid);
        }
    }
}
