//! DMTCP's interactive keys when the coordinator runs in a terminal: `l` list, `s` status,
//! `c` checkpoint, `bc` blocking checkpoint, `kc` checkpoint then kill, `k` kill, `q` quit,
//! `i N` interval, `?` help.

use dmtcp_protocol::{CkptMode, Command, CommandReply, CommandStatus};

pub const HELP: &str = concat!(
    "Commands: l : list processes      s : status\n",
    "          c : checkpoint         bc : checkpoint and wait   kc : checkpoint, then kill\n",
    "        i N : set interval        k : kill computation        q : kill and quit\n",
    "          ? : this help"
);

/// Parses one typed line; `Err` carries the text to print instead.
pub fn parse(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let cmd = match words.next().unwrap_or("") {
        "l" | "t" => Command::List,
        "s" => Command::Status,
        "c" => Command::Checkpoint(CkptMode::Async),
        "bc" => Command::Checkpoint(CkptMode::Blocking),
        "kc" => Command::Checkpoint(CkptMode::KillAfter),
        "k" => Command::Kill,
        "q" => Command::Quit,
        "i" => match words.next().map(str::parse::<u32>) {
            Some(Ok(n)) => Command::SetInterval(n),
            _ => return Err("usage: i SECONDS".into()),
        },
        "?" | "h" | "help" => return Err(HELP.into()),
        "" => return Err(String::new()),
        other => return Err(format!("unknown command '{other}'; type ? for help")),
    };
    Ok(cmd)
}

/// The text printed for a reply.
pub fn render(cmd: Command, r: &CommandReply) -> String {
    let mut out = String::new();
    if let Command::List = cmd {
        for w in &r.workers {
            out.push_str(&format!(
                "{}, {}[{}:{}]@{}, {}, {}{}\n",
                w.number,
                w.progname,
                w.virtual_pid,
                w.real_pid,
                w.hostname,
                w.upid,
                w.state,
                w.barrier
                    .as_deref()
                    .map(|b| format!(", at barrier {b}"))
                    .unwrap_or_default()
            ));
        }
    }
    if r.status != CommandStatus::Success {
        out.push_str(&format!(
            "{:?}: {}\n",
            r.status,
            r.message.as_deref().unwrap_or("")
        ));
    }
    out.push_str(&format!(
        "NUM_PEERS={} RUNNING={} GENERATION={} CKPT_INTERVAL={}",
        r.num_peers,
        if r.running { "yes" } else { "no" },
        r.generation,
        r.interval
    ));
    if let (Command::Checkpoint(_), Some(last)) = (cmd, &r.last_checkpoint) {
        out.push_str(&format!(
            "\nlast checkpoint: generation {}, {} images, {} bytes, {} ms",
            last.generation,
            last.images.len(),
            last.bytes,
            last.duration_ms
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_commands() {
        assert_eq!(parse("l"), Ok(Command::List));
        assert_eq!(parse(" bc "), Ok(Command::Checkpoint(CkptMode::Blocking)));
        assert_eq!(parse("i 30"), Ok(Command::SetInterval(30)));
        assert!(parse("i x").unwrap_err().contains("usage"));
        assert!(parse("zz").unwrap_err().contains("unknown command 'zz'"));
        assert_eq!(parse("?").unwrap_err(), HELP);
    }
}
