#!/usr/bin/env bash
# Step 1 of action.yml: check the inputs (before anything slow), install imgbuild from the
# action's own checkout, and say where its cache and layer records are.
#
# Inputs: INPUT_SPEC, INPUT_PUSH, INPUT_TAGS, INPUT_PLATFORMS, INPUT_ANNOTATIONS, INPUT_LABELS,
# INPUT_SBOM, INPUT_CACHE, INPUT_VERIFY. Outputs: imgbuild (the command), cache (true/false),
# cache-dir, records (the layer records' directory), cache-key, cache-restore-key. Adds the
# command's directory to GITHUB_PATH, so later steps of the job can run `imgbuild` too.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/action/lib.sh
. "$here/lib.sh"

# Malformed metadata inputs fail here, before anything slow.
check_key_values annotations "${INPUT_ANNOTATIONS:-}"
check_key_values labels "${INPUT_LABELS:-}"
# (In a subshell, fail's error line is captured: print it, then stop.)
sbom_checked="$(sbom_formats "${INPUT_SBOM:-}")" || { echo "$sbom_checked"; exit 1; }

[ -n "${INPUT_SPEC:-}" ] || fail "spec: required (a spec file, or a directory holding image.ts, image.yaml, image.json, ...)"
[ -e "$INPUT_SPEC" ] || fail "spec: '$INPUT_SPEC' does not exist (paths are relative to $PWD)"
bool_input push "${INPUT_PUSH:-}" false
push="$BOOL"
bool_input cache "${INPUT_CACHE:-}" true
cache="$BOOL"
if [ "$push" = true ]; then
  parse_tags "${INPUT_TAGS:-}"
elif [ -n "$(split_list "${INPUT_TAGS:-}")" ]; then
  fail "tags: given without push: true (the action only uses tags to push); add push: true or remove them"
fi

# Node: imgbuild needs 20.18.1 or later.
command -v node > /dev/null || fail "Node.js is not installed: add actions/setup-node (node-version: 22) before this step"
node -e '
  const [a, b, c] = process.versions.node.split(".").map(Number);
  process.exit(a > 20 || (a === 20 && (b > 18 || (b === 18 && c >= 1))) ? 0 : 1);
' || fail "imgbuild needs Node 20.18.1 or later and this runner has $(node --version): add actions/setup-node (node-version: 22) before this step"

# imgbuild itself: the action's checkout is imgbuild's repository at the ref the workflow names
# (uses: <owner>/imgbuild@<ref>), without dist/. Compile it there once (a second use of the
# action in the job finds it compiled): the exact code of that ref, nothing from a registry but
# its locked dependencies.
action_dir="$(cd "$here/../.." && pwd)"
# The package's bin (package.json "bin"): CommonJS, and push runs from its own bundle with a code cache.
cli="$action_dir/dist/builder/imgbuild.cjs"
if [ ! -f "$cli" ]; then
  echo "::group::Install imgbuild from $action_dir"
  (
    cd "$action_dir"
    npm ci --include=dev --ignore-scripts --no-audit --no-fund
    node scripts/prepare.mjs
  ) >&2
  echo "::endgroup::"
  [ -f "$cli" ] || fail "installing imgbuild in $action_dir did not produce $cli"
fi
bin_dir="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/imgbuild-action/bin"
mkdir -p "$bin_dir"
printf '#!/bin/sh\nexec node %q "$@"\n' "$cli" > "$bin_dir/imgbuild.tmp"
chmod 755 "$bin_dir/imgbuild.tmp"
mv "$bin_dir/imgbuild.tmp" "$bin_dir/imgbuild"
[ -z "${GITHUB_PATH:-}" ] || echo "$bin_dir" >> "$GITHUB_PATH"
echo "imgbuild $("$bin_dir/imgbuild" --version) from $action_dir"
set_output imgbuild "$bin_dir/imgbuild"

# The cache imgbuild uses when nothing says otherwise, and the layer records in it (a few KB:
# what CI keeps between runs, see README "In CI"). A key of its own per run, job and spec; the
# restore key takes the newest records saved by any run.
cache_dir="${IMGBUILD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/imgbuild}"
set_output cache "$cache"
set_output cache-dir "$cache_dir"
set_output records "$cache_dir/layers"
prefix="imgbuild-layers-${RUNNER_OS:-$(uname -s)}-"
which="$(printf '%s\n' "$INPUT_SPEC" "${INPUT_PLATFORMS:-}" | sha256sum | cut -c1-12)"
set_output cache-key "${prefix}${GITHUB_RUN_ID:-0}-${GITHUB_RUN_ATTEMPT:-1}-${GITHUB_JOB:-job}-${which}"
set_output cache-restore-key "$prefix"
