#!/usr/bin/env bash
# A real BigQuery API for development and tests: goccy/bigquery-emulator (REST and Storage API,
# GoogleSQL over SQLite), built from the Go module proxy. No Docker, no download of a release binary.
#
#   scripts/bigquery-emulator.sh install        build the emulator into .cache/bigquery-emulator/bin (once)
#   scripts/bigquery-emulator.sh start  [--dir DIR] [--project P] [--dataset D] [--port PORT]
#                                       [--grpc-port PORT] [--owner-pid PID]
#                                       start an emulator; prints http://127.0.0.1:PORT as the last line
#   scripts/bigquery-emulator.sh stop   [--dir DIR]   SIGTERM, then SIGKILL after a timeout; idempotent
#   scripts/bigquery-emulator.sh status [--dir DIR]   "running http://..." / "stopped ..." (exit 0 / 3)
#
# DIR defaults to .cache/bigquery-emulator/run/default. The emulator keeps its data in memory: a
# restart of a DIR reuses its ports, project and dataset, not its tables. --project defaults to
# "inserter-test", --dataset to "inserter" (the one dataset created at start; others can be created
# through the API). A fresh DIR gets free ports. Several DIRs can run at the same time.
# --owner-pid PID: a small watchdog stops the emulator when PID exits (tests use it so that a
# crashed test run does not leave an emulator behind).
#
# The build (5-10 min of CPU the first time, a 200 MB binary; seconds with Go's build cache warm) runs
# `go get` + `go build` in a throwaway module under .cache/bigquery-emulator/build (`go install
# module@version` cannot be used: the module proxy serves the module but not the version list go
# install asks for). It uses the user's Go module and build caches (go env GOMODCACHE / GOCACHE),
# which Go shares between projects and keeps read-only; GOFLAGS, GOPROXY etc. come from the
# environment as usual. One patch is applied to a copy of the released source (see patch_program:
# a load whose data failed must not read as succeeded); BIGQUERY_EMULATOR_STOCK=1 builds the
# release as it is.
#
# Environment: BIGQUERY_EMULATOR_START_TIMEOUT (seconds, default 30), BIGQUERY_EMULATOR_STOP_TIMEOUT
# (seconds, default 10), BIGQUERY_EMULATOR_LOG_LEVEL (debug/info/warn/error, default warn),
# BIGQUERY_EMULATOR_STOCK (1: no patch), GO (default: go on PATH).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EMULATOR_MODULE="github.com/goccy/bigquery-emulator"
EMULATOR_VERSION="v0.8.1"
CACHE="$ROOT/.cache/bigquery-emulator"
BIN="$CACHE/bin/bigquery-emulator"
GO="${GO:-go}"
START_TIMEOUT="${BIGQUERY_EMULATOR_START_TIMEOUT:-30}"
STOP_TIMEOUT="${BIGQUERY_EMULATOR_STOP_TIMEOUT:-10}"
LOG_LEVEL="${BIGQUERY_EMULATOR_LOG_LEVEL:-warn}"

SERVICE=bigquery-emulator
USAGE_LINES=2,30
PID_FILE=emulator.pid
SERVICE_OPTS=(--port=PORT --grpc-port=GRPC_PORT --project=PROJECT --dataset=DATASET)
# Option parsing, stop, status, the owner-pid watchdog, free ports, waiting: shared with kafka.sh
# and pulsar.sh.
# shellcheck source=lib/service.sh
source "$ROOT/scripts/lib/service.sh"

# ---------------------------------------------------------------------------------------------
# install

# The one change made to the released source (BIGQUERY_EMULATOR_STOCK=1 builds it as released).
# Released, a load job uploaded with its data is recorded before the data is read, and jobs.get
# says DONE without error whatever happened to the data: a load that failed (a bad value, a missing
# table, a client killed mid-upload) reads as succeeded, so a retry of its job id loads nothing and
# rows are lost (docs/design/bigquery.md, "The emulator"). Patched, it reports what BigQuery
# reports: RUNNING while the data loads, then DONE, or DONE with the failure as its errorResult;
# and jobs.get keeps a job's own status (a failed query job's errorResult too). A Node program
# (the repository's own node) edits server/handler.go of a copy of the module; each anchor must
# match exactly once, so a different release fails the build instead of building something else.
patch_program() {
  cat <<'EOF'
const fs = require('node:fs');
const file = process.argv[2];
let text = fs.readFileSync(file, 'utf8');
if (!text.startsWith('package server')) throw new Error(`${file} is not the emulator's server/handler.go`);
const edits = [
  [
    `		errorResponse(ctx, w, errInternalError(err.Error()))
		return
	}

	p, err = mul.NextPart()
	if err != nil {
		errorResponse(ctx, w, errInvalid(fmt.Sprintf("multipart request is invalid: %s", err.Error())))
		return
	}`,
    `		errorResponse(ctx, w, errInternalError(err.Error()))
		return
	}
	setUploadJobStatus(ctx, server, project, uploadJob, nil, true)

	p, err = mul.NextPart()
	if err != nil {
		serr := errInvalid(fmt.Sprintf("multipart request is invalid: %s", err.Error()))
		setUploadJobStatus(ctx, server, project, uploadJob, serr, false)
		errorResponse(ctx, w, serr)
		return
	}`,
  ],
  [
    `	if err != nil {
		uploadErrorResponse(ctx, w, err)
		return
	}
	encodeResponse(ctx, w, uploadJob.Content())`,
    `	if err != nil {
		setUploadJobStatus(ctx, server, project, uploadJob, err, false)
		uploadErrorResponse(ctx, w, err)
		return
	}
	setUploadJobStatus(ctx, server, project, uploadJob, nil, false)
	encodeResponse(ctx, w, uploadJob.Content())`,
  ],
  [
    `	content := *r.job.Content()
	content.Status = &bigqueryv2.JobStatus{State: "DONE"}
	return &content, nil`,
    `	content := *r.job.Content()
	if content.Status == nil {
		content.Status = &bigqueryv2.JobStatus{State: "DONE"}
	}
	return &content, nil`,
  ],
];
for (const [from, to] of edits) {
  const count = text.split(from).length - 1;
  if (count !== 1) throw new Error(`patch anchor found ${count} times (expected once):\n${from}`);
  text = text.replace(from, () => to);
}
text += `
// setUploadJobStatus (added by inserter's scripts/bigquery-emulator.sh): a load job is RUNNING
// while its upload's data loads, then DONE, or DONE with the failure as its errorResult. Stored
// with the job (each request reads the project's jobs from the metadata store), also when the
// client has gone (its request's context is cancelled then).
func setUploadJobStatus(ctx context.Context, server *Server, project *metadata.Project, job *metadata.Job, err error, running bool) {
	status := &bigqueryv2.JobStatus{State: "DONE"}
	if running {
		status.State = "RUNNING"
	} else if err != nil {
		var serr *ServerError
		if !errors.As(err, &serr) {
			serr = errJobInternalError(err.Error())
		}
		status.ErrorResult = serr.ErrorProto()
		status.Errors = []*bigqueryv2.ErrorProto{serr.ErrorProto()}
	}
	job.Content().Status = status
	ctx = context.WithoutCancel(ctx)
	conn, cerr := server.connMgr.Connection(ctx, project.ID, "")
	if cerr != nil {
		return
	}
	tx, terr := conn.Begin(ctx)
	if terr != nil {
		return
	}
	defer tx.RollbackIfNotCommitted()
	if job.SetResult(ctx, tx.Tx(), nil, nil) == nil {
		_ = tx.Commit()
	}
}
`;
fs.writeFileSync(file, text);
EOF
}

patched() { [[ "${BIGQUERY_EMULATOR_STOCK:-}" != "1" ]]; }

marker_value() {
  # The marker records what was built: another version, patch or platform means a rebuild.
  local patch=stock
  patched && patch="$(patch_program | sha256sum | cut -c1-16)"
  echo "module=$EMULATOR_MODULE version=$EMULATOR_VERSION patch=$patch platform=$(uname -s)-$(uname -m)"
}

installed() {
  [[ -x "$BIN" && -f "$BIN.installed" && "$(cat "$BIN.installed")" == "$(marker_value)" ]]
}

install() {
  installed && return 0
  mkdir -p "$CACHE/bin"
  # Parallel test files may all call start (and so install) at once: serialise on a lock.
  exec 9>"$CACHE/.install.lock"
  flock 9
  if installed; then
    exec 9>&-
    return 0
  fi
  command -v "$GO" >/dev/null || die "go not found (needed once, to build the emulator from the Go module proxy)"
  local node="$ROOT/node_modules/.bin/node"
  [[ -x "$node" ]] || node="$(command -v node || true)"
  patched && [[ -z "$node" ]] && die "node not found (needed to patch the emulator; run npm ci first, or BIGQUERY_EMULATOR_STOCK=1)"
  log "building $EMULATOR_MODULE@$EMULATOR_VERSION$(patched && echo ' (patched: failed loads reported)') into $BIN (takes minutes, once)"
  local build="$CACHE/build" started=$SECONDS
  rm -rf "$build"
  mkdir -p "$build"
  if ! (
    set -euo pipefail
    cd "$build"
    "$GO" mod init inserter.local/bigquery-emulator-build
    "$GO" get "$EMULATOR_MODULE/cmd/bigquery-emulator@$EMULATOR_VERSION"
    if patched; then
      # A writable copy of the released module (the module cache is read-only), patched, replacing it.
      cp -R "$("$GO" list -m -f '{{.Dir}}' "$EMULATOR_MODULE")" source
      chmod -R u+w source
      patch_program >patch.cjs
      "$node" patch.cjs source/server/handler.go
      "$GO" mod edit -replace "$EMULATOR_MODULE=./source"
    fi
    # Pure Go (GoogleSQL and SQLite are WebAssembly translated to Go): no C toolchain needed.
    "$GO" build \
      -ldflags "-s -w -X main.version=$EMULATOR_VERSION$(patched && echo +inserter-patch) -X main.revision=module-proxy" \
      -o "$BIN.tmp" "$EMULATOR_MODULE/cmd/bigquery-emulator"
  ) >"$CACHE/build.log" 2>&1; then
    tail -n 30 "$CACHE/build.log" >&2
    rm -f "$BIN.tmp"
    die "building the emulator failed (full log: $CACHE/build.log)"
  fi
  mv -f "$BIN.tmp" "$BIN"
  marker_value >"$BIN.installed"
  rm -rf "$build"
  log "built in $((SECONDS - started))s: $("$BIN" --version | head -n 1)"
  exec 9>&-
}

# ---------------------------------------------------------------------------------------------
# helpers

PORT=""
GRPC_PORT=""
PROJECT=""
DATASET=""

# Guard against pid reuse: the process must be our binary serving this DIR's port.
service_pid() { running_pid "$BIN --host=127.0.0.1 --port=$(state port)"; }

# A value of DIR/state (port, grpc_port, project, dataset), written by a start.
state() {
  [[ -f "$DIR/state" ]] || return 0
  sed -n "s/^$1=//p" "$DIR/state"
}

# Ready (for wait_ready): does the REST API answer (the project's dataset list, as a client's first
# call would)?
ready() {
  local reply
  reply="$({
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" &&
      printf 'GET /bigquery/v2/projects/%s/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$PROJECT" >&3 &&
      timeout 5 head -n 1 <&3
  } 2>/dev/null)" || return 1
  [[ "$reply" == "HTTP/1.1 200"* ]]
}

launch() {
  mkdir -p "$DIR/logs"
  : >"$DIR/logs/emulator.log"
  # Detached from our stdio, so callers that capture stdout (execFile) are not kept waiting.
  setsid nohup "$BIN" --host=127.0.0.1 --port="$PORT" --grpc-port="$GRPC_PORT" \
    --project="$PROJECT" ${DATASET:+--dataset="$DATASET"} --log-level="$LOG_LEVEL" \
    </dev/null >>"$DIR/logs/emulator.log" 2>&1 &
  echo $! >"$DIR/emulator.pid"
}

# ---------------------------------------------------------------------------------------------
# commands

start() {
  parse_opts "$@"
  local pid
  if pid="$(service_pid)"; then
    log "already running (pid $pid)"
    echo "http://127.0.0.1:$(state port)"
    return 0
  fi
  install

  # A DIR started before keeps its ports, project and dataset unless told otherwise.
  local ports_given=0
  [[ -n "$PORT" || -n "$GRPC_PORT" ]] && ports_given=1
  PORT="${PORT:-$(state port)}"
  GRPC_PORT="${GRPC_PORT:-$(state grpc_port)}"
  PROJECT="${PROJECT:-$(state project)}"
  PROJECT="${PROJECT:-inserter-test}"
  DATASET="${DATASET:-$(state dataset)}"
  DATASET="${DATASET:-inserter}"

  local attempt
  for attempt in 1 2 3; do
    [[ -n "$PORT" ]] || PORT="$(free_port)"
    [[ -n "$GRPC_PORT" ]] || GRPC_PORT="$(free_port "$PORT")"
    printf 'port=%s\ngrpc_port=%s\nproject=%s\ndataset=%s\n' "$PORT" "$GRPC_PORT" "$PROJECT" "$DATASET" >"$DIR/state"
    local started_at=$SECONDS
    launch
    pid="$(cat "$DIR/emulator.pid")"
    local rc=0
    wait_ready "$pid" 0.1 || rc=$?
    if ((rc == 0)); then
      start_watchdog "$pid"
      log "emulator up in $((SECONDS - started_at))s (pid $pid, project $PROJECT, dataset $DATASET, dir $DIR)"
      echo "http://127.0.0.1:$PORT"
      return 0
    fi
    if ((rc == 1)) && ((!ports_given)) && grep -qi "address already in use" "$DIR/logs/emulator.log" 2>/dev/null; then
      log "port clash on $PORT/$GRPC_PORT (attempt $attempt), retrying with other ports"
      PORT=""
      GRPC_PORT=""
      rm -f "$DIR/emulator.pid"
      continue
    fi
    if ((rc == 2)); then
      log "emulator did not answer within ${START_TIMEOUT}s"
      stop_pid "$pid"
    else
      log "emulator exited during start-up"
    fi
    echo "---- last lines of $DIR/logs/emulator.log ----" >&2
    tail -n 30 "$DIR/logs/emulator.log" >&2 || true
    rm -f "$DIR/emulator.pid"
    exit 1
  done
  die "could not start the emulator (ports kept clashing)"
}

status() {
  parse_opts "$@"
  local port
  port="$(state port)"
  report_status "http://127.0.0.1:$port" "${port:+(last url http://127.0.0.1:$port) }"
}

main "$@"
