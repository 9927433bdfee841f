//! One module per fd kind: a serializable `State`, `save` (program frozen) and `restore`.

pub mod epoll;
pub mod eventfd;
pub mod file;
pub mod inotify;
pub mod memfd;
pub mod pipe;
pub mod pty;
pub mod signalfd;
pub mod socket;
pub mod timerfd;
