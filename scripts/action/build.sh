#!/usr/bin/env bash
# Step 2 of action.yml: verify (when asked), then build, and push (when asked); set the digest,
# image and json outputs.
#
# Inputs: INPUT_SPEC, INPUT_PUSH, INPUT_TAGS, INPUT_PLATFORMS, INPUT_ANNOTATIONS, INPUT_LABELS,
# INPUT_SBOM, INPUT_VERIFY, INPUT_ARGS, and
# IMGBUILD (the command setup.sh installed). The cache is IMGBUILD_CACHE_DIR, as for imgbuild.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/action/lib.sh
. "$here/lib.sh"

imgbuild="${IMGBUILD:-imgbuild}"
spec="${INPUT_SPEC:?spec is required}"
bool_input push "${INPUT_PUSH:-}" false
push="$BOOL"

# More options for build and verify (store and registry options), split at white space.
extra=()
while read -r -a words; do extra+=("${words[@]}"); done <<< "${INPUT_ARGS:-}"
platforms=()
while IFS= read -r p; do platforms+=(--platform "$p"); done < <(split_list "${INPUT_PLATFORMS:-}")
# Labels and annotations go to verify too, so that it rebuilds the image build makes.
meta=()
while IFS= read -r a; do meta+=(--annotation "$a"); done < <(split_lines "${INPUT_ANNOTATIONS:-}")
while IFS= read -r l; do meta+=(--label "$l"); done < <(split_lines "${INPUT_LABELS:-}")
sbom=()
formats="$(sbom_formats "${INPUT_SBOM:-}")"
[ -z "$formats" ] || sbom=(--sbom "$formats")

work="$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/imgbuild-action.XXXXXX")"

verify="${INPUT_VERIFY:-false}"
case "${verify,,}" in
  false | '') ;;
  true)
    echo "::group::imgbuild verify $spec (two isolated builds must agree)"
    "$imgbuild" verify "$spec" "${meta[@]}" "${extra[@]}"
    echo "::endgroup::"
    ;;
  *)
    echo "::group::imgbuild verify $spec --against $verify"
    "$imgbuild" verify "$spec" --against "$verify" "${meta[@]}" "${extra[@]}"
    echo "::endgroup::"
    ;;
esac

if [ "$push" = true ]; then
  parse_tags "${INPUT_TAGS:-}"
  tags=()
  for t in "${PUSH_TAGS[@]}"; do tags+=(--tag "$t"); done
  "$imgbuild" build "$spec" --push "$PUSH_REF" "${tags[@]}" --digest-file "$work/digest" --json "${platforms[@]}" "${meta[@]}" "${sbom[@]}" "${extra[@]}" > "$work/build.json"
  read -r digest < "$work/digest"
  image="$(repo_of "$PUSH_REF")@$digest"
else
  layout="$work/image.oci"
  "$imgbuild" build "$spec" -o "$layout" --json "${platforms[@]}" "${meta[@]}" "${sbom[@]}" "${extra[@]}" > "$work/build.json"
  # The layout's index.json points at the image (or the index of a multi-platform one).
  digest="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).digest)' "$work/build.json")"
  image="oci:$layout"
fi
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || fail "imgbuild gave no digest (got '$digest')"

set_output digest "$digest"
set_output image "$image"
set_output json "$(cat "$work/build.json")"
echo "$image"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  if [ "$push" = true ]; then
    pushed=("$PUSH_REF")
    for t in "${PUSH_TAGS[@]}"; do pushed+=("$(repo_of "$PUSH_REF"):$t"); done
    list="$(printf '`%s`, ' "${pushed[@]}")"
    printf '### imgbuild\n\nPushed `%s` as %s.\n' "$image" "${list%, }" >> "$GITHUB_STEP_SUMMARY"
  else
    printf '### imgbuild\n\nBuilt `%s` (`%s`).\n' "$digest" "$image" >> "$GITHUB_STEP_SUMMARY"
  fi
fi
