#!/usr/bin/env bash
# Installs the system tools the test suite drives (all from Debian). As root it installs what is
# missing with apt-get; otherwise it prints the exact commands to run and carries on (tests that
# need a missing tool are skipped locally and fail under CI).
# The multi-platform tests also need the other architecture of amd64/arm64 known to dpkg, with its
# package index (examples/multiarch/make-store.sh downloads that architecture's busybox-static),
# and qemu-user-static to run arm64 programs on an amd64 host.
set -euo pipefail
packages=(skopeo umoci oci-image-tool runc docker-registry nix-bin busybox-static pigz apache2-utils openssl ca-certificates sqlite3 podman zstd python3 qemu-user-static git mount)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# The foreign architecture: arm64 on amd64 hosts, amd64 on arm64 hosts.
case "$(dpkg --print-architecture)" in
  arm64) foreign=amd64 ;;
  *) foreign=arm64 ;;
esac
add_arch=0
dpkg --print-foreign-architectures | grep -qx "$foreign" || add_arch=1
need_index=0
[ "$add_arch" -eq 1 ] && need_index=1
compgen -G "/var/lib/apt/lists/*_binary-${foreign}_Packages*" >/dev/null || need_index=1

if [ ${#missing[@]} -eq 0 ] && [ "$need_index" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  if [ "$add_arch" -eq 1 ]; then
    echo "adding architecture: $foreign"
    dpkg --add-architecture "$foreign"
  fi
  apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "missing system packages or the $foreign package index; set them up with:" >&2
  if [ "$add_arch" -eq 1 ]; then echo "  sudo dpkg --add-architecture $foreign" >&2; fi
  echo "  sudo apt-get update" >&2
  if [ ${#missing[@]} -gt 0 ]; then echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2; fi
fi
