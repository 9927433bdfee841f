# Shared preamble of the benchmark scripts (bench/*.sh); sourced, not run. A script parses its
# options (setting build=0|1 and keep=0|1; bench_help prints its header comment for --help),
# then:
#   . "$(dirname "$0")/lib.sh"
#   bench_tools                      # build (unless build=0) and check the tools
#   bench_workdir dmtcp-bench-x      # $work, removed at exit unless keep=1
#   bench_cc prog bench/programs/prog.c   # -> $work/prog
#   bench_coordinator "$work/c1"     # -> $port; quit and killed at exit
# Every process a script starts in the background should go into bench_pids (killed by pid
# at exit, never by name), every coordinator port into bench_ports.
# Environment: BENCH_BIN (the tools; default $CARGO_TARGET_DIR/release or target/release).

bench_name=$(basename "$0")
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BENCH_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release}
build=${build:-1}
keep=${keep:-0}
work=
bench_pids=()
bench_ports=()

die() { echo "$bench_name: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
now_ns() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) / 1e6 }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

# The script's header comment (its usage), without the #! line.
bench_help() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

# bench_tools [EXTRA...]: builds the release tools unless build=0, then checks that the tools
# and the EXTRA files are in $bin.
bench_tools() {
  if [ "$build" = 1 ]; then
    log "building the tools (cargo build --release)"
    (cd "$repo" && cargo build --release -q -p dmtcp-cli -p dmtcp-preload -p dmtcp-restorer) ||
      die "the build failed"
  fi
  local t
  for t in dmtcp_launch dmtcp_restart dmtcp_command dmtcp_coordinator libdmtcp.so "$@"; do
    [ -e "$bin/$t" ] || die "$bin/$t is missing (build first, or set BENCH_BIN)"
  done
  command -v cc >/dev/null || die "cc is needed for the benchmark programs"
}

# Ends what the script started (coordinators by port, processes by pid), then removes $work
# unless keep=1.
bench_cleanup() {
  local p
  for p in "${bench_ports[@]}"; do "$bin/dmtcp_command" -p "$p" --quit >/dev/null 2>&1; done
  for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "$work" ] || return 0
  if [ "$keep" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}

# bench_workdir PREFIX [PARENT]: creates $work (in PARENT, default BENCH_TMPDIR or /tmp) and
# installs bench_cleanup at exit.
bench_workdir() {
  local parent=${2:-${BENCH_TMPDIR:-/tmp}}
  mkdir -p "$parent"
  work=$(mktemp -d "$parent/$1.XXXXXX") || die "cannot create a work directory in $parent"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# bench_cc NAME SOURCE [CFLAGS...]: compiles SOURCE (relative to the repository or absolute)
# into $work/NAME, with tests/programs/testlib.h on the include path.
bench_cc() {
  local src=$2
  [ "${src#/}" = "$src" ] && src=$repo/$src
  cc -O2 -I "$repo/tests/programs" -o "$work/$1" "$src" "${@:3}" || die "cannot compile $src"
}

# wait_line FILE REGEX [SECONDS]: waits (default 120 s) until FILE has a line matching REGEX
# and prints the last such line; fails if none came.
wait_line() {
  local i
  for ((i = 0; i < ${3:-120} * 20; i++)); do
    if [ -f "$1" ] && grep -Eq "$2" "$1"; then grep -E "$2" "$1" | tail -n 1; return 0; fi
    sleep 0.05
  done
  return 1
}

# bench_coordinator DIR [OPTIONS...]: starts a coordinator on a free port (its log in
# DIR/coord.log) and sets $port; bench_cleanup ends it.
bench_coordinator() {
  mkdir -p "$1"
  rm -f "$1/port"
  "$bin/dmtcp_coordinator" --coord-port 0 --port-file "$1/port" "${@:2}" >>"$1/coord.log" 2>&1 &
  bench_pids+=("$!")
  wait_line "$1/port" '^[0-9]+' 20 >/dev/null || die "the coordinator did not start"
  port=$(cat "$1/port")
  bench_ports+=("$port")
}
