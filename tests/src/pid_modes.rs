//! Running one test body under both id strategies of DESIGN.md §5 (`dmtcp_launch
//! --pid-mode=namespace|virtual`), so CI shows a result per mode.
//!
//! ```ignore
//! fn body(mode: PidMode) { ... launch_in_pid_namespace_mode(&env, port, mode, prog) ... }
//! dmtcp_tests::both_pid_modes!(body);   // body::namespace, body::virtual_ids
//! ```

use crate::engine_support::LONG;
use crate::{Cmd, Env, Spawned};

/// How a restart gives processes their ids back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidMode {
    /// Exact pids and tids in a fresh user+pid namespace.
    Namespace,
    /// New real ids, translated by the runtime's wrappers.
    Virtual,
}

impl PidMode {
    pub fn name(self) -> &'static str {
        match self {
            PidMode::Namespace => "namespace",
            PidMode::Virtual => "virtual",
        }
    }

    /// The `dmtcp_launch`/`dmtcp_restart` option selecting this mode.
    pub fn flag(self) -> String {
        format!("--pid-mode={}", self.name())
    }
}

/// `dmtcp_launch --join-coordinator --pid-mode=<mode>` of `program_and_args` (words separated
/// by spaces). Namespace mode launches inside a fresh user+pid namespace with
/// `DMTCP_PID_NAMESPACE=1`, like [`crate::engine_support::launch_in_pid_namespace`]. Virtual
/// mode launches on the host, the way it runs where namespaces are off: the session and the
/// process group the harness gives the launched program are then real host ids that the
/// restart can take back (from inside a namespace they would read as 0).
pub fn launch_in_mode(env: &Env, port: u16, mode: PidMode, program_and_args: &str) -> Cmd {
    match mode {
        PidMode::Namespace => crate::engine_support::launch_in_pid_namespace(
            env,
            port,
            &format!("{} {program_and_args}", mode.flag()),
        ),
        PidMode::Virtual => env
            .tool("dmtcp_launch")
            .args(["--join-coordinator", "--coord-port", &port.to_string()])
            .arg(mode.flag())
            .args(program_and_args.split(' ').filter(|w| !w.is_empty())),
    }
}

/// [`launch_in_mode`], spawned and waited for until `peers` processes joined the coordinator
/// (a process tree must be complete before its first checkpoint).
pub fn launch_tree(
    env: &Env,
    port: u16,
    mode: PidMode,
    program_and_args: &str,
    peers: u32,
) -> Spawned {
    let run = env.spawn(&launch_in_mode(env, port, mode, program_and_args));
    env.wait_peers(port, peers, true, LONG);
    run
}

/// Two `#[test]`s, `$name::namespace` and `$name::virtual_ids`, running `$body(mode)`;
/// `$name` defaults to `$body` (a module and a function may share a name).
#[macro_export]
macro_rules! both_pid_modes {
    ($body:ident) => {
        $crate::both_pid_modes!($body, $body);
    };
    ($name:ident, $body:ident) => {
        mod $name {
            #[test]
            fn namespace() {
                super::$body($crate::pid_modes::PidMode::Namespace)
            }
            #[test]
            fn virtual_ids() {
                super::$body($crate::pid_modes::PidMode::Virtual)
            }
        }
    };
}
