//! Pipes (both ends here, or one end only) and FIFOs.

use super::*;
use crate::check_eq;
use crate::kinds::pipe::Peer;
use crate::{FdError, FdObject};

#[test]
fn saving_a_pipe_loses_no_data() {
    in_child("pipe-save", || {
        pipe_at(3, 4);
        sys::write(4, b"in flight").unwrap();
        let table = save_fds(&test_fds(), &SaveOptions::default()).map_err(|e| e.to_string())?;
        let Some(FdObject::Pipe(p)) = table.get(3).map(|e| &e.object) else {
            return Err("fd 3 not a pipe".into());
        };
        check_eq!(p.data, b"in flight".to_vec(), "drained data");
        check_eq!(
            read_n(3, 100)?,
            b"in flight".to_vec(),
            "still readable by the program"
        );
        check_eq!(
            status_flags(3) & libc::O_NONBLOCK,
            0,
            "blocking mode left alone"
        );
        Ok(())
    });
}

/// Another process sharing the description reads its flags for its own image while the
/// elected process drains: it must never see the drain's O_NONBLOCK (it would save it, and the
/// program's blocking reads would fail with EAGAIN after restart).
#[test]
fn draining_never_shows_o_nonblock_on_the_programs_description() {
    in_child("pipe-drain-flags", || {
        pipe_at(3, 4);
        let payload = vec![7u8; 60_000];
        let mut done = 0;
        while done < payload.len() {
            done += sys::write(4, &payload[done..]).unwrap();
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    seen += u32::from(status_flags(3) & libc::O_NONBLOCK != 0);
                }
                seen
            })
        };
        for _ in 0..200 {
            let data = crate::kinds::pipe::drain_refill(3).map_err(|e| e.to_string())?;
            check_eq!(data.len(), payload.len(), "drained bytes");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        check_eq!(watcher.join().unwrap(), 0, "samples showing O_NONBLOCK");
        check_eq!(
            read_n(3, 65536)?.len(),
            payload.len(),
            "data left in the pipe"
        );
        Ok(())
    });
}

#[test]
fn pipe_with_both_ends_comes_back_as_a_real_pipe_with_data_and_capacity() {
    in_child("pipe", || {
        pipe_at(10, 11);
        sys::fcntl(10, libc::F_SETPIPE_SZ, 131072).unwrap();
        sys::fcntl(10, libc::F_SETFL, libc::O_NONBLOCK).unwrap();
        sys::fcntl(11, libc::F_SETFD, libc::FD_CLOEXEC).unwrap();
        let payload: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let mut done = 0;
        while done < payload.len() {
            done += sys::write(11, &payload[done..]).unwrap();
        }
        let (table, report) = roundtrip()?;
        let Some(FdObject::Pipe(p)) = table.get(11).map(|e| &e.object) else {
            return Err("fd 11 not a pipe".into());
        };
        check_eq!(p.peer, Peer::InProcess, "peer");
        check_eq!(report.orphan_pipe_ends.len(), 0, "no orphans");
        check_eq!(
            sys::fstat(10).unwrap().st_mode & libc::S_IFMT,
            libc::S_IFIFO,
            "a real pipe"
        );
        check_eq!(link(10), link(11), "one pipe");
        check_eq!(
            sys::fcntl(10, libc::F_GETPIPE_SZ, 0).unwrap(),
            131072,
            "capacity"
        );
        check_eq!(
            status_flags(10) & libc::O_NONBLOCK,
            libc::O_NONBLOCK,
            "read end nonblock"
        );
        check_eq!(status_flags(11) & libc::O_NONBLOCK, 0, "write end blocking");
        check_eq!((cloexec(10), cloexec(11)), (false, true), "cloexec");
        let mut got = Vec::new();
        while let Ok(chunk) = read_n(10, 65536) {
            if chunk.is_empty() {
                break;
            }
            got.extend(chunk);
        }
        check_eq!(got.len(), payload.len(), "refilled length");
        check_eq!(got == payload, true, "refilled bytes");
        sys::write(11, b"new").unwrap();
        check_eq!(read_n(10, 10)?, b"new".to_vec(), "ends connected");
        Ok(())
    });
}

#[test]
fn pipe_with_other_end_elsewhere_is_restored_with_an_orphan_end() {
    in_child("pipe-orphan", || {
        pipe_at(5, 6);
        sys::write(6, b"queued").unwrap();
        // The write end now lives "in another process" only: keep it out of the saved set.
        let keep = sys::dup_above(6, 600).unwrap();
        close(6).unwrap();
        let fds: Vec<RawFd> = test_fds().into_iter().filter(|&fd| fd < 600).collect();
        let table = save_fds(&fds, &SaveOptions::default()).map_err(|e| e.to_string())?;
        drop(keep);
        let Some(FdObject::Pipe(p)) = table.get(5).map(|e| &e.object) else {
            return Err("fd 5 not a pipe".into());
        };
        check_eq!(p.peer, Peer::External, "peer");
        let inode = p.inode;
        close(5).unwrap();
        let mut report =
            restore_all(&table, &RestoreOptions::default()).map_err(|e| e.to_string())?;
        check_eq!(report.orphan_pipe_ends.len(), 1, "one orphan end");
        let orphan = report.orphan_pipe_ends.pop().unwrap();
        check_eq!(
            (orphan.inode, orphan.write_end),
            (inode, true),
            "orphan identity"
        );
        check_eq!(read_n(5, 100)?, b"queued".to_vec(), "data refilled");
        sys::write(orphan.fd.as_raw_fd(), b"more").unwrap();
        check_eq!(
            read_n(5, 100)?,
            b"more".to_vec(),
            "orphan end feeds the restored end"
        );
        Ok(())
    });
}

#[test]
fn removed_fifo_is_a_missing_file_naming_fd_and_path() {
    in_child("fifo-gone", || {
        let dir = temp_dir("fifo-gone");
        let path = format!("{dir}/fifo");
        crate::sys::testonly::mkfifo(&path).unwrap();
        place(
            sys::open(&path, libc::O_RDONLY | libc::O_NONBLOCK, 0).unwrap(),
            5,
        );
        let table = save_fds(&test_fds(), &SaveOptions::default()).map_err(|e| e.to_string())?;
        close(5).unwrap();
        std::fs::remove_file(&path).unwrap();
        match restore_all(&table, &RestoreOptions::default()) {
            Err(FdError::Missing { fd: 5, path: p }) => check_eq!(p, path, "path"),
            other => return Err(format!("want Missing for fd 5, got {other:?}")),
        }
        Ok(())
    });
}

#[test]
fn fifo_is_reopened_by_path_and_refilled() {
    in_child("fifo", || {
        let dir = temp_dir("fifo");
        let path = format!("{dir}/fifo");
        crate::sys::testonly::mkfifo(&path).unwrap();
        place(
            sys::open(&path, libc::O_RDONLY | libc::O_NONBLOCK, 0).unwrap(),
            5,
        );
        place(sys::open(&path, libc::O_WRONLY, 0).unwrap(), 6);
        sys::write(6, b"xyz").unwrap();
        let (table, _) = roundtrip()?;
        check_eq!(
            matches!(table.get(5).unwrap().object, FdObject::Fifo(_)),
            true,
            "kind"
        );
        check_eq!((link(5), link(6)), (path.clone(), path.clone()), "paths");
        check_eq!(
            status_flags(5) & libc::O_ACCMODE,
            libc::O_RDONLY,
            "reader mode"
        );
        check_eq!(
            status_flags(5) & libc::O_NONBLOCK,
            libc::O_NONBLOCK,
            "reader nonblock"
        );
        check_eq!(
            status_flags(6) & (libc::O_ACCMODE | libc::O_NONBLOCK),
            libc::O_WRONLY,
            "writer flags"
        );
        check_eq!(read_n(5, 10)?, b"xyz".to_vec(), "refilled");
        sys::write(6, b"!").unwrap();
        check_eq!(read_n(5, 10)?, b"!".to_vec(), "connected");
        Ok(())
    });
}

#[test]
fn pipe_data_saved_by_another_process_is_not_drained_here() {
    in_child("pipe-skip", || {
        pipe_at(3, 4);
        sys::write(4, b"leader saves this").unwrap();
        let ino = sys::fstat(3).unwrap().st_ino;
        let opts = SaveOptions {
            skip_drain: vec![ino],
            ..Default::default()
        };
        let table = save_fds(&test_fds(), &opts).map_err(|e| e.to_string())?;
        let Some(FdObject::Pipe(p)) = table.get(3).map(|e| &e.object) else {
            return Err("fd 3 not a pipe".into());
        };
        check_eq!(p.data.len(), 0, "nothing saved");
        check_eq!(read_n(3, 100)?, b"leader saves this".to_vec(), "untouched");
        Ok(())
    });
}

#[test]
fn pipe_descriptions_reopened_through_proc_are_recreated_the_same_way() {
    in_child("pipe-proc", || {
        pipe_at(3, 4);
        place(sys::open("/proc/self/fd/3", libc::O_RDWR, 0).unwrap(), 5);
        place(
            sys::open("/proc/self/fd/3", libc::O_RDONLY | libc::O_NONBLOCK, 0).unwrap(),
            6,
        );
        close(4).unwrap();
        sys::write(5, b"rw").unwrap();
        let (table, report) = roundtrip()?;
        let Some(FdObject::Pipe(p)) = table.get(5).map(|e| &e.object) else {
            return Err("fd 5 not a pipe".into());
        };
        check_eq!(
            p.peer,
            Peer::InProcess,
            "a read-write description is both ends"
        );
        check_eq!(report.orphan_pipe_ends.len(), 0, "no orphan");
        check_eq!((link(3), link(5)), (link(6), link(6)), "one pipe");
        check_eq!(
            status_flags(5) & libc::O_ACCMODE,
            libc::O_RDWR,
            "fd 5 read-write"
        );
        check_eq!(
            status_flags(6) & libc::O_NONBLOCK,
            libc::O_NONBLOCK,
            "fd 6 nonblock"
        );
        check_eq!(
            sys::same_file_description(3, 6).unwrap(),
            Some(false),
            "separate descriptions"
        );
        check_eq!(read_n(6, 10)?, b"rw".to_vec(), "data");
        sys::write(5, b"again").unwrap();
        check_eq!(
            read_n(3, 10)?,
            b"again".to_vec(),
            "fd 5 writes into the pipe fd 3 reads"
        );
        Ok(())
    });
}
