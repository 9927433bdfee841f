//! Decides what kind of object an fd refers to from its `/proc/self/fd` link and `fstat` mode.

const HINT: &str = "see docs/fds.md";

/// What an fd refers to, as far as saving is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    File,
    /// An `O_PATH` fd: only a location, no I/O.
    PathOnly,
    Dir,
    /// Character or block device reopened by path.
    Device,
    Pipe,
    Fifo,
    EventFd,
    TimerFd,
    SignalFd,
    Epoll,
    Inotify,
    Memfd,
    PtyMaster,
    PtySlave,
    Socket,
    Unsupported {
        what: String,
        hint: String,
    },
}

fn unsupported(what: &str, hint: &str) -> Class {
    Class::Unsupported {
        what: what.to_string(),
        hint: hint.to_string(),
    }
}

/// Classifies from the link target (`readlink /proc/self/fd/N`), the `st_mode` and the open
/// flags. Pure, so every kind is testable without creating it.
pub fn classify(link: &str, mode: u32, flags: i32) -> Class {
    if link.starts_with("socket:") {
        return Class::Socket;
    }
    if link.starts_with("pipe:") {
        return Class::Pipe;
    }
    if let Some(anon) = link.strip_prefix("anon_inode:") {
        return classify_anon(anon);
    }
    if link.starts_with("pidfd:") {
        return classify_anon("[pidfd]");
    }
    if flags & libc::O_PATH != 0 {
        return Class::PathOnly;
    }
    let fmt = mode & libc::S_IFMT;
    match fmt {
        libc::S_IFSOCK => Class::Socket,
        libc::S_IFIFO => Class::Fifo,
        libc::S_IFDIR => Class::Dir,
        libc::S_IFCHR => classify_chardev(link),
        libc::S_IFBLK => Class::Device,
        libc::S_IFREG if link.starts_with("/memfd:") => Class::Memfd,
        libc::S_IFREG => regular(link),
        _ => unsupported(&format!("an object of unknown type ({link})"), HINT),
    }
}

/// A regular file; a target that is not an absolute path is a kernel pseudo-file that cannot
/// be reopened by name.
fn regular(link: &str) -> Class {
    if link.starts_with('/') {
        Class::File
    } else {
        unsupported(&format!("a pseudo-file ({link})"), HINT)
    }
}

fn classify_anon(anon: &str) -> Class {
    match anon {
        "[eventfd]" => Class::EventFd,
        "[timerfd]" => Class::TimerFd,
        "[signalfd]" => Class::SignalFd,
        "[eventpoll]" => Class::Epoll,
        "inotify" => Class::Inotify,
        "[io_uring]" => unsupported(
            "an io_uring instance",
            "requests in flight cannot be captured; see docs/fds.md",
        ),
        "[userfaultfd]" => unsupported(
            "a userfaultfd",
            "its registered ranges and pending faults cannot be captured; see docs/fds.md",
        ),
        "[perf_event]" => unsupported(
            "a perf_event counter",
            "counters cannot be moved to a new process; see docs/fds.md",
        ),
        "[pidfd]" => unsupported(
            "a pidfd",
            "pidfds are not supported yet (they need the process-tree layer); see docs/fds.md",
        ),
        "[fanotify]" => unsupported("a fanotify group", HINT),
        a if a.starts_with("bpf") || a.starts_with("[bpf") => {
            unsupported("a BPF object (map, program or link)", HINT)
        }
        a if a.starts_with("kvm") => unsupported(
            "a KVM object",
            "KVM needs the (future) KVM plugin; see docs/fds.md",
        ),
        other => unsupported(&format!("an anonymous-inode object of type {other}"), HINT),
    }
}

fn classify_chardev(link: &str) -> Class {
    if link == "/dev/ptmx" || link == "/dev/pts/ptmx" {
        return Class::PtyMaster;
    }
    if let Some(n) = link.strip_prefix("/dev/pts/")
        && n.parse::<u32>().is_ok()
    {
        return Class::PtySlave;
    }
    match link {
        "/dev/kvm" => unsupported(
            "/dev/kvm",
            "KVM needs the (future) KVM plugin; see docs/fds.md",
        ),
        "/dev/userfaultfd" => unsupported("/dev/userfaultfd", HINT),
        "/dev/net/tun" => unsupported(
            "a tun/tap device",
            "tun needs the (future) tun plugin; see docs/fds.md",
        ),
        "/dev/fuse" => unsupported("a FUSE connection", HINT),
        _ => Class::Device,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: u32 = libc::S_IFREG | 0o644;
    const CHR: u32 = libc::S_IFCHR | 0o666;

    #[test]
    fn supported_kinds() {
        assert_eq!(classify("/tmp/x", REG, 0), Class::File);
        assert_eq!(classify("/tmp/x (deleted)", REG, 0), Class::File);
        assert_eq!(classify("/tmp", libc::S_IFDIR, 0), Class::Dir);
        assert_eq!(classify("/tmp/x", REG, libc::O_PATH), Class::PathOnly);
        assert_eq!(classify("/dev/null", CHR, 0), Class::Device);
        assert_eq!(classify("/dev/sda", libc::S_IFBLK, 0), Class::Device);
        assert_eq!(classify("pipe:[123]", libc::S_IFIFO, 0), Class::Pipe);
        assert_eq!(classify("/tmp/f", libc::S_IFIFO, 0), Class::Fifo);
        assert_eq!(classify("anon_inode:[eventfd]", 0, 0), Class::EventFd);
        assert_eq!(classify("anon_inode:[timerfd]", 0, 0), Class::TimerFd);
        assert_eq!(classify("anon_inode:[signalfd]", 0, 0), Class::SignalFd);
        assert_eq!(classify("anon_inode:[eventpoll]", 0, 0), Class::Epoll);
        assert_eq!(classify("anon_inode:inotify", 0, 0), Class::Inotify);
        assert_eq!(classify("/memfd:buf (deleted)", REG, 0), Class::Memfd);
        assert_eq!(classify("/dev/ptmx", CHR, 0), Class::PtyMaster);
        assert_eq!(classify("/dev/pts/ptmx", CHR, 0), Class::PtyMaster);
        assert_eq!(classify("/dev/pts/4", CHR, 0), Class::PtySlave);
        assert_eq!(classify("socket:[99]", libc::S_IFSOCK, 0), Class::Socket);
    }

    #[test]
    fn unsupported_kinds_say_what_they_are() {
        let cases = [
            ("anon_inode:[io_uring]", 0, "io_uring"),
            ("anon_inode:[userfaultfd]", 0, "userfaultfd"),
            ("anon_inode:[perf_event]", 0, "perf_event"),
            ("anon_inode:bpf-map", 0, "BPF"),
            ("anon_inode:bpf-prog", 0, "BPF"),
            ("anon_inode:[pidfd]", 0, "pidfd"),
            ("pidfd:[12]", 0, "pidfd"),
            ("anon_inode:[fanotify]", 0, "fanotify"),
            ("anon_inode:kvm-vm", 0, "KVM"),
            ("anon_inode:kvm-vcpu:0", 0, "KVM"),
            ("/dev/kvm", CHR, "kvm"),
            ("/dev/net/tun", CHR, "tun"),
            ("anon_inode:[something-new]", 0, "something-new"),
        ];
        for (link, mode, word) in cases {
            match classify(link, mode, 0) {
                Class::Unsupported { what, hint } => {
                    assert!(what.contains(word), "{link}: {what}");
                    assert!(hint.contains("docs/fds.md"), "{link}: {hint}");
                }
                other => panic!("{link} classified as {other:?}"),
            }
        }
    }
}
