#!/usr/bin/env bash
# The whole test command: installs dependencies, brings the local stack up, type-checks, lints
# (ESLint, Prettier), then runs
# jest twice — the suite in parallel, then the outage tests (test/outage/) one at a time, alone,
# because they stop shared servers (ClickHouse) or kill workers. Ends with one summary line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
bash scripts/stack.sh up
bash scripts/stack.sh up kube   # the Kubernetes tests need the control plane: built here on first use
bash scripts/stack.sh up s3     # the S3-compatible backup store's tests: gofakes3, built here on first use
bash scripts/promtool-build.sh >/dev/null   # the alert rules' test (promtool check/test rules), built here on first use
npx tsc --noEmit -p tsconfig.json
npx eslint .                  # typescript-eslint, and the workflow rule: no Node built-ins in workflow code
npx prettier --check .        # one layout, 120 columns (`npm run format` fixes it)

results=.data/test/results
rm -rf "$results" && mkdir -p "$results"
status=0
npx jest --testPathIgnorePatterns '/test/outage/' --json --outputFile="$results/suite.json" "$@" || status=$?
npx jest test/outage --runInBand --json --outputFile="$results/outage.json" "$@" || status=$?
bash scripts/stack.sh up >/dev/null   # an outage test that failed midway may have left a server down

node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const f of fs.readdirSync(process.argv[1])) {
    const r = JSON.parse(fs.readFileSync(process.argv[1] + "/" + f, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests + r.numRuntimeErrorTestSuites; skipped += r.numPendingTests;
  }
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$results"
exit "$status"
