#!/usr/bin/env bash
# down.sh N DIR: removes what up.sh made. Every process still inside a host's network
# namespace was started there by the tests (sshd, sessions, checkpointed programs), so each is
# killed by pid before the namespace goes. Idempotent; never fails on something already gone.
N=${1:?usage: down.sh N DIR}
DIR=${2:?usage: down.sh N DIR}
for i in $(seq 1 "$N"); do
  ns=dmtcp-h$i
  if ip netns list | grep -qw "$ns"; then
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  fi
  [ -s "$DIR/sshd-h$i.pid" ] && kill -9 "$(cat "$DIR/sshd-h$i.pid")" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  ip link del "dmtcp-v$i" 2>/dev/null
done
ip link del dmtcpbr0 2>/dev/null
rm -rf "$DIR"
true
