//! `dmtcp_restart_script.sh`: the shell script that restarts the last complete checkpoint.

use dmtcp_protocol::CompId;
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

    /// Images grouped by host, local host first, in checkpoint order otherwise.
    fn by_host(&self) -> Vec<(String, Vec<&str>)> {
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        for (host, image) in &self.images {
            match groups.iter_mut().find(|(h, _)| h == host) {
                Some((_, v)) => v.push(image),
                None => groups.push((host.clone(), vec![image])),
            }
        }
        groups.sort_by_key(|(h, _)| *h != self.local_host);
        groups
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str("#!/bin/sh\n");
        s.push_str(&format!(
            "# Restarts computation {} from checkpoint generation {}.\n\
             # Written by dmtcp_coordinator; run it with --help for its options.\n\n",
            self.comp_id, self.generation
        ));
        s.push_str(&format!(
            "dmtcp_restart={}\ncoord_host={}\ncoord_port={}\ninterval={}\nrestartdir=\nhostfile=\n\n",
            sh_quote(&self.restart_bin),
            sh_quote(&self.coord_host),
            self.coord_port,
            self.interval
        ));
        s.push_str(USAGE_AND_OPTIONS);
        let groups = self.by_host();
        let mut local: Option<&Vec<&str>> = None;
        for (host, images) in &groups {
            if *host == self.local_host {
                local = Some(images);
                continue;
            }
            // Remote processes join the coordinator that the local restart uses.
            let words: Vec<String> = images
                .iter()
                .map(|i| format!("\"$(img {})\"", sh_quote(i)))
                .collect();
            s.push_str(&format!(
                "ssh {} \"dmtcp_restart --join-coordinator --coord-host $coord_host --coord-port $coord_port \
                 $interval_opt {}\" &\n",
                sh_quote(host),
                words.join(" ")
            ));
        }
        match local {
            Some(images) => {
                s.push_str("exec \"$dmtcp_restart\" --coord-host \"$coord_host\" --coord-port \"$coord_port\" $interval_opt \\\n");
                let words: Vec<String> = images
                    .iter()
                    .map(|i| format!("  \"$(img {})\"", sh_quote(i)))
                    .collect();
                s.push_str(&words.join(" \\\n"));
                s.push('\n');
            }
            None => s.push_str("wait\n"),
        }
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

const USAGE_AND_OPTIONS: &str = r#"usage() {
  cat <<USAGE
Usage: $0 [OPTIONS]
Restarts the checkpointed computation.
  -h, --coord-host HOST   coordinator host (default: $coord_host)
  -p, --coord-port PORT   coordinator port (default: $coord_port)
      --hostfile FILE     reserved: hosts to restart on
      --restartdir DIR    look for the images in DIR instead of their saved paths
  -i, --interval SECS     checkpoint interval after restart (0 = none)
      --help              show this help
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--coord-host) coord_host="$2"; shift 2 ;;
    -p|--coord-port) coord_port="$2"; shift 2 ;;
    --hostfile) hostfile="$2"; shift 2 ;;
    --restartdir) restartdir="$2"; shift 2 ;;
    -i|--interval) interval="$2"; shift 2 ;;
    --help) usage; exit 0 ;;
    *) echo "$0: unknown option '$1' (see --help)" >&2; exit 1 ;;
  esac
done

interval_opt=
if [ -n "$interval" ] && [ "$interval" != 0 ]; then interval_opt="--interval $interval"; fi

img() {
  if [ -n "$restartdir" ]; then printf '%s/%s' "$restartdir" "${1##*/}"; else printf '%s' "$1"; fi
}

"#;

#[cfg(test)]
mod tests {
    use super::*;
    use dmtcp_protocol::UniquePid;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    fn script(dir: &Path, images: Vec<(String, String)>) -> RestartScript {
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
            restart_bin: "/bin/echo".into(),
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
        let s = script(
            &dir,
            vec![
                ("node1".into(), "/ck/a b.dmtcp".into()),
                ("node1".into(), "/ck/it's.dmtcp".into()),
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
            "--coord-host node1 --coord-port 7779 /ck/a b.dmtcp /ck/it's.dmtcp\n"
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
            "--coord-host h2 --coord-port 9 --interval 30 /new/a b.dmtcp /new/it's.dmtcp\n"
        );
        let out = Command::new("sh")
            .arg(&link)
            .arg("--bogus")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let out = Command::new("sh")
            .arg(&link)
            .arg("--help")
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("--restartdir"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn remote_hosts_are_started_through_ssh() {
        let s = script(
            Path::new("/ck"),
            vec![
                ("node2".into(), "/ck/r.dmtcp".into()),
                ("node1".into(), "/ck/l.dmtcp".into()),
            ],
        );
        let text = s.render();
        let ssh = text.lines().find(|l| l.starts_with("ssh ")).unwrap();
        assert!(
            ssh.starts_with("ssh 'node2' \"dmtcp_restart --join-coordinator"),
            "{ssh}"
        );
        assert!(ssh.contains("/ck/r.dmtcp") && ssh.ends_with('&'), "{ssh}");
        assert!(text.contains("exec \"$dmtcp_restart\""));
        // The local image is not in the ssh line and the remote one not in the exec.
        assert!(!ssh.contains("l.dmtcp"));
        let exec_part = &text[text.find("exec \"$dmtcp_restart\"").unwrap()..];
        assert!(exec_part.contains("/ck/l.dmtcp") && !exec_part.contains("r.dmtcp"));
    }
}
