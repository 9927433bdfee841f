//! ptys, sockets, the protected range, inherited terminal stdio, table validation.

use super::*;
use crate::check_eq;
use crate::kinds::pty::SlaveState;
use crate::{FdEntry, FdError, FdObject};

#[test]
fn pty_pair_comes_back_connected_with_termios_and_window_size() {
    in_child("pty", || {
        let m = place(sys::posix_openpt(libc::O_RDWR | libc::O_NOCTTY).unwrap(), 5);
        sys::set_pty_lock(m, false).unwrap();
        let name = sys::ptsname(m).unwrap();
        let s = place(
            sys::open(&name, libc::O_RDWR | libc::O_NOCTTY, 0).unwrap(),
            6,
        );
        let mut t = sys::tcgetattr(s).unwrap();
        t.c_lflag &= !libc::ECHO;
        sys::tcsetattr(s, &t).unwrap();
        let ws = libc::winsize {
            ws_row: 40,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        sys::set_winsize(m, &ws).unwrap();
        let (table, _) = roundtrip()?;
        check_eq!(
            matches!(table.get(5).unwrap().object, FdObject::PtyMaster(_)),
            true,
            "master kind"
        );
        check_eq!(
            matches!(table.get(6).unwrap().object, FdObject::PtySlave(_)),
            true,
            "slave kind"
        );
        let w = sys::get_winsize(6).unwrap();
        check_eq!((w.ws_row, w.ws_col), (40, 100), "window size");
        check_eq!(
            sys::tcgetattr(6).unwrap().c_lflag & libc::ECHO,
            0,
            "ECHO off kept"
        );
        check_eq!(
            link(6),
            sys::ptsname(5).unwrap(),
            "slave belongs to the new master"
        );
        sys::write(5, b"hi\n").unwrap();
        check_eq!(read_n(6, 10)?, b"hi\n".to_vec(), "master to slave");
        sys::write(6, b"yo").unwrap();
        check_eq!(read_n(5, 10)?, b"yo".to_vec(), "slave to master, no echo");
        Ok(())
    });
}

#[test]
fn sockets_are_recognised_and_left_to_the_socket_layer() {
    in_child("socket", || {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        place(a, 5);
        place(b, 6);
        sys::dup3(5, 8, 0).unwrap();
        let ep = place(sys::epoll_create1(0).unwrap(), 9);
        sys::epoll_add(ep, 6, libc::EPOLLIN as u32, 66).unwrap();
        let (table, report) = roundtrip()?;
        check_eq!(
            report.deferred_epoll.len(),
            1,
            "socket registration handed back"
        );
        check_eq!(
            (
                report.deferred_epoll[0].0,
                report.deferred_epoll[0].1.fd,
                report.deferred_epoll[0].1.data
            ),
            (9, 6, 66),
            "deferred registration"
        );
        let Some(FdObject::Socket(s)) = table.get(5).map(|e| &e.object) else {
            return Err("fd 5 not a socket".into());
        };
        check_eq!(
            (s.domain, s.kind),
            (libc::AF_UNIX, libc::SOCK_STREAM),
            "socket type"
        );
        let mut sockets = report.sockets.clone();
        sockets.sort();
        check_eq!(sockets, vec![5, 6, 8], "reported sockets (with the dup)");
        check_eq!(test_fds(), vec![9], "nothing but the epoll created");
        Ok(())
    });
}

#[test]
fn scan_skips_the_protected_range() {
    in_child("protected", || {
        place(sys::open("/dev/null", libc::O_RDONLY, 0).unwrap(), 825);
        place(sys::open("/dev/null", libc::O_RDONLY, 0).unwrap(), 819);
        let fds = list_fds().unwrap();
        check_eq!(fds.contains(&825), false, "825 hidden");
        check_eq!(fds.contains(&819), true, "819 listed");
        let table = crate::save_all(&SaveOptions::default()).map_err(|e| e.to_string())?;
        check_eq!(table.get(825).is_none(), true, "825 not saved");
        Ok(())
    });
}

#[test]
fn terminal_stdio_without_its_master_is_inherited() {
    let table = FdTable {
        entries: vec![
            FdEntry {
                fd: 0,
                cloexec: false,
                object: FdObject::PtySlave(SlaveState {
                    index: 77,
                    path: "/dev/pts/77".into(),
                    flags: 2,
                }),
            },
            FdEntry {
                fd: 1,
                cloexec: false,
                object: FdObject::Dup { of: 0 },
            },
        ],
    };
    let report = restore_all(&table, &RestoreOptions::default()).unwrap();
    assert_eq!(report.inherited, vec![0, 1]);
    assert_eq!(table.entries[0].to_string(), "fd 0: pty slave /dev/pts/77");
    assert_eq!(table.entries[1].to_string(), "fd 1: dup of fd 0");
}

#[test]
fn inconsistent_tables_are_rejected_before_anything_is_created() {
    let bad = FdTable {
        entries: vec![FdEntry {
            fd: 3,
            cloexec: false,
            object: FdObject::Dup { of: 9 },
        }],
    };
    match restore_all(&bad, &RestoreOptions::default()) {
        Err(FdError::Inconsistent { fd: 3, .. }) => {}
        other => panic!("want Inconsistent, got {other:?}"),
    }
}
