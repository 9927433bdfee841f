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
# Exits non-zero if anything fails; the last line is the test runner's summary.
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
# Doc tests first (nextest does not run them), so the runner's summary is the last line.
say "cargo test --doc"
cargo test --release --workspace --doc --quiet

if cargo nextest --version >/dev/null 2>&1; then
  say "cargo nextest run --release --workspace"
  exec cargo nextest run --release --workspace --no-fail-fast "$@"
else
  say "cargo test --release --workspace (cargo-nextest not installed)"
  exec cargo test --release --workspace --no-fail-fast "$@"
fi
