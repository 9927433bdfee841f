//! eventfd, timerfd, signalfd, epoll, inotify and memfd.

use super::*;
use crate::check_eq;
use crate::fdinfo::FdInfo;
use crate::kinds::inotify::note_watch;

fn read_u64(fd: RawFd) -> Result<u64, String> {
    let b = read_n(fd, 8)?;
    let arr: [u8; 8] = b
        .try_into()
        .map_err(|b: Vec<u8>| format!("short read of {} bytes", b.len()))?;
    Ok(u64::from_ne_bytes(arr))
}

#[test]
fn eventfd_keeps_counter_semaphore_and_nonblock() {
    in_child("eventfd", || {
        place(
            sys::eventfd(3, libc::EFD_SEMAPHORE | libc::EFD_NONBLOCK).unwrap(),
            4,
        );
        place(sys::eventfd(0, 0).unwrap(), 5);
        sys::write(5, &(1u64 << 40).to_ne_bytes()).unwrap();
        roundtrip()?;
        check_eq!(link(4), "anon_inode:[eventfd]".to_string(), "kind");
        for i in 0..3 {
            check_eq!(read_u64(4)?, 1, "semaphore read {i}");
        }
        check_eq!(read_n(4, 8).is_err(), true, "empty and non-blocking");
        check_eq!(read_u64(5)?, 1u64 << 40, "64-bit counter");
        check_eq!(status_flags(5) & libc::O_NONBLOCK, 0, "blocking kept");
        Ok(())
    });
}

fn itimer(value: (i64, i64), interval: (i64, i64)) -> libc::itimerspec {
    libc::itimerspec {
        it_value: libc::timespec {
            tv_sec: value.0,
            tv_nsec: value.1,
        },
        it_interval: libc::timespec {
            tv_sec: interval.0,
            tv_nsec: interval.1,
        },
    }
}

#[test]
fn timerfd_keeps_clock_remaining_interval_and_ticks() {
    in_child("timerfd", || {
        let rel = place(
            sys::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK).unwrap(),
            3,
        );
        sys::timerfd_settime(rel, 0, &itimer((10, 0), (1, 500))).unwrap();
        let abs = place(sys::timerfd_create(libc::CLOCK_REALTIME, 0).unwrap(), 4);
        let now = sys::clock_gettime(libc::CLOCK_REALTIME).unwrap();
        let deadline = (now.tv_sec + 100, now.tv_nsec);
        sys::timerfd_settime(abs, libc::TFD_TIMER_ABSTIME, &itimer(deadline, (0, 0))).unwrap();
        let fired = place(
            sys::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK).unwrap(),
            5,
        );
        sys::timerfd_settime(fired, 0, &itimer((0, 1_000_000), (0, 0))).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));

        let (_, report) = roundtrip()?;
        let cur = sys::timerfd_gettime(3).unwrap();
        if !(cur.it_value.tv_sec == 9 || (cur.it_value.tv_sec == 10 && cur.it_value.tv_nsec == 0)) {
            return Err(format!(
                "relative timer remaining {:?}",
                (cur.it_value.tv_sec, cur.it_value.tv_nsec)
            ));
        }
        check_eq!(
            (cur.it_interval.tv_sec, cur.it_interval.tv_nsec),
            (1, 500),
            "interval"
        );
        let info = FdInfo::read(3).unwrap();
        check_eq!(
            info.get_dec("clockid"),
            Some(libc::CLOCK_MONOTONIC as u64),
            "clock"
        );
        check_eq!(
            status_flags(3) & libc::O_NONBLOCK,
            libc::O_NONBLOCK,
            "nonblock"
        );
        let info = FdInfo::read(4).unwrap();
        check_eq!(
            info.get_oct("settime flags"),
            Some(libc::TFD_TIMER_ABSTIME as u64),
            "absolute"
        );
        let cur = sys::timerfd_gettime(4).unwrap();
        if !(98..=100).contains(&cur.it_value.tv_sec) {
            return Err(format!("absolute timer remaining {}s", cur.it_value.tv_sec));
        }
        // The expired one-shot timer still reports its unread expiration.
        check_eq!(
            sys::timerfd_gettime(5).unwrap().it_value.tv_sec,
            0,
            "disarmed"
        );
        check_eq!(report.warnings, Vec::<String>::new(), "warnings");
        check_eq!(read_u64(5)?, 1, "unread ticks");
        Ok(())
    });
}

#[test]
fn signalfd_keeps_its_mask_and_reads_pending_signals() {
    in_child("signalfd", || {
        let mask = (1u64 << (libc::SIGUSR1 - 1)) | (1u64 << (libc::SIGUSR2 - 1));
        place(sys::signalfd(mask, libc::SFD_NONBLOCK).unwrap(), 6);
        crate::sys::testonly::block_and_raise(&[libc::SIGUSR1, libc::SIGUSR2], libc::SIGUSR2)
            .unwrap();
        roundtrip()?;
        check_eq!(
            FdInfo::read(6).unwrap().get_hex("sigmask"),
            Some(mask),
            "mask"
        );
        check_eq!(
            status_flags(6) & libc::O_NONBLOCK,
            libc::O_NONBLOCK,
            "nonblock"
        );
        let info = read_n(6, std::mem::size_of::<libc::signalfd_siginfo>())?;
        let signo = u32::from_ne_bytes(info[0..4].try_into().unwrap());
        check_eq!(
            signo,
            libc::SIGUSR2 as u32,
            "pending signal read through the restored fd"
        );
        check_eq!(read_n(6, 128).is_err(), true, "nothing else pending");
        Ok(())
    });
}

#[test]
fn epoll_registrations_are_replayed_after_their_targets() {
    in_child("epoll", || {
        // The epoll fd has a lower number than its targets, and watches another epoll.
        let outer = place(sys::epoll_create1(0).unwrap(), 3);
        let efd = place(sys::eventfd(1, 0).unwrap(), 5);
        pipe_at(6, 7);
        let (pr, pw) = (6, 7);
        let inner = place(sys::epoll_create1(0).unwrap(), 9);
        sys::fcntl(inner, libc::F_SETFD, libc::FD_CLOEXEC).unwrap();
        sys::epoll_add(inner, efd, libc::EPOLLIN as u32, 0xdead).unwrap();
        sys::epoll_add(outer, pr, (libc::EPOLLIN | libc::EPOLLET) as u32, 42).unwrap();
        sys::epoll_add(outer, inner, libc::EPOLLIN as u32, 99).unwrap();
        // A registration made through a number that is closed before the checkpoint.
        sys::dup3(efd, 12, 0).unwrap();
        sys::epoll_add(outer, 12, libc::EPOLLOUT as u32, 7).unwrap();
        close(12).unwrap();

        let (_, report) = roundtrip()?;
        check_eq!(report.warnings.len(), 1, "stale registration reported");
        check_eq!(cloexec(9), true, "inner cloexec");
        let ready = crate::sys::testonly::epoll_poll(inner).unwrap();
        check_eq!(
            ready,
            vec![(libc::EPOLLIN as u32, 0xdead)],
            "inner sees the eventfd"
        );
        let ready = crate::sys::testonly::epoll_poll(outer).unwrap();
        check_eq!(
            ready,
            vec![(libc::EPOLLIN as u32, 99)],
            "outer sees inner ready, pipe empty"
        );
        sys::write(pw, b"x").unwrap();
        let mut ready = crate::sys::testonly::epoll_poll(outer).unwrap();
        ready.sort();
        check_eq!(
            ready,
            vec![(libc::EPOLLIN as u32, 42), (libc::EPOLLIN as u32, 99)],
            "pipe event"
        );
        let info = FdInfo::read(outer).unwrap();
        let mut tfds: Vec<_> = info
            .epoll
            .iter()
            .map(|t| (t.tfd, t.events, t.data))
            .collect();
        tfds.sort();
        check_eq!(
            tfds,
            // The kernel adds EPOLLERR | EPOLLHUP to every registration.
            vec![
                (
                    6,
                    (libc::EPOLLIN | libc::EPOLLET | libc::EPOLLERR | libc::EPOLLHUP) as u32,
                    42
                ),
                (
                    9,
                    (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32,
                    99
                )
            ],
            "registrations"
        );
        Ok(())
    });
}

#[test]
fn inotify_watches_keep_their_descriptors_and_masks() {
    in_child("inotify", || {
        let dir = temp_dir("inotify");
        let (a, b) = (format!("{dir}/a"), format!("{dir}/b"));
        std::fs::write(&a, b"").unwrap();
        std::fs::write(&b, b"").unwrap();
        let fd = place(sys::inotify_init1(libc::IN_NONBLOCK).unwrap(), 5);
        let wa = sys::inotify_add_watch(fd, &a, libc::IN_MODIFY | libc::IN_CLOSE_WRITE).unwrap();
        note_watch(fd, wa, &a);
        let wb = sys::inotify_add_watch(fd, &b, libc::IN_ATTRIB).unwrap();
        sys::inotify_rm_watch(fd, wb).unwrap();
        // Not noted: found by searching the roots for its inode.
        let wd = sys::inotify_add_watch(fd, &dir, libc::IN_CREATE).unwrap();
        let mut buf = vec![0u8; 4096];
        while sys::read(fd, &mut buf).is_ok() {}
        check_eq!((wa, wb, wd), (1, 2, 3), "watch descriptors before");
        let before = FdInfo::read(fd).unwrap().inotify;

        let parent = std::path::Path::new(&dir)
            .parent()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let save = SaveOptions {
            inotify_search_roots: vec![parent],
            ..Default::default()
        };
        let (_, report) = roundtrip_with(&save, &RestoreOptions::default(), || Ok(()))?;
        check_eq!(report.warnings, Vec::<String>::new(), "warnings");
        let after = FdInfo::read(fd).unwrap().inotify;
        let strip = |v: &[crate::fdinfo::InotifyWatch]| {
            v.iter().map(|w| (w.wd, w.ino, w.mask)).collect::<Vec<_>>()
        };
        check_eq!(strip(&after), strip(&before), "watches");
        check_eq!(
            read_n(fd, 4096).is_err(),
            true,
            "no stray events (IN_IGNORED) queued"
        );
        std::fs::write(&a, b"x").unwrap();
        let ev = read_n(fd, 4096)?;
        let wd_seen = i32::from_ne_bytes(ev[0..4].try_into().unwrap());
        check_eq!(wd_seen, 1, "event on a comes with wd 1");
        std::fs::write(format!("{dir}/c"), b"").unwrap();
        let mut saw_create = false;
        while let Ok(ev) = read_n(fd, 4096) {
            let mut off = 0;
            while off + 16 <= ev.len() {
                let wd = i32::from_ne_bytes(ev[off..off + 4].try_into().unwrap());
                let mask = u32::from_ne_bytes(ev[off + 4..off + 8].try_into().unwrap());
                let len = u32::from_ne_bytes(ev[off + 12..off + 16].try_into().unwrap()) as usize;
                saw_create |= wd == 3 && mask & libc::IN_CREATE != 0;
                off += 16 + len;
            }
        }
        check_eq!(saw_create, true, "create in dir reported with wd 3");
        Ok(())
    });
}

#[test]
fn memfd_keeps_name_contents_size_seals_and_sharing() {
    in_child("memfd", || {
        let fd = place(
            sys::memfd_create("buf", libc::MFD_ALLOW_SEALING).unwrap(),
            5,
        );
        sys::write(fd, b"memfd data").unwrap();
        sys::ftruncate(fd, 4096).unwrap();
        sys::fcntl(
            fd,
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW,
        )
        .unwrap();
        sys::lseek(fd, 3, libc::SEEK_SET).unwrap();
        place(sys::open("/proc/self/fd/5", libc::O_RDONLY, 0).unwrap(), 8);
        let sealed_never = place(sys::memfd_create("plain", 0).unwrap(), 9);
        let _ = sealed_never;
        roundtrip()?;
        check_eq!(link(5), "/memfd:buf (deleted)".to_string(), "name");
        check_eq!(sys::fstat(5).unwrap().st_size, 4096, "size");
        check_eq!(
            sys::fcntl(5, libc::F_GET_SEALS, 0).unwrap(),
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW,
            "seals"
        );
        check_eq!(
            sys::fcntl(9, libc::F_GET_SEALS, 0).unwrap(),
            libc::F_SEAL_SEAL,
            "no sealing"
        );
        check_eq!(sys::lseek(5, 0, libc::SEEK_CUR).unwrap(), 3, "offset");
        check_eq!(read_n(5, 7)?, b"fd data".to_vec(), "contents");
        check_eq!(
            status_flags(8) & libc::O_ACCMODE,
            libc::O_RDONLY,
            "second description mode"
        );
        check_eq!(
            sys::fstat(8).unwrap().st_ino,
            sys::fstat(5).unwrap().st_ino,
            "one memfd"
        );
        sys::pwrite(5, b"M", 0).unwrap();
        let mut b = [0u8; 1];
        sys::pread(8, &mut b, 0).unwrap();
        check_eq!(b[0], b'M', "write through 5 visible through 8");
        Ok(())
    });
}

#[test]
fn inotify_watch_on_a_renamed_file_is_found_in_its_directory() {
    in_child("inotify-renamed", || {
        let dir = temp_dir("inotify-renamed");
        let (old, new) = (format!("{dir}/old"), format!("{dir}/new"));
        std::fs::write(&old, b"").unwrap();
        let fd = place(sys::inotify_init1(libc::IN_NONBLOCK).unwrap(), 4);
        let wd = sys::inotify_add_watch(fd, &old, libc::IN_MODIFY).unwrap();
        note_watch(fd, wd, &old);
        std::fs::rename(&old, &new).unwrap();
        let mut buf = vec![0u8; 4096];
        while sys::read(fd, &mut buf).is_ok() {}
        // Search roots that do not contain the file: only the noted name's directory does.
        let save = SaveOptions {
            inotify_search_roots: vec!["/nonexistent".into()],
            ..Default::default()
        };
        let (table, report) = roundtrip_with(&save, &RestoreOptions::default(), || Ok(()))?;
        let Some(crate::FdObject::Inotify(s)) = table.get(4).map(|e| &e.object) else {
            return Err("fd 4 not inotify".into());
        };
        check_eq!(
            s.watches[0].path.as_deref(),
            Some(new.as_str()),
            "resolved path"
        );
        check_eq!(report.warnings, Vec::<String>::new(), "warnings");
        std::fs::write(&new, b"x").unwrap();
        let ev = read_n(fd, 4096)?;
        check_eq!(
            i32::from_ne_bytes(ev[0..4].try_into().unwrap()),
            wd,
            "event on the renamed file"
        );
        Ok(())
    });
}
