#!/usr/bin/env bash
# The whole test suite, from a fresh clone: system tools, npm packages, compile, run (see
# scripts/run-tests.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
npm ci --no-audit --no-fund
npm run build
bash scripts/run-tests.sh
