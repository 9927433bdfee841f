#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian 12 machine with the Rust toolchain.
#
#   bash tests/run.sh            # everything (as root in CI; as a normal user, see below)
#   bash tests/run.sh -E 'test(three_peers)'   # extra arguments go to cargo nextest
#
# As root it installs missing Debian packages, creates the unprivileged users the tests run
# checkpointed programs as (dmtcptest, and dmtcptest2 for "another user" tests), builds the
# workspace in release mode and runs every test. As a normal user it installs nothing, runs
# programs as that user, and the tests that need a second user print SKIP.
# The tests run twice: everything in the default id mode, then the end-to-end tests that
# restart with virtual ids (DMTCP_PID_MODE=virtual). Exits non-zero if either pass fails;
# the last lines summarise both passes.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

# --- system packages (only what is missing) -----------------------------------------------
# postgresql + libpq-dev: the plugin example that reconnects to a real database server.
need_pkgs=(build-essential python3 perl procps iproute2 util-linux passwd postgresql libpq-dev)
# openssh: the multi-host tests run sshd on fake hosts (tests/hosts/up.sh; no system sshd is
# started or configured).
need_pkgs+=(openssh-server openssh-client)
# The terminal tests (tests/tests/tty_*.rs): `script` (bsdutils), dash, vim.
need_pkgs+=(bsdutils dash vim)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "run.sh: missing packages ${missing[*]} (not root, so not installing them)" >&2
  fi
fi

# --- test users ------------------------------------------------------------------------------
if [ "$(id -u)" = 0 ]; then
  for u in dmtcptest dmtcptest2; do
    if ! id "$u" >/dev/null 2>&1; then
      say "creating user $u"
      useradd --create-home --shell /bin/bash "$u"
    fi
  done
else
  say "not root: programs run as $(id -un); tests that need a second user will print SKIP"
fi

# --- build -----------------------------------------------------------------------------------
say "cargo build --release --workspace"
cargo build --release --workspace

# --- test ------------------------------------------------------------------------------------
# Doc tests first (nextest does not run them), so the summary of the passes comes last.
say "cargo test --doc"
cargo test --release --workspace --doc --quiet

if ! cargo nextest --version >/dev/null 2>&1; then
  say "cargo test --release --workspace (cargo-nextest not installed; no virtual-ids pass)"
  exec cargo test --release --workspace --no-fail-fast "$@"
fi

# Pass 1: everything, each restart in the default id mode (auto: a pid namespace when the
# machine allows one).
say "pass 1: cargo nextest run --release --workspace"
first=0
start=$SECONDS
cargo nextest run --release --workspace --no-fail-fast "$@" || first=$?
first_time=$((SECONDS - start))

# Pass 2: the end-to-end tests again with virtual ids (DMTCP_PID_MODE=virtual; the harness
# passes it to the tools), minus those that already ran in both modes or never restart: the
# `virtual-ids` profile's default filter in .config/nextest.toml, intersected with any filter
# given on this command line. DMTCP_SKIP_VIRTUAL_PASS=1 skips it. --workspace as in pass 1,
# so cargo reuses pass 1's build as is.
second=skipped
second_time=0
if [ "${DMTCP_SKIP_VIRTUAL_PASS:-0}" != 1 ]; then
  say "pass 2: DMTCP_PID_MODE=virtual cargo nextest run --release --profile virtual-ids"
  second=0
  start=$SECONDS
  DMTCP_PID_MODE=virtual cargo nextest run --release --workspace --profile virtual-ids \
    --no-fail-fast --no-tests=warn "$@" || second=$?
  second_time=$((SECONDS - start))
fi

# verdict EXIT_CODE|skipped SECONDS
verdict() {
  case "$1" in
    0) echo "passed in $2 s" ;;
    skipped) echo "skipped (DMTCP_SKIP_VIRTUAL_PASS=1)" ;;
    *) echo "FAILED (exit $1) in $2 s" ;;
  esac
}
say "summary"
echo "  pass 1, all tests, default id mode:     $(verdict "$first" "$first_time")"
echo "  pass 2, end-to-end tests, virtual ids:  $(verdict "$second" "$second_time")"
if [ "$first" != 0 ] || { [ "$second" != 0 ] && [ "$second" != skipped ]; }; then
  echo "run.sh: FAILED"
  exit 1
fi
echo "run.sh: all passes passed"
