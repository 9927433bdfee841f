//! `dmtcp_command --json` answers, parsed.

use crate::process::Output;

/// One `dmtcp_command --json` object (DMTCP's schema).
#[derive(Debug, Clone)]
pub struct Status {
    pub command: String,
    pub command_status: String,
    pub coordinator_host: String,
    pub coordinator_port: u16,
    pub num_peers: Option<u32>,
    pub running: Option<bool>,
    pub checkpoint_interval: Option<u32>,
    pub workers: Option<String>,
    pub exit_code: Option<i32>,
    pub json: serde_json::Value,
}

impl Status {
    /// Parses the one JSON object on stdout; panics with the whole output if it is not one.
    #[track_caller]
    pub fn parse(out: &Output) -> Status {
        let text = out.stdout_str();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one JSON line:\n{}",
            out.describe()
        );
        let json: serde_json::Value = serde_json::from_str(lines[0])
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.describe()));
        let s = |k: &str| json.get(k).and_then(|v| v.as_str()).map(String::from);
        let n = |k: &str| json.get(k).and_then(|v| v.as_u64()).map(|v| v as u32);
        assert_eq!(json["schema_version"], 1, "{}", out.describe());
        Status {
            command: s("command").unwrap_or_default(),
            command_status: s("command_status").unwrap_or_default(),
            coordinator_host: s("coordinator_host").unwrap_or_default(),
            coordinator_port: n("coordinator_port").unwrap_or(0) as u16,
            num_peers: n("num_peers"),
            running: json.get("running").and_then(|v| v.as_bool()),
            checkpoint_interval: n("checkpoint_interval"),
            workers: s("workers"),
            exit_code: out.code(),
            json,
        }
    }

    pub fn ok(&self) -> bool {
        self.command_status == "DMT_COORD_SUCCESS"
    }

    /// `num_peers` of a successful status, else 0.
    pub fn peers(&self) -> u32 {
        if self.ok() {
            self.num_peers.unwrap_or(0)
        } else {
            0
        }
    }

    pub fn is_running(&self) -> bool {
        self.ok() && self.running == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn output(stdout: &str, code: i32) -> Output {
        Output {
            name: "dmtcp_command".into(),
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        }
    }

    #[test]
    fn parses_dmtcps_status_object() {
        let st = Status::parse(&output(
            "{\"schema_version\":1,\"command\":\"DMT_STATUS\",\"command_status\":\
             \"DMT_COORD_SUCCESS\",\"coordinator_host\":\"localhost\",\"coordinator_port\":7779,\
             \"num_peers\":3,\"running\":true,\"checkpoint_interval\":42}\n",
            0,
        ));
        assert_eq!(
            (st.peers(), st.is_running(), st.checkpoint_interval),
            (3, true, Some(42))
        );
        assert_eq!((st.coordinator_port, st.exit_code), (7779, Some(0)));
    }

    #[test]
    fn a_failure_has_no_peers() {
        let st = Status::parse(&output(
            "{\"schema_version\":1,\"command\":\"DMT_STATUS\",\"command_status\":\
             \"DMT_COORD_NOT_FOUND\",\"coordinator_host\":\"localhost\",\"coordinator_port\":1}\n",
            2,
        ));
        assert!(!st.ok());
        assert_eq!(
            (st.peers(), st.is_running(), st.exit_code),
            (0, false, Some(2))
        );
    }

    #[test]
    #[should_panic(expected = "expected one JSON line")]
    fn two_lines_are_rejected() {
        Status::parse(&output("{}\n{}\n", 0));
    }
}
