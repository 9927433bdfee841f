//! `dmtcp_restart_script.sh`: the shell script that restarts the last complete checkpoint.

use dmtcp_protocol::CompId;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

/// Name of the symlink that always points at the newest script.
pub const LINK_NAME: &str = "dmtcp_restart_script.sh";

/// Everything the script needs; built by the computation when a checkpoint completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartScript {
    pub dir: PathBuf,
    pub comp_id: CompId,
    pub generation: u32,
    pub coord_host: String,
    pub coord_port: u16,
    pub interval: u32,
    /// `dmtcp_restart` (absolute path where known).
    pub restart_bin: String,
    /// The coordinator's host name: images from it are restarted without ssh.
    pub local_host: String,
    /// `(host, image path)` per process.
    pub images: Vec<(String, String)>,
}

/// The directory for the script: the images' directory if they share one, else the
/// coordinator's `--ckptdir`, else its working directory.
pub fn choose_dir(images: &[String], ckpt_dir: Option<&str>, cwd: &Path) -> PathBuf {
    let mut parents = images.iter().map(|i| Path::new(i).parent());
    if let Some(Some(first)) = parents.next()
        && !first.as_os_str().is_empty()
        && parents.all(|p| p == Some(first))
    {
        return first.to_path_buf();
    }
    ckpt_dir
        .map(PathBuf::from)
        .unwrap_or_else(|| cwd.to_path_buf())
}

/// Quotes a word for POSIX sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl RestartScript {
    pub fn path(&self) -> PathBuf {
        self.dir
            .join(format!("dmtcp_restart_script_{}.sh", self.comp_id))
    }

    /// Images grouped by the host they ran on, hosts in name order (the numbering that
    /// `--hostfile` lines follow), images in path order within a host.
    pub fn saved_hosts(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (host, image) in &self.images {
            groups.entry(host).or_default().push(image.clone());
        }
        groups
            .into_iter()
            .map(|(h, mut v)| {
                v.sort();
                (h.to_string(), v)
            })
            .collect()
    }

    pub fn render(&self) -> String {
        let hosts = self.saved_hosts();
        let mut s = String::new();
        s.push_str("#!/bin/sh\n");
        s.push_str(&format!(
            "# Restarts computation {} from checkpoint generation {}.\n\
             # Written by dmtcp_coordinator on {}; run it with --help for its options.\n\n",
            self.comp_id, self.generation, self.local_host
        ));
        s.push_str(&format!(
            "dmtcp_restart={}\ncoord_host={}\ncoord_port={}\ninterval={}\n\
             # Every dmtcp_restart learns the size of the whole computation, since each host's\n\
             # restarts only its own processes.\ncomputation_size={}\n",
            sh_quote(&self.restart_bin),
            sh_quote(&self.coord_host),
            self.coord_port,
            self.interval,
            self.images.len()
        ));
        // The placement, for --help (a here-document line each).
        let mut placement = String::new();
        for (n, (host, images)) in hosts.iter().enumerate() {
            placement.push_str(&format!(
                "  {}. {host}: {} process(es)\n",
                n + 1,
                images.len()
            ));
        }
        s.push_str(&format!("saved_placement={}\n", sh_quote(&placement)));
        s.push_str(SCRIPT_BODY);
        s.push_str("\n# The saved placement: host number, host, its images.\n");
        for (n, (host, images)) in hosts.iter().enumerate() {
            let words: Vec<String> = images.iter().map(|i| sh_quote(i)).collect();
            s.push_str(&format!(
                "place {} {} {}\n",
                n + 1,
                sh_quote(host),
                words.join(" ")
            ));
        }
        s.push_str("\nstart_all\n");
        s
    }

    /// Writes the script (temp name + rename, mode 0755) and points the symlink at it.
    pub fn write(&self) -> io::Result<PathBuf> {
        let path = self.path();
        let tmp = self
            .dir
            .join(format!(".dmtcp_restart_script_{}.sh.tmp", self.comp_id));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o755)
            .open(&tmp)?;
        f.write_all(self.render().as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &path)?;
        let link = self.dir.join(LINK_NAME);
        let link_tmp = self.dir.join(format!(".{LINK_NAME}.tmp"));
        let _ = fs::remove_file(&link_tmp);
        symlink(path.file_name().expect("script has a file name"), &link_tmp)?;
        fs::rename(&link_tmp, &link)?;
        Ok(path)
    }
}

/// The options, helpers and launcher of every script; the generated part sets the variables
/// above it and calls `place` once per saved host, then `start_all`.
const SCRIPT_BODY: &str = r#"restartdir=
hostfile=
local_only=
rsh=${DMTCP_REMOTE_SHELL:-ssh}

usage() {
  cat <<USAGE
Usage: $0 [OPTIONS]
Restarts the checkpointed computation: each process on the host it ran on (other hosts
through the remote shell; they join the coordinator at --coord-host, which must be running
or be started by processes of this host), unless --hostfile or --local places them.
  -h, --coord-host HOST   coordinator host (default: $coord_host)
  -p, --coord-port PORT   coordinator port (default: $coord_port)
      --hostfile FILE     restart the processes of saved host N on the N-th host of FILE
                          (first word of each line; blank lines and # comments skipped;
                          used again from the top when FILE lists fewer hosts)
      --local             restart every process on this host
      --rsh CMD           remote shell (default: \$DMTCP_REMOTE_SHELL, else ssh)
      --restartdir DIR    look for the images in DIR instead of their saved paths
  -i, --interval SECS     checkpoint interval after restart (0 = none)
      --help              show this help
Saved hosts:
$saved_placement
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--coord-host) coord_host="$2"; shift 2 ;;
    -p|--coord-port) coord_port="$2"; shift 2 ;;
    --hostfile) hostfile="$2"; shift 2 ;;
    --local) local_only=1; shift ;;
    --rsh) rsh="$2"; shift 2 ;;
    --restartdir) restartdir="$2"; shift 2 ;;
    -i|--interval) interval="$2"; shift 2 ;;
    --help) usage; exit 0 ;;
    *) echo "$0: unknown option '$1' (see --help)" >&2; exit 1 ;;
  esac
done

if [ -n "$hostfile" ]; then
  [ -r "$hostfile" ] || { echo "$0: cannot read host file $hostfile" >&2; exit 1; }
  new_hosts=$(sed -e 's/#.*//' "$hostfile" | awk 'NF { print $1 }')
  [ -n "$new_hosts" ] || { echo "$0: host file $hostfile lists no host" >&2; exit 1; }
  n_new_hosts=$(printf '%s\n' "$new_hosts" | wc -l)
fi

interval_opt=
if [ -n "$interval" ] && [ "$interval" != 0 ]; then interval_opt="--interval $interval"; fi

img() {
  if [ -n "$restartdir" ]; then printf '%s/%s' "$restartdir" "${1##*/}"; else printf '%s' "$1"; fi
}

# Quotes a word for the shell that reads it again (eval here, or the remote user's shell).
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

this_host=$(uname -n)
is_local() { [ "$1" = "$this_host" ] || [ "$1" = localhost ]; }

# The host that saved host number $1 (named $2) restarts on.
new_host() {
  if [ -n "$local_only" ]; then printf '%s' "$this_host"
  elif [ -n "$hostfile" ]; then printf '%s\n' "$new_hosts" | sed -n "$(( ($1 - 1) % n_new_hosts + 1 ))p"
  else printf '%s' "$2"; fi
}

# One dmtcp_restart per saved host (placed_I: the host it runs on, words_I: the quoted image
# paths). Processes of different saved hosts never share one: their pids may collide, and
# each dmtcp_restart recreates its processes' ids in one pid namespace.
nplaced=0
place() {
  nplaced=$((nplaced + 1))
  h=$(new_host "$1" "$2"); shift 2
  eval "placed_$nplaced=\$h; words_$nplaced="
  for image in "$@"; do
    w=$(q "$(img "$image")")
    eval "words_$nplaced=\"\$words_$nplaced \$w\""
  done
}

restart_cmd() {
  printf '%s --coord-host %s --coord-port %s --computation-size %s %s' "$(q "$dmtcp_restart")" \
    "$(q "$coord_host")" "$(q "$coord_port")" "$computation_size" "$interval_opt"
}

# Waits until the coordinator answers (the local dmtcp_restart may be starting it).
wait_coordinator() {
  cmd="${dmtcp_restart%/*}/dmtcp_command"
  [ -x "$cmd" ] || cmd=dmtcp_command
  t=0
  while [ "$t" -lt 300 ]; do
    "$cmd" --coord-host "$coord_host" --coord-port "$coord_port" --status >/dev/null 2>&1 && return 0
    sleep 0.1
    t=$((t + 1))
  done
  echo "$0: no coordinator at $coord_host:$coord_port; starting the other hosts anyway" >&2
}

start_all() {
  if [ "$nplaced" = 1 ] && is_local "$placed_1"; then
    eval "exec $(restart_cmd) $words_1"
  fi
  # This host's processes first: the first of them may have to start the coordinator, which
  # the others (here and on other hosts) then join.
  pids=
  started=
  i=1
  while [ "$i" -le "$nplaced" ]; do
    eval "h=\$placed_$i; w=\$words_$i"
    if is_local "$h"; then
      eval "$(restart_cmd) $w" &
      pids="$pids $!"
      [ -n "$started" ] || wait_coordinator
      started=1
    fi
    i=$((i + 1))
  done
  i=1
  while [ "$i" -le "$nplaced" ]; do
    eval "h=\$placed_$i; w=\$words_$i"
    if ! is_local "$h"; then
      # $rsh unquoted: it may carry options (ssh -F FILE).
      $rsh "$h" "$(restart_cmd) --join-coordinator $w" </dev/null &
      pids="$pids $!"
    fi
    i=$((i + 1))
  done
  rc=0
  for p in $pids; do
    wait "$p"
    s=$?
    [ "$rc" = 0 ] && rc=$s
  done
  exit "$rc"
}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use dmtcp_protocol::UniquePid;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    fn script(dir: &Path, restart_bin: &str, images: Vec<(String, String)>) -> RestartScript {
        RestartScript {
            dir: dir.to_path_buf(),
            comp_id: CompId(UniquePid {
                host_id: 0xab,
                pid: 42,
                time_ns: 0xcd,
            }),
            generation: 3,
            coord_host: "node1".into(),
            coord_port: 7779,
            interval: 0,
            restart_bin: restart_bin.into(),
            local_host: "node1".into(),
            images,
        }
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dmtcp-rs-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn executable(path: &Path, text: &str) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A directory with a fake `dmtcp_restart` (prints its arguments), a `dmtcp_command` that
    /// always finds the coordinator, and a fake remote shell that runs the command line it is
    /// given locally (through sh, as ssh would) and prefixes the output with the host.
    fn fakes(tag: &str) -> PathBuf {
        let d = tempdir(tag);
        executable(&d.join("dmtcp_restart"), "#!/bin/sh\necho \"$@\"\n");
        executable(&d.join("dmtcp_command"), "#!/bin/sh\nexit 0\n");
        executable(
            &d.join("rsh"),
            "#!/bin/sh\nh=$1; shift\nout=$(sh -c \"$1\")\necho \"$h: $out\"\n",
        );
        d
    }

    /// Runs the script with the fake remote shell; its output lines, sorted (remote hosts
    /// start in parallel).
    fn run(dir: &Path, path: &Path, args: &[&str]) -> (Option<i32>, Vec<String>) {
        let out = Command::new("sh")
            .arg(path)
            .args(args)
            .env("DMTCP_REMOTE_SHELL", dir.join("rsh"))
            .output()
            .unwrap();
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.replace(&dir.display().to_string(), "D"))
            .collect();
        lines.sort();
        (out.status.code(), lines)
    }

    #[test]
    fn dir_is_shared_image_dir_else_ckptdir_else_cwd() {
        let cwd = Path::new("/cwd");
        let same = vec!["/a/x.dmtcp".to_string(), "/a/y.dmtcp".to_string()];
        assert_eq!(choose_dir(&same, Some("/ck"), cwd), PathBuf::from("/a"));
        let mixed = vec!["/a/x.dmtcp".to_string(), "/b/y.dmtcp".to_string()];
        assert_eq!(choose_dir(&mixed, Some("/ck"), cwd), PathBuf::from("/ck"));
        assert_eq!(choose_dir(&mixed, None, cwd), PathBuf::from("/cwd"));
        assert_eq!(
            choose_dir(&["x.dmtcp".to_string()], None, cwd),
            PathBuf::from("/cwd")
        );
    }

    #[test]
    fn script_runs_restart_with_images_and_options() {
        let dir = tempdir("script");
        let here = dmtcp_protocol::ids::hostname();
        let s = script(
            &dir,
            "/bin/echo",
            vec![
                (here.clone(), "/ck/a b.dmtcp".into()),
                (here, "/ck/it's.dmtcp".into()),
            ],
        );
        let path = s.write().unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let link = dir.join(LINK_NAME);
        assert_eq!(
            fs::read_link(&link).unwrap(),
            PathBuf::from(path.file_name().unwrap())
        );
        // restart_bin is echo, so the output is the dmtcp_restart command line.
        let out = Command::new("sh").arg(&link).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "--coord-host node1 --coord-port 7779 --computation-size 2 /ck/a b.dmtcp /ck/it's.dmtcp\n"
        );
        let out = Command::new("sh")
            .arg(&link)
            .args([
                "--coord-port",
                "9",
                "-i",
                "30",
                "--restartdir",
                "/new",
                "-h",
                "h2",
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "--coord-host h2 --coord-port 9 --computation-size 2 --interval 30 /new/a b.dmtcp /new/it's.dmtcp\n"
        );
        let out = Command::new("sh")
            .arg(&link)
            .arg("--bogus")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        fs::remove_dir_all(&dir).unwrap();
    }

    fn three_hosts(dir: &Path) -> PathBuf {
        let restart = dir.join("dmtcp_restart");
        let s = script(
            dir,
            restart.to_str().unwrap(),
            vec![
                ("node2".into(), "/ck/r2.dmtcp".into()),
                ("node1".into(), "/ck/a.dmtcp".into()),
                ("node2".into(), "/ck/r1.dmtcp".into()),
                ("node3".into(), "/ck/it's.dmtcp".into()),
            ],
        );
        s.write().unwrap()
    }

    #[test]
    fn each_process_restarts_on_its_saved_host_through_the_remote_shell() {
        let dir = fakes("saved");
        let path = three_hosts(&dir);
        let (code, lines) = run(&dir, &path, &[]);
        assert_eq!(code, Some(0));
        let restart =
            "--coord-host node1 --coord-port 7779 --computation-size 4 --join-coordinator";
        assert_eq!(
            lines,
            [
                format!("node1: {restart} /ck/a.dmtcp"),
                format!("node2: {restart} /ck/r1.dmtcp /ck/r2.dmtcp"),
                format!("node3: {restart} /ck/it's.dmtcp"),
            ]
        );
        // Options reach the remote command line too.
        let (_, lines) = run(&dir, &path, &["-h", "10.0.0.1", "-p", "5", "-i", "7"]);
        assert_eq!(
            lines[0],
            "node1: --coord-host 10.0.0.1 --coord-port 5 --computation-size 4 --interval 7 \
             --join-coordinator /ck/a.dmtcp"
        );
        let out = Command::new("sh")
            .arg(&path)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("  1. node1: 1 process(es)\n  2. node2: 2 process(es)\n  3. node3: 1"),
            "{help}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hostfile_places_saved_host_n_on_line_n_and_wraps() {
        let dir = fakes("hostfile");
        let path = three_hosts(&dir);
        let hf = dir.join("hosts");
        fs::write(&hf, "# new placement\n\nnew3 slots=2\n  new1\n").unwrap();
        let (code, lines) = run(&dir, &path, &["--hostfile", hf.to_str().unwrap()]);
        assert_eq!(code, Some(0));
        let restart =
            "--coord-host node1 --coord-port 7779 --computation-size 4 --join-coordinator";
        // node1 -> new3, node2 -> new1, node3 -> new3 again (a dmtcp_restart of its own: pids
        // of different hosts may collide).
        assert_eq!(
            lines,
            [
                format!("new1: {restart} /ck/r1.dmtcp /ck/r2.dmtcp"),
                format!("new3: {restart} /ck/a.dmtcp"),
                format!("new3: {restart} /ck/it's.dmtcp"),
            ]
        );
        fs::write(&hf, "# nothing\n").unwrap();
        let (code, _) = run(&dir, &path, &["--hostfile", hf.to_str().unwrap()]);
        assert_eq!(code, Some(1));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn local_puts_everything_on_this_host_one_restart_per_saved_host() {
        let dir = fakes("local");
        let path = three_hosts(&dir);
        let (code, lines) = run(&dir, &path, &["--local", "--restartdir", "/new dir"]);
        assert_eq!(code, Some(0));
        let restart = "--coord-host node1 --coord-port 7779 --computation-size 4";
        assert_eq!(
            lines,
            [
                format!("{restart} /new dir/a.dmtcp"),
                format!("{restart} /new dir/it's.dmtcp"),
                format!("{restart} /new dir/r1.dmtcp /new dir/r2.dmtcp"),
            ]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn local_and_remote_processes_start_together() {
        let dir = fakes("mixed");
        let restart = dir.join("dmtcp_restart");
        let here = dmtcp_protocol::ids::hostname();
        let s = script(
            &dir,
            restart.to_str().unwrap(),
            vec![
                (here, "/ck/l.dmtcp".into()),
                ("node2".into(), "/ck/r.dmtcp".into()),
            ],
        );
        let path = s.write().unwrap();
        let (code, lines) = run(&dir, &path, &[]);
        assert_eq!(code, Some(0));
        assert_eq!(
            lines,
            [
                "--coord-host node1 --coord-port 7779 --computation-size 2 /ck/l.dmtcp".to_string(),
                "node2: --coord-host node1 --coord-port 7779 --computation-size 2 --join-coordinator \
                 /ck/r.dmtcp"
                    .to_string(),
            ]
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
