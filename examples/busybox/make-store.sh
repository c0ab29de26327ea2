#!/usr/bin/env bash
# Lays out ./store like a Nix store holding one path: busybox with the applets the example uses.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="${BUSYBOX:-/bin/busybox}"
[ -x "$src" ] || { echo "no $src: install Debian's busybox-static (apt-get install busybox-static)" >&2; exit 1; }
path="$here/store/fzv3dba84r2c4v55n5p85xwykrff8kl3-busybox-1.35.0"
rm -rf "$here/store"
mkdir -p "$path/bin"
cp "$src" "$path/bin/busybox"
chmod 555 "$path/bin/busybox"
for applet in sh echo ls cat env id; do ln -s busybox "$path/bin/$applet"; done
