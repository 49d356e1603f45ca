#!/usr/bin/env bash
# The local stack of eloquent-recovery: every server the worker, the demo and the tests talk to.
#
#   scripts/stack.sh up [service…]      start what is not running, wait until each answers (idempotent)
#   scripts/stack.sh down [service…]    stop the servers this project owns (ClickHouse, Temporal, Kubernetes)
#   scripts/stack.sh status             one line per service: address, version, status
#   scripts/stack.sh restart <service>  stop then start one service (tests use it to simulate an outage)
#
# Services: postgres redis nats clickhouse temporal, the default set of `up` (what the worker and the
# demo use), kube (the Kubernetes control plane, built on first use; only when named:
# `scripts/stack.sh up kube`, as scripts/test.sh does) and s3 (an S3-compatible server, gofakes3
# built from the Go module proxy on first use, for BACKUP_STORE=s3; also only when named:
# `scripts/stack.sh up s3`). Its address and bucket follow S3_ENDPOINT and S3_BUCKET.
# Everything this script prints about its progress goes to stderr; stdout carries only what a caller
# may capture (`status`). Ports follow the worker's own variables (TEMPORAL_ADDRESS, CLICKHOUSE_URL)
# and TEMPORAL_UI_PORT, CLICKHOUSE_TCP_PORT, CLICKHOUSE_INTERSERVER_PORT, so a second stack (the
# fresh-machine check) can run beside the usual one with its own ELOQUENT_STATE_DIR.
# PostgreSQL, Redis and NATS belong to the machine: they are started when down (and installed with
# apt-get when missing) but never stopped by `down` unless named explicitly.
# The servers this project runs keep their data and pid files in one place per machine,
# ${ELOQUENT_STATE_DIR:-$HOME/.local/state/eloquent-recovery}, so every clone (a developer's, CI's fresh
# one) finds, reuses, stops and restarts the same servers. Built tools are cached outside the clone,
# keyed by version, in ${ELOQUENT_TOOLS_CACHE:-$HOME/.cache/eloquent-recovery}. .data/ in the clone
# holds only what belongs to it (test bundle and results, default backup directory).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$ROOT/.data"
STATE="${ELOQUENT_STATE_DIR:-$HOME/.local/state/eloquent-recovery}"
TOOLS_CACHE="${ELOQUENT_TOOLS_CACHE:-$HOME/.cache/eloquent-recovery}"
TEMPORAL_CLI_VERSION="v1.5.1"
TEMPORAL_PORT="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"; TEMPORAL_PORT="${TEMPORAL_PORT##*:}"
TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_URL:-http://127.0.0.1:8123}"; CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_HTTP_PORT##*:}"
CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_HTTP_PORT%%/*}"
CLICKHOUSE_TCP_PORT="${CLICKHOUSE_TCP_PORT:-9000}"
CLICKHOUSE_INTERSERVER_PORT="${CLICKHOUSE_INTERSERVER_PORT:-9009}"
CLICKHOUSE_CONFIG_DIR="${CLICKHOUSE_CONFIG_DIR:-/etc/clickhouse-server}"  # the package's config, copied and moved
S3_PORT="${S3_ENDPOINT:-http://127.0.0.1:9510}"; S3_PORT="${S3_PORT##*:}"; S3_PORT="${S3_PORT%%/*}"
S3_BUCKET="${S3_BUCKET:-eloquent-backups}"
GOFAKES3_VERSION="v1.2.0"  # must match tools/gofakes3/go.mod
PG_PORT=5432
REDIS_PORT=6379
NATS_PORT=4222
PLATFORM_DB="${PLATFORM_DB:-eloquent}"
DEFAULT_SERVICES=(postgres redis nats clickhouse temporal)

started_at=$(date +%s)
say() { printf '[stack %3ss] %s\n' "$(( $(date +%s) - started_at ))" "$*" >&2; }
fail() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# wait_for <service> <log file> <seconds> <command…>: polls the command until it succeeds.
wait_for() {
  local service=$1 log=$2 seconds=$3; shift 3
  local deadline=$(( $(date +%s) + seconds )) next_note=$(( $(date +%s) + 10 ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      fail "$service did not answer within ${seconds}s; see its log: $log"
    fi
    if [ "$(date +%s)" -ge "$next_note" ]; then say "still waiting for $service…"; next_note=$(( $(date +%s) + 10 )); fi
    sleep 0.5
  done
}

# long_step <what> <usual duration> <log file> <command…>: runs a first-time step (a build, an
# install) with its output in the log, and says every 20 s that it is still working and for how
# long, so a newcomer's first run never looks hung. Fails naming the log.
long_step() {
  local what=$1 usual=$2 log=$3; shift 3
  local began; began=$(date +%s)
  mkdir -p "$(dirname "$log")"
  say "$what (usually $usual, once per machine; log: $log)"
  "$@" >"$log" 2>&1 &
  local pid=$! status=0
  while kill -0 "$pid" 2>/dev/null; do
    local i; for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && say "… still $what: $(( $(date +%s) - began ))s so far (usually $usual)"
  done
  wait "$pid" || status=$?
  [ "$status" = 0 ] || { tail -n 20 "$log" >&2; fail "$what failed (exit $status); see $log"; }
  say "done $what in $(( $(date +%s) - began ))s"
}

apt_install() {
  if [ ! -f "$DATA/.apt-updated" ] || [ -n "$(find "$DATA/.apt-updated" -mmin +720 2>/dev/null)" ]; then
    mkdir -p "$DATA"
    long_step "updating apt's package lists" "under a minute" "$DATA/apt-update.log" apt-get update
    touch "$DATA/.apt-updated"
  fi
  long_step "installing $* with apt-get" "1-3 minutes" "$DATA/apt-install.log" \
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop_by_pid_file <name> <pid file>: stops a server this script started in the background, waits
# until it has exited, and removes its pid file.
stop_by_pid_file() {
  local name=$1 pidfile=$2
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    say "stopping $name"
    kill "$(cat "$pidfile")"
    while kill -0 "$(cat "$pidfile")" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "$pidfile"
}

# ---------------------------------------------------------------- PostgreSQL
pg_answers() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }
pg_version() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc 'show server_version' 2>/dev/null | cut -d' ' -f1; }
up_postgres() {
  command -v pg_ctlcluster >/dev/null || apt_install postgresql postgresql-client
  if ! pg_answers; then
    local version; version=$(ls /etc/postgresql | sort -V | tail -n 1)
    say "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_for postgres "/var/log/postgresql/postgresql-$version-main.log" 60 pg_answers
  fi
  if [ "$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PLATFORM_DB'")" != 1 ]; then
    say "creating database $PLATFORM_DB"
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE \"$PLATFORM_DB\""
  fi
}
down_postgres() { local v; v=$(ls /etc/postgresql | sort -V | tail -n 1); pg_ctlcluster --skip-systemctl-redirect "$v" main stop || true; }

# ---------------------------------------------------------------- Redis
redis_answers() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
redis_version() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info server 2>/dev/null | sed -n 's/^redis_version:\(.*\)\r$/\1/p'; }
up_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  if ! redis_answers; then
    say "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_for redis /var/log/redis/ci.log 30 redis_answers
  fi
}
down_redis() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; }

# ---------------------------------------------------------------- NATS JetStream
nats_info() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT; head -n 1 <&3" 2>/dev/null; }
nats_answers() { nats_info | grep -q '"jetstream":true'; }
nats_version() { nats_info | sed -n 's/.*"version":"\([^"]*\)".*/\1/p'; }
up_nats() {
  command -v nats-server >/dev/null || apt_install nats-server
  if ! nats_answers; then
    port_open "$NATS_PORT" && fail "something answers on 127.0.0.1:$NATS_PORT but JetStream is off; restart NATS with -js"
    say "starting NATS with JetStream"
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
      -a 127.0.0.1 -p "$NATS_PORT" -js -sd /var/lib/nats-server -l /var/log/nats-server.log
    wait_for nats /var/log/nats-server.log 30 nats_answers
  fi
}
down_nats() { start-stop-daemon --stop --oknodo --exec "$(command -v nats-server)" >/dev/null || true; }

# ---------------------------------------------------------------- ClickHouse
CH_DIR="$STATE/clickhouse"
ch_answers() { [ "$(curl -fsS "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/ping" 2>/dev/null)" = "Ok." ]; }
ch_version() { curl -fsS "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/?query=SELECT%20version()" 2>/dev/null; }
up_clickhouse() {
  command -v clickhouse-server >/dev/null || apt_install clickhouse-server clickhouse-client
  ch_answers && return 0
  port_open "$CLICKHOUSE_HTTP_PORT" && fail "port $CLICKHOUSE_HTTP_PORT is taken by something that is not ClickHouse"
  mkdir -p "$CH_DIR/data" "$CH_DIR/log"
  # Debian's config with every path moved under $CH_DIR; users.xml as shipped (users "default", "readonly").
  sed -e "s#/var/lib/clickhouse/#$CH_DIR/data/#g" -e "s#/var/log/clickhouse-server/#$CH_DIR/log/#g" \
    -e "s#<http_port>[0-9]*</http_port>#<http_port>$CLICKHOUSE_HTTP_PORT</http_port>#" \
    -e "s#<tcp_port>[0-9]*</tcp_port>#<tcp_port>$CLICKHOUSE_TCP_PORT</tcp_port>#" \
    -e "s#<interserver_http_port>[0-9]*</interserver_http_port>#<interserver_http_port>$CLICKHOUSE_INTERSERVER_PORT</interserver_http_port>#" \
    "$CLICKHOUSE_CONFIG_DIR/config.xml" >"$CH_DIR/config.xml"
  cp "$CLICKHOUSE_CONFIG_DIR/users.xml" "$CH_DIR/users.xml"
  say "starting ClickHouse (data in $CH_DIR)"
  clickhouse-server --config-file="$CH_DIR/config.xml" --pid-file="$CH_DIR/clickhouse.pid" --daemon \
    || fail "clickhouse could not start; see its log: $CH_DIR/log/clickhouse-server.err.log"
  wait_for clickhouse "$CH_DIR/log/clickhouse-server.err.log" 60 ch_answers
}
down_clickhouse() {
  if [ -f "$CH_DIR/clickhouse.pid" ] && kill -0 "$(cat "$CH_DIR/clickhouse.pid")" 2>/dev/null; then
    say "stopping ClickHouse"
    kill "$(cat "$CH_DIR/clickhouse.pid")"
    local i; for i in $(seq 1 60); do ch_answers || break; sleep 0.5; done
    while kill -0 "$(cat "$CH_DIR/clickhouse.pid")" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "$CH_DIR/clickhouse.pid"
}

# ---------------------------------------------------------------- Temporal
TEMPORAL_DIR="$STATE/temporal"
# temporal_bin prints the path of the Temporal CLI, building it first if needed. Its stdout is
# captured (`bin=$(temporal_bin)`): the path is the only thing it may print there.
temporal_bin() {
  local cached="$TOOLS_CACHE/temporal-$TEMPORAL_CLI_VERSION/temporal"
  if [ -x "$ROOT/.tools/bin/temporal" ]; then echo "$ROOT/.tools/bin/temporal"; return; fi
  if [ ! -x "$cached" ]; then
    if command -v temporal >/dev/null; then command -v temporal; return; fi
    command -v go >/dev/null || fail "building Temporal needs Go; install Go 1.22 or later"
    mkdir -p "$(dirname "$cached")"
    # One build per machine: an `up` from another checkout or a parallel run waits for this one
    # (seen: nine parallel builds of several minutes each on two cores). The lock goes with the subshell.
    exec 9>"$(dirname "$cached")/.build.lock"
    if ! flock -n 9; then
      say "waiting for another build of the Temporal CLI $TEMPORAL_CLI_VERSION (log: $TOOLS_CACHE/temporal-build.log)"
      flock 9
    fi
    if [ ! -x "$cached" ]; then
      long_step "building the Temporal CLI $TEMPORAL_CLI_VERSION from the Go module proxy" "2-8 minutes on 2 cores" \
        "$TOOLS_CACHE/temporal-build.log" env GOBIN="$(dirname "$cached")" \
        go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION"
      [ -x "$cached" ] || fail "go install finished but $cached is missing; see $TOOLS_CACHE/temporal-build.log"
    fi
    exec 9>&-
  fi
  mkdir -p "$ROOT/.tools/bin"
  ln -sf "$cached" "$ROOT/.tools/bin/temporal"
  echo "$ROOT/.tools/bin/temporal"
}
# temporal_installed prints the path of a Temporal CLI already on the machine, or nothing: it never
# builds, so `status` and health checks answer at once on a machine that has none yet.
temporal_installed() {
  local cached="$TOOLS_CACHE/temporal-$TEMPORAL_CLI_VERSION/temporal"
  if [ -x "$ROOT/.tools/bin/temporal" ]; then echo "$ROOT/.tools/bin/temporal"
  elif [ -x "$cached" ]; then echo "$cached"
  elif command -v temporal >/dev/null; then command -v temporal
  fi
}
temporal_answers() {
  local bin; bin=$(temporal_installed)
  [ -n "$bin" ] && "$bin" operator cluster health --address "127.0.0.1:$TEMPORAL_PORT" 2>/dev/null | grep -q SERVING
}
temporal_version() {
  local bin; bin=$(temporal_installed)
  [ -n "$bin" ] && "$bin" --version 2>/dev/null | sed -n 's/.*(Server \([^,]*\),.*/\1/p'
}
up_temporal() {
  local bin; bin=$(temporal_bin)
  if ! temporal_answers; then
    port_open "$TEMPORAL_PORT" && fail "port $TEMPORAL_PORT is taken by something that is not a Temporal server"
    mkdir -p "$TEMPORAL_DIR"
    say "starting the Temporal dev server (SQLite in $TEMPORAL_DIR, UI on :$TEMPORAL_UI_PORT)"
    nohup "$bin" server start-dev --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
      --db-filename "$TEMPORAL_DIR/temporal.db" --log-level warn \
      --search-attribute OrgId=Keyword --search-attribute Operation=Keyword \
      >"$TEMPORAL_DIR/server.log" 2>&1 &
    echo $! >"$TEMPORAL_DIR/server.pid"
    wait_for temporal "$TEMPORAL_DIR/server.log" 120 temporal_answers
  fi
  # A server started earlier (or elsewhere) may lack them: creating an existing attribute is a no-op.
  local attrs; attrs=$("$bin" operator search-attribute list --address "127.0.0.1:$TEMPORAL_PORT" 2>/dev/null || true)
  for name in OrgId Operation; do
    if ! grep -qw "$name" <<<"$attrs"; then
      say "registering search attribute $name"
      "$bin" operator search-attribute create --address "127.0.0.1:$TEMPORAL_PORT" --name "$name" --type Keyword >/dev/null
    fi
  done
}
down_temporal() { stop_by_pid_file Temporal "$TEMPORAL_DIR/server.pid"; }

# ---------------------------------------------------------------- S3-compatible server (gofakes3)
S3_DIR="$STATE/s3"
# s3_bin prints the path of the gofakes3 server, building tools/gofakes3 first if needed; like
# temporal_bin its stdout is captured, so it prints nothing else there.
s3_bin() {
  local dir="$TOOLS_CACHE/gofakes3-$GOFAKES3_VERSION"
  if [ ! -x "$dir/gofakes3-server" ]; then
    command -v go >/dev/null || fail "building the S3 test server needs Go; install Go 1.24 or later"
    grep -q "github.com/johannesboyne/gofakes3 $GOFAKES3_VERSION" "$ROOT/tools/gofakes3/go.mod" \
      || fail "tools/gofakes3/go.mod does not require gofakes3 $GOFAKES3_VERSION"
    mkdir -p "$dir"
    # Built beside the target and moved into place: an interrupted build leaves no binary to trust.
    long_step "building gofakes3 $GOFAKES3_VERSION from the Go module proxy" "under a minute" \
      "$TOOLS_CACHE/gofakes3-build.log" env CGO_ENABLED=0 bash -c 'cd "$1" && go build -trimpath -ldflags "-s -w" -o "$2"' _ \
      "$ROOT/tools/gofakes3" "$dir/.gofakes3-server.build"
    mv -f "$dir/.gofakes3-server.build" "$dir/gofakes3-server"
  fi
  echo "$dir/gofakes3-server"
}
# The server answers and holds the bucket (HEAD bucket is 200 only then).
s3_answers() { curl -fs -o /dev/null -I "http://127.0.0.1:$S3_PORT/$S3_BUCKET"; }
s3_version() { echo "gofakes3 $GOFAKES3_VERSION"; }
up_s3() {
  local bin; bin=$(s3_bin)
  s3_answers && return 0
  port_open "$S3_PORT" && fail "port $S3_PORT is taken by something that does not serve bucket $S3_BUCKET"
  mkdir -p "$S3_DIR"
  say "starting gofakes3 on 127.0.0.1:$S3_PORT (bucket $S3_BUCKET, objects in $S3_DIR/s3.bolt)"
  nohup "$bin" -addr "127.0.0.1:$S3_PORT" -bucket "$S3_BUCKET" -db "$S3_DIR/s3.bolt" >"$S3_DIR/server.log" 2>&1 &
  echo $! >"$S3_DIR/server.pid"
  wait_for s3 "$S3_DIR/server.log" 30 s3_answers
}
down_s3() { stop_by_pid_file gofakes3 "$S3_DIR/server.pid"; }

# ---------------------------------------------------------------- Kubernetes (its own script)
up_kube() { "$ROOT/scripts/kube-stack.sh" up; }
down_kube() { "$ROOT/scripts/kube-stack.sh" down; }

# ---------------------------------------------------------------- status
status_line() {
  local service=$1 address=$2 answers=$3 version=$4
  local state=down shown=-
  if $answers >/dev/null 2>&1; then state=up; shown=$($version 2>/dev/null || true); fi
  printf '%-11s %-22s %-14s %s\n' "$service" "$address" "${shown:--}" "$state"
  [ "$state" = up ]
}
# status [service…]: one line per service (default: every service of `up`, and the control plane
# once built); fails if any of them is down.
status() {
  local wanted=("$@") ok=0
  if [ ${#wanted[@]} -eq 0 ]; then
    wanted=("${DEFAULT_SERVICES[@]}")
    "$ROOT/scripts/kube-build.sh" --paths >/dev/null 2>&1 && wanted+=(kube)
  fi
  printf '%-11s %-22s %-14s %s\n' SERVICE ADDRESS VERSION STATUS
  for s in "${wanted[@]}"; do
    case "$s" in
      postgres) status_line postgres "127.0.0.1:$PG_PORT" pg_answers pg_version || ok=1 ;;
      redis) status_line redis "127.0.0.1:$REDIS_PORT" redis_answers redis_version || ok=1 ;;
      nats) status_line nats "127.0.0.1:$NATS_PORT" nats_answers nats_version || ok=1 ;;
      clickhouse) status_line clickhouse "127.0.0.1:$CLICKHOUSE_HTTP_PORT" ch_answers ch_version || ok=1 ;;
      temporal) status_line temporal "127.0.0.1:$TEMPORAL_PORT" temporal_answers temporal_version || ok=1 ;;
      kube) "$ROOT/scripts/kube-stack.sh" status-lines || ok=1 ;;
      s3) status_line s3 "127.0.0.1:$S3_PORT" s3_answers s3_version || ok=1 ;;
      *) fail "unknown service $s (postgres redis nats clickhouse temporal kube s3)" ;;
    esac
  done
  [ "$ok" = 0 ] && [[ " ${wanted[*]} " == *" temporal "* ]] && echo "Temporal UI: http://127.0.0.1:$TEMPORAL_UI_PORT"
  return "$ok"
}

command=${1:-status}; shift || true
services=("$@")
case "$command" in
  up)
    [ ${#services[@]} -gt 0 ] || services=("${DEFAULT_SERVICES[@]}")
    # One `up` at a time per state directory: a second (another checkout's tests, a demo) waits,
    # then finds the servers running, instead of starting its own on the same ports. flock -o holds
    # the lock in its own process, so the servers started in the background do not inherit it.
    if [ -z "${ELOQUENT_STACK_UP_LOCKED:-}" ]; then
      mkdir -p "$STATE"
      flock -n -o "$STATE/.stack-up.lock" true || say "waiting for another scripts/stack.sh up to finish"
      exec env ELOQUENT_STACK_UP_LOCKED=1 flock -o "$STATE/.stack-up.lock" bash "${BASH_SOURCE[0]}" up "${services[@]}"
    fi
    for s in "${services[@]}"; do "up_$s"; done
    say "stack is up"
    status "${services[@]}"
    ;;
  down)
    [ ${#services[@]} -gt 0 ] || services=(temporal clickhouse $([ -x "$ROOT/scripts/kube-stack.sh" ] && echo kube) $([ -f "$S3_DIR/server.pid" ] && echo s3))
    for s in "${services[@]}"; do "down_$s"; done
    ;;
  restart)
    [ ${#services[@]} -eq 1 ] || fail "restart takes one service"
    "down_${services[0]}"; "up_${services[0]}"
    ;;
  status) status "${services[@]}" ;;
  *) fail "usage: scripts/stack.sh up|down|status|restart [service…]" ;;
esac
