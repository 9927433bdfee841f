//! Lazy restart (`--lazy`): large anonymous regions are left empty and registered with a
//! userfaultfd of this process (which becomes the restored process); a pager process, holding
//! the image, fills their pages on first touch and loads the rest in the background.
//!
//! Processes: this one forks a short-lived child that forks the watcher and exits (so neither
//! helper is a child of the restored program, which may wait for its own children); the watcher
//! forks the pager and holds a copy of the userfaultfd. If the pager dies before every page is
//! loaded, faults keep waiting (the watcher's copy keeps the registration alive, so a missing
//! page never reads as zeros) until the watcher kills the restored process with a message.

use crate::images::Checked;
use crate::pager::Pager;
use crate::stage::Staged;
use crate::uffd::{Kind, Uffd};
use std::io;
use std::os::fd::AsRawFd;

#[derive(Debug, thiserror::Error)]
pub enum LazyError {
    #[error("userfaultfd is not available here ({0})")]
    Unavailable(io::Error),
    #[error("cannot register memory with userfaultfd: {0}")]
    Register(io::Error),
    #[error("the image's saved runs are not page-aligned")]
    Unaligned,
    #[error("cannot start the pager: {0}")]
    Fork(io::Error),
    #[error("{0}")]
    Image(#[from] dmtcp_image::ImageError),
}

const PAGE: u64 = 4096;

/// Forks; with exact ids, at a pid from the top of the range, where the restored processes'
/// own pids and tids (which must stay free) are very unlikely to be.
fn fork_aside(exact: bool) -> io::Result<i32> {
    if exact {
        let max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(32768);
        for pid in (max - 64..max).rev() {
            match dmtcp_cli::pidns::fork_with_pid(pid) {
                Ok(r) => return Ok(r),
                Err(dmtcp_cli::pidns::NsError::Clone { source, .. })
                    if source.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
        }
    }
    // SAFETY: single-threaded (the decode threads have ended).
    let r = unsafe { libc::fork() };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// Closes every descriptor but `keep` (and stdin/stdout/stderr).
fn close_others(keep: &[i32]) {
    let mut keep: Vec<u32> = keep.iter().map(|&k| k as u32).collect();
    keep.sort_unstable();
    let mut from = 3u32;
    for k in keep.into_iter().filter(|&k| k >= 3) {
        if k > from {
            // SAFETY: closing descriptors this helper process does not use.
            unsafe { libc::syscall(libc::SYS_close_range, from, k - 1, 0) };
        }
        from = k + 1;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0) };
}

/// Registers the lazy regions of `staged` and starts the pager. On error nothing was started
/// and the caller loads the regions itself.
pub fn start(c: &Checked, staged: &Staged, exact: bool, quiet: bool) -> Result<(), LazyError> {
    let lazy: Vec<bool> = {
        let mut v = vec![false; c.image.regions().len()];
        for &i in &staged.lazy {
            v[i] = true;
        }
        v
    };
    for f in 0..c.image.frames().len() {
        for p in c.image.frame_pieces(f)? {
            if lazy[p.region.0 as usize] && (p.region_offset % PAGE != 0 || p.len % PAGE != 0) {
                return Err(LazyError::Unaligned);
            }
        }
    }
    let uffd = Uffd::new().map_err(LazyError::Unavailable)?;
    for &i in &staged.lazy {
        let len = c.image.regions()[i].meta.len;
        uffd.register(staged.staging_of[i], len)
            .map_err(LazyError::Register)?;
    }
    if uffd.kind == Kind::UserModeOnly && !quiet {
        eprintln!(
            "dmtcp_restart: lazy restart with a user-mode userfaultfd: until all memory is loaded, a system call reading into not-yet-loaded memory fails with EFAULT"
        );
    }
    let spans: Vec<(usize, u64)> = staged
        .lazy
        .iter()
        .map(|&i| (i, staged.staging_of[i]))
        .collect();
    // SAFETY: getpid cannot fail.
    let restored = unsafe { libc::getpid() };
    let middle = fork_aside(exact).map_err(LazyError::Fork)?;
    if middle > 0 {
        let mut status = 0;
        // SAFETY: reaping our own short-lived child.
        unsafe { libc::waitpid(middle, &mut status, 0) };
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            return Err(LazyError::Fork(io::Error::other(
                "the helper process failed",
            )));
        }
        return Ok(());
    }
    // The short-lived child: start the watcher, then leave it to init.
    match fork_aside(exact) {
        Ok(0) => {}
        // SAFETY: ending the helper without running the parent's exit handlers.
        Ok(_) => unsafe { libc::_exit(0) },
        // SAFETY: as above.
        Err(_) => unsafe { libc::_exit(1) },
    }
    // The watcher: out of the terminal's session, so ^C meant for the program does not end it;
    // stdin and stdout on /dev/null, so a pipe reading the program's output sees its end when
    // the program ends (stderr stays, for the messages).
    // SAFETY: setsid, prctl and dup2 only affect this process.
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_NAME, c"dmtcp_watcher".as_ptr());
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            if null > 2 {
                libc::close(null);
            }
        }
    }
    let pager = match fork_aside(exact) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "dmtcp_restart: cannot start the lazy-restart pager: {e}; killing pid {restored}"
            );
            // SAFETY: the restored process cannot run without its pages.
            unsafe {
                libc::kill(restored, libc::SIGKILL);
                libc::_exit(1);
            }
        }
    };
    if pager == 0 {
        let started = std::time::Instant::now();
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_NAME, c"dmtcp_pager".as_ptr()) };
        // The image and the parents its reference frames are read from.
        let mut keep = vec![uffd.fd.as_raw_fd(), c.image.source().as_raw_fd()];
        keep.extend(
            c.image
                .parent_images()
                .iter()
                .map(|p| p.source().as_raw_fd()),
        );
        close_others(&keep);
        let code = match Pager::new(&c.image, uffd, &spans).and_then(|p| p.run()) {
            Ok(stats) => {
                tracing::info!(
                    faults = stats.faults,
                    frames = stats.frames,
                    ms = started.elapsed().as_millis() as u64,
                    "lazy restart: all memory loaded"
                );
                0
            }
            Err(e) => {
                eprintln!("dmtcp_restart: lazy-restart pager: {e}");
                1
            }
        };
        // SAFETY: ending the pager without the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    close_others(&[uffd.fd.as_raw_fd()]);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    while unsafe { libc::waitpid(pager, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        // SAFETY: done: the registration goes with the last copy of the descriptor.
        unsafe { libc::_exit(0) };
    }
    let how = if libc::WIFSIGNALED(status) {
        format!("was killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("failed (exit status {})", libc::WEXITSTATUS(status))
    };
    eprintln!(
        "dmtcp_restart: the lazy-restart pager (pid {pager}) {how} before all memory was loaded; killing the restored process (pid {restored}), whose memory is incomplete"
    );
    // SAFETY: signalling the restored process, then ending the watcher.
    unsafe {
        libc::kill(restored, libc::SIGKILL);
        libc::_exit(1)
    }
}
