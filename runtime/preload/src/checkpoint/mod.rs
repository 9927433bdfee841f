//! Carrying out one checkpoint order.
//!
//! Contract with the rest of the runtime (keep it when this grows into the real engine):
//! - take `ckpt_lock::acquire_exclusive()` before freezing anyone (waits for
//!   `dmtcp_disable_ckpt` sections and fork/exec wrappers) and `release_exclusive()` on resume;
//! - report outcomes to the program's API: `api::note_checkpoint_done(generation, image)`,
//!   `api::note_checkpoint_failed()`, and after a restart `api::note_restart(generation)`.

use crate::session::{self, SessionError};
use crate::{api, ckpt_lock};
use dmtcp_protocol::{CheckpointOrder, WorkerMsg, WorkerState};

pub fn run(order: &CheckpointOrder) -> Result<(), SessionError> {
    crate::debug!("checkpoint generation {} requested", order.generation);
    ckpt_lock::acquire_exclusive();
    let r = (|| {
        session::send(&WorkerMsg::State(WorkerState::Checkpointing))?;
        session::send(&WorkerMsg::CkptFailed {
            error: "this build of the runtime cannot write memory images yet".into(),
        })?;
        session::send(&WorkerMsg::State(WorkerState::Running))
    })();
    ckpt_lock::release_exclusive();
    api::note_checkpoint_failed();
    Ok(r?)
}
