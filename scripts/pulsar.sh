#!/usr/bin/env bash
# A real, single-node Apache Pulsar (standalone: broker + one bookie + RocksDB metadata in one JVM)
# for development and tests. No Docker, no tarball: the jars come from Maven Central
# (scripts/pulsar/pom.xml, resolved with scripts/pulsar/settings.xml, which mirrors every
# repository Pulsar's poms name to Central).
#
#   scripts/pulsar.sh install                       resolve the jars into .cache/pulsar/lib (once)
#   scripts/pulsar.sh start  [--dir DIR] [--owner-pid PID]
#                                                   start a broker; prints http://127.0.0.1:WEBPORT as
#                                                   the last line once the admin API answers
#   scripts/pulsar.sh stop   [--dir DIR]            SIGTERM, then SIGKILL after a timeout; idempotent
#   scripts/pulsar.sh status [--dir DIR]            "running http://..." / "stopped ..." (exit 0 / 3)
#
# DIR defaults to .cache/pulsar/run/default. Starting a DIR that was started before reuses its
# ports and data (that is how a restart works); a fresh DIR gets free ports. Several DIRs can run
# at the same time. The broker listens on 127.0.0.1 only: the binary protocol on BROKERPORT, the
# admin REST API and the WebSocket API (/ws/v2/...) on WEBPORT, the bookie on BOOKIEPORT (all in
# DIR/ports). Functions and stream storage are off.
# --owner-pid PID: a small watchdog stops the broker when PID exits (tests use it so that a
# crashed test run does not leave a broker behind).
#
# Environment: PULSAR_MEM (default "-Xms64m -Xmx256m -XX:MaxDirectMemorySize=192m"),
# PULSAR_START_TIMEOUT (seconds, default 90), PULSAR_STOP_TIMEOUT (seconds, default 20),
# JAVA (default: java on PATH).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PULSAR_VERSION="4.0.7"
CACHE="$ROOT/.cache/pulsar"
LIBS="$CACHE/lib"
POM="$ROOT/scripts/pulsar/pom.xml"
SETTINGS="$ROOT/scripts/pulsar/settings.xml"
LOG4J_CONFIG="$ROOT/scripts/pulsar/log4j2.xml"
NODE="$ROOT/node_modules/.bin/node"
JAVA="${JAVA:-java}"
START_TIMEOUT="${PULSAR_START_TIMEOUT:-90}"
STOP_TIMEOUT="${PULSAR_STOP_TIMEOUT:-20}"
MEM_OPTS="${PULSAR_MEM:--Xms64m -Xmx256m -XX:MaxDirectMemorySize=192m}"

SERVICE=pulsar
USAGE_LINES=2,24
PID_FILE=pulsar.pid
# Option parsing, stop, status, the owner-pid watchdog, free ports, waiting: shared with kafka.sh
# and bigquery-emulator.sh.
# shellcheck source=lib/service.sh
source "$ROOT/scripts/lib/service.sh"

# ---------------------------------------------------------------------------------------------
# install

marker_value() {
  # The marker records what was installed: a changed pom means a reinstall.
  echo "pulsar=$PULSAR_VERSION pom=$(sha256sum "$POM" | cut -d' ' -f1)"
}

# (for maven_install) The jars resolved into $1 include the broker's and the WebSocket API's.
check_resolved() {
  [[ -f "$1/pulsar-broker-$PULSAR_VERSION.jar" && -f "$1/pulsar-websocket-$PULSAR_VERSION.jar" ]] ||
    { rm -rf "$1"; die "pulsar-broker/pulsar-websocket $PULSAR_VERSION jars missing after resolve"; }
}

install() {
  maven_install "the Pulsar jars" "org.apache.pulsar:pulsar-broker:$PULSAR_VERSION" -s "$SETTINGS"
}

# ---------------------------------------------------------------------------------------------
# helpers

BROKER_PORT=""
WEB_PORT=""
BOOKIE_PORT=""

# Guard against pid reuse: the process must be our java with this state dir on its command line.
service_pid() { running_pid "-Dinserter.pulsar.dir=$DIR"; }

write_config() {
  cat >"$DIR/standalone.conf" <<EOF
# Written by scripts/pulsar.sh: a standalone broker for development and tests. Keys not set here
# take ServiceConfiguration's defaults.
clusterName=standalone
# Loopback only: the broker, the web service and the bookie (allowLoopback: otherwise the bookie
# refuses a loopback address and binds every interface on another port).
bindAddress=127.0.0.1
advertisedAddress=127.0.0.1
listeningInterface=lo
allowLoopback=true
brokerServicePort=$BROKER_PORT
webServicePort=$WEB_PORT
# The WebSocket API (/ws/v2/consumer, /ws/v2/producer, /ws/v2/reader) runs inside the broker.
webSocketServiceEnabled=true
# One bookie.
managedLedgerDefaultEnsembleSize=1
managedLedgerDefaultWriteQuorum=1
managedLedgerDefaultAckQuorum=1
functionsWorkerEnabled=false
# Tests create their topics; producers and consumers may still create them (the Pulsar default).
allowAutoTopicCreation=true
allowAutoTopicCreationType=non-partitioned
# Small footprint on a 2-core machine.
numIOThreads=2
numHttpServerThreads=4
numWorkerThreads=2
numOrderedExecutorThreads=2
managedLedgerNumSchedulerThreads=2
bookkeeperClientNumWorkerThreads=2
bookkeeperClientNumIoThreads=2
loadBalancerEnabled=false
EOF
  printf 'BROKER_PORT=%s\nWEB_PORT=%s\nBOOKIE_PORT=%s\n' "$BROKER_PORT" "$WEB_PORT" "$BOOKIE_PORT" >"$DIR/ports"
}

print_log_tail() {
  if grep -qE " ERROR |Exception" "$DIR/logs/pulsar.log" 2>/dev/null; then
    echo "---- first errors in $DIR/logs/pulsar.log ----" >&2
    grep -E " ERROR |Exception" "$DIR/logs/pulsar.log" | head -n 10 >&2 || true
  fi
  echo "---- last lines of $DIR/logs/pulsar.log ----" >&2
  tail -n 30 "$DIR/logs/pulsar.log" >&2 2>/dev/null || true
  echo "---- $DIR/logs/pulsar.out ----" >&2
  tail -n 20 "$DIR/logs/pulsar.out" >&2 2>/dev/null || true
}

# Start java in the background, detached from our stdio (so callers that capture stdout, such as
# execFile, are not kept waiting by the broker).
launch() {
  : >"$DIR/logs/pulsar.out"
  # Relative paths the standalone uses (nar extraction, interceptors) land in DIR.
  cd "$DIR"
  # shellcheck disable=SC2086
  setsid nohup "$JAVA" $MEM_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Xss1m \
    -XX:TieredStopAtLevel=1 -Djava.awt.headless=true -Dinserter.pulsar.dir="$DIR" \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dpulsar.log.dir="$DIR/logs" \
    -Dio.netty.leakDetection.level=disabled \
    -cp "$LIBS/*" org.apache.pulsar.PulsarStandaloneStarter -c "$DIR/standalone.conf" \
    --metadata-dir "$DIR/data/metadata" --bookkeeper-dir "$DIR/data/bookkeeper" \
    --bookkeeper-port "$BOOKIE_PORT" -nss -nfw -a 127.0.0.1 \
    </dev/null >>"$DIR/logs/pulsar.out" 2>&1 &
  echo $! >"$DIR/pulsar.pid"
  cd "$ROOT"
}

# Does the admin API answer, and does the default namespace exist (created at the end of start-up)?
admin_ready() {
  local url="http://127.0.0.1:$WEB_PORT/admin/v2/namespaces/public"
  if [[ -x "$NODE" ]]; then
    "$NODE" -e '
      fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })
        .then(async (r) => process.exit(r.ok && (await r.text()).includes("public/default") ? 0 : 1), () => process.exit(1));
    ' "$url" 2>/dev/null
  else
    curl -sf --max-time 2 "$url" 2>/dev/null | grep -q 'public/default'
  fi
}

# Ready (for wait_ready): the web port is open and the admin API answers.
ready() {
  port_in_use "$WEB_PORT" && admin_ready
}

# ---------------------------------------------------------------------------------------------
# commands

start() {
  parse_opts "$@"
  local pid
  if pid="$(service_pid)"; then
    log "already running (pid $pid)"
    echo "http://127.0.0.1:$(sed -n 's/^WEB_PORT=//p' "$DIR/ports")"
    return 0
  fi
  install
  mkdir -p "$DIR/logs" "$DIR/data"
  local fresh=1
  if [[ -f "$DIR/ports" && -d "$DIR/data/metadata" ]]; then
    # A restart: same ports (the bookie's address is recorded in the metadata), same data.
    fresh=0
    BROKER_PORT="$(sed -n 's/^BROKER_PORT=//p' "$DIR/ports")"
    WEB_PORT="$(sed -n 's/^WEB_PORT=//p' "$DIR/ports")"
    BOOKIE_PORT="$(sed -n 's/^BOOKIE_PORT=//p' "$DIR/ports")"
  fi
  local attempt
  for attempt in 1 2 3; do
    if ((fresh)); then
      rm -rf "$DIR/data"
      mkdir -p "$DIR/data"
      BROKER_PORT="$(free_port)"
      WEB_PORT="$(free_port "$BROKER_PORT")"
      BOOKIE_PORT="$(free_port "$BROKER_PORT" "$WEB_PORT")"
    fi
    write_config
    local started_at=$SECONDS
    launch
    pid="$(cat "$DIR/pulsar.pid")"
    local rc=0
    wait_ready "$pid" 0.3 || rc=$?
    if ((rc == 0)); then
      start_watchdog "$pid"
      log "broker up in $((SECONDS - started_at))s (pid $pid, dir $DIR, broker port $BROKER_PORT, bookie port $BOOKIE_PORT)"
      echo "http://127.0.0.1:$WEB_PORT"
      return 0
    fi
    if ((rc == 1)) && ((fresh)) &&
        grep -qiE "Address already in use|BindException" "$DIR/logs/pulsar.log" "$DIR/logs/pulsar.out" 2>/dev/null; then
      log "port clash on $BROKER_PORT/$WEB_PORT/$BOOKIE_PORT, retrying with other ports"
      rm -f "$DIR/pulsar.pid"
      mv "$DIR/logs/pulsar.log" "$DIR/logs/pulsar.log.bind-failure-$attempt" 2>/dev/null || true
      continue
    fi
    start_failed "$pid" "$rc" broker
  done
  die "could not start the broker (ports kept clashing)"
}

status() {
  parse_opts "$@"
  local url=""
  [[ -f "$DIR/ports" ]] && url="http://127.0.0.1:$(sed -n 's/^WEB_PORT=//p' "$DIR/ports")"
  report_status "$url" "${url:+(last $url) }"
}

main "$@"
