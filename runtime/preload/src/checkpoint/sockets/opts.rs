//! Socket options: read at checkpoint, set again on the new socket where they differ from a
//! fresh socket's defaults (so kernel defaults and autotuning stay untouched otherwise).

use std::os::fd::RawFd;

use super::sys;

/// (level, name, size in bytes, must be set before bind).
type Known = (i32, i32, usize, bool);

const SOCKET_OPTS: &[Known] = &[
    (libc::SOL_SOCKET, libc::SO_REUSEADDR, 4, true),
    (libc::SOL_SOCKET, libc::SO_REUSEPORT, 4, true),
    (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 4, false),
    (libc::SOL_SOCKET, libc::SO_BROADCAST, 4, false),
    (libc::SOL_SOCKET, libc::SO_OOBINLINE, 4, false),
    (libc::SOL_SOCKET, libc::SO_RCVLOWAT, 4, false),
    (libc::SOL_SOCKET, libc::SO_PRIORITY, 4, false),
    (libc::SOL_SOCKET, libc::SO_PASSCRED, 4, false),
    (libc::SOL_SOCKET, libc::SO_RCVBUF, 4, false),
    (libc::SOL_SOCKET, libc::SO_SNDBUF, 4, false),
    (libc::SOL_SOCKET, libc::SO_LINGER, 8, false),
    (libc::SOL_SOCKET, libc::SO_RCVTIMEO, 16, false),
    (libc::SOL_SOCKET, libc::SO_SNDTIMEO, 16, false),
];

const TCP_OPTS: &[Known] = &[
    (libc::IPPROTO_TCP, libc::TCP_NODELAY, 4, false),
    (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 4, false),
    (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 4, false),
    (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 4, false),
    (libc::IPPROTO_TCP, libc::TCP_CORK, 4, false),
    (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, 4, false),
];

const IP_OPTS: &[Known] = &[
    (libc::IPPROTO_IP, libc::IP_TOS, 4, false),
    (libc::IPPROTO_IP, libc::IP_TTL, 4, false),
];

const IPV6_OPTS: &[Known] = &[
    (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 4, true),
    (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, 4, false),
    (libc::IPPROTO_IPV6, libc::IPV6_TCLASS, 4, false),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub level: i32,
    pub name: i32,
    pub value: Vec<u8>,
    pub before_bind: bool,
}

fn known(domain: i32, ty: i32) -> impl Iterator<Item = &'static Known> {
    let tcp = domain != libc::AF_UNIX && ty == libc::SOCK_STREAM;
    let ip: &[Known] = match domain {
        libc::AF_INET => IP_OPTS,
        libc::AF_INET6 => IPV6_OPTS,
        _ => &[],
    };
    SOCKET_OPTS
        .iter()
        .chain(if tcp { TCP_OPTS } else { &[] })
        .chain(ip)
}

/// Every known option of this socket that can be read.
pub fn save(fd: RawFd, domain: i32, ty: i32) -> Vec<Opt> {
    known(domain, ty)
        .filter_map(|&(level, name, size, before_bind)| {
            sys::get_raw(fd, level, name, size).ok().map(|value| Opt {
                level,
                name,
                value,
                before_bind,
            })
        })
        .collect()
}

/// Sets the saved options (only those set before bind, or only the others) that differ from
/// the new socket's current values. Failures are returned as one line each.
pub fn apply(fd: RawFd, opts: &[Opt], before_bind: bool) -> Vec<String> {
    let mut failed = Vec::new();
    for o in opts.iter().filter(|o| o.before_bind == before_bind) {
        let now = sys::get_raw(fd, o.level, o.name, o.value.len()).unwrap_or_default();
        if now == o.value {
            continue;
        }
        let mut value = o.value.clone();
        if o.level == libc::SOL_SOCKET
            && (o.name == libc::SO_RCVBUF || o.name == libc::SO_SNDBUF)
            && value.len() == 4
        {
            // The kernel doubles what is set and reports the doubled value.
            let v = i32::from_ne_bytes([value[0], value[1], value[2], value[3]]);
            value = (v / 2).to_ne_bytes().to_vec();
        }
        if let Err(e) = sys::set_raw(fd, o.level, o.name, &value) {
            failed.push(format!("option {}/{}: {e}", o.level, o.name));
        }
    }
    failed
}
