#!/usr/bin/env bash
# The first run as a newcomer has it: the README's two commands, `npm run demo` then `npm test`, in a
# fresh clone of this checkout's HEAD, with an empty tools cache, an empty state directory and empty
# Go and npm caches, so every build and download happens as on a machine that has nothing. The
# project's own servers (Temporal, ClickHouse, the Kubernetes control plane) run on other ports than
# the usual stack's, so a running stack (and the tests using it) is not disturbed; the machine's
# PostgreSQL, Redis and NATS are shared, as on any machine. Not part of CI: it takes 30-45 minutes.
#
# Usage: scripts/fresh-machine-check.sh [--warm-go] [--keep]
#   --warm-go  reuse this machine's Go build and module caches (only the tools cache is empty)
#   --keep     keep the scratch directory (clone, logs, caches) instead of removing it
# Prints each step's time and the log it wrote; exits non-zero if a step failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
warm_go=false keep=false
for arg in "$@"; do
  case "$arg" in
    --warm-go) warm_go=true ;;
    --keep) keep=true ;;
    *) echo "usage: $0 [--warm-go] [--keep]" >&2; exit 2 ;;
  esac
done

scratch=$(mktemp -d /tmp/eloquent-fresh-check.XXXXXX)
began=$(date +%s)
note() { printf '[fresh %4ss] %s\n' "$(($(date +%s) - began))" "$*" >&2; }
[ -z "$(git -C "$ROOT" status --porcelain)" ] || note "note: uncommitted changes are not in the check (it clones HEAD)"

export ELOQUENT_TOOLS_CACHE="$scratch/tools-cache"
export ELOQUENT_STATE_DIR="$scratch/state"
export npm_config_cache="$scratch/npm-cache"
if ! $warm_go; then
  export GOCACHE="$scratch/go-build-cache" GOMODCACHE="$scratch/go-mod-cache"
fi
# Other ports than the usual stack's (scripts/stack.sh and kube-stack.sh read these; so do the worker
# and the tests, through the same variables).
export TEMPORAL_ADDRESS=127.0.0.1:17233 TEMPORAL_UI_PORT=18233
export CLICKHOUSE_URL=http://127.0.0.1:18123 CLICKHOUSE_TCP_PORT=19000 CLICKHOUSE_INTERSERVER_PORT=19009
export KUBE_ETCD_PORT=33790 KUBE_ETCD_PEER_PORT=33800 KUBE_API_PORT=16443 KUBE_CM_PORT=20257
export METRICS_PORT=19464

running=
cleanup() {
  if [ -n "$running" ]; then
    kill -TERM -- "-$running" 2>/dev/null # the step's process group: npm, jest, go builds
    wait "$running" 2>/dev/null
    # Until every process of the group is gone, so nothing still writes into the scratch directory.
    for _ in $(seq 1 150); do pgrep -g "$running" >/dev/null || break; sleep 0.2; done
  fi
  note "stopping the check's servers"
  (cd "$scratch/clone" 2>/dev/null && bash scripts/stack.sh down >/dev/null 2>&1)
  # Anything of the check still running (a daemon whose pid file a restart replaced): by its paths.
  pkill -TERM -f -- "$scratch/" 2>/dev/null
  sleep 1
  if $keep; then note "kept $scratch"; else
    chmod -R u+w "$scratch" 2>/dev/null # Go's module cache is read-only
    rm -rf "$scratch" 2>/dev/null || { sleep 2; rm -rf "$scratch"; }
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # so an interrupted check still stops its servers and removes its scratch

git clone --quiet "$ROOT" "$scratch/clone" || { note "git clone failed"; exit 1; }
cd "$scratch/clone" || exit 1
note "fresh clone of $(git rev-parse --short HEAD) in $scratch/clone; tools cache, state, npm$($warm_go || echo ', Go') caches empty"

results=()
failed=0
step() { # <name> <command…>: runs one step with its output in a log, records its time
  local name=$1 log="$scratch/${1// /-}.log" t0 rc
  shift
  note "running $name (log: $log)"
  t0=$(date +%s)
  # In the background and waited for: bash runs the INT/TERM trap only between commands, and `wait`
  # is one, so an interrupted check stops the step's whole process group and still cleans up.
  setsid "$@" >"$log" 2>&1 &
  running=$!
  wait "$running"
  rc=$?
  running=
  results+=("$(printf '%-14s %6ss  exit %-3s %s' "$name" "$(($(date +%s) - t0))" "$rc" "$log")")
  note "$name: exit $rc after $(($(date +%s) - t0))s; last lines:"
  tail -n 3 "$log" >&2
  [ "$rc" = 0 ] || failed=1
}

step "npm run demo" npm run demo
step "npm test" npm test

printf '\n%-14s %7s  %-8s %s\n' STEP TIME EXIT LOG
printf '%s\n' "${results[@]}"
# The first-time steps inside them, as the scripts reported them.
grep -hoE 'done (building|installing|updating)[^(]* in [0-9]+s|npm ci.*|added [0-9]+ packages in [0-9.]+m?s' "$scratch"/*.log 2>/dev/null | sed 's/^/  /'
exit "$failed"
