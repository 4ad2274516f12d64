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

die() { echo "pulsar.sh: $*" >&2; exit 1; }
log() { echo "pulsar.sh: $*" >&2; }

usage() {
  sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------------------------------------
# install

marker_value() {
  # The marker records what was installed: a changed pom means a reinstall.
  echo "pulsar=$PULSAR_VERSION pom=$(sha256sum "$POM" | cut -d' ' -f1)"
}

install() {
  local marker="$LIBS/.installed"
  if [[ -f "$marker" && "$(cat "$marker")" == "$(marker_value)" ]]; then
    return 0
  fi
  mkdir -p "$CACHE"
  # Parallel test files may all call start (and so install) at once: serialise on a lock.
  exec 9>"$CACHE/.install.lock"
  flock 9
  if [[ -f "$marker" && "$(cat "$marker")" == "$(marker_value)" ]]; then
    exec 9>&-
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once, to resolve the Pulsar jars from Maven Central)"
  log "resolving org.apache.pulsar:pulsar-broker:$PULSAR_VERSION and its runtime dependencies into $LIBS"
  local tmp="$CACHE/lib.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! mvn -q -B -Dstyle.color=never -s "$SETTINGS" -f "$POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >&2; then
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed"
  fi
  [[ -f "$tmp/pulsar-broker-$PULSAR_VERSION.jar" && -f "$tmp/pulsar-websocket-$PULSAR_VERSION.jar" ]] ||
    { rm -rf "$tmp"; die "pulsar-broker/pulsar-websocket $PULSAR_VERSION jars missing after resolve"; }
  marker_value >"$tmp/.installed"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  log "installed $(find "$LIBS" -name '*.jar' | wc -l) jars"
  exec 9>&-
}

# ---------------------------------------------------------------------------------------------
# helpers

DIR=""
OWNER_PID=""
BROKER_PORT=""
WEB_PORT=""
BOOKIE_PORT=""

parse_opts() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --dir) DIR="${2:?--dir needs a value}"; shift 2 ;;
      --dir=*) DIR="${1#--dir=}"; shift ;;
      --owner-pid) OWNER_PID="${2:?--owner-pid needs a value}"; shift 2 ;;
      --owner-pid=*) OWNER_PID="${1#--owner-pid=}"; shift ;;
      -h|--help) usage ;;
      *) die "unknown option: $1" ;;
    esac
  done
  DIR="${DIR:-$CACHE/run/default}"
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
}

# Is something listening on 127.0.0.1:$1?
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A free port below the Linux ephemeral range (32768+), so that outgoing connections do not take
# it, and not one of the arguments (ports already chosen).
free_port() {
  local p i taken
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    taken=0
    for q in "$@"; do [[ "$p" == "$q" ]] && taken=1; done
    if ((!taken)) && ! port_in_use "$p"; then
      echo "$p"
      return 0
    fi
  done
  die "could not find a free port"
}

broker_pid() {
  [[ -f "$DIR/pulsar.pid" ]] || return 1
  local pid
  pid="$(cat "$DIR/pulsar.pid")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against pid reuse: the process must be our java with this state dir on its command line.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-Dinserter.pulsar.dir=$DIR" || return 1
  echo "$pid"
}

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

start_watchdog() {
  [[ -n "$OWNER_PID" ]] || return 0
  local bpid="$1"
  # Stops the broker once the owner is gone; exits by itself when the broker stops first.
  setsid nohup bash -c '
    owner="$1"; broker="$2"; timeout="$3"
    while kill -0 "$owner" 2>/dev/null && kill -0 "$broker" 2>/dev/null; do sleep 1; done
    if kill -0 "$broker" 2>/dev/null; then
      kill -TERM "$broker" 2>/dev/null || true
      for _ in $(seq 1 $((timeout * 5))); do kill -0 "$broker" 2>/dev/null || exit 0; sleep 0.2; done
      kill -KILL "$broker" 2>/dev/null || true
    fi' pulsar-watchdog "$OWNER_PID" "$bpid" "$STOP_TIMEOUT" </dev/null >/dev/null 2>&1 &
  echo $! >"$DIR/watchdog.pid"
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

wait_ready() {
  local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || return 1
    if port_in_use "$WEB_PORT" && admin_ready; then return 0; fi
    sleep 0.3
  done
  return 2
}

# ---------------------------------------------------------------------------------------------
# commands

start() {
  parse_opts "$@"
  local pid
  if pid="$(broker_pid)"; then
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
    wait_ready "$pid" || rc=$?
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
    if ((rc == 2)); then
      log "broker did not become ready within ${START_TIMEOUT}s"
      print_log_tail
      stop_pid "$pid"
    else
      log "broker exited during start-up"
      print_log_tail
    fi
    rm -f "$DIR/pulsar.pid"
    exit 1
  done
  die "could not start the broker (ports kept clashing)"
}

stop_pid() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 $((STOP_TIMEOUT * 10))); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "pid $pid did not stop within ${STOP_TIMEOUT}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
}

stop() {
  parse_opts "$@"
  local pid
  if pid="$(broker_pid)"; then
    stop_pid "$pid"
    log "stopped (pid $pid)"
  else
    log "not running"
  fi
  rm -f "$DIR/pulsar.pid"
  if [[ -f "$DIR/watchdog.pid" ]]; then
    local wpid
    wpid="$(cat "$DIR/watchdog.pid")"
    # Only our watchdog: its command line carries the name pulsar-watchdog.
    if [[ -n "$wpid" ]] && tr '\0' ' ' <"/proc/$wpid/cmdline" 2>/dev/null | grep -q pulsar-watchdog; then
      kill -TERM "$wpid" 2>/dev/null || true
    fi
    rm -f "$DIR/watchdog.pid"
  fi
}

status() {
  parse_opts "$@"
  local pid url=""
  [[ -f "$DIR/ports" ]] && url="http://127.0.0.1:$(sed -n 's/^WEB_PORT=//p' "$DIR/ports")"
  if pid="$(broker_pid)"; then
    echo "running $url (pid $pid, dir $DIR)"
    return 0
  fi
  echo "stopped ${url:+(last $url) }(dir $DIR)"
  return 3
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  install) install ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  status) status "$@" ;;
  *) usage ;;
esac
