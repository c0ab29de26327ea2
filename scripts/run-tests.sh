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
# Cache guard: every test must give the CLI and the library a cache dir of its own, and never
# touch the user's. The run gets a fresh temp dir as HOME, with XDG_CACHE_HOME=$HOME/.cache and
# no IMGBUILD_CACHE_DIR, so the cache a test falls back to by mistake, whether through
# XDG_CACHE_HOME or through HOME, is $HOME/.cache/imgbuild in that temp dir: if it exists after
# the run, the run fails naming every file in it. (npm keeps the user's config and cache; the
# cross-Node tests keep their Node binaries in this checkout's node_modules/.cache,
# IMGBUILD_NODES_DIR.) Redirecting, rather than snapshotting the real ~/.cache/imgbuild before
# the run and comparing after, keeps the check exact on a machine where anything else uses
# imgbuild meanwhile (another checkout's test run, a build by hand: both write there), and keeps
# a regression from writing into the user's cache at all. Only a process started with neither
# HOME nor XDG_CACHE_HOME nor IMGBUILD_CACHE_DIR in its environment could still reach the real
# one (Node then asks the password database).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$#" -gt 0 ] || set -- unit tools

node_bin="$(command -v node)"
real_home="$HOME"
export IMGBUILD_NODES_DIR="${IMGBUILD_NODES_DIR:-$PWD/node_modules/.cache/imgbuild-test/nodes}"
export NPM_CONFIG_USERCONFIG="${NPM_CONFIG_USERCONFIG:-$real_home/.npmrc}"
export NPM_CONFIG_CACHE="${NPM_CONFIG_CACHE:-$real_home/.npm}"

guard="$(mktemp -d "${TMPDIR:-/tmp}/imgbuild-test-run.XXXXXX")"
trap 'rm -rf "$guard"' EXIT
mkdir -p "$guard/home/.cache"
unset IMGBUILD_CACHE_DIR
# The suite run inside GitHub Actions or GitLab CI: imgbuild would add CI metadata by default
# (--ci-metadata) and every image's digest would change; tests that simulate a CI set these themselves.
unset GITHUB_ACTIONS GITLAB_CI
export HOME="$guard/home"
export XDG_CACHE_HOME="$HOME/.cache"

status=0
for tier in "$@"; do
  list="$("$node_bin" scripts/test-tiers.mjs list "$tier")"
  mapfile -t files <<< "$list"
  [ -n "$list" ] || files=()
  echo "# tier $tier: ${#files[@]} test files"
  [ "${#files[@]}" -gt 0 ] || continue
  if [ "$tier" = unit ]; then
    unit_path="$("$node_bin" scripts/test-tiers.mjs unit-path "$guard/unit-bin")"
    PATH="$unit_path" IMGBUILD_TEST_TIER=unit "$node_bin" --test --test-reporter=tap --test-concurrency=2 "${files[@]}" | tee -a "$guard/tap" || status=1
  else
    "$node_bin" --test --test-reporter=tap --test-concurrency=2 "${files[@]}" | tee -a "$guard/tap" || status=1
  fi
done

# One summary for the whole run, in node --test's TAP words (the reporter is named: Node 23+ defaults to another), last: what CI reads.
if [ "$#" -gt 1 ]; then
  echo "# all tiers ($*):"
  awk '/^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) [0-9.]+$/ { sum[$2] += $3 }
       END { split("tests suites pass fail cancelled skipped todo duration_ms", k, " ");
             for (i = 1; i <= 8; i++) printf "# %s %s\n", k[i], sum[k[i]] + 0 }' "$guard/tap"
fi

if [ -e "$XDG_CACHE_HOME/imgbuild" ]; then
  echo "error: the tests wrote into the default imgbuild cache, \$XDG_CACHE_HOME/imgbuild (\$HOME/.cache/imgbuild, in a temp dir for this run): some test ran the CLI or the library without a cache dir of its own (runCli gives the CLI one; an in-process build needs blobs, layerCache and a store with cacheDir). What appeared:" >&2
  find "$XDG_CACHE_HOME/imgbuild" -type f -printf '  imgbuild/%P (%s bytes)\n' | sort | head -50 >&2
  status=1
fi
exit "$status"
