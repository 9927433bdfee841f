//! Only the owner talks to a computation: another user, garbage and a wrong secret are refused,
//! and the coordinator keeps serving its owner afterwards.

use dmtcp_protocol::{ClientHello, HelloReply, MAGIC, PROTOCOL_VERSION, Role, ServerHello, frame};
use dmtcp_tests::{Env, TestUser};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

#[test]
fn another_user_is_refused_and_the_owner_still_served() {
    let Some(other) = TestUser::other() else {
        eprintln!("SKIP: needs root to run as a second user");
        return;
    };
    let env = Env::new("foreign_user");
    let coord = env.coordinator(&[]);
    let intruder = Env::for_user("foreign_user_intruder", other);
    for json in [false, true] {
        let mut args = vec!["-p".to_string(), coord.port.to_string(), "-s".to_string()];
        if json {
            args.insert(0, "--json".into());
        }
        let out = intruder.command(&args);
        assert_eq!(out.code(), Some(2), "{}", out.describe());
        out.assert_one_line_error();
        let err = out.stderr_str();
        assert!(
            err.contains("another user") || err.contains(&format!("uid {}", env.user.uid)),
            "the error must say the coordinator is another user's: {}",
            out.describe()
        );
    }
    let st = env.status(coord.port);
    assert!(
        st.ok(),
        "the owner must still be served: {:?}\n{}",
        st.json,
        coord.log()
    );
}

#[test]
fn garbage_and_wrong_secrets_are_refused() {
    let env = Env::new("garbage_and_secret");
    let coord = env.coordinator(&[]);
    let addr = format!("127.0.0.1:{}", coord.port);

    // Garbage: an HTTP request, then random bytes. The coordinator must hang up, not hang.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n\xff\xfe\x00\x01garbage");
    let mut sink = Vec::new();
    let r = s.read_to_end(&mut sink);
    assert!(
        r.is_ok(),
        "the coordinator kept a garbage connection open: {r:?}\n{}",
        coord.log()
    );
    assert!(env.status(coord.port).ok(), "{}", coord.log());

    // A well-formed hello with a wrong proof.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let hello: ServerHello = frame::read_frame(&mut s).expect("server hello");
    assert_eq!(hello.magic, MAGIC);
    let bad = ClientHello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        uid: env.user.uid,
        proof: [0x5a; 32],
        nonce: [7; 32],
        role: Role::Command,
    };
    frame::write_frame(&mut s, &bad).unwrap();
    match frame::read_frame::<HelloReply>(&mut s) {
        Ok(HelloReply::Rejected(r)) => eprintln!("refused: {:?} {}", r.reason, r.message),
        Ok(HelloReply::Welcome(_)) => panic!("a wrong secret was welcomed"),
        Err(e) => eprintln!("connection closed: {e}"),
    }
    let st = env.status(coord.port);
    assert!(
        st.ok(),
        "the coordinator must still serve its owner:\n{}",
        coord.log()
    );
}

#[test]
fn the_secret_file_is_private() {
    let env = Env::new("secret_mode");
    let coord = env.coordinator(&[]);
    let dir = env.user.home.join(".dmtcp/coordinators");
    let secrets: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", dir.display(), coord.log()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "secret"))
        .collect();
    assert_eq!(secrets.len(), 1, "{secrets:?}");
    let m = std::fs::metadata(&secrets[0]).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    assert_eq!(m.uid(), env.user.uid);
    let d = std::fs::metadata(&dir).unwrap();
    assert_eq!(
        d.permissions().mode() & 0o077,
        0,
        "secret dir must be private"
    );
}
