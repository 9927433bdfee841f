//! Parser for `/proc/self/fdinfo/N`: the common header and each kind's extra lines.
//!
//! Formats (kernel 6.x, fs/proc/fd.c and each kind's `show_fdinfo`): `pos:`, `flags:` (octal),
//! `mnt_id:`, `ino:`, then per kind: `eventfd-count:` (hex), `eventfd-semaphore:`, timerfd's
//! `clockid:`/`ticks:`/`settime flags:` (octal)/`it_value: (s, ns)`, `sigmask:` (hex),
//! epoll's `tfd: events: data: pos: ino: sdev:` lines and inotify's `inotify wd: ino: sdev: mask:`.

use std::io;
use std::os::fd::RawFd;

/// The parsed fdinfo of one fd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FdInfo {
    pub pos: i64,
    /// Open flags as `F_GETFL` would report them, plus O_CLOEXEC when set.
    pub flags: i32,
    pub mnt_id: u64,
    pub ino: u64,
    /// Every other `key: value` line, in order, key and value trimmed.
    pub extra: Vec<(String, String)>,
    /// Registered targets of an epoll instance.
    pub epoll: Vec<EpollTarget>,
    /// Watches of an inotify instance.
    pub inotify: Vec<InotifyWatch>,
}

/// One `tfd:` line of an epoll instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpollTarget {
    pub tfd: RawFd,
    pub events: u32,
    pub data: u64,
    pub ino: u64,
    /// Kernel-internal device number (`MAJOR << 20 | MINOR`).
    pub sdev: u64,
}

/// One `inotify wd:` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InotifyWatch {
    pub wd: i32,
    pub ino: u64,
    /// Kernel-internal device number (`MAJOR << 20 | MINOR`).
    pub sdev: u64,
    pub mask: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot parse fdinfo line {line:?}")]
pub struct ParseError {
    pub line: String,
}

impl FdInfo {
    /// Reads and parses `/proc/self/fdinfo/<fd>`.
    pub fn read(fd: RawFd) -> io::Result<FdInfo> {
        let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))?;
        FdInfo::parse(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    pub fn parse(text: &str) -> Result<FdInfo, ParseError> {
        let mut info = FdInfo::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let bad = || ParseError {
                line: line.to_string(),
            };
            if line.starts_with("tfd:") {
                info.epoll.push(parse_epoll(line).ok_or_else(bad)?);
                continue;
            }
            if let Some(rest) = line.strip_prefix("inotify ") {
                info.inotify.push(parse_inotify(rest).ok_or_else(bad)?);
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(bad());
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "pos" => info.pos = value.parse().map_err(|_| bad())?,
                "flags" => info.flags = i32::from_str_radix(value, 8).map_err(|_| bad())?,
                "mnt_id" => info.mnt_id = value.parse().map_err(|_| bad())?,
                "ino" => info.ino = value.parse().map_err(|_| bad())?,
                _ => info.extra.push((key.to_string(), value.to_string())),
            }
        }
        Ok(info)
    }

    /// The value of an extra `key:` line.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn get_hex(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| u64::from_str_radix(v, 16).ok())
    }

    pub fn get_dec(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    pub fn get_oct(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| u64::from_str_radix(v, 8).ok())
    }

    /// A `(sec, nsec)` pair as printed for timerfd's `it_value`/`it_interval`.
    pub fn get_pair(&self, key: &str) -> Option<(u64, u64)> {
        let v = self.get(key)?.trim().strip_prefix('(')?.strip_suffix(')')?;
        let (a, b) = v.split_once(',')?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    }
}

/// Splits `k1:v1 k2:   v2 ...` (values may be padded after the colon) into pairs.
fn pairs(s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut words = s.split_whitespace().peekable();
    while let Some(w) = words.next() {
        let Some((k, v)) = w.split_once(':') else {
            continue;
        };
        if v.is_empty() {
            if let Some(next) = words.next() {
                out.push((k, next));
            }
        } else {
            out.push((k, v));
        }
    }
    out
}

fn field<'a>(p: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn parse_epoll(line: &str) -> Option<EpollTarget> {
    let p = pairs(line);
    Some(EpollTarget {
        tfd: field(&p, "tfd")?.parse().ok()?,
        events: u32::from_str_radix(field(&p, "events")?, 16).ok()?,
        data: u64::from_str_radix(field(&p, "data")?, 16).ok()?,
        ino: u64::from_str_radix(field(&p, "ino")?, 16).ok()?,
        sdev: u64::from_str_radix(field(&p, "sdev")?, 16).ok()?,
    })
}

fn parse_inotify(rest: &str) -> Option<InotifyWatch> {
    let p = pairs(rest);
    Some(InotifyWatch {
        wd: i32::from_str_radix(field(&p, "wd")?, 16).ok()?,
        ino: u64::from_str_radix(field(&p, "ino")?, 16).ok()?,
        sdev: u64::from_str_radix(field(&p, "sdev")?, 16).ok()?,
        mask: u32::from_str_radix(field(&p, "mask")?, 16).ok()?,
    })
}

/// Converts the kernel-internal device number used in fdinfo to `stat`'s `st_dev` encoding.
pub fn kdev_to_st_dev(kdev: u64) -> u64 {
    let major = (kdev >> 20) as u32;
    let minor = (kdev & 0xf_ffff) as u32;
    libc::makedev(major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_header_and_eventfd() {
        let text = "pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t17\n\
                    eventfd-count:                5\neventfd-id: 1\neventfd-semaphore: 1\n";
        let i = FdInfo::parse(text).unwrap();
        assert_eq!(i.pos, 0);
        assert_eq!(i.flags, 0o4002);
        assert_eq!(i.mnt_id, 17);
        assert_eq!(i.get_hex("eventfd-count"), Some(5));
        assert_eq!(i.get_dec("eventfd-semaphore"), Some(1));
    }

    #[test]
    fn eventfd_count_is_hex() {
        let i = FdInfo::parse("pos:\t0\nflags:\t02\neventfd-count:               1f\n").unwrap();
        assert_eq!(i.get_hex("eventfd-count"), Some(31));
    }

    #[test]
    fn parses_epoll_lines() {
        let text = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t17\n\
            tfd:        3 events:       19 data:     7efd00000003  pos:0 ino:11 sdev:10\n\
            tfd:       12 events:        1 data:                0  pos:5 ino:2a sdev:800001\n";
        let i = FdInfo::parse(text).unwrap();
        assert_eq!(
            i.epoll,
            vec![
                EpollTarget {
                    tfd: 3,
                    events: 0x19,
                    data: 0x7efd_0000_0003,
                    ino: 0x11,
                    sdev: 0x10
                },
                EpollTarget {
                    tfd: 12,
                    events: 1,
                    data: 0,
                    ino: 0x2a,
                    sdev: 0x80_0001
                },
            ]
        );
    }

    #[test]
    fn parses_inotify_and_timerfd_lines() {
        let text = "pos:\t0\nflags:\t00\nmnt_id:\t15\nino:\t1057\n\
            inotify wd:2 ino:1a0b sdev:800001 mask:fff ignored_mask:0 fhandle-bytes:8 \
            fhandle-type:1 f_handle:0b1a000000000000\n\
            clockid: 1\nticks: 3\nsettime flags: 01\nit_value: (0, 499)\nit_interval: (2, 5)\n";
        let i = FdInfo::parse(text).unwrap();
        assert_eq!(
            i.inotify,
            vec![InotifyWatch {
                wd: 2,
                ino: 0x1a0b,
                sdev: 0x80_0001,
                mask: 0xfff
            }]
        );
        assert_eq!(i.get_dec("clockid"), Some(1));
        assert_eq!(i.get_dec("ticks"), Some(3));
        assert_eq!(i.get_oct("settime flags"), Some(1));
        assert_eq!(i.get_pair("it_value"), Some((0, 499)));
        assert_eq!(i.get_pair("it_interval"), Some((2, 5)));
    }

    #[test]
    fn rejects_garbage() {
        assert!(FdInfo::parse("pos:\tx\n").is_err());
        assert!(FdInfo::parse("no colon here\n").is_err());
        assert!(FdInfo::parse("tfd: 3 events: zz\n").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(text in "(?s).{0,300}") {
            let _ = FdInfo::parse(&text);
        }

        #[test]
        fn epoll_lines_roundtrip(tfd in 0i32..100_000, events: u32, data: u64, ino: u64, sdev in 0u64..1 << 32) {
            let line = format!("tfd: {tfd:8} events: {events:8x} data: {data:16x}  pos:0 ino:{ino:x} sdev:{sdev:x}\n");
            let info = FdInfo::parse(&line).unwrap();
            proptest::prop_assert_eq!(info.epoll, vec![EpollTarget { tfd, events, data, ino, sdev }]);
        }
    }

    #[test]
    fn converts_kernel_dev_numbers() {
        // sda1: major 8, minor 1 → kernel 0x800001, stat makedev(8, 1).
        assert_eq!(kdev_to_st_dev(0x80_0001), libc::makedev(8, 1));
        assert_eq!(kdev_to_st_dev(0x10), libc::makedev(0, 16));
    }
}
