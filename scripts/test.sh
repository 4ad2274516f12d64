#!/usr/bin/env bash
# Runs every check and test: type check, lint, unit tests, then the end-to-end tests against one
# real Kafka broker shared by the run (each test file starts its own ClickHouse endpoints, and its own
# broker when it needs to restart one). Every process started here is stopped on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/install.sh
NODE="$ROOT/node_modules/.bin/node"
export PATH="$ROOT/node_modules/.bin:$PATH"

echo "== typecheck" >&2
tsc --noEmit -p .
echo "== lint" >&2
eslint --max-warnings=0 .
prettier --check . >/dev/null || { prettier --check . >&2; echo "lint: run node_modules/.bin/prettier --write . (formatting)" >&2; exit 1; }

KAFKA_DIR="$(mktemp -d /tmp/inserter-test-kafka.XXXXXX)"
# One compile cache for every Node process of the run (test files, the inserters they start): each
# process otherwise compiles the same TypeScript modules again.
NODE_COMPILE_CACHE="$(mktemp -d /tmp/inserter-test-compile-cache.XXXXXX)"
export NODE_COMPILE_CACHE
cleanup() { bash scripts/kafka.sh stop --dir "$KAFKA_DIR" >/dev/null 2>&1 || true; rm -rf "$KAFKA_DIR" "$NODE_COMPILE_CACHE"; }
trap cleanup EXIT
echo "== starting a Kafka broker for the run" >&2
KAFKA_BOOTSTRAP="$(bash scripts/kafka.sh start --dir "$KAFKA_DIR" | tail -n 1)"
export KAFKA_BOOTSTRAP

echo "== tests" >&2
files=()
while IFS= read -r f; do files+=("$f"); done < <(find test -name '*.test.ts' | sort)
REPORT="$(mktemp /tmp/inserter-test-report.XXXXXX)"
trap 'cleanup; rm -f "$REPORT"' EXIT
# The spec report for people, a TAP copy from which the real failures are printed last (a CI log
# shows its tail, and node lists the known failures of `todo` tests there too).
status=0
"$NODE" --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout=600000 \
  --test-reporter=spec --test-reporter-destination=stdout --test-reporter=tap --test-reporter-destination="$REPORT" \
  "${files[@]}" || status=$?
if [ "$status" -ne 0 ]; then "$NODE" scripts/failures.ts "$REPORT"; fi
exit "$status"
