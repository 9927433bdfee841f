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
fn stdio_leading_outside_is_inherited_and_its_dups_are_made_from_it() {
    in_child("stdio", || {
        // Stdin: a pipe whose write end is elsewhere; stdout: a file; both dup'd above.
        pipe_at(0, 50);
        let dir = temp_dir("stdio");
        let out = format!("{dir}/out");
        place(
            sys::open(&out, libc::O_WRONLY | libc::O_CREAT, 0o600).unwrap(),
            1,
        );
        sys::write(1, b"12345").unwrap();
        sys::dup3(0, 7, 0).unwrap();
        sys::dup3(1, 8, 0).unwrap();
        let table = save_fds(&[0, 1, 7, 8], &SaveOptions::default()).map_err(|e| e.to_string())?;
        close(50).unwrap();
        for fd in [0, 1, 7, 8] {
            close(fd).unwrap();
        }
        // The restart command's own stdin.
        place(sys::open("/dev/null", libc::O_RDONLY, 0).unwrap(), 0);
        let report = restore_all(&table, &RestoreOptions::default()).map_err(|e| e.to_string())?;
        check_eq!(report.inherited, vec![0], "inherited");
        check_eq!(
            report.orphan_pipe_ends.len(),
            0,
            "no pipe created for stdin"
        );
        check_eq!(link(0), "/dev/null".to_string(), "stdin kept");
        check_eq!(
            link(7),
            "/dev/null".to_string(),
            "dup of stdin made from the inherited one"
        );
        check_eq!(link(1), out.clone(), "stdout file restored");
        check_eq!(
            sys::same_file_description(1, 8).unwrap(),
            Some(true),
            "stdout dup"
        );
        check_eq!(
            sys::lseek(8, 0, libc::SEEK_CUR).unwrap(),
            5,
            "stdout offset"
        );
        Ok(())
    });
}

#[test]
fn terminal_stdio_without_its_master_is_inherited() {
    in_child("tty-stdio", || {
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
        close(0).unwrap();
        let report = restore_all(&table, &RestoreOptions::default()).map_err(|e| e.to_string())?;
        // Fd 0 is not open in this "restart process", so its dup cannot be made either.
        check_eq!(report.inherited, vec![0, 1], "inherited");
        check_eq!(
            table.entries[0].to_string(),
            "fd 0: pty slave /dev/pts/77".to_string(),
            "display"
        );
        check_eq!(
            table.entries[1].to_string(),
            "fd 1: dup of fd 0".to_string(),
            "display dup"
        );
        Ok(())
    });
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

#[test]
fn a_process_with_every_kind_at_once_is_saved_and_restored_whole() {
    in_child("everything", || {
        let dir = temp_dir("everything");
        let path = format!("{dir}/f");
        std::fs::write(&path, b"file contents").unwrap();
        // Numbers interleave kinds so that order matters: the epoll (3) watches later fds, a
        // dup (4) precedes nothing, the pipe's write end (10) comes before its read end (30).
        let ep = place(sys::epoll_create1(0).unwrap(), 3);
        pipe_at(30, 10);
        sys::dup3(30, 4, 0).unwrap();
        place(sys::eventfd(2, 0).unwrap(), 11);
        place(sys::memfd_create("m", 0).unwrap(), 12);
        sys::write(12, b"mem").unwrap();
        place(sys::open(&path, libc::O_RDWR, 0).unwrap(), 13);
        sys::lseek(13, 5, libc::SEEK_SET).unwrap();
        let m = place(
            sys::posix_openpt(libc::O_RDWR | libc::O_NOCTTY).unwrap(),
            14,
        );
        sys::set_pty_lock(m, false).unwrap();
        place(
            sys::open(&sys::ptsname(m).unwrap(), libc::O_RDWR | libc::O_NOCTTY, 0).unwrap(),
            15,
        );
        sys::epoll_add(ep, 30, libc::EPOLLIN as u32, 1).unwrap();
        sys::epoll_add(ep, 11, libc::EPOLLIN as u32, 2).unwrap();
        sys::write(10, b"piped").unwrap();

        let full = crate::save_all(&SaveOptions::default()).map_err(|e| e.to_string())?;
        let lines: Vec<String> = full.entries.iter().map(|e| e.to_string()).collect();
        // The report pipe belongs to the test harness, not to the "program".
        let table = FdTable {
            entries: full.entries.into_iter().filter(|e| e.fd < 900).collect(),
        };
        let table = FdTable::from_bytes(&table.to_bytes()).map_err(|e| e.to_string())?;
        for fd in test_fds() {
            close(fd).unwrap();
        }
        let report = restore_all(&table, &RestoreOptions::default()).map_err(|e| e.to_string())?;
        check_eq!(report.warnings, Vec::<String>::new(), "warnings");
        check_eq!(
            test_fds(),
            vec![3, 4, 10, 11, 12, 13, 14, 15, 30],
            "fd numbers"
        );
        let mut ready = crate::sys::testonly::epoll_poll(3).unwrap();
        ready.sort();
        check_eq!(
            ready,
            vec![(libc::EPOLLIN as u32, 1), (libc::EPOLLIN as u32, 2)],
            "epoll"
        );
        check_eq!(
            sys::same_file_description(4, 30).unwrap(),
            Some(true),
            "dup of the read end"
        );
        check_eq!(
            read_n(4, 10)?,
            b"piped".to_vec(),
            "pipe data through the dup"
        );
        check_eq!(read_n(11, 8)?, 2u64.to_ne_bytes().to_vec(), "eventfd");
        let mut b = [0u8; 3];
        sys::pread(12, &mut b, 0).unwrap();
        check_eq!(&b, b"mem", "memfd");
        check_eq!(read_n(13, 100)?, b"contents".to_vec(), "file at offset");
        sys::write(14, b"t\n").unwrap();
        check_eq!(read_n(15, 10)?, b"t\n".to_vec(), "pty");
        if !lines.iter().any(|l| l == "fd 30: dup of fd 4") {
            return Err(format!("summary lacks the dup: {lines:#?}"));
        }
        Ok(())
    });
}
