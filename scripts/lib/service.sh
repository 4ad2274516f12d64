# shellcheck shell=bash
# What scripts/kafka.sh, scripts/pulsar.sh and scripts/bigquery-emulator.sh share: sourced by them
# (after they set the variables below), not run on its own.
#
# A script sets before sourcing:
#   SERVICE       its name: messages start with "$SERVICE.sh: ", the watchdog is named "$SERVICE-watchdog"
#   USAGE_LINES   the lines of its header comment that usage prints, e.g. "2,25"
#   PID_FILE      the pid file's name in DIR, e.g. kafka.pid
#   STOP_TIMEOUT  seconds between SIGTERM and SIGKILL
#   CACHE         DIR defaults to $CACHE/run/default
#   SERVICE_OPTS  (array, optional) "--option=VARIABLE" for each option taking a value besides --dir
#                 and --owner-pid; SERVICE_FLAGS (array, optional) "--flag=VARIABLE" for each flag
#                 (sets VARIABLE=1)
# and defines:
#   service_pid   prints the pid of the service running for DIR, or returns 1 (see running_pid)
#   ready         (for wait_ready) returns 0 once the service answers
#   print_log_tail (for start_failed) shows the end of the logs on stderr
# Globals set here: DIR, OWNER_PID.

DIR=""
OWNER_PID=""

die() { echo "$SERVICE.sh: $*" >&2; exit 1; }
log() { echo "$SERVICE.sh: $*" >&2; }

usage() {
  sed -n "${USAGE_LINES}p" "${BASH_SOURCE[-1]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# --dir DIR, --owner-pid PID, the script's SERVICE_OPTS and SERVICE_FLAGS (each option also as
# --option=VALUE); DIR made absolute (and created), default $CACHE/run/default.
parse_opts() {
  local spec name
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h|--help) usage ;;
    esac
    for spec in --dir=DIR --owner-pid=OWNER_PID ${SERVICE_OPTS[@]+"${SERVICE_OPTS[@]}"}; do
      name="${spec%%=*}"
      if [[ "$1" == "$name" ]]; then
        printf -v "${spec#*=}" '%s' "${2:?$name needs a value}"
        shift 2
        continue 2
      elif [[ "$1" == "$name="* ]]; then
        printf -v "${spec#*=}" '%s' "${1#"$name="}"
        shift
        continue 2
      fi
    done
    for spec in ${SERVICE_FLAGS[@]+"${SERVICE_FLAGS[@]}"}; do
      if [[ "$1" == "${spec%%=*}" ]]; then
        printf -v "${spec#*=}" '%s' 1
        shift
        continue 2
      fi
    done
    die "unknown option: $1"
  done
  DIR="${DIR:-$CACHE/run/default}"
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
}

# Is something listening on 127.0.0.1:$1?
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Ports handed out are reserved for their state DIR (a symlink named after the port in
# PORT_REGISTRY, pointing at DIR) while that DIR exists, so that a service stopped for an outage
# and started again on its ports does not find one taken by a service another test started
# meanwhile. chlocal.sh keeps the same registry.
PORT_REGISTRY="${TMPDIR:-/tmp}/inserter-ports"

port_reserved() {
  local owner
  owner="$(readlink "$PORT_REGISTRY/$1" 2>/dev/null)" || return 1
  [[ -d "$owner" && "$owner" != "${DIR:-}" ]]
}

# A free port below the Linux ephemeral range (32768+), so that outgoing connections do not take
# it, not one of the arguments (ports already chosen) and not reserved by another state dir;
# reserved for DIR when it is set.
free_port() {
  local p i q taken
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    taken=0
    for q in "$@"; do [[ "$p" == "$q" ]] && taken=1; done
    if ((!taken)) && ! port_reserved "$p" && ! port_in_use "$p"; then
      if [[ -n "${DIR:-}" ]]; then
        mkdir -p "$PORT_REGISTRY"
        ln -sfn "$DIR" "$PORT_REGISTRY/$p"
      fi
      echo "$p"
      return 0
    fi
  done
  die "could not find a free port"
}

# The pid in DIR/$PID_FILE if that process is alive and its command line contains $1 (a guard
# against pid reuse); otherwise returns 1.
running_pid() {
  [[ -f "$DIR/$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$DIR/$PID_FILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$1" || return 1
  echo "$pid"
}

# Waits until `ready` succeeds (0), the process $1 exits (1) or START_TIMEOUT passes (2), polling
# every $2 seconds.
wait_ready() {
  local pid="$1" interval="$2" deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || return 1
    if ready; then return 0; fi
    sleep "$interval"
  done
  return 2
}

# With --owner-pid: a detached watchdog that stops the service (pid $1) once the owner is gone;
# it exits by itself when the service stops first. Its pid goes to DIR/watchdog.pid.
start_watchdog() {
  [[ -n "$OWNER_PID" ]] || return 0
  local spid="$1"
  setsid nohup bash -c '
    owner="$1"; service="$2"; timeout="$3"
    while kill -0 "$owner" 2>/dev/null && kill -0 "$service" 2>/dev/null; do sleep 1; done
    if kill -0 "$service" 2>/dev/null; then
      kill -TERM "$service" 2>/dev/null || true
      for _ in $(seq 1 $((timeout * 5))); do kill -0 "$service" 2>/dev/null || exit 0; sleep 0.2; done
      kill -KILL "$service" 2>/dev/null || true
    fi' "$SERVICE-watchdog" "$OWNER_PID" "$spid" "$STOP_TIMEOUT" </dev/null >/dev/null 2>&1 &
  echo $! >"$DIR/watchdog.pid"
}

# SIGTERM to pid $1, SIGKILL after STOP_TIMEOUT seconds.
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

# A start that failed (wait_ready's code $2 for pid $1; $3 names the service in the messages):
# show the logs, stop what is left, exit 1.
start_failed() {
  local pid="$1" rc="$2" what="$3"
  if ((rc == 2)); then
    log "$what did not become ready within ${START_TIMEOUT}s"
    print_log_tail
    stop_pid "$pid"
  else
    log "$what exited during start-up"
    print_log_tail
  fi
  rm -f "$DIR/$PID_FILE"
  exit 1
}

# The stop command: idempotent; also ends the watchdog.
stop() {
  parse_opts "$@"
  local pid
  if pid="$(service_pid)"; then
    stop_pid "$pid"
    log "stopped (pid $pid)"
  else
    log "not running"
  fi
  rm -f "$DIR/$PID_FILE"
  if [[ -f "$DIR/watchdog.pid" ]]; then
    local wpid
    wpid="$(cat "$DIR/watchdog.pid")"
    # Only our watchdog: its command line carries the name $SERVICE-watchdog.
    if [[ -n "$wpid" ]] && tr '\0' ' ' <"/proc/$wpid/cmdline" 2>/dev/null | grep -q "$SERVICE-watchdog"; then
      kill -TERM "$wpid" 2>/dev/null || true
    fi
    rm -f "$DIR/watchdog.pid"
  fi
}

# The status command's answer (after parse_opts): "running $1 (pid ..., dir DIR)", exit 0, or
# "stopped $2(dir DIR)", exit 3.
report_status() {
  local pid
  if pid="$(service_pid)"; then
    echo "running $1 (pid $pid, dir $DIR)"
    return 0
  fi
  echo "stopped $2(dir $DIR)"
  return 3
}

# Runs the command line: install, start, stop or status.
main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    install) install ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    status) status "$@" ;;
    *) usage ;;
  esac
}

# install for the Java services: resolves $POM's runtime dependencies from Maven Central into $LIBS,
# once per marker_value (the script's; written to $LIBS/.installed). $1 names the jars (for the
# message when mvn is missing), $2 what is resolved (for the log); further arguments go to mvn.
# check_resolved (the script's) checks the resolved dir before it replaces $LIBS.
maven_install() {
  local jars="$1" what="$2"
  shift 2
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
  command -v mvn >/dev/null || die "mvn not found (needed once, to resolve $jars from Maven Central)"
  log "resolving $what and its runtime dependencies into $LIBS"
  local tmp="$LIBS.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! mvn -q -B -Dstyle.color=never "$@" -f "$POM" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >&2; then
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed"
  fi
  check_resolved "$tmp"
  marker_value >"$tmp/.installed"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  log "installed $(find "$LIBS" -name '*.jar' | wc -l) jars"
  exec 9>&-
}
