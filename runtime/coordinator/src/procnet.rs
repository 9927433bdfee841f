//! Reading `/proc/net/tcp{,6}`: who owns a socket, and who holds a listening port.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One row of `/proc/net/tcp` or `/proc/net/tcp6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpEntry {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

/// The kernel's `TCP_LISTEN` state number.
pub const TCP_LISTEN: u8 = 0x0a;

/// Parses `ADDR:PORT` where ADDR is the kernel's hex dump of the address in host-order words.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for chunk in addr.as_bytes().chunks(8) {
        let word = u32::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&bytes[..]).ok()?)),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[..]).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

fn parse_line(line: &str) -> Option<TcpEntry> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 10 {
        return None;
    }
    Some(TcpEntry {
        local: parse_addr(f[1])?,
        remote: parse_addr(f[2])?,
        state: u8::from_str_radix(f[3], 16).ok()?,
        uid: f[7].parse().ok()?,
        inode: f[9].parse().ok()?,
    })
}

/// Every TCP socket of this network namespace (both address families).
pub fn tcp_entries() -> Vec<TcpEntry> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(parse_line)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The owner uid of the TCP socket with this local and remote address.
pub fn socket_uid(local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    let same = |a: SocketAddr, b: SocketAddr| {
        a.port() == b.port() && canonical(a.ip()) == canonical(b.ip())
    };
    tcp_entries()
        .into_iter()
        .find(|e| same(e.local, local) && same(e.remote, remote))
        .map(|e| e.uid)
}

/// IPv4-mapped IPv6 addresses compare equal to their IPv4 form.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Who holds `port` open for listening, for a one-line "port in use" message:
/// `pid 1234 (dmtcp_coordinator)`, or a description when the process is not visible to us.
/// `None` when nothing listens on it.
pub fn port_holder(port: u16) -> Option<String> {
    let listeners: Vec<TcpEntry> = tcp_entries()
        .into_iter()
        .filter(|e| e.state == TCP_LISTEN && e.local.port() == port)
        .collect();
    let first = listeners.first()?;
    let inodes: Vec<u64> = listeners.iter().map(|e| e.inode).collect();
    if let Some(pid) = pid_holding_socket(&inodes) {
        return Some(format!("pid {pid} ({})", program_name(pid)));
    }
    if first.uid != dmtcp_protocol::auth::my_uid() {
        Some(format!("another user's process (uid {})", first.uid))
    } else {
        Some("another process (not visible from here)".into())
    }
}

/// The program's name: argv[0]'s base name (`comm` is cut at 15 characters).
fn program_name(pid: i32) -> String {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let base = String::from_utf8_lossy(argv0)
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    if !base.is_empty() {
        return base;
    }
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Scans `/proc/*/fd` (only our own processes are readable) for a socket inode.
fn pid_holding_socket(inodes: &[u64]) -> Option<i32> {
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for proc_entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = fs::read_link(fd.path())
                && wanted.iter().any(|w| target.as_os_str() == w.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn parses_kernel_rows() {
        let v4 = "   0: 0100007F:1E63 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0";
        let e = parse_line(v4).unwrap();
        assert_eq!(e.local, "127.0.0.1:7779".parse().unwrap());
        assert_eq!((e.state, e.uid, e.inode), (TCP_LISTEN, 1000, 4242));
        let v6 = "   0: 00000000000000000000000001000000:1E63 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0";
        assert_eq!(parse_line(v6).unwrap().local, "[::1]:7779".parse().unwrap());
        assert!(parse_line("garbage").is_none());
    }

    #[test]
    fn finds_our_own_listener_and_socket_owner() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let holder = port_holder(port).unwrap();
        assert_eq!(
            holder,
            format!(
                "pid {} ({})",
                std::process::id(),
                program_name(std::process::id() as i32)
            )
        );
        let exe = std::env::current_exe().unwrap();
        assert_eq!(
            program_name(std::process::id() as i32),
            exe.file_name().unwrap().to_string_lossy()
        );
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let uid = socket_uid(c.local_addr().unwrap(), c.peer_addr().unwrap());
        assert_eq!(uid, Some(dmtcp_protocol::auth::my_uid()));
        drop(l);
        drop(c);
        assert_eq!(port_holder(port), None);
    }
}
