#!/usr/bin/env bash
# down.sh N DIR: removes what up.sh made (every dmtcp-h* namespace, also of an earlier run
# with more hosts than N). Every process still inside such a namespace was started there by
# the tests (sshd, sessions, checkpointed programs), so each is killed by pid before the
# namespace goes (no pid files: a stale one could name a stranger). Idempotent; never fails
# on something already gone.
: "${1:?usage: down.sh N DIR}"
DIR=${2:?usage: down.sh N DIR}
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^dmtcp-h[0-9]+$/ { print $1 }'); do
  for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  # Deleting the namespace deletes its end of the veth pair, and with it the other end.
  ip netns del "$ns" 2>/dev/null
done
# The kernel dismantles a deleted namespace asynchronously: remove the veths left on our side
# now, so that up.sh can create them again at once.
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
  grep '^dmtcp-v[0-9]*$'); do
  ip link del "$link" 2>/dev/null
done
ip link del dmtcpbr0 2>/dev/null
rm -rf "$DIR"
true
