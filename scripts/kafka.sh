#!/usr/bin/env bash
# A real, single-node Apache Kafka (KRaft, combined broker+controller) for development and tests.
# No Docker, no tarball: the broker's jars come from Maven Central (scripts/kafka/pom.xml).
#
#   scripts/kafka.sh install                       resolve the jars into .cache/kafka/libs (once)
#   scripts/kafka.sh start  [--dir DIR] [--port PORT] [--controller-port PORT] [--owner-pid PID] [--sasl-ssl]
#                                                  start a broker; prints 127.0.0.1:PORT as the last line
#   scripts/kafka.sh stop   [--dir DIR]            SIGTERM, then SIGKILL after a timeout; idempotent
#   scripts/kafka.sh status [--dir DIR]            "running 127.0.0.1:PORT" / "stopped ..." (exit 0 / 3)
#
# DIR defaults to .cache/kafka/run/default. Starting a DIR that was started before reuses its
# ports, cluster id and data (that is how a restart works); a fresh DIR gets free ports and a new
# random cluster id. Several DIRs can run at the same time.
# --owner-pid PID: a small watchdog stops the broker when PID exits (tests use it so that a
# crashed test run does not leave a broker behind).
# --sasl-ssl: a SASL_SSL listener (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN, OAUTHBEARER) and an SSL listener requiring a
# client certificate (mTLS) next to the PLAINTEXT one (which stays for inter-broker traffic and plain
# clients). A fresh DIR gets a CA, a broker certificate for 127.0.0.1/localhost and a client
# certificate (openssl), and a SCRAM user created by the broker's own StorageTool; what a client needs
# is written to DIR/sasl-ssl.env (SASL_SSL_BOOTSTRAP, CA_FILE, SASL_USER, SASL_PASSWORD_FILE,
# SSL_BOOTSTRAP, CLIENT_CERT_FILE, CLIENT_KEY_FILE).
#
# Environment: KAFKA_HEAP_OPTS (default "-Xms128m -Xmx512m"), KAFKA_START_TIMEOUT (seconds, default 60),
# KAFKA_STOP_TIMEOUT (seconds, default 20), JAVA (default: java on PATH).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_VERSION="4.4.0"
CACHE="$ROOT/.cache/kafka"
LIBS="$CACHE/libs"
POM="$ROOT/scripts/kafka/pom.xml"
LOG4J_CONFIG="$ROOT/scripts/kafka/log4j2.xml"
PROBE="$ROOT/scripts/kafka/probe.ts"
NODE="$ROOT/node_modules/.bin/node"
JAVA="${JAVA:-java}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"

SERVICE=kafka
USAGE_LINES=2,25
PID_FILE=kafka.pid
SERVICE_OPTS=(--port=PORT --controller-port=CPORT)
SERVICE_FLAGS=(--sasl-ssl=SASL_SSL)
# Option parsing, stop, status, the owner-pid watchdog, free ports, waiting: shared with pulsar.sh
# and bigquery-emulator.sh.
# shellcheck source=lib/service.sh
source "$ROOT/scripts/lib/service.sh"

# ---------------------------------------------------------------------------------------------
# install

marker_value() {
  # The marker records what was installed: a changed pom means a reinstall.
  echo "kafka=$KAFKA_VERSION pom=$(sha256sum "$POM" | cut -d' ' -f1)"
}

# (for maven_install) The jars resolved into $1 include the broker's.
check_resolved() {
  [[ -f "$1/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$1"; die "kafka_2.13-$KAFKA_VERSION.jar missing after resolve"; }
}

install() {
  maven_install "the Kafka jars" "org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
}

# ---------------------------------------------------------------------------------------------
# helpers

PORT=""
CPORT=""
SASL_SSL=0
SPORT=""
TPORT=""
SASL_USER="inserter"

# Kafka cluster ids are 16 random bytes in url-safe base64 without padding; Kafka itself avoids
# ids starting with '-' (they look like CLI flags).
random_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && { echo "$id"; return 0; }
  done
}

# Guard against pid reuse: the process must be our java with this state dir on its command line.
service_pid() { running_pid "-Dinserter.kafka.dir=$DIR"; }

# --sasl-ssl: a CA and a broker certificate (127.0.0.1, localhost) in DIR/tls, the broker's key and
# certificate as a PKCS12 keystore, and the SCRAM user's password (created once per DIR).
make_tls() {
  local tls="$DIR/tls"
  [[ -f "$tls/broker.p12" && -f "$tls/client.crt" && -f "$DIR/sasl.password" ]] && return 0
  command -v openssl >/dev/null || die "openssl not found (needed for --sasl-ssl certificates)"
  mkdir -p "$tls"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=inserter test CA" \
      -keyout "$tls/ca.key" -out "$tls/ca.crt"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tls/broker.key" -out "$tls/broker.csr"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$tls/broker.ext"
    openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
      -days 30 -extfile "$tls/broker.ext" -out "$tls/broker.crt"
    head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$tls/keystore.password"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=inserter-client" -keyout "$tls/client.key" -out "$tls/client.csr"
    openssl x509 -req -in "$tls/client.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
      -days 30 -out "$tls/client.crt"
    openssl pkcs12 -export -in "$tls/broker.crt" -inkey "$tls/broker.key" -certfile "$tls/ca.crt" \
      -name broker -out "$tls/broker.p12" -passout "file:$tls/keystore.password"
  } >"$DIR/logs/tls.out" 2>&1 || { cat "$DIR/logs/tls.out" >&2; die "generating certificates failed"; }
  head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$DIR/sasl.password"
  chmod 600 "$tls"/*.key "$tls/keystore.password" "$DIR/sasl.password"
}

write_config() {
  local listeners="PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT"
  local advertised="PLAINTEXT://127.0.0.1:$PORT"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if ((SASL_SSL)); then
    listeners="$listeners,SASL_SSL://127.0.0.1:$SPORT,SSL://127.0.0.1:$TPORT"
    advertised="$advertised,SASL_SSL://127.0.0.1:$SPORT,SSL://127.0.0.1:$TPORT"
    protocols="$protocols,SASL_SSL:SASL_SSL,SSL:SSL"
  fi
  cat >"$DIR/server.properties" <<EOF
# Written by scripts/kafka.sh: single-node KRaft (broker+controller) for development and tests.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CPORT
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$DIR/data

# Tests create their topics explicitly.
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1

# Internal topics on a single node; fewer partitions than the defaults (50) so the first
# group / transactional request is quick.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=3

# Consumer groups: classic and KIP-848 (group.protocol=consumer) are both on by default in 4.x
# (group.coordinator.rebalance.protocols is deprecated in 4.4 and would switch "streams" off).
group.initial.rebalance.delay.ms=0
# Faster KIP-848 heartbeats / failure detection than the defaults (5 s / 45 s).
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=1000
group.consumer.min.session.timeout.ms=3000
group.consumer.session.timeout.ms=10000
group.min.session.timeout.ms=1000

# Sizes: PostHog session recordings are ~1 MB per message.
message.max.bytes=8388608
replica.fetch.max.bytes=8388608
log.segment.bytes=16777216
log.retention.hours=24
log.retention.check.interval.ms=60000

# Small footprint.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
EOF
  if ((SASL_SSL)); then
    cat >>"$DIR/server.properties" <<EOF

# --sasl-ssl: SCRAM over TLS; users live in the cluster metadata (StorageTool --add-scram).
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN,OAUTHBEARER
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$(cat "$DIR/sasl.password")";
# OAUTHBEARER with Kafka's built-in unsecured validator (unsigned JWTs with sub and exp): tests only.
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$DIR/tls/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$(cat "$DIR/tls/keystore.password")
listener.name.sasl_ssl.ssl.client.auth=none
# SSL: the client certificate (signed by DIR/tls/ca.crt) is the login.
listener.name.ssl.ssl.keystore.type=PKCS12
listener.name.ssl.ssl.keystore.location=$DIR/tls/broker.p12
listener.name.ssl.ssl.keystore.password=$(cat "$DIR/tls/keystore.password")
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=$DIR/tls/ca.crt
listener.name.ssl.ssl.client.auth=required
EOF
  fi
}

format_storage() {
  local cluster_id
  cluster_id="$(random_cluster_id)"
  echo "$cluster_id" >"$DIR/cluster.id"
  local scram=()
  if ((SASL_SSL)); then
    local password
    password="$(cat "$DIR/sasl.password")"
    scram=(--add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$password]"
      --add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$password]")
  fi
  if ! "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -Xshare:auto -cp "$LIBS/*" \
      -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$DIR/logs" \
      kafka.tools.StorageTool format --standalone --ignore-formatted "${scram[@]}" \
      --cluster-id "$cluster_id" --config "$DIR/server.properties" >"$DIR/logs/format.out" 2>&1; then
    cat "$DIR/logs/format.out" >&2
    die "formatting $DIR/data failed"
  fi
}

print_log_tail() {
  if grep -qE "ERROR|Exception" "$DIR/logs/server.log" 2>/dev/null; then
    echo "---- first errors in $DIR/logs/server.log ----" >&2
    grep -E "ERROR|Exception" "$DIR/logs/server.log" | head -n 10 >&2 || true
  fi
  echo "---- last lines of $DIR/logs/server.log ----" >&2
  tail -n 40 "$DIR/logs/server.log" >&2 2>/dev/null || true
  echo "---- $DIR/logs/kafka.out ----" >&2
  tail -n 20 "$DIR/logs/kafka.out" >&2 2>/dev/null || true
}

# Start java in the background, detached from our stdio (so callers that capture stdout, such as
# execFile, are not kept waiting by the broker).
launch() {
  : >"$DIR/logs/kafka.out"
  # shellcheck disable=SC2086
  setsid nohup "$JAVA" $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Xss1m \
    -Djava.awt.headless=true -Dinserter.kafka.dir="$DIR" \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$DIR/logs" \
    -cp "$LIBS/*" kafka.Kafka "$DIR/server.properties" \
    </dev/null >>"$DIR/logs/kafka.out" 2>&1 &
  echo $! >"$DIR/kafka.pid"
}

# Ready (for wait_ready) once the broker answers a real Metadata request (or, without node, accepts
# connections and has logged that it started).
ready() {
  port_in_use "$PORT" && { ((!SASL_SSL)) || { port_in_use "$SPORT" && port_in_use "$TPORT"; }; } &&
    grep -q "Kafka Server started" "$DIR/logs/server.log" 2>/dev/null || return 1
  if [[ -x "$NODE" && -f "$PROBE" ]]; then
    "$NODE" "$PROBE" "127.0.0.1:$PORT" >>"$DIR/logs/probe.out" 2>&1
  fi
}

# ---------------------------------------------------------------------------------------------
# commands

start() {
  parse_opts "$@"
  local pid
  if pid="$(service_pid)"; then
    log "already running (pid $pid)"
    cat "$DIR/bootstrap"
    return 0
  fi
  install
  mkdir -p "$DIR/logs"

  local fresh=0 ports_given=0
  [[ -n "$PORT" || -n "$CPORT" ]] && ports_given=1
  if [[ -f "$DIR/server.properties" && -f "$DIR/data/meta.properties" ]]; then
    # A restart: same ports, same data.
    local old_port old_cport
    old_port="$(sed -n 's/^advertised.listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\).*$/\1/p' "$DIR/server.properties")"
    SPORT="$(sed -n 's/^advertised.listeners=.*SASL_SSL:\/\/127.0.0.1:\([0-9]*\).*$/\1/p' "$DIR/server.properties")"
    TPORT="$(sed -n 's/^advertised.listeners=.*,SSL:\/\/127.0.0.1:\([0-9]*\).*$/\1/p' "$DIR/server.properties")"
    [[ -n "$SPORT" ]] && SASL_SSL=1
    old_cport="$(sed -n 's/^controller.quorum.bootstrap.servers=127.0.0.1:\([0-9]*\)$/\1/p' "$DIR/server.properties")"
    if [[ -n "$CPORT" && "$CPORT" != "$old_cport" ]]; then
      # The formatted metadata log records the controller endpoint (--standalone voter set).
      die "$DIR was formatted for controller port $old_cport; use a new --dir for another one"
    fi
    if [[ -n "$PORT" && "$PORT" != "$old_port" ]]; then
      CPORT="$old_cport"
      write_config # new broker port, same data
    else
      PORT="$old_port"
      CPORT="$old_cport"
    fi
  else
    fresh=1
    rm -rf "$DIR/data"
  fi

  local attempt
  for attempt in 1 2 3; do
    if ((fresh)); then
      [[ -n "$PORT" && $ports_given == 1 ]] || PORT="$(free_port)"
      [[ -n "$CPORT" && $ports_given == 1 ]] || CPORT="$(free_port "$PORT")"
      if ((SASL_SSL)); then
        SPORT="$(free_port "$PORT")"
        [[ "$SPORT" != "$CPORT" ]] || SPORT="$(free_port "$CPORT")"
        TPORT="$(free_port "$SPORT")"
        [[ "$TPORT" != "$PORT" && "$TPORT" != "$CPORT" ]] || TPORT="$(free_port "$SPORT")"
        make_tls
      fi
      write_config
      [[ -f "$DIR/data/meta.properties" ]] || format_storage
    fi
    rm -f "$DIR/bootstrap"
    : >"$DIR/logs/probe.out"
    local started_at=$SECONDS
    launch
    pid="$(cat "$DIR/kafka.pid")"
    local rc=0
    wait_ready "$pid" 0.2 || rc=$?
    if ((rc == 0)); then
      echo "127.0.0.1:$PORT" >"$DIR/bootstrap"
      if ((SASL_SSL)); then
        printf 'SASL_SSL_BOOTSTRAP=127.0.0.1:%s\nCA_FILE=%s\nSASL_USER=%s\nSASL_PASSWORD_FILE=%s\nSSL_BOOTSTRAP=127.0.0.1:%s\nCLIENT_CERT_FILE=%s\nCLIENT_KEY_FILE=%s\n' \
          "$SPORT" "$DIR/tls/ca.crt" "$SASL_USER" "$DIR/sasl.password" "$TPORT" "$DIR/tls/client.crt" "$DIR/tls/client.key" >"$DIR/sasl-ssl.env"
        log "SASL_SSL listener on 127.0.0.1:$SPORT (SCRAM-SHA-512/256 user $SASL_USER), SSL (mTLS) on 127.0.0.1:$TPORT; see $DIR/sasl-ssl.env"
      fi
      start_watchdog "$pid"
      log "broker up in $((SECONDS - started_at))s (pid $pid, dir $DIR, controller port $CPORT)"
      echo "127.0.0.1:$PORT"
      return 0
    fi
    if ((rc == 1)) && ((fresh)) && ((!ports_given)) &&
        grep -qiE "Address already in use|BindException" "$DIR/logs/server.log" "$DIR/logs/kafka.out" 2>/dev/null; then
      log "port clash on $PORT/$CPORT, retrying with other ports"
      PORT=""; CPORT=""; SPORT=""; TPORT=""
      rm -f "$DIR/kafka.pid"
      rm -rf "$DIR/data" # formatted with the clashing controller port
      mv "$DIR/logs/server.log" "$DIR/logs/server.log.bind-failure-$attempt" 2>/dev/null || true
      continue
    fi
    start_failed "$pid" "$rc" broker
  done
  die "could not start the broker (ports kept clashing)"
}

status() {
  parse_opts "$@"
  local bootstrap=""
  [[ -f "$DIR/bootstrap" ]] && bootstrap="$(cat "$DIR/bootstrap")"
  report_status "$bootstrap" "${bootstrap:+(last bootstrap $bootstrap) }"
}

main "$@"
