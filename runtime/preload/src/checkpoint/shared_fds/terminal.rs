//! The controlling terminal across a restart: the restored processes whose terminal was their
//! stdin get the restart command's terminal (fd 0 after the fd restore, or a pty of the
//! computation rejoined there) as controlling terminal, the foreground process group is set
//! again so job control works, and SIGWINCH tells them when the window size changed.

/// What the terminal on fd 0 was to this process at checkpoint.
#[derive(Clone, Copy)]
pub struct Saved {
    /// The process led its session (it acquires the terminal at restart).
    session_leader: bool,
    /// The process's group was the terminal's foreground group.
    foreground: bool,
    /// The terminal's foreground group (a vpid, exact when pids are).
    fg_pgrp: i32,
    old_pgrp: i32,
    winsize: (u16, u16),
    termios: libc::termios,
}

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "terminal (session leader {}, foreground {}, {:?})",
            self.session_leader, self.foreground, self.winsize
        )
    }
}

fn winsize(fd: i32) -> Option<(u16, u16)> {
    // SAFETY: winsize is plain data; TIOCGWINSZ fills it.
    let mut w: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one struct winsize.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut w) };
    (r == 0).then_some((w.ws_row, w.ws_col))
}

/// At checkpoint: the state, when fd 0 is this process's controlling terminal.
pub fn capture() -> Option<Saved> {
    // SAFETY: plain queries of our own process and fd 0.
    let (tty, tsid, sid, pid, pgrp, fg) = unsafe {
        (
            libc::isatty(0) == 1,
            libc::tcgetsid(0),
            libc::getsid(0),
            libc::getpid(),
            libc::getpgrp(),
            libc::tcgetpgrp(0),
        )
    };
    // tcgetsid fails unless fd 0 is our controlling terminal.
    if !tty || tsid < 0 {
        return None;
    }
    // SAFETY: termios is plain data; tcgetattr fills it.
    let mut termios: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer for the call.
    if unsafe { libc::tcgetattr(0, &mut termios) } != 0 {
        return None;
    }
    Some(Saved {
        session_leader: sid == pid,
        foreground: fg == pgrp,
        fg_pgrp: fg,
        old_pgrp: pgrp,
        winsize: winsize(0)?,
        termios,
    })
}

/// Phase 1 at restart, after the fds are in place: a session leader acquires the terminal on
/// fd 0 when it has none (another session's terminal is left alone: EPERM).
pub fn acquire(s: &Saved) {
    // SAFETY: plain queries and ioctls on fd 0 of our own process.
    unsafe {
        if !s.session_leader || libc::isatty(0) != 1 || libc::getsid(0) != libc::getpid() {
            return;
        }
        if libc::tcgetsid(0) == libc::getpid() {
            return;
        }
        if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
            crate::debug!(
                "cannot take the terminal on fd 0: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Phase 2, once every process has acquired its terminal: the foreground group comes back,
/// and SIGWINCH is raised when the new terminal's size differs from the old one.
pub fn settle(s: &Saved) {
    // SAFETY: plain ioctls on fd 0; SIGTTOU is blocked around tcsetpgrp so a background
    // caller is not stopped (the checkpoint thread blocks everything anyway).
    unsafe {
        if libc::isatty(0) != 1 || libc::tcgetsid(0) < 0 {
            return;
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTTOU);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        let own = libc::getpgrp();
        if s.session_leader && !s.foreground {
            // A job of ours was in the foreground; it is back with its pgid when pids are
            // exact, else this fails and the job itself cannot be told apart.
            let fg = if s.fg_pgrp == s.old_pgrp {
                own
            } else {
                s.fg_pgrp
            };
            if libc::tcsetpgrp(0, fg) != 0 {
                crate::debug!("foreground group {fg}: {}", std::io::Error::last_os_error());
            }
        } else if s.foreground && libc::tcsetpgrp(0, own) != 0 {
            crate::debug!(
                "foreground group {own}: {}",
                std::io::Error::last_os_error()
            );
        }
        if s.foreground {
            // Only the foreground process: a background one would put back stale modes.
            libc::tcsetattr(0, libc::TCSANOW, &s.termios);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if s.foreground && winsize(0).is_some_and(|w| w != s.winsize) {
            libc::kill(libc::getpid(), libc::SIGWINCH);
        }
    }
}
