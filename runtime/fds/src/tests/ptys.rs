//! pty bytes in flight, and fds handed over by another process.

use super::*;
use crate::check_eq;
use crate::{FdEntry, FdObject};

fn pty_at(m: RawFd, s: RawFd) {
    let nb = libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK;
    place(sys::posix_openpt(nb).unwrap(), m);
    sys::set_pty_lock(m, false).unwrap();
    place(sys::open(&sys::ptsname(m).unwrap(), nb, 0).unwrap(), s);
    let mut t = sys::tcgetattr(s).unwrap();
    t.c_lflag &= !libc::ECHO;
    sys::tcsetattr(s, &t).unwrap();
}

#[test]
fn pty_bytes_in_flight_are_saved_left_in_place_and_restored() {
    in_child("pty-data", || {
        pty_at(5, 6);
        // To the program side: a complete line and a partly typed one; to the master: output.
        sys::write(5, b"one\ntw").unwrap();
        sys::write(6, b"out\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let table = save_fds(&[5, 6], &SaveOptions::default()).map_err(|e| e.to_string())?;
        let Some(FdObject::PtyMaster(ms)) = table.get(5).map(|e| &e.object) else {
            return Err("fd 5 not a pty master".into());
        };
        check_eq!(ms.to_slave, b"one\ntw".to_vec(), "saved input");
        check_eq!(
            ms.to_master,
            b"out\r\n".to_vec(),
            "saved output (post-processed once)"
        );
        // The running pty lost nothing and its modes are back.
        check_eq!(read_n(5, 100)?, b"out\r\n".to_vec(), "output still there");
        check_eq!(read_n(6, 100)?, b"one\n".to_vec(), "a line still there");
        let t = sys::tcgetattr(6).unwrap();
        check_eq!(t.c_lflag & libc::ICANON != 0, true, "canonical again");
        check_eq!(t.c_lflag & libc::ECHO, 0, "echo still off");
        close(5).unwrap();
        close(6).unwrap();
        restore_all(&table, &RestoreOptions::default()).map_err(|e| e.to_string())?;
        check_eq!(read_n(5, 100)?, b"out\r\n".to_vec(), "output restored");
        check_eq!(read_n(6, 100)?, b"one\n".to_vec(), "first line restored");
        check_eq!(
            read_n(6, 100).is_err(),
            true,
            "the partial line is not a line yet"
        );
        sys::write(5, b"o\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        check_eq!(
            read_n(6, 100)?,
            b"two\n".to_vec(),
            "the partial line, completed"
        );
        check_eq!(read_n(5, 100).is_err(), true, "nothing echoed");
        Ok(())
    });
}

#[test]
fn pty_data_led_elsewhere_is_not_taken() {
    in_child("pty-skip", || {
        pty_at(5, 6);
        sys::write(5, b"keep\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let index = sys::ioctl_get_int(5, libc::TIOCGPTN).unwrap() as u32;
        let opts = SaveOptions {
            skip_pty_data: vec![index],
            ..Default::default()
        };
        let table = save_fds(&[5, 6], &opts).map_err(|e| e.to_string())?;
        let Some(FdObject::PtyMaster(ms)) = table.get(5).map(|e| &e.object) else {
            return Err("fd 5 not a pty master".into());
        };
        check_eq!(ms.to_slave.len(), 0, "not saved here");
        check_eq!(read_n(6, 100)?, b"keep\n".to_vec(), "left in place");
        Ok(())
    });
}

#[test]
fn handed_over_fds_and_their_dups_are_left_to_the_caller() {
    in_child("handed-over", || {
        let table = FdTable {
            entries: vec![
                FdEntry {
                    fd: 5,
                    cloexec: false,
                    object: FdObject::EventFd(crate::kinds::eventfd::State {
                        count: 3,
                        semaphore: false,
                        flags: libc::O_RDWR,
                    }),
                },
                FdEntry {
                    fd: 6,
                    cloexec: false,
                    object: FdObject::Dup { of: 5 },
                },
                FdEntry {
                    fd: 7,
                    cloexec: false,
                    object: FdObject::EventFd(crate::kinds::eventfd::State {
                        count: 4,
                        semaphore: false,
                        flags: libc::O_RDWR,
                    }),
                },
            ],
        };
        let opts = RestoreOptions {
            handed_over: vec![5],
            ..Default::default()
        };
        let report = restore_all(&table, &opts).map_err(|e| e.to_string())?;
        check_eq!(report.handed_over, vec![5, 6], "reported");
        check_eq!(test_fds(), vec![7], "only the other one made");
        Ok(())
    });
}
