#!/usr/bin/env bash
# Installs the built tools under a prefix: binaries in PREFIX/bin, the runtime library (and,
# later, the restorer) in PREFIX/lib/dmtcp, where the tools look for them.
# Usage: scripts/install.sh PREFIX [TARGET_DIR]   (TARGET_DIR defaults to target/release)
set -euo pipefail
prefix=${1:?usage: scripts/install.sh PREFIX [TARGET_DIR]}
src=${2:-$(cd "$(dirname "$0")/.." && pwd)/target/release}
[ -x "$src/dmtcp_launch" ] || { echo "install.sh: $src has no built tools; run cargo build --release" >&2; exit 1; }
install -d "$prefix/bin" "$prefix/lib/dmtcp"
for f in "$src"/dmtcp_*; do
  [ -f "$f" ] && [ -x "$f" ] || continue
  case "$f" in *.d) continue ;; esac
  if [ "$(basename "$f")" = dmtcp_restorer ]; then
    install -m 0755 "$f" "$prefix/lib/dmtcp/"
  else
    install -m 0755 "$f" "$prefix/bin/"
  fi
done
install -m 0755 "$src/libdmtcp.so" "$prefix/lib/dmtcp/"
top=$(cd "$(dirname "$0")/.." && pwd)
install -d "$prefix/lib/dmtcp/python" "$prefix/include"
install -m 0644 "$top/runtime/python/dmtcp.py" "$prefix/lib/dmtcp/python/"
install -m 0644 "$top/include/dmtcp.h" "$prefix/include/"
echo "installed into $prefix (add $prefix/bin to PATH)"
