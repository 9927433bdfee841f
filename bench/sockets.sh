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
. "$(dirname "$0")/lib.sh"

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
    -h|--help) bench_help; exit 0 ;;
    *) echo "sockets.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

bench_tools
bench_workdir dmtcp-bench-sockets
bench_cc sock_many bench/programs/sock_many.c
ulimit -n 4096 2>/dev/null

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
  bench_coordinator "$d" --listen-host 127.0.0.1 -q --stale-timeout 600
  (cd "$d" && DMTCP_LOG=debug exec "$bin/dmtcp_launch" -j -p "$port" --ckptdir "$d" \
    "$work/sock_many" "$n" "$bytes" >out 2>err) &
  bench_pids+=("$!")
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
  bench_pids+=("$rpid")
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
