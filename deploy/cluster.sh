#!/usr/bin/env bash
# make cluster / make cluster-stop: PostgreSQL (Debian's), two workbench replicas and nginx in front,
# all on loopback; state, logs and pids in $CLUSTER_DIR. compose.yaml runs the same with containers.
#
#   deploy/cluster.sh start|stop|status
#   CLUSTER_PORT (8080: nginx), REPLICA_PORTS ("7861 7862"), PG_PORT (55432), PGPASSWORD (made up once
#   and kept in $CLUSTER_DIR/pgpassword), SYNC_SECONDS (2). Extra app.py overrides: ARGS="...".
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=$(mkdir -p "${CLUSTER_DIR:-outputs/cluster}" && cd "${CLUSTER_DIR:-outputs/cluster}" && pwd)
PY=${PY:-.venv/bin/python}
CLUSTER_PORT=${CLUSTER_PORT:-8080}
REPLICA_PORTS=${REPLICA_PORTS:-7861 7862}
PG_PORT=${PG_PORT:-55432}
PG_VERSION=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1)
PG_BIN=/usr/lib/postgresql/$PG_VERSION/bin
PG_CLUSTER=llmrouter  # root: a Debian cluster (pg_ctlcluster); others: a data directory in $DIR/pg
[ -f "$DIR/pgpassword" ] || (umask 077; "$PY" -c "import secrets; print(secrets.token_urlsafe(18))" > "$DIR/pgpassword")
export PGPASSWORD=${PGPASSWORD:-$(cat "$DIR/pgpassword")}
STORE_URL="postgresql://workbench@127.0.0.1:$PG_PORT/workbench"

need() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || { echo "error: $1 not found. Install it: $2" >&2; exit 2; }; }

pg_start() {
  need "$PG_BIN/pg_ctl" "apt-get install postgresql"
  if [ "$(id -u)" = 0 ]; then
    pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1 == v && $2 == c {f = 1} END {exit !f}' \
      || pg_createcluster "$PG_VERSION" "$PG_CLUSTER" -p "$PG_PORT" >/dev/null
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" status >/dev/null 2>&1 || pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
    psql_admin() { su postgres -c "psql -q -p $PG_PORT -v ON_ERROR_STOP=1 -d postgres"; }
  else
    [ -d "$DIR/pg" ] || "$PG_BIN/initdb" -D "$DIR/pg" -A trust -U postgres >/dev/null
    "$PG_BIN/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1 \
      || "$PG_BIN/pg_ctl" -D "$DIR/pg" -l "$DIR/postgresql.log" -w \
           -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DIR" start >/dev/null
    psql_admin() { "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -d postgres; }
  fi
  # the replicas' role and database; the password goes in on stdin, never on a command line
  psql_admin >/dev/null <<SQL
DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'workbench') THEN CREATE ROLE workbench LOGIN; END IF; END\$\$;
ALTER ROLE workbench PASSWORD '$PGPASSWORD';
SELECT 'CREATE DATABASE workbench OWNER workbench' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'workbench') \\gexec
SQL
}

pg_stop() {
  if [ "$(id -u)" = 0 ]; then
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop 2>/dev/null || true
  elif [ -d "$DIR/pg" ]; then
    "$PG_BIN/pg_ctl" -D "$DIR/pg" -m fast stop >/dev/null 2>&1 || true
  fi
}

replicas_start() {
  local n=0
  for port in $REPLICA_PORTS; do
    n=$((n + 1))
    if [ -f "$DIR/replica-$n.pid" ] && kill -0 "$(cat "$DIR/replica-$n.pid")" 2>/dev/null; then continue; fi
    LLM_ROUTER_STORE_URL="$STORE_URL" nohup "$PY" app.py "app.port=$port" "store.sync_seconds=${SYNC_SECONDS:-2}" \
      ${ARGS:-} >"$DIR/replica-$n.log" 2>&1 &
    echo $! > "$DIR/replica-$n.pid"
  done
  for port in $REPLICA_PORTS; do  # the encoder loads at start: up to a few minutes on a small machine
    for _ in $(seq 1 600); do
      "$PY" -c "import httpx, sys; sys.exit(httpx.get('http://127.0.0.1:$port/healthz', timeout=2).status_code != 200)" \
        2>/dev/null && break
      sleep 1
    done
  done
}

replicas_stop() {
  for pidfile in "$DIR"/replica-*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$pidfile"
  done
}

nginx_start() {
  need nginx "apt-get install nginx"
  local servers=""
  for port in $REPLICA_PORTS; do servers="${servers}server 127.0.0.1:$port; "; done
  sed -e "s#@DIR@#$DIR#g" -e "s#@LISTEN@#127.0.0.1:$CLUSTER_PORT#" -e "s#@SERVERS@#$servers#g" deploy/nginx.conf > "$DIR/nginx.conf"
  if [ -f "$DIR/nginx.pid" ] && kill -0 "$(cat "$DIR/nginx.pid")" 2>/dev/null; then
    nginx -c "$DIR/nginx.conf" -p "$DIR" -s reload
  else
    nginx -c "$DIR/nginx.conf" -p "$DIR" -e "$DIR/nginx-error.log"
  fi
}

nginx_stop() {
  if [ -f "$DIR/nginx.pid" ] && kill -0 "$(cat "$DIR/nginx.pid")" 2>/dev/null; then
    nginx -c "$DIR/nginx.conf" -p "$DIR" -e "$DIR/nginx-error.log" -s quit
    for _ in $(seq 1 20); do [ -f "$DIR/nginx.pid" ] || break; sleep 0.25; done
  fi
}

case "${1:-}" in
  start)
    pg_start
    replicas_start
    nginx_start
    echo "cluster: http://127.0.0.1:$CLUSTER_PORT (nginx) -> replicas on $REPLICA_PORTS; store $STORE_URL; logs in $DIR"
    ;;
  stop)
    nginx_stop
    replicas_stop
    pg_stop
    echo "cluster stopped"
    ;;
  status)
    for pidfile in "$DIR"/replica-*.pid "$DIR/nginx.pid"; do
      [ -f "$pidfile" ] && { kill -0 "$(cat "$pidfile")" 2>/dev/null && echo "$(basename "$pidfile" .pid): running" \
        || echo "$(basename "$pidfile" .pid): stopped"; }
    done
    ;;
  *) echo "usage: deploy/cluster.sh start|stop|status" >&2; exit 2 ;;
esac
