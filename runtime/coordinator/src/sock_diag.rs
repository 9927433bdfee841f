//! The owner uid of one TCP socket through netlink `SOCK_DIAG` (an exact 4-tuple lookup, so it
//! stays cheap with thousands of connections, unlike reading all of `/proc/net/tcp`).

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_HDRLEN: usize = 16;
/// Offset of `idiag_uid` inside `struct inet_diag_msg`.
const UID_OFFSET: usize = 4 + 48 + 12;

fn words(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            b
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Builds `nlmsghdr` + `inet_diag_req_v2` for the socket `local` → `remote`.
fn request(local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    let family = if local.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    } as u8;
    let mut req = Vec::with_capacity(72);
    req.extend_from_slice(&72u32.to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // seq
    req.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
    req.extend_from_slice(&[family, libc::IPPROTO_TCP as u8, 0, 0]);
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // all states
    req.extend_from_slice(&local.port().to_be_bytes());
    req.extend_from_slice(&remote.port().to_be_bytes());
    req.extend_from_slice(&words(local.ip()));
    req.extend_from_slice(&words(remote.ip()));
    req.extend_from_slice(&0u32.to_ne_bytes()); // any interface
    req.extend_from_slice(&[0xff; 8]); // INET_DIAG_NOCOOKIE
    debug_assert_eq!(req.len(), 72);
    req
}

/// The uid owning the TCP socket whose local address is `local` and peer is `remote`;
/// `Ok(None)` when the kernel knows no such socket.
pub fn socket_uid(local: SocketAddr, remote: SocketAddr) -> nix::Result<Option<u32>> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    sendto(
        fd.as_raw_fd(),
        &request(local, remote),
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut buf = [0u8; 1024];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
    if n < NLMSG_HDRLEN {
        return Err(nix::Error::EIO);
    }
    let kind = u16::from_ne_bytes([buf[4], buf[5]]);
    if kind == NLMSG_ERROR {
        let errno = i32::from_ne_bytes(buf[16..20].try_into().expect("4 bytes"));
        return match nix::Error::from_raw(-errno) {
            nix::Error::ENOENT => Ok(None),
            e => Err(e),
        };
    }
    let at = NLMSG_HDRLEN + UID_OFFSET;
    if kind != SOCK_DIAG_BY_FAMILY || n < at + 4 {
        return Err(nix::Error::EIO);
    }
    Ok(Some(u32::from_ne_bytes(
        buf[at..at + 4].try_into().expect("4 bytes"),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn finds_owner_of_a_loopback_connection() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, peer) = l.accept().unwrap();
        // The server side looks up the client's socket: local = peer, remote = our address.
        let uid = socket_uid(peer, s.local_addr().unwrap()).unwrap();
        assert_eq!(uid, Some(dmtcp_protocol::auth::my_uid()));
        drop(c);
        drop(s);
        let gone = socket_uid(peer, "127.0.0.1:1".parse().unwrap()).unwrap();
        assert_eq!(gone, None);
    }
}
