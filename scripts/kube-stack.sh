#!/usr/bin/env bash
# The local Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager, built by
# scripts/kube-build.sh (cached outside the clone). No scheduler and no kubelet: pods stay
# Pending unless a test plays the kubelet (test/helpers/fake-kubelet.ts).
#
# Usage: scripts/kube-stack.sh up|down|status|env|clean
#   up      build what is missing, start what is not running, wait until ready, then create the
#           namespaces `eloquent` and `velero` and install Velero's Backup CRD (idempotent)
#   down    stop the three services (data is kept)
#   status  one line per service: name, address, version, up/down (status-lines: without header,
#           for scripts/stack.sh status); etcd, kube-api (apiserver), kube-cm (controller manager)
#   env     print KUBECONFIG and HELM_BIN for other scripts and tests
#   clean   down, then remove the state directory (certificates, tokens, etcd data)
#
# State (certificates, tokens, kubeconfigs, etcd data, logs, pid files) lives once per machine in
# ${ELOQUENT_STATE_DIR:-$HOME/.local/state/eloquent-recovery}/kube, so every clone uses the same control
# plane and credentials; `up` links it as .data/kube, where the worker's default KUBECONFIG_PATH looks.
#
# Ports (127.0.0.1 only): KUBE_ETCD_PORT (23790, peer 23800), KUBE_API_PORT (6443),
# KUBE_CM_PORT (10257).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${ELOQUENT_STATE_DIR:-$HOME/.local/state/eloquent-recovery}/kube"
PKI="$DATA/pki"
ETCD_PORT="${KUBE_ETCD_PORT:-23790}"
ETCD_PEER_PORT="${KUBE_ETCD_PEER_PORT:-23800}"
API_PORT="${KUBE_API_PORT:-6443}"
CM_PORT="${KUBE_CM_PORT:-10257}"
API_URL="https://127.0.0.1:$API_PORT"
SERVICES=(etcd kube-apiserver kube-controller-manager)

log() { printf 'kube-stack: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

load_paths() {
  local paths
  if ! paths=$("$ROOT/scripts/kube-build.sh" --paths 2>/dev/null); then
    [[ "${1:-}" == build ]] || return 1
    paths=$("$ROOT/scripts/kube-build.sh")
  fi
  eval "$paths"
  HELM_BIN="$HELM_BIN_DIR/helm"
}

pid_of() { # prints the pid of a running service of ours, or fails
  local pidfile="$DATA/$1.pid" pid
  [[ -f "$pidfile" ]] || return 1
  pid=$(<"$pidfile")
  # The command line check guards against a recycled pid after a reboot.
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$1" ||
    return 1
  echo "$pid"
}

admin_token() { cut -d, -f1 <(grep ',admin,' "$DATA/tokens.csv"); }

api() { # <method> <path> [curl args...]: the API server as admin
  local method=$1 path=$2
  shift 2
  curl -sS --fail-with-body --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(admin_token)" \
    -X "$method" "$API_URL$path" "$@"
}

make_pki() {
  mkdir -p "$PKI"
  chmod 700 "$DATA" "$PKI"
  if [[ ! -f "$PKI/ca.crt" ]]; then
    log "creating a CA and the API server's serving certificate in $PKI"
    openssl req -x509 -new -nodes -newkey rsa:2048 -days 3650 -subj "/CN=eloquent-recovery-local-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
    rm -f "$PKI/apiserver.crt"
  fi
  if [[ ! -f "$PKI/apiserver.crt" ]]; then
    openssl req -new -nodes -newkey rsa:2048 -subj "/CN=kube-apiserver" \
      -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc" \
      "extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature,keyEncipherment" >"$PKI/apiserver.ext"
    openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
      -days 825 -extfile "$PKI/apiserver.ext" -out "$PKI/apiserver.crt" 2>/dev/null
    rm -f "$PKI/apiserver.csr"
  fi
  if [[ ! -f "$PKI/sa.key" ]]; then
    log "creating the service-account signing key"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
    openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
  fi
  if [[ ! -f "$DATA/tokens.csv" ]]; then
    # token,user,uid,"groups": the admin is in system:masters; the controller manager gets the
    # bootstrap RBAC role of its user and runs each controller with its own service account.
    printf '%s,admin,uid-admin,"system:masters"\n%s,system:kube-controller-manager,uid-kcm\n' \
      "$(openssl rand -hex 32)" "$(openssl rand -hex 32)" >"$DATA/tokens.csv"
    chmod 600 "$DATA/tokens.csv"
  fi
}

write_kubeconfig() { # <file> <user> <token>
  local ca
  ca=$(base64 -w0 <"$PKI/ca.crt")
  umask 077
  cat >"$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: eloquent-local
    cluster:
      server: $API_URL
      certificate-authority-data: $ca
users:
  - name: $2
    user:
      token: $3
contexts:
  - name: eloquent-local
    context:
      cluster: eloquent-local
      user: $2
      namespace: eloquent
current-context: eloquent-local
EOF
  mv "$1.tmp" "$1"
}

start() { # <name> <binary> <args...>: start detached unless already running
  local name=$1 bin=$2
  shift 2
  if pid=$(pid_of "$name"); then
    log "$name already running (pid $pid)"
    return 0
  fi
  if [[ "$name" == kube-apiserver ]] && (exec 3<>"/dev/tcp/127.0.0.1/$API_PORT") 2>/dev/null; then
    die "port $API_PORT is taken by another process (a control plane started from an older clone's .data/kube?); stop it: ss -ltnp 'sport = :$API_PORT'"
  fi
  log "starting $name (log: $DATA/$name.log)"
  setsid "$bin" "$@" >>"$DATA/$name.log" 2>&1 </dev/null &
  echo $! >"$DATA/$name.pid"
}

wait_for() { # <name> <seconds> <check command...>
  local name=$1 deadline=$(($(date +%s) + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ! pid_of "$name" >/dev/null; then
      log "$name exited; last lines of $DATA/$name.log:"
      tail -n 20 "$DATA/$name.log" >&2
      die "$name failed to start (log: $DATA/$name.log)"
    fi
    if (($(date +%s) > deadline)); then
      tail -n 20 "$DATA/$name.log" >&2
      die "$name did not become ready (log: $DATA/$name.log)"
    fi
    sleep 0.5
  done
}

etcd_healthy() { curl -sf "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
api_ready() { [[ "$(curl -sf --cacert "$PKI/ca.crt" "$API_URL/readyz")" == ok ]]; }
cm_healthy() { [[ "$(curl -sfk "https://127.0.0.1:$CM_PORT/healthz")" == ok ]]; }

apply_yaml() { # <api path of the object> <file>: server-side apply, so re-running changes nothing
  api PATCH "$1?fieldManager=eloquent-kube-stack&force=true" \
    -H 'Content-Type: application/apply-patch+yaml' --data-binary "@$2" >/dev/null
}

apply_cluster_objects() {
  local tmp
  tmp=$(mktemp -d)
  for ns in eloquent velero; do
    printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$ns" >"$tmp/ns.yaml"
    apply_yaml "/api/v1/namespaces/$ns" "$tmp/ns.yaml"
  done
  apply_yaml /apis/apiextensions.k8s.io/v1/customresourcedefinitions/backups.velero.io \
    "$ROOT/test/fixtures/velero-crds.yaml"
  rm -rf "$tmp"
  wait_for kube-apiserver 30 api GET /apis/velero.io/v1/namespaces/velero/backups
  log "namespaces eloquent, velero and CRD backups.velero.io are in place"
}

up() {
  local started
  started=$(date +%s)
  load_paths build
  mkdir -p "$DATA" "$ROOT/.tools/bin" "$ROOT/.data"
  # The helm of this stack where the worker's default HELM_BIN can find it, like .tools/bin/temporal.
  ln -sfn "$HELM_BIN" "$ROOT/.tools/bin/helm"
  # A clone from before the state moved out holds its own .data/kube: set it aside (it is disposable).
  if [[ -d "$ROOT/.data/kube" && ! -L "$ROOT/.data/kube" ]]; then
    mv "$ROOT/.data/kube" "$ROOT/.data/kube.old-$(date +%s)"
    log "moved this clone's own .data/kube aside; the control plane's state is now $DATA"
  fi
  ln -sfn "$DATA" "$ROOT/.data/kube"
  make_pki
  write_kubeconfig "$DATA/kubeconfig" admin "$(admin_token)"
  write_kubeconfig "$DATA/controller-manager.kubeconfig" system:kube-controller-manager \
    "$(cut -d, -f1 <(grep ',system:kube-controller-manager,' "$DATA/tokens.csv"))"

  # No fsync: this is disposable local state, and fsync dominates etcd's latency on shared disks.
  start etcd "$ETCD_BIN_DIR/etcd" --name local --data-dir "$DATA/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn
  wait_for etcd 30 etcd_healthy

  # The endpoint reconciler is off: it would publish 127.0.0.1 as the `kubernetes` Service's
  # endpoint, which endpoint validation rejects (loopback), and nothing here dials the Service.
  start kube-apiserver "$KUBE_BIN_DIR/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" --token-auth-file "$DATA/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none \
    --profiling=false
  wait_for kube-apiserver 90 api_ready

  # No --authentication/authorization-kubeconfig: its own endpoints then serve only /healthz,
  # /readyz and /livez, which is all this stack reads from it.
  start kube-controller-manager "$KUBE_BIN_DIR/kube-controller-manager" \
    --kubeconfig "$DATA/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$CM_PORT" --leader-elect=false \
    --controllers deployment-controller,replicaset-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller \
    --use-service-account-credentials \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --profiling=false
  wait_for kube-controller-manager 60 cm_healthy

  apply_cluster_objects
  log "ready in $(($(date +%s) - started))s; KUBECONFIG=$DATA/kubeconfig"
}

down() {
  local i pid
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    name=${SERVICES[$i]}
    if pid=$(pid_of "$name"); then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid"
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -0 "$pid" 2>/dev/null && { log "$name did not stop in 10s; killing it"; kill -KILL "$pid"; }
    fi
    rm -f "$DATA/$name.pid"
  done
}

status_line() { # <name> <address> <version or empty when down>: the format of scripts/stack.sh
  local state=up
  [[ -n "$3" ]] || state=down
  printf '%-11s %-22s %-14s %s\n' "$1" "$2" "${3:--}" "$state"
  [[ "$state" == up ]]
}

status_lines() { # etcd, kube-api(server), kube-cm (controller manager); fails if any is down
  local version ok=0
  version=
  pid_of etcd >/dev/null && etcd_healthy &&
    version=$(curl -sf "http://127.0.0.1:$ETCD_PORT/version" | sed -n 's/.*"etcdserver":"\([^"]*\)".*/v\1/p')
  status_line etcd "127.0.0.1:$ETCD_PORT" "$version" || ok=1
  version=
  pid_of kube-apiserver >/dev/null && api_ready &&
    version=$(curl -sf --cacert "$PKI/ca.crt" "$API_URL/version" | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')
  status_line kube-api "127.0.0.1:$API_PORT" "$version" || ok=1
  version=
  pid_of kube-controller-manager >/dev/null && cm_healthy &&
    version=$("$KUBE_BIN_DIR/kube-controller-manager" --version 2>/dev/null | awk '{print $2}')
  status_line kube-cm "127.0.0.1:$CM_PORT" "$version" || ok=1
  return "$ok"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status | status-lines)
    load_paths || true # not built: every service shows as down
    [[ "$1" == status-lines ]] || printf '%-11s %-22s %-14s %s\n' SERVICE ADDRESS VERSION STATUS
    status_lines ;;
  env) load_paths || die "the control plane is not built (scripts/kube-build.sh)"
    printf 'KUBECONFIG=%s\nHELM_BIN=%s\n' "$DATA/kubeconfig" "$HELM_BIN" ;;
  clean) down; rm -rf "$DATA"; log "removed $DATA" ;;
  *) die "usage: $0 up|down|status|status-lines|env|clean" ;;
esac
