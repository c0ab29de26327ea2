#!/usr/bin/env bash
# Runs tiers of the compiled test suite (scripts/test-tiers.mjs), one after the other, and checks
# that the run left the user's imgbuild cache alone. Expects `npm run build` to have been run.
#
#   bash scripts/run-tests.sh unit         # the tests that need no system tool
#   bash scripts/run-tests.sh unit tools   # everything (what scripts/test.sh runs)
#
# The unit tier runs with IMGBUILD_TEST_TIER=unit and a PATH of Node and Debian's Essential
# commands only, so a test filed there that runs a system tool fails instead of passing.
#
# Cache guard: every test must give the CLI and the library a cache dir of its own. To catch one
# that does not, the run gets an empty temp dir as XDG_CACHE_HOME (and no IMGBUILD_CACHE_DIR), so
# the default cache, $XDG_CACHE_HOME/imgbuild, is a place nothing may create: if it exists after
# the run, the run fails naming what is in it. Redirecting rather than watching the real cache
# keeps the check exact (another imgbuild process on this machine, a second test run, or the
# engineer's own builds write to the real cache, not to this one) and keeps a regression from
# writing into the user's cache at all. A process started with an environment that lacks
# XDG_CACHE_HOME would fall back to ~/.cache/imgbuild: that dir is snapshotted before and
# compared after, as a second line. A difference there can also come from another imgbuild
# process on the machine (on a shared one, another checkout's test run), so it fails the run
# under CI, where nothing else runs, and is a warning elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$#" -gt 0 ] || set -- unit tools

node_bin="$(command -v node)"
real_xdg="${XDG_CACHE_HOME:-}"
home_cache="$HOME/.cache/imgbuild"
# The cross-Node test keeps its Node binaries in the real cache (IMGBUILD_NODES_DIR, see scripts/install-nodes.sh).
export IMGBUILD_NODES_DIR="${IMGBUILD_NODES_DIR:-${real_xdg:-$HOME/.cache}/imgbuild-test/nodes}"

guard="$(mktemp -d "${TMPDIR:-/tmp}/imgbuild-test-run.XXXXXX")"
trap 'rm -rf "$guard"' EXIT
mkdir "$guard/xdg-cache"
unset IMGBUILD_CACHE_DIR
export XDG_CACHE_HOME="$guard/xdg-cache"

snapshot() {
  if [ -e "$1" ]; then find "$1" -printf '%y %s %T@ %p\n' | sort -k4; else echo "(absent)"; fi
}
watched=("$home_cache")
[ -n "$real_xdg" ] && [ "$real_xdg/imgbuild" != "$home_cache" ] && watched+=("$real_xdg/imgbuild")
for i in "${!watched[@]}"; do snapshot "${watched[$i]}" > "$guard/before-$i"; done

status=0
for tier in "$@"; do
  list="$("$node_bin" scripts/test-tiers.mjs list "$tier")"
  mapfile -t files <<< "$list"
  [ -n "$list" ] || files=()
  echo "# tier $tier: ${#files[@]} test files"
  [ "${#files[@]}" -gt 0 ] || continue
  if [ "$tier" = unit ]; then
    unit_path="$("$node_bin" scripts/test-tiers.mjs unit-path "$guard/unit-bin")"
    PATH="$unit_path" IMGBUILD_TEST_TIER=unit "$node_bin" --test --test-concurrency=2 "${files[@]}" || status=1
  else
    "$node_bin" --test --test-concurrency=2 "${files[@]}" || status=1
  fi
done

if [ -e "$XDG_CACHE_HOME/imgbuild" ]; then
  echo "error: the tests wrote into the default imgbuild cache, \$XDG_CACHE_HOME/imgbuild (an empty temp dir for this run): some test ran the CLI or the library without a cache dir of its own (runCli gives the CLI one; an in-process build needs blobs, layerCache and a store with cacheDir). What appeared:" >&2
  find "$XDG_CACHE_HOME/imgbuild" -type f -printf '  imgbuild/%P (%s bytes)\n' | sort | head -50 >&2
  status=1
fi
for i in "${!watched[@]}"; do
  snapshot "${watched[$i]}" > "$guard/after-$i"
  if ! cmp -s "$guard/before-$i" "$guard/after-$i"; then
    level=warning
    [ -n "${CI:-}" ] && level=error && status=1
    echo "$level: ${watched[$i]} changed during the test run: created or modified by a test that started a process without XDG_CACHE_HOME and IMGBUILD_CACHE_DIR, or by another imgbuild process using that cache meanwhile (< before, > after):" >&2
    diff "$guard/before-$i" "$guard/after-$i" | grep '^[<>]' | head -50 >&2 || true
  fi
done
exit "$status"
