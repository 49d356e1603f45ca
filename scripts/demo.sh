#!/usr/bin/env bash
# The main job: installs dependencies, brings the local stack up, runs the demo against it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash scripts/stack.sh up
npx tsx scripts/demo.ts "$@"
