//! Zombie children at checkpoint time: exited, not yet reaped. The program may `waitpid` for
//! them after a restart, so their pids and statuses go into the image and `dmtcp_restart`
//! recreates them (a child with the same pid that ends the same way at once).

use super::threads;
use dmtcp_restorer::abi::Zombie;

/// The zombie children of every frozen thread, encoded for [`dmtcp_restorer::abi::ZOMBIES_SECTION`].
/// Runs while the program is frozen: plain file reads and `waitid(WNOWAIT)`, which reports a
/// zombie without reaping it.
pub fn capture() -> Vec<u8> {
    let mut out = Vec::new();
    // Ids as the program knows them (virtual ids, vids/): the path and waitid wrappers
    // translate them back, and the restart recreates the children by these pids.
    let virt = crate::vids::table::to_virtual;
    for tid in threads::slots()
        .iter()
        .map(|r| virt(r.tid))
        .filter(|&t| t > 0)
    {
        let children =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/children")).unwrap_or_default();
        for pid in children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
            .map(virt)
        {
            if let Some(z) = exited(pid) {
                out.extend_from_slice(&z.to_bytes());
            }
        }
    }
    out
}

fn exited(pid: i32) -> Option<Zombie> {
    // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: WNOWAIT leaves the child reapable by the program; WNOHANG never blocks.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: waitid filled the child fields when it reported a child.
    let (si_pid, si_status) = unsafe { (info.si_pid(), info.si_status()) };
    (r == 0 && si_pid == pid).then_some(Zombie {
        pid,
        code: info.si_code,
        status: si_status,
    })
}
