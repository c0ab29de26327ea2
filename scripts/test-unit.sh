#!/usr/bin/env bash
# The tests that need no system tool (no registry, skopeo, nix, ...): compile, then run the unit
# tier (scripts/test-tiers.mjs decides which files are in it). Needs `npm ci` to have been run.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build
bash scripts/run-tests.sh unit
