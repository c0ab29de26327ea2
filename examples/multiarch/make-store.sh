#!/usr/bin/env bash
# Lays out ./store-amd64 and ./store-arm64 like two Nix stores, each holding one path: Debian's
# static busybox for that architecture, with the applets the example uses (the layout of
# examples/busybox). The host's own architecture comes from its installed busybox-static
# (/bin/busybox); the other one is `apt-get download busybox-static:<arch>` + `dpkg-deb -x`,
# which needs that architecture known to dpkg with its package index:
#   dpkg --add-architecture arm64 && apt-get update
# (done here when run as root; otherwise the commands are printed and the script fails).
#
# Idempotent: a store that already holds its path is kept (the native one only while its busybox
# equals /bin/busybox), so a second run takes milliseconds. Each store is made in a temp dir next
# to it and renamed into place: a reader never sees a half-made store, and two runs at once are
# safe. Delete the stores to make them again. Overrides: BUSYBOX_AMD64 / BUSYBOX_ARM64 = a busybox
# binary to use instead of the package's.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# The store paths: fixed names (hash parts are nix-base32, chosen once), so that specs, tests and
# golden digests can name them. They differ per architecture, as Nix's would.
version=1.35.0
declare -A hash=([amd64]=mwirpjx2b3hmddlqyizwbxkrpdlwgk9z [arm64]=kf0nqyw67q64xh69pa61ylmzm9dlkzrr)
# ELF e_machine of each architecture (little-endian 16-bit at offset 18).
declare -A machine=([amd64]=3e00 [arm64]=b700)
applets=(sh echo ls cat env id)
# A path with no machine code, the same in both stores (as Nix's architecture-independent data
# is): the layer both images share, made and uploaded once.
motd="3x1kmyh9gq2w0dbv8r5nlfpc7za6sji4-motd-1.0"
motd_text="hello from busybox"

native="$(dpkg --print-architecture 2>/dev/null || echo unknown)"

die() { echo "make-store.sh: $*" >&2; exit 1; }

# Temp dirs to remove on exit, whatever happens.
cleanup=()
trap 'rm -rf "${cleanup[@]}"' EXIT

# The 2 bytes of e_machine, as hex, or nothing when the file is not ELF.
elf_machine() {
  [ "$(od -A n -t x1 -N 4 "$1" | tr -d ' \n')" = 7f454c46 ] || return 0
  od -A n -t x1 -j 18 -N 2 "$1" | tr -d ' \n'
}

# Upstream version of a Debian version string: 1:1.35.0-4+deb12u1+b1 -> 1.35.0
upstream() { local v="${1#*:}"; echo "${v%%-*}"; }

# Makes sure dpkg knows $1 and apt has its package index (as root), or says how to.
ensure_foreign_arch() {
  local arch=$1 add=0 update=0
  dpkg --print-foreign-architectures | grep -qx "$arch" || add=1
  [ "$add" -eq 1 ] && update=1
  compgen -G "/var/lib/apt/lists/*_binary-${arch}_Packages*" >/dev/null || update=1
  [ "$update" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    {
      echo "make-store.sh: the $arch package index is missing; set it up with:"
      [ "$add" -eq 1 ] && echo "  sudo dpkg --add-architecture $arch"
      echo "  sudo apt-get update"
      echo "(or run scripts/install-test-deps.sh as root)"
    } >&2
    exit 1
  fi
  [ "$add" -eq 1 ] && dpkg --add-architecture "$arch"
  apt-get update -qq >/dev/null
}

# Copies busybox for $1 to $2: the host's, an override, or the downloaded package's.
fetch_busybox() {
  local arch=$1 dest=$2 var="BUSYBOX_${1^^}"
  if [ -n "${!var:-}" ]; then
    [ -f "${!var}" ] || die "$var=${!var}: no such file"
    cp "${!var}" "$dest"
  elif [ "$arch" = "$native" ]; then
    [ -x /bin/busybox ] || die "no /bin/busybox: install Debian's busybox-static (apt-get install busybox-static)"
    local v
    v="$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null)" || die "busybox-static is not installed (apt-get install busybox-static)"
    [ "$(upstream "$v")" = "$version" ] || die "busybox-static is $v, not $version: update the store names in examples/multiarch"
    cp /bin/busybox "$dest"
  else
    command -v apt-get >/dev/null || die "no apt-get: set $var to an $arch busybox binary"
    ensure_foreign_arch "$arch"
    local dl
    dl="$(mktemp -d "${TMPDIR:-/tmp}/imgbuild-busybox-$arch.XXXXXX")"
    cleanup+=("$dl")
    # apt-get download writes the .deb into the current directory (nothing under ~/.cache).
    (cd "$dl" && apt-get download -q "busybox-static:$arch" >"$dl/apt.log" 2>&1) || { cat "$dl/apt.log" >&2; die "apt-get download busybox-static:$arch failed"; }
    local deb
    deb="$(echo "$dl"/busybox-static_*_"$arch".deb)"
    [ -f "$deb" ] || die "apt-get download left no busybox-static .deb for $arch in $dl"
    local v
    v="$(dpkg-deb -f "$deb" Version)"
    [ "$(upstream "$v")" = "$version" ] || die "busybox-static:$arch is $v, not $version: update the store names in examples/multiarch"
    dpkg-deb -x "$deb" "$dl/root"
    cp "$dl/root/bin/busybox" "$dest"
    rm -rf "$dl"
  fi
  [ "$(elf_machine "$dest")" = "${machine[$arch]}" ] || die "the busybox for $arch is not an $arch ELF file (e_machine $(elf_machine "$dest"))"
}

# Whether store-$1 holds its path, complete (the native one: with the installed busybox).
store_ok() {
  local arch=$1 var="BUSYBOX_${1^^}"
  local path="$here/store-$arch/${hash[$arch]}-busybox-$version"
  [ -x "$path/bin/busybox" ] && [ -L "$path/bin/${applets[-1]}" ] || return 1
  [ "$(cat "$here/store-$arch/$motd/share/motd" 2>/dev/null)" = "$motd_text" ] || return 1
  # The native store follows the installed package; a downloaded one is kept as it is.
  [ "$arch" != "$native" ] || [ -n "${!var:-}" ] || cmp -s /bin/busybox "$path/bin/busybox"
}

make_store() {
  local arch=$1
  local name="${hash[$arch]}-busybox-$version"
  local store="$here/store-$arch"
  store_ok "$arch" && return 0
  local tmp
  tmp="$(mktemp -d "$here/.store-$arch.tmp-XXXXXX")"
  cleanup+=("$tmp")
  chmod 755 "$tmp"
  mkdir -p "$tmp/$name/bin"
  fetch_busybox "$arch" "$tmp/$name/bin/busybox"
  chmod 555 "$tmp/$name/bin/busybox"
  for applet in "${applets[@]}"; do ln -s busybox "$tmp/$name/bin/$applet"; done
  mkdir -p "$tmp/$motd/share"
  echo "$motd_text" >"$tmp/$motd/share/motd"
  chmod 444 "$tmp/$motd/share/motd"
  chmod 555 "$tmp/$motd/share" "$tmp/$motd"
  # Another run may have put a good store in place meanwhile: keep that one.
  store_ok "$arch" && return 0
  if [ -e "$store" ]; then
    # A stale store: move it aside first (rename cannot replace a non-empty directory).
    local old="$here/.store-$arch.old-$$"
    mv -T "$store" "$old" 2>/dev/null || true
    cleanup+=("$old")
  fi
  if mv -T "$tmp" "$store" 2>/dev/null; then
    echo "made $store/$name"
  else
    store_ok "$arch" || die "could not move the new store into $store"
  fi
}

# One run at a time (two test files may start it together): the second waits, then finds the stores made.
exec 9>"$here/.make-store.lock"
flock 9
make_store amd64
make_store arm64
