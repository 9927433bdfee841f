//! Every unsupported kind is refused at save time with a one-line message naming the fd.

use super::*;
use crate::FdError;
use crate::sys::testonly::{fanotify_init, syscall_fd};

/// Creates each unsupported object this kernel lets us create; (what, fd or why not).
fn create_all() -> Vec<(&'static str, std::io::Result<OwnedFd>)> {
    let mut params = [0u8; 120]; // struct io_uring_params
    let io_uring = syscall_fd(
        libc::SYS_io_uring_setup,
        [4, params.as_mut_ptr() as libc::c_long, 0, 0, 0],
    );
    const UFFD_USER_MODE_ONLY: libc::c_long = 1;
    let uffd = syscall_fd(
        libc::SYS_userfaultfd,
        [
            libc::O_CLOEXEC as libc::c_long | UFFD_USER_MODE_ONLY,
            0,
            0,
            0,
            0,
        ],
    );
    // struct perf_event_attr: type SOFTWARE (1), size, config CPU_CLOCK (0), exclude_kernel.
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&1u32.to_ne_bytes());
    attr[4..8].copy_from_slice(&128u32.to_ne_bytes());
    attr[40] = 1 << 5; // exclude_kernel
    let perf = syscall_fd(
        libc::SYS_perf_event_open,
        [attr.as_ptr() as libc::c_long, 0, -1, -1, 0],
    );
    // union bpf_attr for BPF_MAP_CREATE: map_type ARRAY (2), key 4, value 4, entries 1.
    let mut battr = [0u8; 128];
    for (i, v) in [2u32, 4, 4, 1].iter().enumerate() {
        battr[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
    }
    let bpf = syscall_fd(
        libc::SYS_bpf,
        [0, battr.as_ptr() as libc::c_long, 128, 0, 0],
    );
    let pidfd = syscall_fd(
        libc::SYS_pidfd_open,
        [std::process::id() as libc::c_long, 0, 0, 0, 0],
    );
    let fan = fanotify_init(
        libc::FAN_CLASS_NOTIF | libc::FAN_CLOEXEC,
        libc::O_RDONLY as u32,
    );
    let kvm = sys::open("/dev/kvm", libc::O_RDWR | libc::O_CLOEXEC, 0);
    vec![
        ("io_uring", io_uring),
        ("userfaultfd", uffd),
        ("perf_event", perf),
        ("BPF", bpf),
        ("pidfd", pidfd),
        ("fanotify", fan),
        ("kvm", kvm),
    ]
}

#[test]
fn every_unsupported_kind_is_refused_with_its_name() {
    in_child("unsupported", || {
        let mut refused = Vec::new();
        for (what, created) in create_all() {
            let Ok(obj) = created else { continue };
            let fd = place(obj, 20);
            match save_fds(&[fd], &SaveOptions::default()) {
                Err(e @ FdError::Unsupported { fd: 20, .. }) => {
                    let msg = e.to_string();
                    let ok = msg.starts_with("fd 20 is ")
                        && msg.contains(what)
                        && msg.contains("cannot be checkpointed")
                        && msg.contains("docs/fds.md")
                        && !msg.contains('\n');
                    if !ok {
                        return Err(format!("{what}: bad message {msg:?}"));
                    }
                    refused.push(what);
                }
                other => return Err(format!("{what}: want Unsupported, got {other:?}")),
            }
            close(fd).unwrap();
        }
        // Root on this machine can create all of them; elsewhere at least the unprivileged ones.
        for must in ["io_uring", "pidfd"] {
            if !refused.contains(&must) {
                return Err(format!(
                    "{must} was not created or not refused; refused {refused:?}"
                ));
            }
        }
        eprintln!("refused: {refused:?}");
        Ok(())
    });
}

#[test]
fn a_table_with_an_unsupported_fd_is_not_partly_saved() {
    in_child("unsupported-first", || {
        pipe_at(3, 4);
        sys::write(4, b"kept").unwrap();
        let pidfd = syscall_fd(
            libc::SYS_pidfd_open,
            [std::process::id() as libc::c_long, 0, 0, 0, 0],
        )
        .unwrap();
        place(pidfd, 5);
        match save_fds(&test_fds(), &SaveOptions::default()) {
            Err(FdError::Unsupported { fd: 5, .. }) => {}
            other => return Err(format!("want Unsupported for fd 5, got {other:?}")),
        }
        let got = read_n(3, 10)?;
        if got != b"kept" {
            return Err(format!("pipe data changed: {got:?}"));
        }
        Ok(())
    });
}
