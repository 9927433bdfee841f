//! The serialized table round-trips for arbitrary contents.

use proptest::prelude::*;

use crate::kinds::{epoll, eventfd, file, memfd, pipe, signalfd, socket, timerfd};
use crate::{FdEntry, FdObject, FdTable};

fn pair() -> impl Strategy<Value = (i64, i64)> {
    (any::<i64>(), any::<i64>())
}

fn object() -> impl Strategy<Value = FdObject> {
    prop_oneof![
        (0..1000i32).prop_map(|of| FdObject::Dup { of }),
        (
            ".{0,40}",
            any::<i32>(),
            any::<i64>(),
            any::<(u64, u64, i64)>(),
            any::<bool>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64))
        )
            .prop_map(
                |(path, flags, offset, (dev, ino, size), deleted, contents)| {
                    FdObject::File(file::State {
                        path,
                        flags,
                        offset,
                        identity: file::Identity {
                            dev,
                            ino,
                            size,
                            mtime: (1, 2),
                            perm: 0o644,
                        },
                        deleted,
                        contents,
                    })
                }
            ),
        (
            any::<u64>(),
            any::<bool>(),
            any::<i32>(),
            any::<i32>(),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(
                |(inode, write_end, flags, capacity, ext, data)| FdObject::Pipe(pipe::State {
                    inode,
                    write_end,
                    flags,
                    capacity,
                    peer: if ext {
                        pipe::Peer::External
                    } else {
                        pipe::Peer::InProcess
                    },
                    data,
                })
            ),
        (any::<u64>(), any::<bool>(), any::<i32>()).prop_map(|(count, semaphore, flags)| {
            FdObject::EventFd(eventfd::State {
                count,
                semaphore,
                flags,
            })
        }),
        (
            any::<i32>(),
            pair(),
            pair(),
            proptest::option::of(pair()),
            any::<u64>()
        )
            .prop_map(
                |(clockid, remaining, interval, deadline, ticks)| FdObject::TimerFd(
                    timerfd::State {
                        clockid,
                        flags: 0,
                        settime_flags: 1,
                        remaining,
                        interval,
                        deadline,
                        ticks,
                    }
                )
            ),
        (any::<u64>(), any::<i32>())
            .prop_map(|(mask, flags)| FdObject::SignalFd(signalfd::State { mask, flags })),
        proptest::collection::vec(
            (any::<i32>(), any::<u32>(), any::<u64>(), any::<bool>()),
            0..8
        )
        .prop_map(|t| {
            FdObject::Epoll(epoll::State {
                flags: 2,
                targets: t
                    .into_iter()
                    .map(|(fd, events, data, reachable)| epoll::Target {
                        fd,
                        events,
                        data,
                        reachable,
                    })
                    .collect(),
            })
        }),
        (
            any::<u64>(),
            ".{0,20}",
            any::<i64>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32))
        )
            .prop_map(
                |(inode, name, size, contents)| FdObject::Memfd(memfd::State {
                    inode,
                    name,
                    flags: 2,
                    offset: 0,
                    seals: 1,
                    size,
                    contents,
                })
            ),
        (any::<u64>(), any::<i32>()).prop_map(|(inode, domain)| FdObject::Socket(socket::State {
            inode,
            domain,
            kind: 1,
            protocol: 0,
            flags: 2,
        })),
    ]
}

proptest! {
    #[test]
    fn fd_table_roundtrips_through_its_encoding(
        entries in proptest::collection::vec((0..100_000i32, any::<bool>(), object()), 0..12)
    ) {
        let table = FdTable {
            entries: entries.into_iter().map(|(fd, cloexec, object)| FdEntry { fd, cloexec, object }).collect(),
        };
        let bytes = table.to_bytes();
        prop_assert_eq!(FdTable::from_bytes(&bytes).unwrap(), table);
    }

    #[test]
    fn truncated_encodings_are_errors_not_panics(cut in 0usize..64) {
        let table = FdTable { entries: vec![FdEntry {
            fd: 3, cloexec: true, object: FdObject::EventFd(eventfd::State { count: 5, semaphore: true, flags: 2 }),
        }] };
        let bytes = table.to_bytes();
        let cut = cut.min(bytes.len().saturating_sub(1));
        prop_assert!(FdTable::from_bytes(&bytes[..cut]).is_err());
    }
}

#[test]
fn options_come_from_the_settings_variables() {
    use crate::{RestoreOptions, SaveOptions};
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    assert!(SaveOptions::from_lookup(&env(&[("DMTCP_CKPT_OPEN_FILES", "1")])).save_contents);
    assert!(!SaveOptions::from_lookup(&env(&[("DMTCP_CKPT_OPEN_FILES", "0")])).save_contents);
    let r = RestoreOptions::from_lookup(&env(&[
        ("DMTCP_ALLOW_FILE_OVERWRITE", "yes"),
        ("DMTCP_SKIP_TRUNCATE_FILES", "1"),
    ]));
    assert!(r.allow_file_overwrite && !r.truncate_grown_files);
    // The runtime's default keeps the restart command's stdio, as DMTCP does.
    assert_eq!(
        RestoreOptions::from_lookup(&env(&[])),
        RestoreOptions {
            inherit_all_stdio: true,
            ..RestoreOptions::default()
        }
    );
    assert!(!RestoreOptions::from_lookup(&env(&[("DMTCP_RESTORE_STDIO", "1")])).inherit_all_stdio);
}
