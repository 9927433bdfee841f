//! The checkpoint thread: waits for the coordinator's orders and carries them out.

use crate::raw_lock::RawLock;
use crate::session::{self, SessionError};
use dmtcp_protocol::CoordMsg;
use dmtcp_protocol::frame::FrameError;

/// Held while the checkpoint thread handles a message (a whole checkpoint, for example).
/// `fork` and `exec` wrappers take it too: no process forks or replaces itself in the middle
/// of a checkpoint, and exec never cuts a frame in half.
pub static GATE: RawLock = RawLock::new();

pub fn spawn() {
    let r = std::thread::Builder::new()
        .name("dmtcp:ckpt".into())
        .stack_size(256 << 10)
        .spawn(run);
    if let Err(e) = r {
        crate::error!("cannot start the checkpoint thread: {e}; checkpointing is disabled");
    }
}

fn run() {
    loop {
        session::wait_readable();
        GATE.lock();
        let r = session::recv();
        let outcome = match r {
            Ok(msg) => handle(msg),
            Err(e) => Err(SessionError::Frame(e)),
        };
        GATE.unlock();
        match outcome {
            Ok(()) => {}
            Err(SessionError::Killed) => exit_now(),
            Err(SessionError::Frame(FrameError::Closed)) => {
                crate::warn!("the coordinator went away; the program runs on without checkpoints");
                return;
            }
            Err(e) => {
                crate::warn!("{e}; the program runs on without checkpoints");
                return;
            }
        }
    }
}

fn handle(msg: CoordMsg) -> Result<(), SessionError> {
    match msg {
        CoordMsg::DoCheckpoint(order) => crate::checkpoint::run(&order),
        CoordMsg::Kill => Err(SessionError::Killed),
        CoordMsg::Fatal { message } => Err(SessionError::Fatal(message)),
        other => {
            crate::debug!("unexpected message {other:?}");
            Ok(())
        }
    }
}

/// `dmtcp_command --kill`: the computation ends now, as DMTCP does.
fn exit_now() -> ! {
    // SAFETY: _exit ends the process without running the program's atexit handlers.
    unsafe { libc::_exit(0) }
}
