//! The restart side's freestanding pieces: the ABI between `dmtcp_restart`, the restorer and the
//! restored runtime ([`abi`]), raw system calls usable without libc or TLS ([`sys`]), and the
//! restoring steps themselves ([`restore`]), which the `dmtcp_restorer` binary runs.
#![cfg_attr(not(test), no_std)]

pub mod abi;
pub mod collision;
pub mod restore;
pub mod sys;
