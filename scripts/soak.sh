#!/usr/bin/env bash
# The chaos soak (`make soak`, not in CI): test/e2e/chaos.test.ts with ≥ 100 faults (kill -9 and
# SIGSTOP/SIGCONT stalls) over a longer stream, against a Kafka broker started here for the run.
# Knobs are passed through: CHAOS_FAULTS (default 100), CHAOS_EVENTS (default 150000), CHAOS_SEED,
# CHAOS_GROUP_PROTOCOL, or CHAOS_DURATION_S instead of CHAOS_FAULTS. Everything started here is
# stopped on exit (the test stops its inserters and ClickHouse endpoints itself). ~10-20 minutes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/install.sh
NODE="$ROOT/node_modules/.bin/node"

if [[ -z "${CHAOS_DURATION_S:-}" ]]; then export CHAOS_FAULTS="${CHAOS_FAULTS:-100}"; fi
export CHAOS_EVENTS="${CHAOS_EVENTS:-150000}"

KAFKA_DIR="$(mktemp -d /tmp/inserter-soak-kafka.XXXXXX)"
cleanup() { bash scripts/kafka.sh stop --dir "$KAFKA_DIR" >/dev/null 2>&1 || true; rm -rf "$KAFKA_DIR"; }
trap cleanup EXIT
echo "== starting a Kafka broker for the soak" >&2
KAFKA_BOOTSTRAP="$(bash scripts/kafka.sh start --dir "$KAFKA_DIR" --owner-pid $$ | tail -n 1)"
export KAFKA_BOOTSTRAP

echo "== soak: CHAOS_EVENTS=$CHAOS_EVENTS ${CHAOS_FAULTS:+CHAOS_FAULTS=$CHAOS_FAULTS }${CHAOS_DURATION_S:+CHAOS_DURATION_S=$CHAOS_DURATION_S }${CHAOS_SEED:+CHAOS_SEED=$CHAOS_SEED }against $KAFKA_BOOTSTRAP" >&2
start=$(date +%s)
status=0
"$NODE" --test test/e2e/chaos.test.ts || status=$?
echo "== soak finished in $(( $(date +%s) - start )) s, exit $status" >&2
exit "$status"
