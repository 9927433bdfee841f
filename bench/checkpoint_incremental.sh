#!/usr/bin/env bash
# Incremental checkpoint benchmark: a program holding S of incompressible data changes 5 % of
# its pages between checkpoints (tests/programs/incr_array.c). In the same run it measures a
# full checkpoint (the default writer) and, with DMTCP_INCREMENTAL=1, the first (full) and the
# second (incremental) generation: time until the image is durable (dmtcp_command
# --bcheckpoint) and bytes on disk.
# Two layouts of the changed pages: "contiguous" (the first 5 % of the array: whole frames
# change) and "scatter" (every 20th page: every 1 MiB frame changes, the worst case).
# Each incremental run uses one dirty-tracking mode (DMTCP_DIRTY_TRACKING: uffd, the
# default, or off = hash every frame); the "source" column is what generation 2 actually used
# (from the runtime's debug log: uffd-wp, or hashed when the kernel cannot track). "rewrite ms"
# is the program's time to rewrite its hot pages in the tick before the checkpoint and in the
# first tick after it (the first write to a write-protected page takes a minor fault).
# It reports; it does not assert.
#
# Usage: bash bench/checkpoint_incremental.sh [--size 2G] [--layouts L] [--tracking T]
#                                             [--no-build] [--keep]
#   --size S     memory of the program (M/G suffix; default 2G)
#   --layouts L  comma-separated: contiguous, scatter (default both)
#   --tracking T comma-separated dirty-tracking modes: uffd, off (default uffd,off)
#   --no-build   use the tools already built (BENCH_BIN or $CARGO_TARGET_DIR/release)
#   --keep       keep the work directory
# Environment: BENCH_TMPDIR (work directory's parent, default /tmp), CARGO_TARGET_DIR.
set -uo pipefail

size=2G
layouts="contiguous scatter"
trackings="uffd off"
build=1
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --layouts) layouts=${2//,/ }; shift 2 ;;
    --tracking) trackings=${2//,/ }; shift 2 ;;
    --no-build) build=0; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "checkpoint_incremental.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${BENCH_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release}
die() { echo "checkpoint_incremental.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
mib=$(awk -v s="$size" 'BEGIN { n = s + 0; u = toupper(substr(s, length(s)));
  if (u == "G") n *= 1024; else if (u != "M") n = n / 1048576; printf "%d", n }')
[ "$mib" -ge 16 ] || die "--size $size is too small (at least 16M)"

if [ "$build" = 1 ]; then
  log "building the tools (cargo build --release)"
  (cd "$repo" && cargo build --release -q -p dmtcp-cli -p dmtcp-preload -p dmtcp-restorer) ||
    die "the build failed"
fi
for t in dmtcp_launch dmtcp_restart dmtcp_command dmtcp_coordinator libdmtcp.so; do
  [ -e "$bin/$t" ] || die "$bin/$t is missing (build first, or set BENCH_BIN)"
done
work=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/dmtcp-incr.XXXXXX") || die "no work directory"
cleanup() {
  [ -n "${coord_pid:-}" ] && kill "$coord_pid" 2>/dev/null
  [ -n "${prog_pid:-}" ] && kill -9 "$prog_pid" 2>/dev/null
  wait 2>/dev/null
  if [ "$keep" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
cc -O2 -o "$work/incr_array" "$repo/tests/programs/incr_array.c" || die "cannot compile"

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

start_coordinator() {
  rm -f "$work/port"
  "$bin/dmtcp_coordinator" --coord-port 0 --port-file "$work/port" >>"$work/coord.log" 2>&1 &
  coord_pid=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
  port=$(cat "$work/port") || die "no coordinator"
}
start_coordinator
cmd() { "$bin/dmtcp_command" --coord-port "$port" "$@"; }

# run NAME LAYOUT INCREMENTAL [TRACKING]: launches the program in its own directory and waits
# for its ticks.
run() {
  local dir="$work/$1"
  mkdir -p "$dir"
  (cd "$dir" && DMTCP_INCREMENTAL=$3 DMTCP_FULL_EVERY=0 DMTCP_DIRTY_TRACKING=${4:-uffd} \
    DMTCP_LOG=debug INCR_TIMING=1 \
    exec "$bin/dmtcp_launch" \
    --join-coordinator --coord-port "$port" --ckptdir "$dir" "$work/incr_array" "$mib" "$2" \
    >"$dir/out" 2>"$dir/err") &
  prog_pid=$!
  for _ in $(seq 600); do grep -q '^tick 2 ' "$dir/out" 2>/dev/null && return; sleep 0.1; done
  die "$1 did not start: $(cat "$dir/err")"
}
# last_rewrite DIR: the number and milliseconds of the newest "rewrite N MS" line.
last_rewrite() { awk '$1 == "rewrite" { n = $2; ms = $3 } END { print n + 0, ms + 0 }' "$1/out"; }
# rewrite_ms DIR N: the milliseconds of tick N's rewrite.
rewrite_ms() { awk -v n="$2" '$1 == "rewrite" && $2 == n { print $3 }' "$1/out"; }
# ckpt NAME: one blocking checkpoint; prints "seconds bytes rewrite-ms-before rewrite-ms-after"
# (the rewrite of the tick before the checkpoint, and the slower of the next two ticks': the
# first rewrite after the scan is one of them).
ckpt() {
  local dir="$work/$1" t0 t1 n0 ms0 a b
  sleep 0.3 # a few ticks: the hot pages change
  read -r n0 ms0 < <(last_rewrite "$dir")
  t0=$(now_ns)
  cmd --bcheckpoint >/dev/null || die "checkpoint of $1 failed"
  t1=$(now_ns)
  for _ in $(seq 600); do
    [ -n "$(rewrite_ms "$dir" $((n0 + 2)))" ] && break
    sleep 0.1
  done
  a=$(rewrite_ms "$dir" $((n0 + 1)))
  b=$(rewrite_ms "$dir" $((n0 + 2)))
  echo "$(secs "$t0" "$t1") $(stat -c %s "$dir"/ckpt_*.dmtcp) $ms0 $(awk -v a="$a" -v b="$b" \
    'BEGIN { print (a + 0 > b + 0) ? a + 0 : b + 0 }')"
}
# source NAME: what vouched for unchanged frames in the newest image (debug log).
source_of() {
  sed -n 's/.*incremental image (\([a-z-]*\)).*/\1/p' "$work/$1/err" | tail -1
}
stop() {
  cmd --quit >/dev/null 2>&1
  kill -9 "$prog_pid" 2>/dev/null
  kill "$coord_pid" 2>/dev/null
  wait 2>/dev/null
  prog_pid=""
  grep -h 'incremental image\|hashed ahead\|dirty tracking: scan' "$work/$1/err" >>"$work/phases" \
    2>/dev/null
  rm -rf "${work:?}/${1:?}" # images of 2 GiB add up
  start_coordinator
}

printf '\nincremental checkpoints, %s MiB of incompressible data, 5 %% of pages changed (%s)\n' \
  "$mib" "$(nproc) cores"
printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
fmt='%-11s %-26s %-8s %9s %12s %8s %8s %18s\n'
printf "$fmt" layout checkpoint source seconds bytes "time %" "bytes %" "rewrite ms bef/aft"
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }
for layout in $layouts; do
  log "$layout: full checkpoint (default writer)"
  run "full-$layout" "$layout" 0
  read -r ft fb fr0 fr1 < <(ckpt "full-$layout")
  stop "full-$layout"
  printf "$fmt" "$layout" "full (default writer)" - "$ft" "$fb" 100 100 "$fr0 / $fr1"
  for tracking in $trackings; do
    log "$layout: incremental generations 1 to 3 (tracking $tracking)"
    run "inc-$layout" "$layout" 1 "$tracking"
    read -r t1 b1 r10 r11 < <(ckpt "inc-$layout")
    read -r t2 b2 r20 r21 < <(ckpt "inc-$layout")
    s2=$(source_of "inc-$layout")
    read -r t3 b3 r30 r31 < <(ckpt "inc-$layout")
    s3=$(source_of "inc-$layout")
    stop "inc-$layout"
    printf "$fmt" "$layout" "incremental gen 1 (full)" "$tracking" "$t1" "$b1" \
      "$(pct "$t1" "$ft")" "$(pct "$b1" "$fb")" "$r10 / $r11"
    printf "$fmt" "$layout" "incremental gen 2" "$s2" "$t2" "$b2" \
      "$(pct "$t2" "$ft")" "$(pct "$b2" "$fb")" "$r20 / $r21"
    printf "$fmt" "$layout" "incremental gen 3" "$s3" "$t3" "$b3" \
      "$(pct "$t3" "$ft")" "$(pct "$b3" "$fb")" "$r30 / $r31"
  done
done
printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
if [ -s "$work/phases" ]; then
  echo "runtime debug log (dirty scans, hashing, what each incremental image stored):"
  sed 's/^/  /' "$work/phases"
fi
