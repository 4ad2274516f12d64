#!/usr/bin/env bash
# chlocal: ClickHouse's own server (HTTP + native TCP), hosted from libchdb.so by a small Python
# launcher (tools/chlocal/launch.py, standard library only), for development and tests only.
# Production talks to ClickHouse Cloud or a ClickHouse cluster. See docs/local-stack.md.
#
#   scripts/chlocal.sh install
#   scripts/chlocal.sh start --dir DIR [--port P] [--users FILE | --user name:password ...] [--display-name N]
#   scripts/chlocal.sh stop --dir DIR
#   scripts/chlocal.sh status --dir DIR
#
# start prints http://127.0.0.1:PORT as its last line and leaves DIR/pid, DIR/url, DIR/port (HTTP),
# DIR/tcp_port (native protocol), DIR/admin_password (user chlocal_admin), DIR/config.xml,
# DIR/users.xml, DIR/server.out (the launcher's stderr) and DIR/data (the server's --path).
# Starting a dir that ran before reuses its ports and data: a restart.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAUNCHER="$ROOT/tools/chlocal/launch.py"
LIB_PKG="@chdb/lib-linux-x64-gnu"
LIB="${CHLOCAL_LIBCHDB:-$ROOT/node_modules/$LIB_PKG/libchdb.so}"

die() { echo "chlocal: $*" >&2; exit 1; }

pick_python() {
  for p in "${CHLOCAL_PYTHON:-}" python3; do
    [ -n "$p" ] || continue
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  return 1
}

cmd_install() {
  pick_python >/dev/null || die "no python3 (>= 3.9) found"
  # The launcher needs only the standard library: the venv of the former Python imitation goes.
  rm -rf "$ROOT/.venv/chlocal"
  rmdir "$ROOT/.venv" 2>/dev/null || true
  if [ ! -f "$LIB" ]; then
    # A devDependency: `npm ci` installs it. If it is missing (e.g. `npm ci --omit=dev`), add it
    # at the version package.json pins, without touching package.json or the lockfile.
    local ver
    ver="$(cd "$ROOT" && node -e 'const p=require("./package.json");process.stdout.write((p.devDependencies||{})["'"$LIB_PKG"'"]||"")' 2>/dev/null || true)"
    [ -n "$ver" ] || die "$LIB_PKG is not in package.json devDependencies"
    (cd "$ROOT" && npm install --no-save --no-audit --no-fund "$LIB_PKG@$ver" >&2)
  fi
  [ -f "$LIB" ] || die "libchdb.so still missing at $LIB"
  echo "chlocal: ready ($(pick_python), $LIB)"
}

parse_dir() {
  DIR=""; PORT=""; USERS=""; USER_ARGS=(); DISPLAY_NAME="chlocal"
  while [ $# -gt 0 ]; do
    case "$1" in
      --dir) DIR="$2"; shift 2 ;;
      --port) PORT="$2"; shift 2 ;;
      --users) USERS="$2"; shift 2 ;;
      --user) USER_ARGS+=(--user "$2"); shift 2 ;;
      --display-name) DISPLAY_NAME="$2"; shift 2 ;;
      *) die "unknown argument: $1" ;;
    esac
  done
  [ -n "$DIR" ] || die "--dir DIR is required"
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
}

running_pid() {
  local pid
  pid="$(cat "$DIR/pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; return 0; fi
  return 1
}

# A free loopback port below the ephemeral range (a clash with a later bind is retried by start),
# not reserved by another live state dir, and reserved for DIR: the registry of lib/service.sh
# (an instance stopped for an outage comes back on its ports).
free_port() {
  "$PY" - "${TMPDIR:-/tmp}/inserter-ports" "$DIR" <<'PY'
import os, random, socket, sys
registry, mine = sys.argv[1], sys.argv[2]
os.makedirs(registry, exist_ok=True)
for _ in range(200):
    p = random.randint(20000, 32000)
    link = os.path.join(registry, str(p))
    try:
        owner = os.readlink(link)
    except OSError:
        owner = None
    if owner is not None and owner != mine and os.path.isdir(owner):
        continue
    with socket.socket() as s:
        try: s.bind(("127.0.0.1", p))
        except OSError: continue
    tmp = f"{link}.{os.getpid()}"
    os.symlink(mine, tmp)
    os.replace(tmp, link)
    print(p); break
PY
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cmd_start() {
  parse_dir "$@"
  [ -f "$LIB" ] || cmd_install >&2
  PY="$(pick_python)" || die "no python3 (>= 3.9) found"
  if pid="$(running_pid)"; then die "already running in $DIR (pid $pid)"; fi
  rm -f "$DIR/pid" "$DIR/url"
  local http_port="${PORT:-$(cat "$DIR/port" 2>/dev/null || true)}" tcp_port fixed=1
  tcp_port="$(cat "$DIR/tcp_port" 2>/dev/null || true)"
  [ -n "$http_port" ] && [ -n "$tcp_port" ] || fixed=0
  local args=(--dir "$DIR" --lib "$LIB" --display-name "$DISPLAY_NAME")
  [ -n "$USERS" ] && args+=(--users "$USERS")
  args+=("${USER_ARGS[@]}")
  local attempt
  for attempt in 1 2 3; do
    [ -n "$http_port" ] || http_port="$(free_port)"
    [ -n "$tcp_port" ] || tcp_port="$(free_port)"
    [ "$http_port" != "$tcp_port" ] || { tcp_port=""; continue; }
    # setsid: its own process group, so it outlives this shell; stdin from /dev/null (libchdb, like
    # clickhouse-local, reads standard input as data for INSERT queries).
    setsid "$PY" "$LAUNCHER" "${args[@]}" --http-port "$http_port" --tcp-port "$tcp_port" \
      </dev/null >>"$DIR/server.out" 2>&1 &
    local spid=$!
    local deadline=$((SECONDS + ${CHLOCAL_START_TIMEOUT:-60}))
    while [ $SECONDS -lt $deadline ] && kill -0 "$spid" 2>/dev/null; do
      if [ "$(curl -s --max-time 2 "http://127.0.0.1:$http_port/ping" || true)" = "Ok." ] && tcp_open "$tcp_port"; then
        echo "$http_port" > "$DIR/port"
        echo "$tcp_port" > "$DIR/tcp_port"
        echo "http://127.0.0.1:$http_port" > "$DIR/url"
        echo "http://127.0.0.1:$http_port"
        return 0
      fi
      sleep 0.05
    done
    if kill -0 "$spid" 2>/dev/null; then
      kill -KILL "$spid" 2>/dev/null || true
      die "server did not answer /ping in time (see $DIR/server.out)"
    fi
    wait "$spid" 2>/dev/null || true
    rm -f "$DIR/pid"
    # Exited during start-up: with ports of our own choosing, maybe a clash; try new ones.
    [ "$fixed" = 0 ] && [ -z "$PORT" ] || break
    http_port=""; tcp_port=""
  done
  tail -n 30 "$DIR/server.out" >&2 || true
  die "server exited during start-up (see $DIR/server.out)"
}

cmd_stop() {
  parse_dir "$@"
  local pid
  pid="$(cat "$DIR/pid" 2>/dev/null || true)"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$DIR/pid" "$DIR/url"
    echo "chlocal: not running in $DIR"
    return 0
  fi
  # SIGTERM: ClickHouse cancels the keep-open query and the process ends (~1-2 s); SIGKILL after 15 s.
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + ${CHLOCAL_STOP_TIMEOUT:-15}))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  fi
  rm -f "$DIR/pid" "$DIR/url"
  echo "chlocal: stopped (pid $pid)"
}

cmd_status() {
  parse_dir "$@"
  if pid="$(running_pid)"; then
    echo "running pid $pid $(cat "$DIR/url" 2>/dev/null) tcp 127.0.0.1:$(cat "$DIR/tcp_port" 2>/dev/null)"
  else
    echo "stopped"
    return 3
  fi
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) shift; cmd_status "$@" ;;
  *) echo "usage: $0 install | start --dir DIR [--port P] [--users FILE|--user name:password] [--display-name N] | stop --dir DIR | status --dir DIR" >&2; exit 2 ;;
esac
