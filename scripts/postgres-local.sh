#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for tests and benchmarks: .cache/postgres, 127.0.0.1:25432
# (below Linux's 32768-60999 ephemeral range, so no outgoing client socket can hold the port).
# When that port is taken (e.g. another checkout's cluster) and OPENPCC_PG_PORT is not set, the
# next free one up to 25499 is used; the running cluster's port is kept in .cache/postgres/port.
#   scripts/postgres-local.sh start|stop|status|url
# Idempotent: `start` initialises the cluster once and is a no-op while it runs. As root the
# server runs as the `postgres` OS user (initdb refuses root). Prints the URL on start/url.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PGBIN="${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}"
DATA="$ROOT/.cache/postgres/data"
LOG="$ROOT/.cache/postgres/server.log"
PORT_FILE="$ROOT/.cache/postgres/port"
PGPORT="${OPENPCC_PG_PORT:-$(cat "$PORT_FILE" 2>/dev/null || echo 25432)}"

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url() {
    echo "postgresql+psycopg://openpcc@127.0.0.1:${PGPORT}/openpcc"
}

port_taken() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

running() {
    [ -f "$DATA/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

init_cluster() {
    mkdir -p "$ROOT/.cache/postgres"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$ROOT/.cache/postgres"
    as_owner "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '${ROOT}/.cache/postgres'
max_connections = 200
shared_buffers = 128MB
fsync = on
synchronous_commit = on
wal_level = minimal
max_wal_senders = 0
log_min_messages = warning
CONF
}

start() {
    if ! command -v "$PGBIN/initdb" >/dev/null 2>&1; then
        echo "PostgreSQL binaries not found (install the postgresql package)" >&2
        exit 1
    fi
    [ -f "$DATA/PG_VERSION" ] || init_cluster
    if ! running; then
        if [ -z "${OPENPCC_PG_PORT:-}" ]; then
            PGPORT=25432
            while port_taken "$PGPORT"; do
                PGPORT=$((PGPORT + 1))
                [ "$PGPORT" -le 25499 ] || { echo "no free port in 25432-25499" >&2; exit 1; }
            done
        fi
        # The port is given at start, not baked into the cluster: OPENPCC_PG_PORT can change it later.
        as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -o "-p $PGPORT" -w -t 60 start >/dev/null
        echo "$PGPORT" >"$PORT_FILE"
    fi
    local psql=("$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -qtA)
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='openpcc'")" != "1" ]; then
        "${psql[@]}" -c "CREATE ROLE openpcc LOGIN CREATEDB SUPERUSER"
    fi
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname='openpcc'")" != "1" ]; then
        "${psql[@]}" -c "CREATE DATABASE openpcc OWNER openpcc"
    fi
    url
}

stop() {
    if running; then
        as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if running; then echo "running $(url)"; else echo "stopped"; exit 3; fi ;;
    url) url ;;
    *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
