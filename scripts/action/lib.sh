# Shared by the steps of action.yml (sourced, never run). Inputs come in as INPUT_<NAME>
# environment variables (action.yml maps each one); outputs go to $GITHUB_OUTPUT.

# Stop the step with an error annotation (GitHub shows it on the run's summary page).
fail() {
  local msg="$*"
  msg="${msg//'%'/'%25'}"
  msg="${msg//$'\n'/'%0A'}"
  echo "::error title=imgbuild action::${msg}"
  exit 1
}

# set_output NAME VALUE: one step output; a multi-line value with a delimiter no value contains.
set_output() {
  local name="$1" value="$2" delimiter
  : "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set: these scripts are steps of action.yml}"
  if [[ "$value" == *$'\n'* ]]; then
    delimiter="imgbuild_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    printf '%s<<%s\n%s\n%s\n' "$name" "$delimiter" "$value" "$delimiter" >> "$GITHUB_OUTPUT"
  else
    printf '%s=%s\n' "$name" "$value" >> "$GITHUB_OUTPUT"
  fi
}

# bool_input NAME VALUE DEFAULT: sets BOOL to true or false; anything else is an error naming the
# input. (Not a function to call in $(...): fail would only leave the subshell.)
bool_input() {
  local value="${2:-$3}"
  case "${value,,}" in
    true) BOOL=true ;;
    false) BOOL=false ;;
    *) fail "$1: expected true or false, got '$2'" ;;
  esac
}

# split_list VALUE: the items of a list input, one a line (items separated by newlines or commas).
split_list() {
  local item
  while IFS= read -r item; do
    item="${item#"${item%%[![:space:]]*}"}"
    item="${item%"${item##*[![:space:]]}"}"
    [ -n "$item" ] && printf '%s\n' "$item"
  done < <(printf '%s\n' "${1//,/$'\n'}")
  return 0
}

# split_lines VALUE: the items of a multi-line input, one a line (a value may hold commas: key=a,b).
split_lines() {
  local item
  while IFS= read -r item; do
    item="${item#"${item%%[![:space:]]*}"}"
    item="${item%"${item##*[![:space:]]}"}"
    [ -n "$item" ] && printf '%s\n' "$item"
  done < <(printf '%s\n' "$1")
  return 0
}

# check_key_values NAME VALUE: each line of a labels/annotations input must be key=value.
check_key_values() {
  local item
  while IFS= read -r item; do
    [[ "$item" =~ ^[^=[:space:]][^=]*= ]] || fail "$1: '$item' is not key=value (one per line)"
  done < <(split_lines "$2")
}

# sbom_formats VALUE: the --sbom value for the sbom input ('' when none): true = both formats.
sbom_formats() {
  local v="${1,,}" item out=()
  case "$v" in
    '' | false) return 0 ;;
    true) printf 'spdx,cyclonedx\n'; return 0 ;;
  esac
  while IFS= read -r item; do
    case "$item" in
      spdx | cyclonedx) out+=("$item") ;;
      *) fail "sbom: '$item' is not an SBOM format (true, false, spdx, cyclonedx, or spdx,cyclonedx)" ;;
    esac
  done < <(split_list "$v")
  local IFS=,
  printf '%s\n' "${out[*]}"
}

# repo_of REF / tag_of REF: ghcr.io/acme/app:1.0 -> ghcr.io/acme/app / 1.0 (a port is not a tag).
repo_of() {
  local last="${1##*/}"
  if [[ "$last" == *:* ]]; then echo "${1%:*}"; else echo "$1"; fi
}
tag_of() {
  local last="${1##*/}"
  if [[ "$last" == *:* ]]; then echo "${last#*:}"; fi
}

# parse_tags VALUE: the push target (PUSH_REF: the first full reference) and the further tags
# (PUSH_TAGS: bare tags, and the tags of further references to the same repository).
parse_tags() {
  PUSH_REF=''
  PUSH_TAGS=()
  local item repo='' tag
  while IFS= read -r item; do
    case "$item" in
      *@*) fail "tags: '$item' names a digest; give references with tags (ghcr.io/acme/app:1.0) or bare tags (latest)" ;;
    esac
    if [[ "$item" == */* ]]; then
      if [ -z "$PUSH_REF" ]; then
        PUSH_REF="$item"
        repo="$(repo_of "$item")"
        continue
      fi
      if [ "$(repo_of "$item")" != "$repo" ]; then
        fail "tags: '$item' is not in the repository of '$PUSH_REF' ($repo); the action pushes to one repository. Copy the image to another one in a later step: imgbuild push docker://$repo@\${{ steps.<id>.outputs.digest }} $item"
      fi
      tag="$(tag_of "$item")"
      [ -n "$tag" ] || fail "tags: '$item' has no tag"
    else
      [ -n "$PUSH_REF" ] || fail "tags: the first entry must be a full reference to push to (ghcr.io/acme/app:1.0), not the bare tag '$item'"
      tag="$item"
    fi
    [[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || fail "tags: '$tag' is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"
    PUSH_TAGS+=("$tag")
  done < <(split_list "$1")
  [ -n "$PUSH_REF" ] || fail "tags: push: true needs at least one image reference to push to, such as ghcr.io/acme/app:1.0"
}
