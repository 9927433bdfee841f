//! The checkpoint thread: waits for the coordinator's orders and carries them out.

use crate::raw_lock::RawLock;
use crate::session::{self, SessionError};
use dmtcp_protocol::CoordMsg;
use dmtcp_protocol::frame::FrameError;

/// Held while the checkpoint thread reads a message, and by the `exec` wrappers, so an exec
/// never cuts a frame in half. (Checkpoints exclude fork and exec through `ckpt_lock`.)
pub static GATE: RawLock = RawLock::new();

pub fn spawn() {
    // The thread starts with every signal blocked (it sets its own mask first thing), so a
    // signal the program sends itself at start-up can never run on our thread.
    // SAFETY: sigset manipulation on locals and this thread's mask, restored right after.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let r = std::thread::Builder::new()
        .name("dmtcp:ckpt".into())
        .stack_size(256 << 10)
        .spawn(run);
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if let Err(e) = r {
        crate::error!("cannot start the checkpoint thread: {e}; checkpointing is disabled");
    }
}

fn run() {
    crate::checkpoint::mask_checkpoint_thread();
    loop {
        let r = match session::take_deferred() {
            Some(order) => Ok(CoordMsg::DoCheckpoint(order)),
            None => {
                session::wait_readable();
                GATE.lock();
                let r = session::recv();
                GATE.unlock();
                r
            }
        };
        let outcome = match r {
            Ok(msg) => handle(msg),
            Err(e) => Err(SessionError::Frame(e)),
        };
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
