#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine, idempotently: Node.js 24 and the npm
# packages (npm ci), the Apache Kafka broker jars (Maven Central), chlocal's check of python3 and
# the ClickHouse library (libchdb.so, an npm devDependency), the Apache Pulsar broker jars (Maven
# Central), and the BigQuery emulator (built with Go from the module proxy; minutes the first time,
# so it builds while the rest installs). Nothing here depends on what an earlier session left
# installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

stamp=node_modules/.install-stamp
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -x node_modules/.bin/node ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "install: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi
node_modules/.bin/node --version | grep -q '^v24\.' || { echo "install: node_modules/.bin/node is not Node.js 24" >&2; exit 1; }
bash scripts/bigquery-emulator.sh install >&2 &
bigquery=$!
bash scripts/kafka.sh install >&2
bash scripts/pulsar.sh install >&2
bash scripts/chlocal.sh install >&2
wait "$bigquery" || { echo "install: the BigQuery emulator did not build" >&2; exit 1; }
echo "install: ready" >&2
