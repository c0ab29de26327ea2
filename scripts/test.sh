#!/usr/bin/env bash
# The whole test suite, from a fresh clone: system tools, npm packages, compile, run (both tiers,
# see scripts/run-tests.sh and scripts/test-tiers.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
npm ci --no-audit --no-fund
npm run build
bash scripts/run-tests.sh unit tools
