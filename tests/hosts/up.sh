#!/usr/bin/env bash
# up.sh N DIR USER: N fake hosts on this machine for the multi-host tests (needs root).
#
#   host i = network namespace dmtcp-h<i> with address 10.201.0.<10+i>, hostname dmtcp-h<i>
#            (own UTS namespace), joined by veth to the bridge dmtcpbr0 (10.201.0.1, the
#            "head", i.e. the root namespace where the coordinator runs);
#   sshd   = one per host, started in that host's namespaces, so ssh sessions see its
#            network and hostname; everything it needs lives in DIR (host key, sshd_config,
#            authorized_keys); /etc and ~/.ssh are never touched;
#   client = DIR/client/{id_ed25519,ssh_config}, owned by USER (ssh refuses a key that
#            another user can read); `ssh -F DIR/client/ssh_config dmtcp-h2 cmd` works.
# No default route in the namespaces and ip_forward untouched: traffic stays on the bridge.
# The filesystem is shared by all hosts (like a parallel file system). Idempotent: it tears
# down what a previous run left first. Teardown: down.sh N DIR.
set -euo pipefail
N=${1:?usage: up.sh N DIR USER}
DIR=${2:?usage: up.sh N DIR USER}
USER_NAME=${3:?usage: up.sh N DIR USER}
HERE=$(cd "$(dirname "$0")" && pwd)
NET=10.201.0

"$HERE/down.sh" "$N" "$DIR" >/dev/null 2>&1 || true

command -v /usr/sbin/sshd >/dev/null || { echo "up.sh: /usr/sbin/sshd missing (apt-get install openssh-server)" >&2; exit 2; }

mkdir -p "$DIR/client"
chmod 755 "$DIR"
ssh-keygen -q -t ed25519 -N '' -C dmtcp-hosts -f "$DIR/ssh_host_ed25519_key"
ssh-keygen -q -t ed25519 -N '' -C dmtcp-test -f "$DIR/client/id_ed25519"
cp "$DIR/client/id_ed25519.pub" "$DIR/authorized_keys"
chmod 644 "$DIR/authorized_keys"
# sshd's privilege separation directory (normally made by the init system).
install -d -m 0755 /run/sshd

cat >"$DIR/sshd_config" <<CFG
Port 22
ListenAddress 0.0.0.0
HostKey $DIR/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile $DIR/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $USER_NAME
# The test user's account has no password ("!" = locked without PAM); PAM only checks expiry.
UsePAM yes
# DIR is below /tmp (world-writable parent), which StrictModes would reject.
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
# HOME: the tests give each run its own HOME (where the coordinator's secret lives).
AcceptEnv HOME LANG LC_* DMTCP_*
LogLevel ERROR
CFG

hosts_block=""
for i in $(seq 1 "$N"); do
  hosts_block+="Host dmtcp-h$i
    HostName $NET.$((10 + i))
"
done
cat >"$DIR/client/ssh_config" <<CFG
$hosts_block
Host dmtcp-h* $NET.*
    User $USER_NAME
    IdentityFile $DIR/client/id_ed25519
    IdentitiesOnly yes
    BatchMode yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    ConnectTimeout 5
    SendEnv HOME DMTCP_*
CFG
chown -R "$USER_NAME" "$DIR/client"
chmod 700 "$DIR/client"
chmod 600 "$DIR/client/id_ed25519" "$DIR/client/ssh_config"

ip link add dmtcpbr0 type bridge
ip addr add $NET.1/24 dev dmtcpbr0
ip link set dmtcpbr0 up
for i in $(seq 1 "$N"); do
  ns=dmtcp-h$i
  ip netns add "$ns"
  ip link add "dmtcp-v$i" type veth peer name eth0 netns "$ns"
  ip link set "dmtcp-v$i" master dmtcpbr0 up
  ip -n "$ns" addr add "$NET.$((10 + i))/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
done

/usr/sbin/sshd -t -f "$DIR/sshd_config"
for i in $(seq 1 "$N"); do
  # -D: no daemon fork, errors go to the log; down.sh finds sshd through the namespace. The
  # UTS namespace gives the host its name (what the runtime reports, and restart scripts use).
  ip netns exec "dmtcp-h$i" unshare --uts sh -c \
    'hostname "$1"; exec /usr/sbin/sshd -D -f "$2"' sh "dmtcp-h$i" "$DIR/sshd_config" \
    </dev/null >"$DIR/sshd-h$i.log" 2>&1 &
done

# Ready when every sshd accepts TCP connections.
for i in $(seq 1 "$N"); do
  for _ in $(seq 200); do
    if timeout 1 bash -c "exec 3<>/dev/tcp/$NET.$((10 + i))/22" 2>/dev/null; then continue 2; fi
    sleep 0.05
  done
  echo "up.sh: sshd on dmtcp-h$i did not come up: $(cat "$DIR/sshd-h$i.log")" >&2
  exit 1
done
echo "$N" >"$DIR/hosts"
