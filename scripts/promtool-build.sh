#!/usr/bin/env bash
# Builds Prometheus's promtool from the Go module proxy into the tools cache outside the clone
# (like the Temporal CLI and helm), once per machine, and prints its path on stdout — the only
# thing printed there; progress goes to stderr. The deployment test checks the alert rules with it
# (`promtool check rules`, `promtool test rules`).
#
# Environment: ELOQUENT_TOOLS_CACHE (default ~/.cache/eloquent-recovery).
set -euo pipefail

# Prometheus 3.x tags its Go module v0.3MM.P for release 3.MM.P.
PROMETHEUS_MODULE_VERSION=v0.316.0

CACHE="${ELOQUENT_TOOLS_CACHE:-$HOME/.cache/eloquent-recovery}"
DIR="$CACHE/promtool-$PROMETHEUS_MODULE_VERSION"
BIN="$DIR/promtool"

log() { printf 'promtool-build: %s\n' "$*" >&2; }

if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { log "building promtool needs Go (1.24 or later)"; exit 1; }
mkdir -p "$DIR"
tmp=$(mktemp -d "$DIR/.build.XXXXXX")
logfile="$CACHE/promtool-build.log"
usual="3-10 minutes on 2 cores"
began=$(date +%s)
log "building promtool (github.com/prometheus/prometheus $PROMETHEUS_MODULE_VERSION) into $DIR (usually $usual, once per machine; log: $logfile)"
# go install outside any module builds with exactly the dependencies Prometheus's go.mod pins.
(cd "$tmp" && exec env CGO_ENABLED=0 GOBIN="$tmp" nice -n 10 go install -trimpath -ldflags "-s -w" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION") >"$logfile" 2>&1 &
pid=$!
status=0
while kill -0 "$pid" 2>/dev/null; do
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && log "… still building promtool: $(($(date +%s) - began))s so far (usually $usual)"
done
wait "$pid" || status=$?
if ((status != 0)) || [[ ! -x "$tmp/promtool" ]]; then
  tail -n 20 "$logfile" >&2
  rm -rf "$tmp"
  log "building promtool failed (exit $status); see $logfile"
  exit 1
fi
# Moved into place only when complete: an interrupted build never leaves a binary a later run would trust.
mv -f "$tmp/promtool" "$BIN"
rm -rf "$tmp"
log "done building promtool in $(($(date +%s) - began))s"
echo "$BIN"
