#!/usr/bin/env bash
# Step 3 of action.yml (with cache: true), before the layer records are saved: drop what no
# build used for 30 days, so the saved records stop growing (a build touches each record it
# uses; `cache prune` keeps records unless given --older-than).
set -euo pipefail
"${IMGBUILD:-imgbuild}" cache prune --older-than 30d
