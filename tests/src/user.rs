//! The users tests run as: the unprivileged `dmtcptest` (and `dmtcptest2` for "another user")
//! when the suite runs as root, else the current user.

use nix::unistd::{Gid, Uid, User};
use std::ffi::CString;
use std::path::PathBuf;

/// The main unprivileged test user, created by tests/run.sh.
pub const TEST_USER: &str = "dmtcptest";
/// A second user, for "a coordinator refuses another user" tests.
pub const OTHER_USER: &str = "dmtcptest2";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, resolved before any fork (initgroups is not fork-safe).
    pub groups: Vec<u32>,
    pub home: PathBuf,
}

pub fn is_root() -> bool {
    Uid::effective().is_root()
}

impl TestUser {
    fn from_user(u: User) -> TestUser {
        let cname = CString::new(u.name.clone()).expect("user name has no NUL");
        let groups = nix::unistd::getgrouplist(&cname, u.gid)
            .map(|g| g.into_iter().map(Gid::as_raw).collect())
            .unwrap_or_else(|_| vec![u.gid.as_raw()]);
        TestUser {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            groups,
            home: u.dir,
        }
    }

    /// Looks a user up by name; panics with the fix when it does not exist.
    pub fn named(name: &str) -> TestUser {
        match User::from_name(name) {
            Ok(Some(u)) => TestUser::from_user(u),
            _ => panic!(
                "test user `{name}` does not exist: run `bash tests/run.sh` as root once \
                 (it creates {TEST_USER} and {OTHER_USER}), or `useradd -m {name}`"
            ),
        }
    }

    /// The user running the tests.
    pub fn current() -> TestUser {
        let uid = Uid::current();
        match User::from_uid(uid) {
            Ok(Some(u)) => TestUser::from_user(u),
            _ => TestUser {
                name: format!("uid{}", uid.as_raw()),
                uid: uid.as_raw(),
                gid: Gid::current().as_raw(),
                groups: vec![Gid::current().as_raw()],
                home: std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| "/tmp".into()),
            },
        }
    }

    /// Who checkpointed programs run as: `dmtcptest` under root, else the current user.
    pub fn primary() -> TestUser {
        if is_root() {
            TestUser::named(TEST_USER)
        } else {
            TestUser::current()
        }
    }

    /// A second, different user; `None` when not root (the test should then say it skips).
    pub fn other() -> Option<TestUser> {
        is_root().then(|| TestUser::named(OTHER_USER))
    }

    /// True when commands for this user need a uid switch.
    pub fn needs_switch(&self) -> bool {
        self.uid != Uid::current().as_raw()
    }
}
