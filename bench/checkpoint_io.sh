#!/usr/bin/env bash
# Checkpoint I/O benchmark: checkpoint, pause, restart, launch and wrapper costs of this tool,
# each next to a baseline measured in the same run on the same disk (cp/dd with fsync, reading
# the bytes back, memcpy, zstd). It reports; it does not assert: the exit status is 0 whenever
# the measurements ran, whether or not the targets were met.
#
# Usage: bash bench/checkpoint_io.sh [--size 2G] [--kinds heap,random,sparse,python] [--perf]
#                                    [--no-build] [--keep] [--runs N] [--ckpts N]
#   --size S     memory of the checkpointed program (K/M/G suffix; default 2G; 256M is quick)
#   --kinds L    which data to checkpoint: heap (heap-like, ~3.5x with zstd -1), random
#                (incompressible), sparse (2*S reserved, 5 % touched), python (a python3
#                process holding dicts, lists and strings: a real program's heap); default all
#   --perf       also profile the in-process checkpoint and the cold restart with perf
#                and print the top symbols
#   --no-build   use the tools already built (BENCH_BIN or $CARGO_TARGET_DIR/release)
#   --keep       keep the work directory (images, raw files, logs)
#   --runs N     repetitions of the launch and wrapper loops (best is kept; default 3)
#   --ckpts N    checkpoints per program, and cp runs (the median is reported; default 3)
# Environment: BENCH_TMPDIR (work directory's parent; default /tmp when it is on the repo's
# disk, else the target directory), CARGO_TARGET_DIR.
# As root the page cache is dropped before every cold read (echo 3 > drop_caches); otherwise
# cold reads use O_DIRECT and only warm restarts are measured (the report header says which).
set -uo pipefail

size=2G
kinds="heap random sparse python"
build=1
do_perf=0
keep=0
runs=3
ck_reps=3
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --size=*) size=${1#--size=}; shift ;;
    --kinds) kinds=${2//,/ }; shift 2 ;;
    --perf) do_perf=1; shift ;;
    --no-build) build=0; shift ;;
    --keep) keep=1; shift ;;
    --runs) runs=$2; shift 2 ;;
    --ckpts) ck_reps=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "checkpoint_io.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${BENCH_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release}
die() { echo "checkpoint_io.sh: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

bytes_of() { # 256M -> bytes (binary units, page-aligned as memload does)
  awk -v s="$1" 'BEGIN { n = s + 0; u = toupper(substr(s, length(s)));
    if (u == "K") n *= 1024; else if (u == "M") n *= 1048576; else if (u == "G") n *= 1073741824;
    printf "%.0f", int(n / 4096) * 4096 }'
}
size_bytes=$(bytes_of "$size")
[ "$size_bytes" -ge 1048576 ] || die "--size $size is too small (at least 1M)"

if [ "$build" = 1 ]; then
  log "building the tools (cargo build --release)"
  (cd "$repo" && cargo build --release -q -p dmtcp-cli -p dmtcp-preload -p dmtcp-restorer) ||
    die "the build failed"
fi
for t in dmtcp_launch dmtcp_restart dmtcp_command dmtcp_coordinator dmtcp_restorer libdmtcp.so; do
  [ -e "$bin/$t" ] || die "$bin/$t is missing (build first, or set BENCH_BIN)"
done
command -v cc >/dev/null || die "cc is needed for the test programs"

# The work directory must be on the repository's disk: the baselines and the images must share
# one device, or the ratios compare two disks.
if [ -n "${BENCH_TMPDIR:-}" ]; then
  parent=$BENCH_TMPDIR
elif [ "$(stat -c %d /tmp)" = "$(stat -c %d "$repo")" ]; then
  parent=/tmp
else
  parent=${CARGO_TARGET_DIR:-$repo/target}
fi
mkdir -p "$parent"
work=$(mktemp -d "$parent/dmtcp-bench.XXXXXX") || die "cannot create a work directory in $parent"
need=$((size_bytes * 5 + (1 << 30)))
avail=$(($(stat -f -c '%a*%S' "$work")))
[ "$avail" -ge "$need" ] ||
  die "$work has $((avail >> 20)) MiB free; --size $size needs about $((need >> 20)) MiB"

started_pids=()
ports=()
cleanup() {
  for p in "${ports[@]}"; do "$bin/dmtcp_command" -p "$p" --quit >/dev/null 2>&1; done
  for p in "${started_pids[@]}"; do kill "$p" 2>/dev/null; done
  if [ "$keep" = 1 ]; then echo "(work files kept in $work)" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cc -O2 -o "$work/memload" "$repo/bench/programs/memload.c" || die "cannot compile memload.c"
cc -O2 -pthread -o "$work/syscall_loop" "$repo/bench/programs/syscall_loop.c" ||
  die "cannot compile syscall_loop.c"

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
signed() { awk -v v="$1" 'BEGIN { printf "%s%s", (v >= 0 ? "+" : ""), v }'; }

can_drop=0
[ -w /proc/sys/vm/drop_caches ] && can_drop=1
drop_caches() {
  [ "$can_drop" = 1 ] || return 0
  sync
  echo 3 >/proc/sys/vm/drop_caches
}
# Seconds to read FILE with an empty page cache (or with O_DIRECT when the cache cannot be
# dropped).
read_cold() {
  local t0 t1
  if [ "$can_drop" = 1 ]; then
    drop_caches
    t0=$(now_ns); dd if="$1" of=/dev/null bs=4M status=none; t1=$(now_ns)
  else
    t0=$(now_ns); dd if="$1" of=/dev/null bs=4M iflag=direct status=none; t1=$(now_ns)
  fi
  secs "$t0" "$t1"
}
read_warm() {
  cat "$1" >/dev/null
  local t0 t1
  t0=$(now_ns); cat "$1" >/dev/null; t1=$(now_ns)
  secs "$t0" "$t1"
}

# Waits until FILE has a line matching REGEX; prints the last such line.
wait_line() {
  local file=$1 re=$2 timeout=${3:-300} i
  for ((i = 0; i < timeout * 20; i++)); do
    if [ -f "$file" ] && grep -Eq "$re" "$file"; then grep -E "$re" "$file" | tail -n 1; return 0; fi
    sleep 0.05
  done
  return 1
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
count_lines() { grep -Ec "$2" "$1" 2>/dev/null || true; }

# --- results -------------------------------------------------------------------------------
rows=()
# row METRIC THIS BASELINE_LABEL BASELINE RATIO TARGET VERDICT
row() { rows+=("$1|$2|$3|$4|$5|$6|$7"); }
verdict() { # verdict VALUE OP LIMIT -> yes/NO
  awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
    ok = (op == "<=") ? v <= l : (op == ">=") ? v >= l : (op == "<") ? v < l : v > l;
    print ok ? "yes" : "NO" }'
}

mib() { calc "$1 / 1048576" 1; }
gbps() { calc "$1 / 1e9 / $2" 2; }

# --- baselines -----------------------------------------------------------------------------
log "work directory $work ($(df -h --output=source "$work" | tail -n 1)), size $size"
log "baselines: memcpy, write + fsync, cp + fsync, read back, zstd -1"
memcpy_out=$("$work/memload" memcpy "$size")
memcpy_s=$(awk '/^memcpy_s/ {print $2}' <<<"$memcpy_out")
memcpy_fresh_s=$(awk '/^memcpy_fresh_s/ {print $2}' <<<"$memcpy_out")
raw=$work/heap.raw
dump_out=$("$work/memload" dump "$size" heap "$raw") || die "memload dump failed"
dump_s=$(awk '/^dump_s/ {print $2}' <<<"$dump_out")
cat "$raw" >/dev/null # cp's source is hot, as a checkpoint's source (memory) is
cp_times=()
for ((r = 1; r <= ck_reps; r++)); do
  t0=$(now_ns); cp "$raw" "$work/copy.raw" && sync "$work/copy.raw"; t1=$(now_ns)
  cp_times+=("$(secs "$t0" "$t1")")
  rm -f "$work/copy.raw"; sync
done
cp_s=$(printf '%s\n' "${cp_times[@]}" | median)
t0=$(now_ns); dd if="$raw" of="$work/copy.raw" bs=4M conv=fsync status=none; t1=$(now_ns)
dd_s=$(secs "$t0" "$t1")
rm -f "$work/copy.raw"
raw_cold_s=$(read_cold "$raw")
raw_warm_s=$(read_warm "$raw")
t0=$(now_ns); zstd -1 -T1 -q -f "$raw" -o "$work/heap.zst"; t1=$(now_ns)
zstd1_s=$(secs "$t0" "$t1")
zstd_bytes=$(stat -c %s "$work/heap.zst")
t0=$(now_ns); zstd -1 -T2 -q -f "$raw" -o "$work/heap.zst"; t1=$(now_ns)
zstd2_s=$(secs "$t0" "$t1")
t0=$(now_ns); zstd -d -q -c "$work/heap.zst" >/dev/null; t1=$(now_ns)
unzstd_s=$(secs "$t0" "$t1")
# Codec choices on a sample of the same data (one thread each, to memory): what a faster
# level or codec would give the checkpoint writer.
sample=$work/sample.raw
head -c $((size_bytes < (512 << 20) ? size_bytes : (512 << 20))) "$raw" >"$sample"
sample_bytes=$(stat -c %s "$sample")
codecs=()
for c in "zstd -1" "zstd --fast=1" "zstd --fast=2" "zstd --fast=4" "lz4 -1"; do
  command -v "${c%% *}" >/dev/null || continue
  t0=$(now_ns); $c -q -c "$sample" >"$sample.c"; t1=$(now_ns)
  s=$(secs "$t0" "$t1")
  t0=$(now_ns); ${c%% *} -d -q -c "$sample.c" >/dev/null; t1=$(now_ns)
  codecs+=("$c|$(gbps "$sample_bytes" "$s")|$(calc "$sample_bytes / $(stat -c %s "$sample.c")")|$(gbps "$sample_bytes" "$(secs "$t0" "$t1")")")
done
rm -f "$work/heap.zst" "$raw" "$sample" "$sample.c"

# phases_of FILE: "suspend 1.2 drain 40 write 2100 sync 80 resume 0.1 (ms)" from a --json reply.
phases_of() {
  sed -n 's/.*"phases":{\([^}]*\)}.*/\1/p' "$1" | tr ',' '\n' |
    awk -F: '$1 ~ /_ms"$/ && $1 !~ /total/ { k = $1; gsub(/"|_ms/, "", k); printf "%s %s ", k, $2 }
      END { print "(ms)" }'
}

# --- checkpoint and restart of one program -------------------------------------------------
# checkpoint KIND MODE: launches memload under dmtcp_launch, checkpoints it once, records the
# time to a durable image, the program's longest pause and the image; kills it. MODE "forked"
# is the default path; "inproc" sets DMTCP_FORKED_CHECKPOINT=0 (the image is written inside
# the frozen window); "raw" is forked without compression (DMTCP_GZIP=0); "serial" compresses
# in the writer alone (DMTCP_CKPT_THREADS=1, the writer before parallel compression);
# "adaptive" stores frames raw while the compressors are behind the disk (DMTCP_GZIP=adaptive);
# "level1" uses zstd level 1 (DMTCP_ZSTD_LEVEL=1, the default before -1); "nowb" leaves the
# image dirty in the page cache until the final fsync (DMTCP_CKPT_WRITEBACK=0).
# Sets ck_* variables (ck_phases: the last checkpoint's phases from --json).
checkpoint() {
  local kind=$1 mode=$2 d=$work/$1-$2 lpid port pid n t0 t1
  mkdir -p "$d/ck"
  ck_ok=0
  local fork_env=1 gzip_env=1 threads_env=${DMTCP_CKPT_THREADS:-}
  local level_env=${DMTCP_ZSTD_LEVEL:-} wb_env=${DMTCP_CKPT_WRITEBACK:-}
  [ "$mode" = level1 ] && level_env=1
  [ "$mode" = nowb ] && wb_env=0
  [ "$mode" = inproc ] && fork_env=0
  [ "$mode" = raw ] && gzip_env=0
  [ "$mode" = adaptive ] && gzip_env=adaptive
  [ "$mode" = serial ] && threads_env=1
  (cd "$d" && DMTCP_FORKED_CHECKPOINT=$fork_env DMTCP_GZIP=$gzip_env \
    DMTCP_CKPT_THREADS=$threads_env DMTCP_ZSTD_LEVEL=$level_env DMTCP_CKPT_WRITEBACK=$wb_env \
    exec "$bin/dmtcp_launch" \
    --new-coordinator \
    -p 0 --port-file port --ckptdir ck "$work/memload" run "$size" "$kind" >out 2>err) &
  lpid=$!
  started_pids+=("$lpid")
  if ! wait_line "$d/out" '^ready' 600 >/dev/null; then
    log "$kind/$mode: the program did not start: $(tail -n 3 "$d/err")"
    return 1
  fi
  port=$(cat "$d/port"); ports+=("$port")
  pid=$(awk '/^pid / {print $2}' "$d/out")
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != memload ]; then
    # The program's own pid is not ours to signal (a pid namespace): measure nothing.
    log "$kind/$mode: pid $pid seen by the program is not its pid here"
    "$bin/dmtcp_command" -p "$port" --quit >/dev/null 2>&1
    wait "$lpid" 2>/dev/null
    return 1
  fi
  ck_sum=$(awk '/^checksum / {print $2; exit}' "$d/out")
  ck_rss=$(awk '/^VmRSS/ {print $2 * 1024}' "/proc/$pid/status")
  sleep 0.3
  kill -USR1 "$pid"; wait_line "$d/out" '^maxgap' 10 >/dev/null
  local times=() pauses=() noises=() r perf_pid=""
  for ((r = 1; r <= ck_reps; r++)); do
    n=$(count_lines "$d/out" '^maxgap')
    perf_pid=""
    if [ -n "${ck_perf:-}" ] && [ "$r" = 1 ]; then
      # The program's threads and the children they create (a forked writer) from now on.
      perf record -q -g -p "$pid" -o "$ck_perf" >/dev/null 2>&1 &
      perf_pid=$!
      started_pids+=("$perf_pid")
      sleep 0.5
    fi
    t0=$(now_ns)
    if ! "$bin/dmtcp_command" -p "$port" --bcheckpoint --json >"$d/command.out" 2>&1; then
      log "$kind/$mode: the checkpoint failed: $(tail -n 3 "$d/command.out") $(tail -n 3 "$d/err")"
      "$bin/dmtcp_command" -p "$port" --quit >/dev/null 2>&1
      wait "$lpid" 2>/dev/null
      return 1
    fi
    t1=$(now_ns)
    ck_phases=$(phases_of "$d/command.out")
    if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null; fi
    kill -USR1 "$pid"
    for _ in $(seq 200); do [ "$(count_lines "$d/out" '^maxgap')" -gt "$n" ] && break; sleep 0.05; done
    pauses+=("$(grep '^maxgap' "$d/out" | tail -n 1 | awk '{print $2}')")
    times+=("$(secs "$t0" "$t1")")
    # The same window without a checkpoint: how long this machine stalls the loop anyway.
    n=$(count_lines "$d/out" '^maxgap')
    sleep "${times[-1]}"
    kill -USR1 "$pid"
    for _ in $(seq 200); do [ "$(count_lines "$d/out" '^maxgap')" -gt "$n" ] && break; sleep 0.05; done
    noises+=("$(grep '^maxgap' "$d/out" | tail -n 1 | awk '{print $2}')")
  done
  ck_s=$(printf '%s\n' "${times[@]}" | median)
  ck_s_range=$(printf '%s\n' "${times[@]}" | sort -n | sed -n '1p;$p' | paste -sd-)
  ck_pause=$(printf '%s\n' "${pauses[@]}" | median)
  ck_pause_max=$(printf '%s\n' "${pauses[@]}" | sort -n | tail -n 1)
  ck_noise=$(printf '%s\n' "${noises[@]}" | median)
  ck_image=$(ls "$d"/ck/*.dmtcp 2>/dev/null | head -n 1)
  [ -n "$ck_image" ] || { log "$kind/$mode: no image in $d/ck"; return 1; }
  ck_bytes=$(stat -c %s "$ck_image")
  "$bin/dmtcp_command" -p "$port" --quit >/dev/null 2>&1
  wait "$lpid" 2>/dev/null
  ck_ok=1
  log "$kind/$mode: checkpoint ${ck_s}s ($ck_s_range), pause $(calc "$ck_pause * 1000" 1) ms" \
    "(max $(calc "$ck_pause_max * 1000" 1)), image $(mib "$ck_bytes") MiB; last: $ck_phases"
}

# restart IMAGE SUM TEMP [PERFDATA LABEL]: restarts the image (TEMP cold: page cache dropped first),
# waits for the program's first heartbeat after the restore and checks its data checksum.
# Sets rs_s (seconds from exec of dmtcp_restart to the first heartbeat) and rs_check.
restart() {
  local image=$1 sum=$2 temp=$3 perfdata=${4:-} d rpid port t0 line end i
  d=$(dirname "$(dirname "$image")")/restart-${5:-$temp}
  mkdir -p "$d"
  rs_s=""; rs_check="?"; rs_resident_s=""
  # The restored program sees a gap since its checkpoint; over 1 s it checksums its memory.
  sleep 1.1
  [ "$temp" = cold ] && drop_caches
  [ "$temp" = warm ] && cat "$image" >/dev/null
  # rs_extra: more options (--lazy); rs_env: environment (the pager logs "all memory loaded"
  # at level info).
  local -a cmd=(env "${rs_env[@]}" "$bin/dmtcp_restart" "${rs_extra[@]}" --new-coordinator
    -p 0 --port-file "$d/port" "$image")
  [ -n "$perfdata" ] && cmd=(perf record -q -g -o "$perfdata" -- "${cmd[@]}")
  t0=$(now_ns)
  (cd "$d" && exec "${cmd[@]}" >out 2>err) &
  rpid=$!
  started_pids+=("$rpid")
  # The first gap line whose end is after t0 is the first instruction after the restore
  # (its wall-clock end time; the restored program may write to its old stdout file).
  line=""
  for ((i = 0; i < 6000; i++)); do
    line=$(cat "$d/out" "$(dirname "$d")/out" 2>/dev/null |
      awk -v t0="$t0" '$1 == "gap" && $6 + 0 > t0 + 0 {print; exit}')
    [ -n "$line" ] && break
    if ! kill -0 "$rpid" 2>/dev/null; then break; fi
    sleep 0.05
  done
  if [ -z "$line" ]; then
    log "restart of $image ($temp) failed: $(tail -n 3 "$d/err")"
    [ -s "$d/port" ] && "$bin/dmtcp_command" -p "$(cat "$d/port")" --quit >/dev/null 2>&1
    kill "$rpid" 2>/dev/null; wait "$rpid" 2>/dev/null
    return 1
  fi
  # "gap SECONDS start_ns START end_ns END pid PID"
  end=$(awk '{print $6}' <<<"$line")
  rs_s=$(secs "$t0" "$end")
  if [ "${#rs_extra[@]}" -gt 0 ]; then
    # Lazy restart: fully resident once the pager reports it (polled every 10 ms).
    for ((i = 0; i < 6000; i++)); do
      grep -q "all memory loaded" "$d/err" 2>/dev/null && { rs_resident_s=$(secs "$t0" "$(now_ns)"); break; }
      sleep 0.01
    done
  fi
  port=$(cat "$d/port"); ports+=("$port")
  # The program checksums its memory after a gap over a second and prints it with the gap's
  # end time (signals cannot reach it when the restart put it in a pid namespace).
  local got=""
  for ((i = 0; i < 1200; i++)); do
    got=$(cat "$d/out" "$(dirname "$d")/out" 2>/dev/null |
      awk -v e="$end" '$1 == "gap_checksum" && $4 == e {print $2; exit}')
    [ -n "$got" ] && break
    sleep 0.05
  done
  if [ -z "$got" ]; then
    rs_check="NOT CHECKED (no checksum after the restart)"
  elif [ "$got" = "$sum" ]; then
    rs_check=same
  else
    rs_check="DIFFERS ($got vs $sum)"
  fi
  "$bin/dmtcp_command" -p "$port" --quit >/dev/null 2>&1
  wait "$rpid" 2>/dev/null
  log "restart ($temp) ${rs_s}s, memory $rs_check"
}

# python_heap: a real program's heap. A python3 process fills about SIZE of memory with
# dicts, lists, strings and floats, then idles; it is checkpointed with each storage mode and
# compared with cp and zstd of its own uncompressed image (the same bytes the writer saves).
python_heap() {
  command -v python3 >/dev/null || { log "python: no python3, skipped"; return 0; }
  local mode d port t0 t1 times img raw_img
  for mode in raw default serial adaptive level1; do
    d=$work/python-$mode
    mkdir -p "$d/ck"
    local gz=1 th=${DMTCP_CKPT_THREADS:-} lv=${DMTCP_ZSTD_LEVEL:-}
    [ "$mode" = level1 ] && lv=1
    [ "$mode" = raw ] && gz=0
    [ "$mode" = adaptive ] && gz=adaptive
    [ "$mode" = serial ] && th=1
    (cd "$d" && DMTCP_GZIP=$gz DMTCP_CKPT_THREADS=$th DMTCP_ZSTD_LEVEL=$lv \
      exec "$bin/dmtcp_launch" --new-coordinator \
      -p 0 --port-file port --ckptdir ck python3 -c '
import os, random, sys, time
want = int(sys.argv[1]); rnd = random.Random(7); words = ["alpha", "beta", "node", "edge",
    "weight", "value", "key", "index", "count", "name", "parent", "child", "mesh", "flux"]
keep = []
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
while rss() < want:
    for i in range(20000):
        n = len(keep)
        keep.append({"id": n, "name": rnd.choice(words) + str(n % 1000), "score": n * 0.25,
                     "tags": [rnd.choice(words) for _ in range(3)], "parent": n // 2,
                     "pos": (rnd.random(), rnd.random()), "label": "item-%08d" % n})
print("ready", len(keep), rss(), flush=True)
while True:
    time.sleep(1)
' "$size_bytes" >out 2>err) &
    started_pids+=("$!")
    if ! wait_line "$d/out" '^ready' 900 >/dev/null; then
      log "python/$mode: did not start: $(tail -n 3 "$d/err")"; return 0
    fi
    port=$(cat "$d/port"); ports+=("$port")
    times=()
    for ((r = 1; r <= ck_reps; r++)); do
      t0=$(now_ns)
      "$bin/dmtcp_command" -p "$port" --bcheckpoint --json >"$d/command.out" 2>&1 ||
        { log "python/$mode: checkpoint failed: $(cat "$d/command.out")"; break; }
      t1=$(now_ns)
      times+=("$(secs "$t0" "$t1")")
    done
    "$bin/dmtcp_command" -p "$port" --quit >/dev/null 2>&1
    img=$(ls "$d"/ck/*.dmtcp 2>/dev/null | head -n 1)
    [ -n "$img" ] && [ "${#times[@]}" -gt 0 ] || { log "python/$mode: no image"; return 0; }
    ck_s=$(printf '%s\n' "${times[@]}" | median)
    ck_s_range=$(printf '%s\n' "${times[@]}" | sort -n | sed -n '1p;$p' | paste -sd-)
    local bytes; bytes=$(stat -c %s "$img")
    log "python/$mode: checkpoint ${ck_s}s ($ck_s_range), image $(mib "$bytes") MiB;" \
      "last: $(phases_of "$d/command.out")"
    if [ "$mode" = raw ]; then
      # Baselines on the saved bytes themselves: cp + sync, zstd -1 with 1 and 2 threads.
      raw_img=$d/raw.img; cp "$img" "$raw_img"; py_raw=$bytes
      cat "$raw_img" >/dev/null
      t0=$(now_ns); cp "$raw_img" "$d/copy" && sync "$d/copy"; t1=$(now_ns)
      py_cp=$(secs "$t0" "$t1"); rm -f "$d/copy"
      t0=$(now_ns); zstd -1 -T1 -q -f "$raw_img" -o "$d/z"; t1=$(now_ns); py_z1=$(secs "$t0" "$t1")
      py_zbytes=$(stat -c %s "$d/z")
      t0=$(now_ns); zstd -1 -T2 -q -f "$raw_img" -o "$d/z"; t1=$(now_ns); py_z2=$(secs "$t0" "$t1")
      rm -f "$d/z" "$raw_img"
      log "python: $(mib "$py_raw") MiB saved; cp+sync ${py_cp}s; zstd -1 ${py_z1}s" \
        "($(gbps "$py_raw" "$py_z1") GB/s, ratio $(calc "$py_raw / $py_zbytes")), -T2 ${py_z2}s" \
        "($(gbps "$py_raw" "$py_z2") GB/s)"
      row "python: zstd -1 -T2 of its uncompressed image ($(mib "$py_raw") MiB)" "${py_z2} s" \
        "cp+sync of that image" "${py_cp} s" "$(calc "$py_z2 / $py_cp")x" "(baseline)" "-"
      row "python: checkpoint to durable image, uncompressed" "${ck_s} s ($ck_s_range)" \
        "cp+sync of that image" "${py_cp} s" "$(calc "$ck_s / $py_cp")x" "<= 1.5x" \
        "$(verdict "$(calc "$ck_s / $py_cp")" '<=' 1.5)"
    else
      row "python: checkpoint to durable image ($mode)" "${ck_s} s ($ck_s_range)" \
        "cp+sync of the raw image" "${py_cp} s" "$(calc "$ck_s / $py_cp")x" "<= 1.5x" \
        "$(verdict "$(calc "$ck_s / $py_cp")" '<=' 1.5)"
      row "python: image size ($mode)" "$(mib "$bytes") MiB" "uncompressed image" \
        "$(mib "$py_raw") MiB" "$(calc "$py_raw / $bytes")x smaller" ">= 3x" \
        "$(verdict "$(calc "$py_raw / $bytes")" '>=' 3)"
    fi
    [ "$keep" = 1 ] || rm -rf "$d"
  done
}

perf_top() { # perf_top DATA TITLE
  [ -s "$1" ] || return 0
  echo
  echo "perf: $2 (self time, top symbols)"
  perf report -i "$1" --no-children --sort comm,dso,sym --percent-limit 0.7 --stdio -g none \
    2>/dev/null | grep -Ev '^#|^$' | head -n 30
}

perf_lines=()
rs_extra=(); rs_env=()
for kind in $kinds; do
  case "$kind" in
    heap|random|sparse) ;;
    python) python_heap; continue ;;
    *) log "unknown kind $kind (heap, random, sparse, python)"; continue ;;
  esac
  log "$kind: checkpoint (forked writer, the default)"
  if checkpoint "$kind" forked; then
    image=$ck_image sum=$ck_sum
    if [ "$kind" = sparse ]; then
      touched=$((size_bytes * 2 / 20))
      row "$kind: reserved $(mib $((size_bytes * 2))) MiB, touched $(mib $touched) MiB: image" \
        "$(mib "$ck_bytes") MiB" "touched bytes" "$(mib "$touched") MiB" \
        "$(calc "$ck_bytes / $touched" 3) of touched" "untouched cost 0" \
        "$(verdict "$ck_bytes" '<=' "$touched")"
      row "$kind: checkpoint to durable image" "${ck_s} s ($ck_s_range)" "cp+fsync of touched bytes" \
        "$(calc "$cp_s * $touched / $size_bytes" 3) s (scaled)" \
        "$(calc "$ck_s / ($cp_s * $touched / $size_bytes)")x" "<= 1.5x" \
        "$(verdict "$(calc "$ck_s / ($cp_s * $touched / $size_bytes)")" '<=' 1.5)"
    else
      row "$kind: checkpoint to durable image" "${ck_s} s ($ck_s_range)" "cp+fsync" "${cp_s} s" \
        "$(calc "$ck_s / $cp_s")x" "<= 1.5x" "$(verdict "$(calc "$ck_s / $cp_s")" '<=' 1.5)"
      if [ "$kind" = heap ]; then
        row "$kind: image size" "$(mib "$ck_bytes") MiB" "raw memory (RSS $(mib "$ck_rss") MiB)" \
          "$(mib "$size_bytes") MiB" "$(calc "$size_bytes / $ck_bytes")x smaller" ">= 3x" \
          "$(verdict "$(calc "$size_bytes / $ck_bytes")" '>=' 3)"
      else
        row "$kind: image size" "$(mib "$ck_bytes") MiB" "raw memory" "$(mib "$size_bytes") MiB" \
          "$(calc "$ck_bytes / $size_bytes" 3) of raw" "~1 (incompressible)" "-"
      fi
    fi
    row "$kind: program pause (forked writer)" "$(calc "$ck_pause * 1000" 1) ms (max $(calc "$ck_pause_max * 1000" 1))" \
      "longest stall, no checkpoint" "$(calc "$ck_noise * 1000" 1) ms" "-" "< 50 ms" \
      "$(verdict "$ck_pause" '<' 0.050)"
    if [ "$do_perf" = 1 ] && [ "$kind" = heap ]; then
      # A separate run: perf's own cost stays out of the measured restarts.
      restart "$image" "$sum" cold "$work/perf.restart.data" perf
    fi
    for temp in cold warm; do
      [ "$temp" = cold ] && [ "$can_drop" = 0 ] && continue
      if restart "$image" "$sum" "$temp"; then
        if [ "$temp" = cold ]; then
          base=$(read_cold "$image"); blabel="read image, cold cache"
        else
          base=$(read_warm "$image"); blabel="read image, page cache"
        fi
        row "$kind: restart ($temp) to first instruction, memory $rs_check" "${rs_s} s" \
          "$blabel" "${base} s" "$(calc "$rs_s / $base")x" "<= 1.5x" \
          "$(verdict "$(calc "$rs_s / $base")" '<=' 1.5)"
        if [ "$kind" = heap ]; then
          # Second baseline: reading back the raw bytes (cp's file, $size) the same way.
          rbase=$raw_warm_s; [ "$temp" = cold ] && rbase=$raw_cold_s
          row "$kind: restart ($temp) to first instruction" "${rs_s} s" \
            "read the raw $(mib "$size_bytes") MiB, $temp" "${rbase} s" \
            "$(calc "$rs_s / $rbase")x" "(2nd baseline)" "-"
        fi
      else
        row "$kind: restart ($temp)" "FAILED" "-" "-" "-" "<= 1.5x" "NO"
      fi
    done
    if [ "$kind" = heap ]; then
      # Lazy restart: the program runs at once, its memory arrives on first touch and in the
      # background; its checksum after the restore touches every page.
      rs_extra=(--lazy); rs_env=(DMTCP_LOG=info)
      for temp in cold warm; do
        [ "$temp" = cold ] && [ "$can_drop" = 0 ] && continue
        if restart "$image" "$sum" "$temp"; then
          if [ "$temp" = cold ]; then
            base=$(read_cold "$image"); blabel="read image, cold cache"
          else
            base=$(read_warm "$image"); blabel="read image, page cache"
          fi
          row "$kind: lazy restart ($temp) to first instruction, memory $rs_check" \
            "$(calc "$rs_s * 1000" 0) ms" "-" "-" "-" "< 100 ms" "$(verdict "$rs_s" '<' 0.100)"
          if [ -n "$rs_resident_s" ]; then
            row "$kind: lazy restart ($temp) to fully resident" "${rs_resident_s} s" "$blabel" \
              "${base} s" "$(calc "$rs_resident_s / $base")x" "-" "-"
          fi
        else
          row "$kind: lazy restart ($temp)" "FAILED" "-" "-" "-" "< 100 ms" "NO"
        fi
      done
      rs_extra=(); rs_env=()
    fi
    [ "$keep" = 1 ] || rm -rf "$work/$kind-forked"
  else
    row "$kind: checkpoint" "FAILED" "-" "-" "-" "-" "NO"
  fi
  if [ "$kind" = heap ]; then
    log "heap: checkpoint written inside the frozen window (DMTCP_FORKED_CHECKPOINT=0)"
    ck_perf=""
    [ "$do_perf" = 1 ] && ck_perf=$work/perf.ckpt.data
    if checkpoint heap inproc; then
      row "heap: checkpoint to durable image (in-process writer)" "${ck_s} s ($ck_s_range)" "cp+fsync" \
        "${cp_s} s" "$(calc "$ck_s / $cp_s")x" "<= 1.5x" \
        "$(verdict "$(calc "$ck_s / $cp_s")" '<=' 1.5)"
      row "heap: program pause (in-process writer)" "$(calc "$ck_pause * 1000" 1) ms (max $(calc "$ck_pause_max * 1000" 1))" \
        "longest stall, no checkpoint" "$(calc "$ck_noise * 1000" 1) ms" "-" "< 50 ms" \
        "$(verdict "$ck_pause" '<' 0.050)"
    else
      row "heap: checkpoint (in-process writer)" "FAILED" "-" "-" "-" "-" "NO"
    fi
    ck_perf=""
    [ "$keep" = 1 ] || rm -rf "$work/heap-inproc"
    log "heap: checkpoint without compression (DMTCP_GZIP=0, forked writer)"
    if checkpoint heap raw; then
      row "heap: checkpoint to durable image, uncompressed" "${ck_s} s ($ck_s_range)" "cp+fsync" "${cp_s} s" \
        "$(calc "$ck_s / $cp_s")x" "<= 1.5x" "$(verdict "$(calc "$ck_s / $cp_s")" '<=' 1.5)"
      if [ "$can_drop" = 1 ] && restart "$ck_image" "$ck_sum" cold; then
        base=$(read_cold "$ck_image")
        row "heap: restart (cold) of the uncompressed image, memory $rs_check" "${rs_s} s" \
          "read image, cold cache" "${base} s" "$(calc "$rs_s / $base")x" "<= 1.5x" \
          "$(verdict "$(calc "$rs_s / $base")" '<=' 1.5)"
      fi
    else
      row "heap: checkpoint, uncompressed" "FAILED" "-" "-" "-" "-" "NO"
    fi
    [ "$keep" = 1 ] || rm -rf "$work/heap-raw"
    for mode in serial adaptive level1 nowb; do
      label="one compressor in the writer (DMTCP_CKPT_THREADS=1)"
      [ "$mode" = adaptive ] && label="adaptive storage (DMTCP_GZIP=adaptive)"
      [ "$mode" = level1 ] && label="zstd level 1 (DMTCP_ZSTD_LEVEL=1)"
      [ "$mode" = nowb ] && label="no early writeback (DMTCP_CKPT_WRITEBACK=0)"
      log "heap: checkpoint with $label"
      if checkpoint heap "$mode"; then
        row "heap: checkpoint to durable image, $label" "${ck_s} s ($ck_s_range)" "cp+fsync" \
          "${cp_s} s" "$(calc "$ck_s / $cp_s")x" "<= 1.5x" \
          "$(verdict "$(calc "$ck_s / $cp_s")" '<=' 1.5)"
        row "heap: image size, $label" "$(mib "$ck_bytes") MiB" "raw memory" \
          "$(mib "$size_bytes") MiB" "$(calc "$size_bytes / $ck_bytes")x smaller" ">= 3x" \
          "$(verdict "$(calc "$size_bytes / $ck_bytes")" '>=' 3)"
      else
        row "heap: checkpoint, $label" "FAILED" "-" "-" "-" "-" "NO"
      fi
      [ "$keep" = 1 ] || rm -rf "$work/heap-$mode"
    done
  fi
done
# Incremental checkpoints have their own benchmark (a program that changes 5 % of its pages).
row "incremental: 5 % of pages changed" "bench/checkpoint_incremental.sh" "full checkpoint" "-" \
  "-" "< 10 % bytes and time" "-"

# --- launch and wrapper overhead -----------------------------------------------------------
log "launch overhead: 200 execs of /bin/true inside a running computation"
cdir=$work/coord
mkdir -p "$cdir"
"$bin/dmtcp_coordinator" -p 0 --port-file "$cdir/port" --listen-host 127.0.0.1 -q \
  --stale-timeout 600 >"$cdir/log" 2>&1 &
started_pids+=("$!")
wait_line "$cdir/port" '^[0-9]+' 20 >/dev/null || die "the coordinator did not start"
cport=$(cat "$cdir/port"); ports+=("$cport")
launch() { (cd "$cdir" && "$bin/dmtcp_launch" -j -p "$cport" --ckptdir "$cdir" "$@"); }
loop='s=$(date +%s%N); for i in $(seq 200); do /bin/true; done; e=$(date +%s%N); echo $(((e-s)/200))'
best() { sort -n | head -n 1; }
plain_exec=$(for _ in $(seq "$runs"); do sh -c "$loop"; done | best)
dmtcp_exec=$(for _ in $(seq "$runs"); do launch sh -c "$loop"; done | best)
if [ -n "$dmtcp_exec" ]; then
  over=$(calc "($dmtcp_exec - $plain_exec) / 1e6" 3)
  row "exec under the runtime (sh loop of /bin/true)" "$(calc "$dmtcp_exec / 1e6" 3) ms/exec" \
    "same loop without it" "$(calc "$plain_exec / 1e6" 3) ms/exec" "$(signed "$over") ms/exec" "< 5 ms" \
    "$(verdict "$over" '<' 5)"
else
  row "exec under the runtime" "FAILED" "-" "-" "-" "< 5 ms" "NO"
fi
log "wrapper overhead: syscall-heavy loops"
for k in sigmask mixed; do
  n=200000
  [ "$k" = mixed ] && n=50000
  # Interleaved, best of each: the machine's load drifts between runs.
  p=""; pt=""; w=""
  for _ in $(seq "$runs"); do
    p+="$("$work/syscall_loop" "$k" "$n" | awk '{print $2}')"$'\n'
    pt+="$("$work/syscall_loop" "$k" "$n" thread | awk '{print $2}')"$'\n'
    w+="$(launch "$work/syscall_loop" "$k" "$n" | awk '{print $2}')"$'\n'
  done
  p=$(grep . <<<"$p" | best); pt=$(grep . <<<"$pt" | best); w=$(grep . <<<"$w" | best)
  if [ -n "$w" ] && [ -n "$p" ]; then
    pct=$(calc "($w / $p - 1) * 100" 1)
    label="pthread_sigmask pair (wrapped)"
    [ "$k" = mixed ] && label="open/read/close, pipe, getppid, sigprocmask"
    row "syscall loop: $label" "$w ns/iter" "without the runtime" "$p ns/iter" "$(signed "$pct") %" \
      "< 3 %" "$(verdict "$pct" '<' 3)"
    # The runtime's checkpoint thread makes the program multi-threaded; this separates that
    # (the kernel's and glibc's multi-threaded paths) from the wrappers' own cost.
    row "syscall loop: $label" "$w ns/iter" "without the runtime, idle 2nd thread" \
      "$pt ns/iter" "$(signed "$(calc "($w / $pt - 1) * 100" 1)") %" "(attribution)" "-"
  fi
done

# --- report --------------------------------------------------------------------------------
{
  echo
  echo "Checkpoint I/O benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), size $size ($size_bytes bytes)"
  echo "host: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)," \
    "disk $(df --output=source "$work" | tail -n 1), cache drop: $([ "$can_drop" = 1 ] && echo yes || echo "no (O_DIRECT reads)")"
  echo "commit: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || cat "$repo/.commit" 2>/dev/null || echo unknown)"
  echo
  echo "baselines (heap-like data, $size):"
  printf '  %-44s %8s s  %6s GB/s\n' "memcpy (prefaulted)" "$memcpy_s" "$(gbps "$size_bytes" "$memcpy_s")"
  printf '  %-44s %8s s  %6s GB/s\n' "memcpy into fresh pages" "$memcpy_fresh_s" "$(gbps "$size_bytes" "$memcpy_fresh_s")"
  printf '  %-44s %8s s  %6s GB/s\n' "write(2) from memory + fsync" "$dump_s" "$(gbps "$size_bytes" "$dump_s")"
  printf '  %-44s %8s s  %6s GB/s\n' "cp + fsync (hot source)" "$cp_s" "$(gbps "$size_bytes" "$cp_s")"
  printf '  %-44s %8s s  %6s GB/s\n' "dd bs=4M conv=fsync" "$dd_s" "$(gbps "$size_bytes" "$dd_s")"
  printf '  %-44s %8s s  %6s GB/s\n' "read back, cold" "$raw_cold_s" "$(gbps "$size_bytes" "$raw_cold_s")"
  printf '  %-44s %8s s  %6s GB/s\n' "read back, page cache" "$raw_warm_s" "$(gbps "$size_bytes" "$raw_warm_s")"
  printf '  %-44s %8s s  %6s GB/s  ratio %s\n' "zstd -1, 1 thread" "$zstd1_s" \
    "$(gbps "$size_bytes" "$zstd1_s")" "$(calc "$size_bytes / $zstd_bytes")"
  printf '  %-44s %8s s  %6s GB/s\n' "zstd -1, 2 threads" "$zstd2_s" "$(gbps "$size_bytes" "$zstd2_s")"
  printf '  %-44s %8s s  %6s GB/s\n' "zstd -d (to /dev/null)" "$unzstd_s" "$(gbps "$size_bytes" "$unzstd_s")"
  echo
  echo "codecs on $(mib "$sample_bytes") MiB of the heap-like data (1 thread, page cache to page cache):"
  for c in "${codecs[@]}"; do
    IFS='|' read -r name speed ratio rt <<<"$c"
    printf '  %-16s compress %5s GB/s  ratio %5s  decompress %5s GB/s\n' "$name" "$speed" "$ratio" "$rt"
  done
  echo
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "measurement" "this tool" "baseline" \
    "baseline value" "ratio" "target" "met"
  printf '| --- | ---: | --- | ---: | ---: | --- | --- |\n'
  for r in "${rows[@]}"; do
    IFS='|' read -r a b c d e f g <<<"$r"
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g"
  done
  if [ "$do_perf" = 1 ]; then
    perf_top "$work/perf.ckpt.data" "in-process checkpoint of heap data (the program's threads)"
    perf_top "$work/perf.restart.data" "cold restart of heap data"
  fi
} | tee "$work/results.md"
exit 0
