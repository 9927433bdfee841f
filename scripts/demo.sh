#!/usr/bin/env bash
# The main job, end to end, on the embedded default coordinator:
#   launch a counter under dmtcp_launch, checkpoint it, kill it, restart it, watch it carry on.
# Usage: bash scripts/demo.sh          (builds the tools if needed; installs nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf '\ndemo: %s\n' "$*" >&2; exit 1; }

step "building the tools (cargo build --release)"
build_log=$(mktemp /tmp/dmtcp-demo-build.XXXXXX)
cargo build --release --workspace >"$build_log" 2>&1 || { cat "$build_log"; fail "the build failed"; }
rm -f "$build_log"
bin=${CARGO_TARGET_DIR:-$repo/target}/release
for t in dmtcp_launch dmtcp_command dmtcp_coordinator libdmtcp.so; do
  [ -e "$bin/$t" ] || fail "$bin/$t is missing after the build"
done
export PATH="$bin:$PATH"

work=$(mktemp -d /tmp/dmtcp-demo.XXXXXX)
launch_pid=
restart_pid=
cleanup() {
  dmtcp_command --quit >/dev/null 2>&1 || true
  for p in $launch_pid $restart_pid; do kill "$p" 2>/dev/null || true; done
  echo "(demo files are in $work)"
}
trap cleanup EXIT
cd "$work"
cc -O1 -o counter "$repo/tests/programs/counter.c"

# The embedded default: dmtcp_launch starts a coordinator itself (port 7779 if free). If the
# default port is taken, ask for a free one and hand it to the other tools through
# DMTCP_COORD_PORT, as a job script would.
launch_opts=(--port-file "$work/port")
if (exec 3<>/dev/tcp/127.0.0.1/7779) 2>/dev/null; then
  echo "(port 7779 is busy here; using a free port)"
  launch_opts+=(--coord-port 0)
fi

step "dmtcp_launch ./counter 300    (counts every 0.3 s)"
dmtcp_launch "${launch_opts[@]}" ./counter 300 >counter.out 2>launch.err &
launch_pid=$!
for _ in $(seq 100); do [ -s port ] && [ "$(wc -l <counter.out)" -ge 5 ] && break; sleep 0.1; done
[ -s port ] || fail "dmtcp_launch did not start: $(cat launch.err)"
export DMTCP_COORD_PORT=$(cat port)
tail -n 3 counter.out

step "dmtcp_command --status"
dmtcp_command --status

step "dmtcp_command --bcheckpoint    (blocks until every image is written)"
dmtcp_command --bcheckpoint || fail "the checkpoint failed (see above)"
at_ckpt=$(tail -n 1 counter.out | awk '{print $2}')
echo "checkpoint taken around count $at_ckpt"
ls -l "$work" | grep -Ev ' (counter|counter.out|launch.err|port)$' || true

step "dmtcp_command --kill    (the computation ends; its images stay)"
dmtcp_command --kill
wait "$launch_pid" 2>/dev/null || true
launch_pid=
last=$(tail -n 1 counter.out | awk '{print $2}')
echo "the counter was at $last when it was killed"

step "restart from the checkpoint"
command -v dmtcp_restart >/dev/null ||
  fail "dmtcp_restart is not built yet, so the restart step cannot run (checkpoint files are in $work)"
[ -x dmtcp_restart_script.sh ] ||
  fail "no dmtcp_restart_script.sh was written in $work after the checkpoint"
./dmtcp_restart_script.sh >restarted.out 2>restart.err &
restart_pid=$!
for _ in $(seq 100); do [ "$(wc -l <restarted.out)" -ge 5 ] && break; sleep 0.1; done
[ -s restarted.out ] || fail "the restarted counter printed nothing: $(cat restart.err)"
head -n 3 restarted.out
first=$(head -n 1 restarted.out | awk '{print $2}')

step "result"
if [ "$first" -gt 1 ] && [ "$first" -le $((last + 1)) ]; then
  echo "the restarted counter carried on at count $first (checkpoint near $at_ckpt, killed at $last)"
else
  fail "the restarted counter began at $first, not where the checkpoint left it (near $at_ckpt)"
fi
