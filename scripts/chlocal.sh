#!/usr/bin/env bash
# chlocal: a local ClickHouse HTTP server over the real ClickHouse engine (chDB), for development
# and tests. Production never uses it. See docs/local-stack.md ("ClickHouse (chlocal)").
#
#   scripts/chlocal.sh install
#   scripts/chlocal.sh start --dir DIR [--port P] [--users FILE | --user name:password ...] [--display-name N]
#   scripts/chlocal.sh stop --dir DIR
#   scripts/chlocal.sh status --dir DIR
#
# start prints http://127.0.0.1:PORT as its last line and leaves DIR/pid, DIR/url, DIR/port,
# DIR/chlocal.log (queries at debug level) and DIR/data (the engine's data directory).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv/chlocal"
REQS="$ROOT/tools/chlocal/requirements.txt"
SERVER="$ROOT/tools/chlocal/server.py"
LIB_PKG="@chdb/lib-linux-x64-gnu"
LIB="$ROOT/node_modules/$LIB_PKG/libchdb.so"

die() { echo "chlocal: $*" >&2; exit 1; }

pick_python() {
  for p in "${CHLOCAL_PYTHON:-}" python3.12 python3.11 python3; do
    [ -n "$p" ] || continue
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  return 1
}

cmd_install() {
  local stamp="$VENV/.requirements.sha256" want
  want="$(sha256sum "$REQS" | cut -d' ' -f1)"
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    local py; py="$(pick_python)" || die "no python3 (>= 3.9) with venv found"
    [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
    echo "$want" > "$stamp"
  fi
  if [ ! -f "$LIB" ]; then
    # A devDependency: `npm ci` installs it. If it is missing (e.g. `npm ci --omit=dev`), add it
    # at the version package.json pins, without touching package.json or the lockfile.
    local ver
    ver="$(cd "$ROOT" && node -e 'const p=require("./package.json");process.stdout.write((p.devDependencies||{})["'"$LIB_PKG"'"]||"")' 2>/dev/null || true)"
    [ -n "$ver" ] || die "$LIB_PKG is not in package.json devDependencies"
    (cd "$ROOT" && npm install --no-save --no-audit --no-fund "$LIB_PKG@$ver" >&2)
  fi
  [ -f "$LIB" ] || die "libchdb.so still missing at $LIB"
  echo "chlocal: ready ($VENV, $LIB)"
}

parse_dir() {
  DIR=""; PORT=""; USERS=""; USER_ARGS=(); DISPLAY_NAME=""
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

cmd_start() {
  parse_dir "$@"
  [ -x "$VENV/bin/python" ] && [ -f "$LIB" ] || cmd_install >&2
  if pid="$(running_pid)"; then die "already running in $DIR (pid $pid)"; fi
  rm -f "$DIR/pid" "$DIR/url" "$DIR/port"
  local args=(--dir "$DIR")
  [ -n "$PORT" ] && args+=(--port "$PORT")
  [ -n "$USERS" ] && args+=(--users "$USERS")
  [ -n "$DISPLAY_NAME" ] && args+=(--display-name "$DISPLAY_NAME")
  args+=("${USER_ARGS[@]}")
  # setsid: its own process group, so it outlives this shell; stdin from /dev/null (chDB reads stdin).
  CHLOCAL_LIBCHDB="$LIB" setsid "$VENV/bin/python" "$SERVER" "${args[@]}" </dev/null >>"$DIR/server.out" 2>&1 &
  local spid=$!
  local deadline=$((SECONDS + ${CHLOCAL_START_TIMEOUT:-60}))
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$spid" 2>/dev/null; then
      tail -n 30 "$DIR/server.out" >&2 || true
      die "server exited during start-up (see $DIR/server.out, $DIR/chlocal.log)"
    fi
    if [ -f "$DIR/url" ]; then
      local url; url="$(cat "$DIR/url")"
      if [ "$(curl -s --max-time 2 "$url/ping" || true)" = "Ok." ]; then
        echo "$url"
        return 0
      fi
    fi
    sleep 0.1
  done
  kill "$spid" 2>/dev/null || true
  die "server did not answer /ping in time (see $DIR/server.out)"
}

cmd_stop() {
  parse_dir "$@"
  local pid
  pid="$(cat "$DIR/pid" 2>/dev/null || true)"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$DIR/pid" "$DIR/url" "$DIR/port"
    echo "chlocal: not running in $DIR"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/pid" "$DIR/url" "$DIR/port"
  echo "chlocal: stopped (pid $pid)"
}

cmd_status() {
  parse_dir "$@"
  if pid="$(running_pid)"; then
    echo "running pid $pid $(cat "$DIR/url" 2>/dev/null)"
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
  *) echo "usage: $0 install | start --dir DIR [--port P] [--users FILE|--user name:password] | stop --dir DIR | status --dir DIR" >&2; exit 2 ;;
esac
