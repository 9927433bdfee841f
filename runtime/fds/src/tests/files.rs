//! Regular files, deleted files, the file policy, directories, devices, shared offsets.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;

use super::*;
use crate::check_eq;
use crate::{FdError, FdObject};

fn open_at(path: &str, opts: &mut OpenOptions, target: RawFd) -> RawFd {
    place(opts.open(path).unwrap(), target)
}

#[test]
fn regular_files_keep_path_offset_flags_and_cloexec() {
    in_child("regular", || {
        let dir = temp_dir("regular");
        let path = format!("{dir}/data");
        std::fs::write(&path, b"0123456789").unwrap();
        let rw = open_at(&path, OpenOptions::new().read(true).write(true), 5);
        sys::lseek(rw, 3, libc::SEEK_SET).unwrap();
        open_at(&path, OpenOptions::new().append(true), 7);
        let ro = open_at(
            &path,
            OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK),
            9,
        );
        sys::fcntl(ro, libc::F_SETFD, libc::FD_CLOEXEC).unwrap();
        sys::lseek(ro, 8, libc::SEEK_SET).unwrap();

        let (table, report) = roundtrip()?;
        check_eq!(table.entries.len(), 3, "entries");
        check_eq!(report.warnings, Vec::<String>::new(), "warnings");
        check_eq!(link(5), path, "path of fd 5");
        check_eq!(
            sys::lseek(5, 0, libc::SEEK_CUR).unwrap(),
            3,
            "offset of fd 5"
        );
        check_eq!(read_n(5, 3)?, b"345".to_vec(), "read after restore");
        check_eq!(
            status_flags(7) & libc::O_APPEND,
            libc::O_APPEND,
            "O_APPEND of fd 7"
        );
        check_eq!(
            status_flags(7) & libc::O_ACCMODE,
            libc::O_WRONLY,
            "access mode of fd 7"
        );
        check_eq!(
            status_flags(9) & libc::O_NONBLOCK,
            libc::O_NONBLOCK,
            "O_NONBLOCK of fd 9"
        );
        check_eq!(
            (cloexec(5), cloexec(9)),
            (false, true),
            "cloexec of 5 and 9"
        );
        check_eq!(read_n(9, 10)?, b"89".to_vec(), "read at fd 9's offset");
        sys::write(7, b"X").unwrap();
        check_eq!(
            std::fs::read(&path).unwrap(),
            b"0123456789X".to_vec(),
            "append lands at the end"
        );
        Ok(())
    });
}

#[test]
fn own_proc_files_are_saved_as_proc_self() {
    in_child("procself", || {
        open_at("/proc/self/maps", OpenOptions::new().read(true), 5);
        open_at("/proc/self/fd", OpenOptions::new().read(true), 6);
        let pid = std::fs::read_link("/proc/self").unwrap();
        check_eq!(
            link(5),
            format!("/proc/{}/maps", pid.display()),
            "the kernel names it by pid"
        );
        let (table, report) = roundtrip()?;
        let saved: Vec<String> = table
            .entries
            .iter()
            .filter_map(|e| match &e.object {
                FdObject::File(s) => Some(s.path.clone()),
                FdObject::Dir(s) => Some(s.path.clone()),
                _ => None,
            })
            .collect();
        check_eq!(
            saved,
            vec!["/proc/self/maps".to_string(), "/proc/self/fd".to_string()],
            "saved paths"
        );
        check_eq!(report.warnings, Vec::<String>::new(), "warnings");
        check_eq!(read_n(5, 1)?.len(), 1, "fd 5 reads after restore");
        Ok(())
    });
}

#[test]
fn deleted_file_comes_back_with_contents_offset_and_unlinked() {
    in_child("deleted", || {
        let dir = temp_dir("deleted");
        let path = format!("{dir}/scratch");
        std::fs::write(&path, b"hello world").unwrap();
        let fd = open_at(&path, OpenOptions::new().read(true).write(true), 4);
        sys::lseek(fd, 6, libc::SEEK_SET).unwrap();
        std::fs::remove_file(&path).unwrap();

        let (table, _) = roundtrip()?;
        let Some(FdObject::File(s)) = table.get(4).map(|e| &e.object) else {
            return Err("fd 4 not saved as a file".into());
        };
        check_eq!(
            (s.deleted, s.contents.as_deref()),
            (true, Some(&b"hello world"[..])),
            "saved state"
        );
        check_eq!(link(4), format!("{path} (deleted)"), "link");
        check_eq!(sys::fstat(4).unwrap().st_nlink, 0, "nlink");
        check_eq!(
            std::path::Path::new(&path).exists(),
            false,
            "old name is free again"
        );
        check_eq!(
            read_n(4, 20)?,
            b"world".to_vec(),
            "read at the saved offset"
        );
        Ok(())
    });
}

#[test]
fn deleted_file_whose_name_is_taken_becomes_a_temp_file() {
    in_child("deleted-taken", || {
        let dir = temp_dir("deleted-taken");
        let path = format!("{dir}/f");
        std::fs::write(&path, b"old").unwrap();
        open_at(&path, OpenOptions::new().read(true), 4);
        std::fs::remove_file(&path).unwrap();
        roundtrip_with(&SaveOptions::default(), &RestoreOptions::default(), || {
            std::fs::write(&path, b"a new file").map_err(|e| e.to_string())
        })?;
        check_eq!(read_n(4, 10)?, b"old".to_vec(), "contents");
        check_eq!(sys::fstat(4).unwrap().st_nlink, 0, "still unlinked");
        check_eq!(
            std::fs::read(&path).unwrap(),
            b"a new file".to_vec(),
            "the new file is untouched"
        );
        Ok(())
    });
}

#[test]
fn grown_writable_file_is_truncated_back_unless_disabled() {
    for truncate in [true, false] {
        in_child("grown", || {
            let dir = temp_dir(&format!("grown-{truncate}"));
            let path = format!("{dir}/log");
            std::fs::write(&path, b"").unwrap();
            let fd = open_at(&path, OpenOptions::new().write(true), 3);
            sys::write(fd, b"0123456789").unwrap();
            let ropts = RestoreOptions {
                truncate_grown_files: truncate,
                ..Default::default()
            };
            let (_, report) = roundtrip_with(&SaveOptions::default(), &ropts, || {
                let mut f = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(|e| e.to_string())?;
                std::io::Write::write_all(&mut f, b"after").map_err(|e| e.to_string())
            })?;
            let want = if truncate { 10 } else { 15 };
            check_eq!(
                std::fs::metadata(&path).unwrap().len(),
                want,
                "size after restore"
            );
            check_eq!(
                report.warnings.iter().any(|w| w.contains("truncated")),
                truncate,
                "warning"
            );
            check_eq!(sys::lseek(fd, 0, libc::SEEK_CUR).unwrap(), 10, "offset");
            Ok(())
        });
    }
}

#[test]
fn missing_file_is_a_clear_error_but_write_only_files_are_recreated() {
    in_child("missing", || {
        let dir = temp_dir("missing");
        let input = format!("{dir}/input");
        std::fs::write(&input, b"x").unwrap();
        open_at(&input, OpenOptions::new().read(true), 3);
        let fds = test_fds();
        let table = save_fds(&fds, &SaveOptions::default()).map_err(|e| e.to_string())?;
        close(3).unwrap();
        std::fs::remove_file(&input).unwrap();
        match restore_all(&table, &RestoreOptions::default()) {
            Err(e @ FdError::Missing { fd: 3, .. }) => {
                let msg = e.to_string();
                if !msg.contains(&input) || !msg.starts_with("fd 3:") {
                    return Err(format!("message does not name fd and path: {msg}"));
                }
            }
            other => return Err(format!("want Missing, got {other:?}")),
        }

        let output = format!("{dir}/output");
        let fd = open_at(&output, OpenOptions::new().write(true).create(true), 4);
        sys::write(fd, b"abc").unwrap();
        let (_, report) =
            roundtrip_with(&SaveOptions::default(), &RestoreOptions::default(), || {
                std::fs::remove_file(&output).map_err(|e| e.to_string())
            })?;
        check_eq!(
            std::path::Path::new(&output).exists(),
            true,
            "write-only file re-created"
        );
        check_eq!(sys::lseek(4, 0, libc::SEEK_CUR).unwrap(), 3, "offset kept");
        check_eq!(report.warnings.len(), 1, "one warning");
        Ok(())
    });
}

#[test]
fn saved_contents_refuse_to_overwrite_a_changed_file_unless_allowed() {
    in_child("contents", || {
        let dir = temp_dir("contents");
        let path = format!("{dir}/state");
        std::fs::write(&path, b"checkpointed").unwrap();
        open_at(&path, OpenOptions::new().read(true).write(true), 3);
        let save = SaveOptions {
            save_contents: true,
            ..Default::default()
        };
        let fds = test_fds();
        let table = save_fds(&fds, &save).map_err(|e| e.to_string())?;
        close(3).unwrap();
        std::fs::write(&path, b"changed later").unwrap();
        match restore_all(&table, &RestoreOptions::default()) {
            Err(FdError::Changed { fd: 3, .. }) => {}
            other => return Err(format!("want Changed, got {other:?}")),
        }
        let allow = RestoreOptions {
            allow_file_overwrite: true,
            ..Default::default()
        };
        let report = restore_all(&table, &allow).map_err(|e| e.to_string())?;
        check_eq!(
            std::fs::read(&path).unwrap(),
            b"checkpointed".to_vec(),
            "contents restored"
        );
        let backups: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".bk"))
            .collect();
        check_eq!(backups.len(), 1, "one backup");
        check_eq!(
            std::fs::read(format!("{dir}/{}", backups[0])).unwrap(),
            b"changed later".to_vec(),
            "backup"
        );
        check_eq!(report.warnings.len(), 1, "one warning");
        check_eq!(
            read_n(3, 20)?,
            b"checkpointed".to_vec(),
            "fd reads restored copy"
        );

        // Missing file with saved contents: re-created from the copy.
        close(3).unwrap();
        std::fs::remove_file(&path).unwrap();
        restore_all(&table, &RestoreOptions::default()).map_err(|e| e.to_string())?;
        check_eq!(
            std::fs::read(&path).unwrap(),
            b"checkpointed".to_vec(),
            "re-created"
        );
        Ok(())
    });
}

#[test]
fn directories_and_devices_reopen_by_path() {
    in_child("dirs-devs", || {
        let dir = temp_dir("dirs-devs");
        for i in 0..20 {
            std::fs::write(format!("{dir}/f{i}"), b"").unwrap();
        }
        let d = place(
            sys::open(&dir, libc::O_RDONLY | libc::O_DIRECTORY, 0).unwrap(),
            3,
        );
        // Directory positions are opaque cookies; every filesystem here accepts setting one.
        let end = sys::lseek(d, 2, libc::SEEK_SET).unwrap();
        let null = place(sys::open("/dev/null", libc::O_WRONLY, 0).unwrap(), 4);
        let zero = place(sys::open("/dev/zero", libc::O_RDONLY, 0).unwrap(), 5);
        let rnd = place(
            sys::open("/dev/urandom", libc::O_RDONLY | libc::O_NONBLOCK, 0).unwrap(),
            6,
        );
        let opath = place(sys::open(&format!("{dir}/f1"), libc::O_PATH, 0).unwrap(), 7);
        let _ = (null, zero, rnd, opath);
        let (table, _) = roundtrip()?;
        check_eq!(
            matches!(table.get(3).unwrap().object, FdObject::Dir(_)),
            true,
            "dir kind"
        );
        check_eq!(
            matches!(table.get(4).unwrap().object, FdObject::Device(_)),
            true,
            "dev kind"
        );
        check_eq!(
            matches!(table.get(7).unwrap().object, FdObject::PathOnly(_)),
            true,
            "O_PATH kind"
        );
        check_eq!(link(3), dir, "dir path");
        check_eq!(
            sys::lseek(3, 0, libc::SEEK_CUR).unwrap(),
            end,
            "dir position"
        );
        check_eq!(link(4), "/dev/null".to_string(), "null");
        check_eq!(
            status_flags(4) & libc::O_ACCMODE,
            libc::O_WRONLY,
            "null mode"
        );
        check_eq!(read_n(5, 4)?, vec![0u8; 4], "zero reads zeros");
        check_eq!(read_n(6, 8)?.len(), 8, "urandom reads");
        check_eq!(
            status_flags(6) & libc::O_NONBLOCK,
            libc::O_NONBLOCK,
            "urandom nonblock"
        );
        check_eq!(status_flags(7) & libc::O_PATH, libc::O_PATH, "O_PATH kept");
        check_eq!(link(7), format!("{dir}/f1"), "O_PATH target");
        Ok(())
    });
}

#[test]
fn dups_come_back_sharing_one_open_file_description() {
    in_child("dups", || {
        let dir = temp_dir("dups");
        let path = format!("{dir}/shared");
        std::fs::write(&path, b"abcdefgh").unwrap();
        let a = open_at(&path, OpenOptions::new().read(true), 4);
        sys::dup3(a, 7, libc::O_CLOEXEC).unwrap();
        sys::dup3(a, 12, 0).unwrap();
        open_at(&path, OpenOptions::new().read(true), 5);
        sys::lseek(a, 2, libc::SEEK_SET).unwrap();
        let (table, _) = roundtrip()?;
        check_eq!(
            table.get(7).unwrap().object,
            FdObject::Dup { of: 4 },
            "fd 7"
        );
        check_eq!(
            table.get(12).unwrap().object,
            FdObject::Dup { of: 4 },
            "fd 12"
        );
        check_eq!(
            matches!(table.get(5).unwrap().object, FdObject::File(_)),
            true,
            "fd 5 separate"
        );
        check_eq!(sys::same_file_description(4, 7).unwrap(), Some(true), "4~7");
        check_eq!(
            sys::same_file_description(4, 12).unwrap(),
            Some(true),
            "4~12"
        );
        check_eq!(
            sys::same_file_description(4, 5).unwrap(),
            Some(false),
            "4!~5"
        );
        check_eq!((cloexec(7), cloexec(12)), (true, false), "cloexec per fd");
        check_eq!(read_n(7, 2)?, b"cd".to_vec(), "shared offset read via 7");
        check_eq!(
            sys::lseek(4, 0, libc::SEEK_CUR).unwrap(),
            4,
            "offset moved on 4 too"
        );
        check_eq!(
            sys::lseek(5, 0, libc::SEEK_CUR).unwrap(),
            0,
            "separate offset on 5"
        );
        Ok(())
    });
}
