#!/usr/bin/env bash
# The whole test command: installs dependencies, brings the local stack up, type-checks, runs jest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash scripts/stack.sh up
npx tsc --noEmit -p tsconfig.json
npx jest "$@"
