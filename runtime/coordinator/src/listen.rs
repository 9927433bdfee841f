//! The listening socket: bound here, or adopted from `dmtcp_launch` (`--listen-fd`), and the
//! port file that tells scripts which port it got.

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt, socket,
    sockopt,
};
use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Pending connections the kernel may queue (it caps this at `net.core.somaxconn`); large so
/// that thousands of processes joining at once are not dropped into SYN retries.
const BACKLOG: i32 = 8192;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("port {port} is in use by {holder}; stop it or use -p 0")]
    InUse { port: u16, holder: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: io::Error },
    #[error("--listen-fd {fd} is not a listening TCP socket")]
    NotListening { fd: i32 },
}

/// Binds and listens on `host:port` (port 0 = any free port).
pub fn bind_port(host: &str, port: u16) -> Result<TcpListener, ListenError> {
    let err = |source: io::Error| {
        if source.kind() == io::ErrorKind::AddrInUse {
            let holder =
                crate::procnet::port_holder(port).unwrap_or_else(|| "another process".into());
            return ListenError::InUse { port, holder };
        }
        ListenError::Bind {
            addr: format!("{host}:{port}"),
            source,
        }
    };
    let addr: SocketAddr = (host, port)
        .to_socket_addrs()
        .map_err(err)?
        .next()
        .ok_or_else(|| {
            err(io::Error::new(
                io::ErrorKind::NotFound,
                "host name does not resolve",
            ))
        })?;
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| err(e.into()))?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| err(e.into()))?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(|e| err(e.into()))?;
    listen(&fd, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN)).map_err(|e| err(e.into()))?;
    Ok(TcpListener::from(fd))
}

/// Adopts a socket that the launcher bound and left open as fd `fd`.
pub fn adopt_fd(fd: i32) -> Result<TcpListener, ListenError> {
    let not_listening = ListenError::NotListening { fd };
    if fd < 3 {
        return Err(not_listening);
    }
    // SAFETY: the fd number was handed to us on the command line to own; if it is not open or
    // not a socket the checks below fail before it is used, and nothing else in this process
    // refers to it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    match nix::sys::socket::getsockopt(&owned, sockopt::AcceptConn) {
        Ok(true) => {}
        _ => {
            std::mem::forget(owned); // Not ours to close if it is something else.
            return Err(not_listening);
        }
    }
    // listen() again only raises the backlog (std's bind in the launcher uses 128).
    let _ = listen(&owned, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN));
    let _ = nix::fcntl::fcntl(
        &owned,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    Ok(TcpListener::from(owned))
}

/// Writes the port number to `path` atomically (temp file + rename), so a reader never sees a
/// partial number.
pub fn write_port_file(path: &Path, port: u16) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    fs::write(&tmp, format!("{port}\n"))?;
    fs::rename(&tmp, path)
}

/// The host name to print and to put in restart scripts: the listen address if it is a
/// specific one, else this machine's name (routable, unlike 0.0.0.0).
pub fn published_host(listen_host: &str) -> String {
    match listen_host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_unspecified() => dmtcp_protocol::ids::hostname(),
        _ => listen_host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_port_names_its_holder() {
        let l = bind_port("127.0.0.1", 0).unwrap();
        let port = l.local_addr().unwrap().port();
        let e = bind_port("127.0.0.1", port).unwrap_err();
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_string_lossy();
        assert_eq!(
            e.to_string(),
            format!(
                "port {port} is in use by pid {} ({name}); stop it or use -p 0",
                std::process::id()
            )
        );
    }

    #[test]
    fn adopts_a_listening_fd_and_refuses_others() {
        let l = bind_port("127.0.0.1", 0).unwrap();
        let addr = l.local_addr().unwrap();
        let fd = std::os::fd::IntoRawFd::into_raw_fd(l);
        let adopted = adopt_fd(fd).unwrap();
        assert_eq!(adopted.local_addr().unwrap(), addr);
        let f = fs::File::open("/dev/null").unwrap();
        assert!(matches!(
            adopt_fd(f.as_raw_fd()),
            Err(ListenError::NotListening { .. })
        ));
        drop(f);
    }

    #[test]
    fn port_file_is_written_whole() {
        let p = std::env::temp_dir().join(format!("dmtcp-portfile-{}", std::process::id()));
        write_port_file(&p, 4321).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "4321\n");
        fs::remove_file(&p).unwrap();
    }
}
