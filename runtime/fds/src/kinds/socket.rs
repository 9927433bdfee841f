//! Sockets: recognised and described here, saved and restored by the socket layer.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::scan::FdDesc;
use crate::sys;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub inode: u64,
    pub domain: i32,
    pub kind: i32,
    pub protocol: i32,
    pub flags: i32,
}

pub fn save(d: &FdDesc) -> Result<State> {
    // Best effort: the socket layer re-reads what it needs; -1 marks what could not be read.
    let opt = |o| sys::getsockopt_int(d.fd, libc::SOL_SOCKET, o).unwrap_or(-1);
    Ok(State {
        inode: d.ino,
        domain: opt(libc::SO_DOMAIN),
        kind: opt(libc::SO_TYPE),
        protocol: opt(libc::SO_PROTOCOL),
        flags: d.flags(),
    })
}
