#!/usr/bin/env bash
# Socket benchmark: checkpoint and restart of two processes joined by N TCP connections with
# data in flight both ways (bench/programs/sock_many.c), next to baselines measured in the
# same run: opening the N connections without the tool, and the same checkpoint and restart
# of the same program with no connection. It reports; it does not assert.
#
# Usage: bash bench/sockets.sh [--conns 500] [--bytes 4096] [--no-build] [--keep]
#   --conns N    connections between the two processes (default 500)
#   --bytes B    bytes each side leaves unread in every connection (default 4096)
#   --no-build   use the tools already built (BENCH_BIN or $CARGO_TARGET_DIR/release)
#   --keep       keep the work directory (images, logs)
# The socket layer's own phases come from its debug log (DMTCP_LOG=debug): drain at
# checkpoint, echo at resume, reconnect and refill at restart.
set -uo pipefail

conns=500
bytes=4096
build=1
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --conns) conns=$2; shift 2 ;;
    --bytes) bytes=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "sockets.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${BENCH_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release}
die() { echo "sockets.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
now_ns() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) / 1e6 }'; }

if [ "$build" = 1 ]; then
  log "building the tools (cargo build --release)"
  (cd "$repo" && cargo build --release -q -p dmtcp-cli -p dmtcp-preload -p dmtcp-restorer) ||
    die "the build failed"
fi
for t in dmtcp_launch dmtcp_restart dmtcp_command dmtcp_coordinator libdmtcp.so; do
  [ -e "$bin/$t" ] || die "$bin/$t is missing (build first, or set BENCH_BIN)"
done
command -v cc >/dev/null || die "cc is needed for the benchmark program"

work=$(mktemp -d /tmp/dmtcp-bench-sockets.XXXXXX) || die "cannot create a work directory"
pids=()
ports=()
cleanup() {
  for p in "${ports[@]}"; do "$bin/dmtcp_command" -p "$p" --quit >/dev/null 2>&1; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ "$keep" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
cc -O2 -o "$work/sock_many" "$repo/bench/programs/sock_many.c" || die "cannot build sock_many"
ulimit -n 4096 2>/dev/null

wait_line() { # FILE REGEX [SECONDS] -> the last matching line
  local i
  for ((i = 0; i < ${3:-120} * 20; i++)); do
    if [ -f "$1" ] && grep -Eq "$2" "$1"; then grep -E "$2" "$1" | tail -n 1; return 0; fi
    sleep 0.05
  done
  return 1
}
count() { grep -Ec "$2" "$1" 2>/dev/null || true; }
# The milliseconds of the debug lines "sockets: ..." matching REGEX, summed field FIELD
# ("drained ... in X ms" -> the number before the first "ms").
phase_ms() { # FILE REGEX -> the largest value over the processes (they run in parallel)
  grep -E "$2" "$1" 2>/dev/null | sed -E 's/.* in ([0-9.]+) ms.*/\1/' | sort -n | tail -n 1
}
phase_ms2() { # reconnect, refill of the restart line
  grep -E "reconnected in" "$1" 2>/dev/null |
    sed -E "s/.*reconnected in ([0-9.]+) ms, refilled in ([0-9.]+) ms.*/\\$2/" | sort -n | tail -n 1
}

# run N: launch, checkpoint-and-resume, checkpoint-and-kill, restart, verify. Sets r_* vars.
run() {
  local n=$1 d=$work/n$1 t0 t1 rpid
  mkdir -p "$d"
  "$bin/dmtcp_coordinator" -p 0 --port-file "$d/port" --listen-host 127.0.0.1 -q \
    --stale-timeout 600 >"$d/coord.log" 2>&1 &
  pids+=("$!")
  wait_line "$d/port" '^[0-9]+' 20 >/dev/null || die "the coordinator did not start"
  local port
  port=$(cat "$d/port"); ports+=("$port")
  (cd "$d" && DMTCP_LOG=debug exec "$bin/dmtcp_launch" -j -p "$port" --ckptdir "$d" \
    "$work/sock_many" "$n" "$bytes" >out 2>err) &
  pids+=("$!")
  wait_line "$d/out" '^ready' 60 >/dev/null && wait_line "$d/out" '^child ready' 60 >/dev/null ||
    die "n=$n: the program did not start: $(tail -n 3 "$d/err")"
  t0=$(now_ns)
  "$bin/dmtcp_command" -p "$port" --bcheckpoint >/dev/null 2>&1 || die "n=$n: checkpoint failed"
  t1=$(now_ns)
  r_resume_total=$(ms "$t0" "$t1")
  r_drain=$(phase_ms "$d/err" 'sockets: .* drained')
  r_echo=$(phase_ms "$d/err" 'refilled at resume')
  t0=$(now_ns)
  "$bin/dmtcp_command" -p "$port" --kcheckpoint >/dev/null 2>&1 || die "n=$n: checkpoint failed"
  r_kill_total=$(ms "$t0" "$(now_ns)")
  sleep 0.5
  local imgs
  imgs=$(ls "$d"/ckpt_sock_many_*.dmtcp)
  t0=$(now_ns)
  # shellcheck disable=SC2086
  (cd "$d" && DMTCP_LOG=debug exec "$bin/dmtcp_restart" -j -p "$port" $imgs >rout 2>rerr) &
  rpid=$!
  pids+=("$rpid")
  local i
  for ((i = 0; i < 1200; i++)); do
    [ "$(count "$d/rerr" 'reconnected in')" -ge 2 ] && break
    sleep 0.05
  done
  r_restart_total=$(ms "$t0" "$(now_ns)")
  r_reconnect=$(phase_ms2 "$d/rerr" 1)
  r_refill=$(phase_ms2 "$d/rerr" 2)
  touch "$d/go"
  wait_line "$d/rout" '^done' 60 >/dev/null
  r_verified=$(grep -Ec '^(child )?verified' "$d/rout")
  wait "$rpid" 2>/dev/null
  "$bin/dmtcp_command" -p "$port" --quit >/dev/null 2>&1
}

log "baseline: opening $conns connections without the tool"
base=$(cd "$work" && ./sock_many "$conns" "$bytes" open-only | sed -E 's/.* in ([0-9.]+) ms/\1/')
log "the program with no connection"
run 0
z_resume=$r_resume_total z_kill=$r_kill_total z_restart=$r_restart_total
log "the program with $conns connections"
run "$conns"

cat <<EOF

Sockets: 2 processes, $conns TCP connections over loopback, $bytes bytes unread each way in each
| what | time |
| --- | --- |
| open $conns connections without the tool (baseline) | ${base} ms |
| checkpoint + resume, no connection (baseline) | ${z_resume} ms |
| checkpoint + resume, $conns connections | ${r_resume_total} ms |
|   of which drain ($((conns * 2)) ends, $((conns * 2 * bytes)) bytes) | ${r_drain:-?} ms |
|   of which echo back at resume | ${r_echo:-?} ms |
| checkpoint + kill, no connection / $conns connections | ${z_kill} ms / ${r_kill_total} ms |
| restart until the sockets are back, no connection (baseline) | ${z_restart} ms |
| restart until the sockets are back, $conns connections | ${r_restart_total} ms |
|   of which reconnect $conns connections | ${r_reconnect:-?} ms |
|   of which refill | ${r_refill:-?} ms |
| processes that verified every byte after the restart | ${r_verified}/2 |
EOF
