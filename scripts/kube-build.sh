#!/usr/bin/env bash
# Builds the local Kubernetes control plane from the Go module proxy: kube-apiserver and
# kube-controller-manager (tools/kube), etcd (tools/etcd) and helm (go install, pinned).
# Binaries go to a cache outside the clone, keyed by version, so a fresh clone reuses them;
# a binary already present is never rebuilt. Prints the directory of each tool on success.
#
# Usage: scripts/kube-build.sh            build what is missing
#        scripts/kube-build.sh --paths    only print the paths (exit 1 if something is missing)
#
# Environment: ELOQUENT_TOOLS_CACHE (default ~/.cache/eloquent-recovery).
set -euo pipefail

KUBE_VERSION=v1.35.4 # must match tools/kube/go.mod
ETCD_VERSION=v3.6.5  # the etcd that k8s.io/kubernetes $KUBE_VERSION requires; tools/etcd/go.mod
HELM_VERSION=v3.20.2 # the v3 release built on k8s.io/client-go v0.35

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${ELOQUENT_TOOLS_CACHE:-$HOME/.cache/eloquent-recovery}"
KUBE_DIR="$CACHE/kube-$KUBE_VERSION"
ETCD_DIR="$CACHE/etcd-$ETCD_VERSION"
HELM_DIR="$CACHE/helm-$HELM_VERSION"

# Progress goes to stderr only: stdout is the KEY=path lines that scripts/kube-stack.sh captures.
log() { printf 'kube-build: %s\n' "$*" >&2; }

# build_step <what> <usual duration> <log file> <command…>: a long first-time build with its output
# in the log, saying every 30 s how long it has been running so a first run never looks hung.
build_step() {
  local what=$1 usual=$2 logfile=$3 began pid status=0
  shift 3
  began=$(date +%s)
  log "$what (usually $usual on 2 cores, once per machine; log: $logfile)"
  "$@" >"$logfile" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && log "… still $what: $(($(date +%s) - began))s so far (usually $usual)"
  done
  wait "$pid" || status=$?
  if ((status != 0)); then
    tail -n 20 "$logfile" >&2
    log "$what failed (exit $status); see $logfile"
    exit 1
  fi
  log "done $what in $(($(date +%s) - began))s"
}

if [[ "${1:-}" == "--paths" ]]; then
  missing=0
  for bin in "$KUBE_DIR/kube-apiserver" "$KUBE_DIR/kube-controller-manager" "$ETCD_DIR/etcd" "$HELM_DIR/helm"; do
    [[ -x "$bin" ]] || { log "missing $bin (run scripts/kube-build.sh)"; missing=1; }
  done
  printf 'KUBE_BIN_DIR=%s\nETCD_BIN_DIR=%s\nHELM_BIN_DIR=%s\n' "$KUBE_DIR" "$ETCD_DIR" "$HELM_DIR"
  exit "$missing"
fi

command -v go >/dev/null || { log "go is not installed"; exit 1; }
grep -q "k8s.io/kubernetes $KUBE_VERSION" "$ROOT/tools/kube/go.mod" ||
  { log "tools/kube/go.mod does not require k8s.io/kubernetes $KUBE_VERSION"; exit 1; }
grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION" "$ROOT/tools/etcd/go.mod" ||
  { log "tools/etcd/go.mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION"; exit 1; }

# Static binaries like the official releases; nice so a first build leaves room for other work.
export CGO_ENABLED=0
GO=(nice -n 10 go)
started=$(date +%s)

# Builds into a temporary directory and moves into place, so an interrupted build never
# leaves a half-written binary that a later run would take as present.
install_bins() { # <dest dir> <tmp dir> <names...>
  local dest=$1 tmp=$2
  shift 2
  for name in "$@"; do mv -f "$tmp/$name" "$dest/$name"; done
  rm -rf "$tmp"
}

kube_missing=()
for name in kube-apiserver kube-controller-manager; do
  [[ -x "$KUBE_DIR/$name" ]] || kube_missing+=("$name")
done
if ((${#kube_missing[@]})); then
  mkdir -p "$KUBE_DIR"
  tmp=$(mktemp -d "$KUBE_DIR/.build.XXXXXX")
  minor=${KUBE_VERSION#v1.}
  minor=${minor%%.*}
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  pkgs=()
  for name in "${kube_missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$name"); done
  build_step "building ${kube_missing[*]} $KUBE_VERSION into $KUBE_DIR" "10-18 minutes" "$CACHE/kube-build.log" \
    bash -c 'cd "$1" && shift && exec "$@"' _ "$ROOT/tools/kube" "${GO[@]}" build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}"
  install_bins "$KUBE_DIR" "$tmp" "${kube_missing[@]}"
else
  log "kube-apiserver, kube-controller-manager $KUBE_VERSION present in $KUBE_DIR"
fi

if [[ ! -x "$ETCD_DIR/etcd" ]]; then
  mkdir -p "$ETCD_DIR"
  tmp=$(mktemp -d "$ETCD_DIR/.build.XXXXXX")
  build_step "building etcd $ETCD_VERSION into $ETCD_DIR" "2-4 minutes" "$CACHE/etcd-build.log" \
    bash -c 'cd "$1" && shift && exec "$@"' _ "$ROOT/tools/etcd" "${GO[@]}" build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
  install_bins "$ETCD_DIR" "$tmp" etcd
else
  log "etcd $ETCD_VERSION present in $ETCD_DIR"
fi

if [[ ! -x "$HELM_DIR/helm" ]]; then
  mkdir -p "$HELM_DIR"
  tmp=$(mktemp -d "$HELM_DIR/.build.XXXXXX")
  # go install builds outside any module, with exactly the dependencies helm's go.mod pins.
  build_step "building helm $HELM_VERSION into $HELM_DIR" "2-5 minutes" "$CACHE/helm-build.log" \
    env GOBIN="$tmp" bash -c 'cd "$1" && shift && exec "$@"' _ "$tmp" "${GO[@]}" install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  install_bins "$HELM_DIR" "$tmp" helm
else
  log "helm $HELM_VERSION present in $HELM_DIR"
fi

log "done in $(($(date +%s) - started))s"
printf 'KUBE_BIN_DIR=%s\nETCD_BIN_DIR=%s\nHELM_BIN_DIR=%s\n' "$KUBE_DIR" "$ETCD_DIR" "$HELM_DIR"
