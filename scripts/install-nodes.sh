#!/usr/bin/env bash
# Installs Node.js binaries of the given major versions from the npm registry (the packages
# node-linux-<arch>@<major>, ~30 MB each) into a cache dir, skipping what is already there, and
# prints one line per major: "<major> <path to its node binary>". The cross-Node reproducibility
# test uses it; it needs the npm registry (npm's configured registry) the first time only.
#
#   bash scripts/install-nodes.sh            # 20 22 24
#   bash scripts/install-nodes.sh 22 24
#
# Cache dir: $IMGBUILD_NODES_DIR, else node_modules/.cache/imgbuild-test/nodes in this checkout
# (never under ~/.cache: a test run leaves nothing there; `rm -rf node_modules` frees it).
set -euo pipefail

dest="${IMGBUILD_NODES_DIR:-$(cd "$(dirname "$0")/.." && pwd)/node_modules/.cache/imgbuild-test/nodes}"
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "install-nodes: no node-linux-* package for $(uname -m)" >&2; exit 1 ;;
esac
[ "$#" -gt 0 ] || set -- 20 22 24
mkdir -p "$dest"

for major in "$@"; do
  case "$major" in *[!0-9]* | '') echo "install-nodes: not a major version: $major" >&2; exit 1 ;; esac
  dir="$dest/$major"
  bin="$dir/node_modules/node-linux-$arch/bin/node"
  if ! { [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "^v$major\."; }; then
    # Install next to the final place and rename, so an interrupted download never looks installed.
    tmp="$(mktemp -d "$dest/.$major.XXXXXX")" && chmod 755 "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error --prefix "$tmp" "node-linux-$arch@$major" >&2
    "$tmp/node_modules/node-linux-$arch/bin/node" --version | grep -q "^v$major\." || { echo "install-nodes: node-linux-$arch@$major did not give a v$major binary" >&2; exit 1; }
    rm -rf "$dir"
    mv "$tmp" "$dir"
    trap - EXIT
  fi
  echo "$major $bin"
done
