#!/usr/bin/env bash
# The main job on the built-in example: install, compile, build examples/hello into an OCI
# layout, print its digest and a look inside.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
npm run build
node dist/builder/imgbuild.cjs build examples/hello -o hello.oci
node dist/builder/imgbuild.cjs inspect hello.oci
