#!/usr/bin/env bash
# Installs the system tools the test suite drives (all from Debian). As root it installs what is
# missing with apt-get; otherwise it prints the exact command to run and carries on (tests that
# need a missing tool are skipped locally and fail under CI).
set -euo pipefail
packages=(skopeo umoci oci-image-tool runc docker-registry nix-bin busybox-static pigz apache2-utils openssl ca-certificates sqlite3 podman zstd python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "missing system packages; install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
fi
