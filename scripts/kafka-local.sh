#!/usr/bin/env bash
# A private single-node Apache Kafka broker (KRaft, combined broker+controller) on loopback, for
# tests and benchmarks. No Docker: the broker's jars come from Maven Central (scripts/kafka/pom.xml)
# into .cache/kafka/libs (git-ignored) the first time; the storage is formatted once.
#
#   scripts/kafka-local.sh start    # idempotent; prints the bootstrap address when ready
#   scripts/kafka-local.sh stop     # SIGTERM (clean shutdown), SIGKILL after 30 s
#   scripts/kafka-local.sh status   # prints the bootstrap address; exit 1 when not running
#   scripts/kafka-local.sh wipe     # stop and delete the broker's data (keeps the jars)
#   scripts/kafka-local.sh acquire PID / release PID
#       shared use by test sessions and benchmarks (PID = the user's process): acquire starts the
#       broker if needed and prints the address; release stops it once no user is left alive,
#       but only if an acquire started it (a broker started with `start` is left running).
#
# Environment: OPENPCC_KAFKA_PORT (default 29092, the controller uses port+1: below the kernel's
#              ephemeral port range 32768-60999, so no client socket can hold the port),
#              OPENPCC_KAFKA_HOME (default <repo>/.cache/kafka).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PORT="${OPENPCC_KAFKA_PORT:-29092}"
CTRL_PORT="$((PORT + 1))"
HOME_DIR="${OPENPCC_KAFKA_HOME:-$ROOT/.cache/kafka}"
LIBS="$HOME_DIR/libs"
RUN="$HOME_DIR/run-$PORT"
DATA="$RUN/data"
PIDFILE="$RUN/broker.pid"
LEASES="$RUN/leases"
LOG="$RUN/broker.log"
BOOTSTRAP="127.0.0.1:$PORT"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3

log() { echo "kafka-local: $*" >&2; }

is_broker() {
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $RUN/server.properties"
}

# The broker's pid: from the pid file, else found by its unique command line (pid file lost).
running_pid() {
    local pid
    if [ -f "$PIDFILE" ]; then
        pid="$(cat "$PIDFILE")"
        if kill -0 "$pid" 2>/dev/null && is_broker "$pid"; then
            echo "$pid"
            return 0
        fi
    fi
    local match
    for match in $(grep -laF "$RUN/server.properties" /proc/[0-9]*/cmdline 2>/dev/null); do
        pid="${match#/proc/}"
        pid="${pid%/cmdline}"
        if is_broker "$pid"; then
            echo "$pid" >"$PIDFILE"
            echo "$pid"
            return 0
        fi
    done
    return 1
}

lock() {
    mkdir -p "$RUN"
    exec 9>"$RUN/lock"
    flock 9
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ready = the broker answers an admin call (metadata with the cluster's controller).
admin_ready() {
    "$PY" - "$BOOTSTRAP" <<'EOF' >/dev/null 2>&1
import sys
from kafka import KafkaAdminClient
admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=3000)
try:
    assert admin.describe_cluster()["controller_id"] is not None
    admin.list_topics()
finally:
    admin.close()
EOF
}

fetch_jars() {
    [ -f "$LIBS/.complete" ] && return 0
    command -v mvn >/dev/null || { log "Maven (mvn) is required to fetch the broker"; exit 2; }
    command -v java >/dev/null || { log "Java 17+ is required to run the broker"; exit 2; }
    log "resolving org.apache.kafka:kafka_2.13 from Maven Central into $LIBS"
    rm -rf "$LIBS"
    # stdout carries only the bootstrap address: Maven's output (and its ANSI resets) go to stderr.
    mvn -B -q -Dstyle.color=never -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$LIBS" >&2
    touch "$LIBS/.complete"
}

write_config() {
    mkdir -p "$DATA"
    cat >"$RUN/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CTRL_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CTRL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Restart after an unclean stop waits out the old broker session: keep it short (~5 s).
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=2000
# The 128 MiB default does not fit a small heap.
log.cleaner.dedupe.buffer.size=16777216
EOF
    cat >"$RUN/log4j2.properties" <<EOF
rootLogger.level=WARN
rootLogger.appenderRef.out.ref=out
appender.out.type=Console
appender.out.name=out
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
logger.server.name=kafka.server.KafkaRaftServer
logger.server.level=INFO
EOF
}

start() {
    local pid
    if pid="$(running_pid)" && admin_ready; then
        echo "$BOOTSTRAP"
        return 0
    fi
    if [ -z "${pid:-}" ] && port_open "$PORT"; then
        log "port $PORT is taken by another process; set OPENPCC_KAFKA_PORT"
        exit 1
    fi
    fetch_jars
    write_config
    if [ ! -f "$DATA/meta.properties" ]; then
        local cluster_id
        cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        java -cp "$LIBS/*" -Dlog4j2.configurationFile="$RUN/log4j2.properties" \
            kafka.tools.StorageTool format -t "$cluster_id" -c "$RUN/server.properties" \
            --standalone >"$RUN/format.log" 2>&1 || { cat "$RUN/format.log" >&2; exit 1; }
    fi
    if [ -z "${pid:-}" ]; then
        # setsid: the broker outlives the shell and is not hit by the caller's Ctrl-C.
        setsid java -Xmx256m -Xms64m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
            -Djava.awt.headless=true -Dlog4j2.configurationFile="$RUN/log4j2.properties" \
            -cp "$LIBS/*" kafka.Kafka "$RUN/server.properties" >"$LOG" 2>&1 </dev/null 9>&- &
        pid=$!
        echo "$pid" >"$PIDFILE"
    fi
    local deadline=$((SECONDS + 60))
    until port_open "$PORT" && admin_ready; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "broker exited during start-up; last log lines:"
            tail -n 20 "$LOG" >&2
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "broker not ready after 60 s (log: $LOG)"
            exit 1
        fi
        sleep 0.2
    done
    echo "$BOOTSTRAP"
}

stop() {
    local pid
    pid="$(running_pid)" || { rm -f "$PIDFILE"; return 0; }
    kill -TERM "$pid"
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE" "$LEASES/.started"; return 0; }
        sleep 0.1
    done
    log "broker did not stop in 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PIDFILE" "$LEASES/.started"
}

status() {
    if running_pid >/dev/null && admin_ready; then
        echo "$BOOTSTRAP"
    else
        echo "stopped" >&2
        return 1
    fi
}

acquire() {
    local user="$1"
    mkdir -p "$LEASES"
    if ! running_pid >/dev/null; then
        start >/dev/null
        touch "$LEASES/.started"
    else
        start >/dev/null
    fi
    touch "$LEASES/$user"
    echo "$BOOTSTRAP"
}

release() {
    rm -f "$LEASES/$1"
    local lease
    for lease in "$LEASES"/*; do
        [ -e "$lease" ] || continue
        if kill -0 "${lease##*/}" 2>/dev/null; then
            return 0  # another user is still alive
        fi
        rm -f "$lease"
    done
    if [ -f "$LEASES/.started" ]; then
        stop
    fi
}

case "${1:-}" in
    start) lock; start; rm -f "$LEASES/.started" ;;  # started by hand: left running by release
    stop) lock; stop ;;
    status) status ;;
    wipe) lock; stop; rm -rf "$RUN" ;;
    acquire) [ -n "${2:-}" ] || { echo "usage: $0 acquire PID" >&2; exit 2; }; lock; acquire "$2" ;;
    release) [ -n "${2:-}" ] || { echo "usage: $0 release PID" >&2; exit 2; }; lock; release "$2" ;;
    *) echo "usage: $0 start|stop|status|wipe|acquire PID|release PID" >&2; exit 2 ;;
esac
