//! Who may talk to the coordinator: the checks on a [`ClientHello`].
//!
//! A client must speak our protocol version, claim our uid, prove it knows the computation's
//! secret, and, when it connects over loopback, really be a process of our uid (the kernel
//! says who owns the client's socket), so a stolen secret alone is not enough on this host.

use dmtcp_protocol::{ClientHello, MAGIC, PROTOCOL_VERSION, RejectReason, Rejected, Secret};
use std::net::SocketAddr;

/// How long a client may take to send its hello.
pub const HELLO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn rejected(reason: RejectReason, message: String) -> Rejected {
    Rejected { reason, message }
}

/// Checks magic, version, claimed uid and the secret's proof over our nonce.
pub fn check_hello(
    hello: &ClientHello,
    nonce: &[u8; 32],
    secret: &Secret,
    owner: u32,
) -> Result<(), Rejected> {
    if hello.magic != MAGIC {
        return Err(rejected(
            RejectReason::BadMagic,
            "not a DMTCP client (bad magic)".into(),
        ));
    }
    if hello.version != PROTOCOL_VERSION {
        return Err(rejected(
            RejectReason::VersionMismatch,
            format!(
                "client speaks protocol version {}, this coordinator speaks {PROTOCOL_VERSION}; use tools from the same installation",
                hello.version
            ),
        ));
    }
    if hello.uid != owner {
        return Err(rejected(
            RejectReason::ForeignUser,
            format!(
                "this coordinator belongs to uid {owner}, not to uid {}",
                hello.uid
            ),
        ));
    }
    if !secret.verify_client(nonce, &hello.proof) {
        return Err(rejected(
            RejectReason::WrongSecret,
            "wrong secret: the client does not hold this coordinator's secret".into(),
        ));
    }
    Ok(())
}

/// For a loopback client, asks the kernel who owns its socket. `peer` is the client's address,
/// `local` ours.
pub fn check_peer_owner(peer: SocketAddr, local: SocketAddr, owner: u32) -> Result<(), Rejected> {
    if !is_loopback(peer) {
        return Ok(());
    }
    let uid = match crate::sock_diag::socket_uid(peer, local) {
        Ok(uid) => uid,
        // No sock_diag (module missing or filtered): read /proc/net/tcp instead.
        Err(_) => crate::procnet::socket_uid(peer, local),
    };
    match uid {
        Some(uid) if uid == owner => Ok(()),
        Some(uid) => Err(rejected(
            RejectReason::ForeignUser,
            format!("the connecting process belongs to uid {uid}, this coordinator to uid {owner}"),
        )),
        None => Err(rejected(
            RejectReason::ForeignUser,
            "cannot find the owner of the connecting socket".into(),
        )),
    }
}

fn is_loopback(a: SocketAddr) -> bool {
    match a {
        SocketAddr::V4(v4) => v4.ip().is_loopback(),
        SocketAddr::V6(v6) => {
            v6.ip().is_loopback() || v6.ip().to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmtcp_protocol::Role;

    fn hello(secret: &Secret, nonce: &[u8; 32], uid: u32) -> ClientHello {
        ClientHello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            uid,
            proof: secret.client_proof(nonce),
            nonce: [7; 32],
            role: Role::Command,
        }
    }

    #[test]
    fn each_bad_field_gets_its_reason() {
        let s = Secret::generate().unwrap();
        let nonce = [3u8; 32];
        let reason = |h: &ClientHello| check_hello(h, &nonce, &s, 1000).unwrap_err().reason;
        assert!(check_hello(&hello(&s, &nonce, 1000), &nonce, &s, 1000).is_ok());
        let mut h = hello(&s, &nonce, 1000);
        h.magic = *b"DMTCP_CK";
        assert_eq!(reason(&h), RejectReason::BadMagic);
        let mut h = hello(&s, &nonce, 1000);
        h.version += 1;
        assert_eq!(reason(&h), RejectReason::VersionMismatch);
        assert_eq!(reason(&hello(&s, &nonce, 1001)), RejectReason::ForeignUser);
        let other = Secret::generate().unwrap();
        assert_eq!(
            reason(&hello(&other, &nonce, 1000)),
            RejectReason::WrongSecret
        );
        // A proof over another nonce (a replay) is refused too.
        assert_eq!(
            reason(&hello(&s, &[4u8; 32], 1000)),
            RejectReason::WrongSecret
        );
    }

    #[test]
    fn loopback_peer_of_another_uid_is_refused() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, peer) = l.accept().unwrap();
        let me = dmtcp_protocol::auth::my_uid();
        assert!(check_peer_owner(peer, s.local_addr().unwrap(), me).is_ok());
        let e = check_peer_owner(peer, s.local_addr().unwrap(), me + 1).unwrap_err();
        assert_eq!(e.reason, RejectReason::ForeignUser);
    }
}
