//! Socket addresses as saved: the raw `sockaddr` bytes, with the views the layer needs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Addr(Vec<u8>);

impl Addr {
    pub fn from_raw(bytes: &[u8]) -> Addr {
        Addr(bytes.to_vec())
    }

    pub fn raw(&self) -> &[u8] {
        &self.0
    }

    pub fn family(&self) -> i32 {
        match self.0.get(0..2) {
            Some(b) => u16::from_ne_bytes([b[0], b[1]]) as i32,
            None => libc::AF_UNSPEC,
        }
    }

    pub fn inet(&self) -> Option<SocketAddr> {
        let b = &self.0;
        match self.family() {
            libc::AF_INET if b.len() >= 8 => {
                let port = u16::from_be_bytes([b[2], b[3]]);
                let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
                Some(SocketAddr::new(IpAddr::V4(ip), port))
            }
            libc::AF_INET6 if b.len() >= 24 => {
                let port = u16::from_be_bytes([b[2], b[3]]);
                let mut o = [0u8; 16];
                o.copy_from_slice(&b[8..24]);
                Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(o)), port))
            }
            _ => None,
        }
    }

    pub fn from_inet(sa: SocketAddr) -> Addr {
        let mut b;
        match sa {
            SocketAddr::V4(v4) => {
                b = vec![0u8; std::mem::size_of::<libc::sockaddr_in>()];
                b[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
                b[2..4].copy_from_slice(&v4.port().to_be_bytes());
                b[4..8].copy_from_slice(&v4.ip().octets());
            }
            SocketAddr::V6(v6) => {
                b = vec![0u8; std::mem::size_of::<libc::sockaddr_in6>()];
                b[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
                b[2..4].copy_from_slice(&v6.port().to_be_bytes());
                b[8..24].copy_from_slice(&v6.ip().octets());
                b[24..28].copy_from_slice(&v6.scope_id().to_ne_bytes());
            }
        }
        Addr(b)
    }

    /// The path of a UNIX address: empty for an unnamed socket, a leading NUL for an
    /// abstract one.
    pub fn unix_path(&self) -> Option<&[u8]> {
        if self.family() != libc::AF_UNIX {
            return None;
        }
        let p = self.0.get(2..).unwrap_or(&[]);
        // A filesystem path may carry its terminating NUL in the length.
        Some(match p.first() {
            Some(0) => p,
            _ => p.split(|&c| c == 0).next().unwrap_or(&[]),
        })
    }

    /// A UNIX address bound in the filesystem (not abstract, not unnamed).
    pub fn unix_file(&self) -> Option<&[u8]> {
        self.unix_path().filter(|p| !p.is_empty() && p[0] != 0)
    }

    pub fn abstract_unix(name: &str) -> Addr {
        let mut b = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        b.push(0);
        b.extend_from_slice(name.as_bytes());
        Addr(b)
    }

    /// Bound to something: a port for TCP/UDP, a path or abstract name for UNIX.
    pub fn is_bound(&self) -> bool {
        match self.inet() {
            Some(sa) => sa.port() != 0,
            None => self.unix_path().is_some_and(|p| !p.is_empty()),
        }
    }

    /// The same address with the wildcard IP (same port).
    pub fn wildcard(&self) -> Option<Addr> {
        let sa = self.inet()?;
        let ip = match sa {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        Some(Addr::from_inet(SocketAddr::new(ip, sa.port())))
    }

    /// The text form used in key-value keys and logs.
    pub fn key(&self) -> String {
        if let Some(sa) = self.inet() {
            return sa.to_string();
        }
        match self.unix_path() {
            Some([]) => "unnamed".into(),
            Some(p) if p[0] == 0 => format!("@{}", String::from_utf8_lossy(&p[1..])),
            Some(p) => String::from_utf8_lossy(p).into_owned(),
            None => format!("family {}", self.family()),
        }
    }
}
