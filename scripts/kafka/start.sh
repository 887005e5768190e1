#!/usr/bin/env bash
# Starts one Apache Kafka 4.x broker in KRaft mode (combined broker and
# controller, single node) with every security variant the Kafka endpoint
# supports, and leaves it running in the background.
#
# Usage: scripts/kafka/start.sh [--restart] DIR
#
# DIR is scratch space owned by this script: certs/ (from certs.sh), data/ (the
# log and metadata directories, formatted afresh on every start so runs never
# see each other's topics), server.properties, log4j2.properties, state (the
# ports, jars and version, for --restart), broker.log, broker.pid and env. Stop
# the broker with scripts/kafka/stop.sh DIR.
#
# --restart starts again the broker that an earlier start.sh set up in DIR and
# that was stopped or killed since: the same ports, certificates, configuration
# and data (no fetching, no certificates, no formatting), so clients find it
# where it was, with the topics and records it had. It waits for readiness as a
# first start does, rewrites DIR/env (the new SLUICE_KAFKA_PID) and broker.pid,
# and appends the previous broker.log to broker.prev.log. control.sh uses it
# for the broker-fault tests.
#
# Listeners, all on 127.0.0.1 with free ports picked at start:
#   PLAINTEXT       no security (also the inter-broker listener)
#   SASL_PLAINTEXT  SASL PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (unsecured
#                   JWS); user alice/alice-secret
#   SASL_SSL        the same mechanisms over TLS (no client certificate asked for)
#   SSL             TLS, client certificate requested: one-way and mutual TLS both work
#   SSL_MTLS        TLS, client certificate required: mutual TLS only
#   CONTROLLER      KRaft controller traffic, not advertised to clients
#
# DIR/env, meant to be sourced, exports:
#   SLUICE_KAFKA_BOOTSTRAP        PLAINTEXT address (what the e2e suite reads)
#   SLUICE_KAFKA_PLAINTEXT        the same address, named like the others
#   SLUICE_KAFKA_SASL_PLAINTEXT   SASL_PLAINTEXT address
#   SLUICE_KAFKA_SASL_SSL         SASL_SSL address
#   SLUICE_KAFKA_SSL              SSL address (client auth requested)
#   SLUICE_KAFKA_SSL_MTLS         SSL address (client auth required)
#   SLUICE_KAFKA_LISTENERS        "PLAINTEXT SASL_PLAINTEXT SASL_SSL SSL SSL_MTLS":
#                                 the suffixes of the address variables above, so
#                                 tests can loop over what this broker offers
#   SLUICE_KAFKA_SASL_MECHANISMS  "PLAIN SCRAM-SHA-256 SCRAM-SHA-512 OAUTHBEARER"
#   SLUICE_KAFKA_SASL_USERNAME    alice
#   SLUICE_KAFKA_SASL_PASSWORD    alice-secret
#   SLUICE_KAFKA_CERTS            folder written by certs.sh (file list there)
#   SLUICE_KAFKA_STORE_PASSWORD   changeit (every store and encrypted key)
#   SLUICE_KAFKA_VERSION          the broker's Kafka version
#   SLUICE_KAFKA_PID              the broker's process id
#   SLUICE_KAFKA_LOG              the broker's log file
#   SLUICE_KAFKA_CONTROL          "<scripts>/control.sh <DIR>": append kill or
#                                 start to crash the broker or start it again
#                                 (see control.sh); paths without spaces
#
# Environment read: SLUICE_KAFKA_VERSION, SLUICE_KAFKA_CACHE (see fetch.sh),
# JAVA (default: java on PATH), SLUICE_KAFKA_HEAP (default -Xmx512m),
# SLUICE_KAFKA_START_TIMEOUT (seconds, default 120).
set -euo pipefail

restart=0
if [[ "${1:-}" == --restart ]]; then
  restart=1
  shift
fi
if [[ $# -ne 1 ]]; then
  echo "usage: $0 [--restart] DIR" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
java="${JAVA:-java}"
heap="${SLUICE_KAFKA_HEAP:--Xmx512m}"
# Generous: a healthy start takes seconds, but a two-core machine busy with a
# parallel build can stretch it several-fold, and a false failure costs more.
timeout_s="${SLUICE_KAFKA_START_TIMEOUT:-120}"
user="alice"
password="alice-secret"
store_pass="changeit"
started=$SECONDS

log() { echo "start.sh: $*" >&2; }

# Java 17 is the floor for a 4.x broker; a clear message beats a
# ClassFormatError buried in the log.
java_major="$("${java}" -XshowSettings:properties -version 2>&1 |
  sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
if [[ -z "${java_major}" || "${java_major}" -lt 17 ]]; then
  log "Kafka 4.x needs Java 17 or newer; ${java} reports '${java_major:-nothing}'"
  exit 1
fi

# running PID: true while PID is a live process; a zombie (killed, not yet
# reaped by whoever inherited it) holds no ports or files and counts as gone.
running() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

# Two brokers on one DIR would fight over data/; refuse instead.
if [[ -s "${dir}/broker.pid" ]] && running "$(cat "${dir}/broker.pid")"; then
  log "a broker is already running from ${dir} (pid $(cat "${dir}/broker.pid")); run stop.sh first"
  exit 1
fi

certs="${dir}/certs"
declare -A port=()
addr() { echo "127.0.0.1:${port[$1]}"; }
# port_in_use PORT: true when something listens on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

if ((restart)); then
  if [[ ! -f "${dir}/state" || ! -f "${dir}/server.properties" || ! -d "${dir}/data" ]]; then
    log "nothing to restart in ${dir}: start.sh ${dir} sets a broker up first"
    exit 1
  fi
  # libs, version and port, as the first start left them.
  # shellcheck source=/dev/null
  source "${dir}/state"
  # The previous run's log is the clue to how it ended; readiness below reads
  # this run's log only.
  if [[ -f "${dir}/broker.log" ]]; then
    cat "${dir}/broker.log" >>"${dir}/broker.prev.log"
  fi
  rm -f "${dir}/broker.pid"
else
  libs="$("${here}/fetch.sh")"
  version="$(basename "$(dirname "${libs}")")"
  version="${version#kafka-}"
  "${here}/certs.sh" "${certs}"

  # Ports come from 20000-32767, below Linux's default ephemeral range
  # (32768-60999), so outgoing connections of other tests cannot take them
  # between our check and the broker's bind.
  declare -A chosen=()
  free_port() {
    local p
    while :; do
      p=$((20000 + RANDOM % 12768))
      if [[ -z "${chosen[${p}]:-}" ]] && ! port_in_use "${p}"; then
        echo "${p}"
        return
      fi
    done
  }
  # free_port runs in a subshell, so the caller records each pick.
  for name in PLAINTEXT SASL_PLAINTEXT SASL_SSL SSL SSL_MTLS CONTROLLER; do
    p="$(free_port)"
    chosen[${p}]=1
    port[${name}]="${p}"
  done

  rm -rf "${dir}/data" "${dir}/env" "${dir}/broker.pid"
  mkdir -p "${dir}/data"

  jaas_plain="org.apache.kafka.common.security.plain.PlainLoginModule required user_${user}=\"${password}\";"
  jaas_scram="org.apache.kafka.common.security.scram.ScramLoginModule required;"
  cat >"${dir}/server.properties" <<PROPS
# Generated by scripts/kafka/start.sh for tests; a start without --restart
# writes it afresh, start.sh --restart reuses it as it is.
process.roles=broker,controller
node.id=1
# A static voter set: a single-node quorum needs no dynamic reconfiguration.
controller.quorum.voters=1@$(addr CONTROLLER)
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT

listeners=PLAINTEXT://$(addr PLAINTEXT),SASL_PLAINTEXT://$(addr SASL_PLAINTEXT),SASL_SSL://$(addr SASL_SSL),SSL://$(addr SSL),SSL_MTLS://$(addr SSL_MTLS),CONTROLLER://$(addr CONTROLLER)
advertised.listeners=PLAINTEXT://$(addr PLAINTEXT),SASL_PLAINTEXT://$(addr SASL_PLAINTEXT),SASL_SSL://$(addr SASL_SSL),SSL://$(addr SSL),SSL_MTLS://$(addr SSL_MTLS)
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,SSL_MTLS:SSL,CONTROLLER:PLAINTEXT

# SASL: PLAIN users live in the listener's JAAS config; SCRAM credentials were
# written into the metadata log by the storage formatter (--add-scram).
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER
# OAUTHBEARER with Kafka's default unsecured-JWS validator: clients present an
# unsigned token (alg none) with a sub claim, which tests can mint themselves.
listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;
listener.name.sasl_plaintext.plain.sasl.jaas.config=${jaas_plain}
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=${jaas_scram}
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=${jaas_scram}
listener.name.sasl_ssl.plain.sasl.jaas.config=${jaas_plain}
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=${jaas_scram}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${jaas_scram}

# TLS, shared by SASL_SSL, SSL and SSL_MTLS.
ssl.keystore.type=PKCS12
ssl.keystore.location=${certs}/broker.keystore.p12
ssl.keystore.password=${store_pass}
ssl.key.password=${store_pass}
ssl.truststore.type=PKCS12
ssl.truststore.location=${certs}/broker.truststore.p12
ssl.truststore.password=${store_pass}
# "requested" verifies a certificate when the client sends one and admits
# clients that send none, so one listener covers one-way and mutual TLS;
# SSL_MTLS proves that a client really presents its certificate.
listener.name.ssl.ssl.client.auth=requested
listener.name.ssl_mtls.ssl.client.auth=required

log.dirs=${dir}/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
delete.topic.enable=true
# A single node can hold only one replica of the internal topics, and fewer of
# their partitions make the first consumer group and transaction quick.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests must not wait 3 s for every new consumer group to settle.
group.initial.rebalance.delay.ms=0
# A broker restarted after a crash (control.sh) registers again only once the
# controller has expired its old session (default 9 s); a short session and
# frequent heartbeats keep a test's restart to seconds.
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=500
# Two cores: keep the thread count modest.
num.network.threads=2
num.io.threads=4
PROPS

  # Kafka's POMs ship no log4j2 configuration; without one log4j2 prints only
  # errors, which makes a broker that fails to start hard to diagnose.
  cat >"${dir}/log4j2.properties" <<'LOG'
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
# Per-request and state-change chatter would drown the interesting lines.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
LOG

  # The classpath wildcard is expanded by the JVM, not the shell: keep it quoted.
  cp="${libs}/*"

  # Short-lived tool JVMs: skip the optimising compiler and the parallel GC,
  # which only cost start-up time on a two-core machine.
  tool_jvm=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto)

  # A fresh cluster id per start: 16 random bytes in URL-safe base64 without
  # padding, which is Kafka's Uuid text form (what `kafka-storage random-uuid`
  # prints, minus a JVM start). Like Kafka, avoid a leading '-' that command
  # lines would read as an option.
  cluster_id=""
  until [[ ${#cluster_id} -eq 22 && "${cluster_id}" != -* ]]; do
    cluster_id="$(openssl rand 16 | openssl base64 -A | tr '+/' '-_' | tr -d '=')"
  done

  # Formatting also stores alice's SCRAM credentials: KRaft brokers learn SCRAM
  # users only from the metadata log, and this is the one way to put them there
  # before any client (or admin tool) can connect.
  format() { # format MAIN-CLASS
    "${java}" "${tool_jvm[@]}" -cp "${cp}" \
      -Dlog4j2.configurationFile="${dir}/log4j2.properties" \
      "$1" format \
      --config "${dir}/server.properties" \
      --cluster-id "${cluster_id}" \
      --add-scram "SCRAM-SHA-256=[name=${user},password=${password}]" \
      --add-scram "SCRAM-SHA-512=[name=${user},password=${password}]" \
      >"${dir}/format.log" 2>&1
  }
  # The formatter is the Scala kafka.tools.StorageTool in 4.0-4.4; it is being
  # ported to Java under org.apache.kafka.tools, so try that name when a newer
  # SLUICE_KAFKA_VERSION lacks the old one.
  if ! format kafka.tools.StorageTool; then
    if ! grep -q 'Could not find or load main class' "${dir}/format.log" ||
      ! format org.apache.kafka.tools.StorageTool; then
      cat "${dir}/format.log" >&2
      log "formatting the KRaft storage failed"
      exit 1
    fi
  fi

  # What --restart needs to bring the same broker back.
  declare -p libs version port >"${dir}/state"
fi

# setsid: the broker gets its own session, so a Ctrl-C meant for the test run
# reaches the cleanup trap instead of killing the broker mid-write, and nothing
# ties it to the shell that started it. The inner shell records its own pid and
# then becomes the JVM, so the pid file names the broker whether or not setsid
# had to fork.
# shellcheck disable=SC2016 # $$ and $@ are for the inner shell.
setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "${dir}/broker.pid" \
  "${java}" "${heap}" -Xms256m -server \
  -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="${dir}/log4j2.properties" \
  -cp "${libs}/*" kafka.Kafka "${dir}/server.properties" \
  </dev/null >"${dir}/broker.log" 2>&1 &

for _ in $(seq 100); do
  [[ -s "${dir}/broker.pid" ]] && break
  sleep 0.1
done
if [[ ! -s "${dir}/broker.pid" ]]; then
  log "the broker process did not start; see ${dir}/broker.log"
  exit 1
fi
pid="$(cat "${dir}/broker.pid")"

fail() {
  log "$*"
  tail -n 40 "${dir}/broker.log" >&2 || true
  "${here}/stop.sh" "${dir}" >/dev/null 2>&1 || true
  exit 1
}

# Ready means: every client listener accepts connections and, when kcat is
# available, answers a metadata request with its security protocol, which
# proves the TLS stores and SASL settings load, not just that a port is bound.
ready_plain() {
  local name
  for name in PLAINTEXT SASL_PLAINTEXT SASL_SSL SSL SSL_MTLS; do
    port_in_use "${port[${name}]}" || return 1
  done
  grep -q 'Kafka Server started' "${dir}/broker.log"
}
deadline=$((SECONDS + timeout_s))
until ready_plain; do
  kill -0 "${pid}" 2>/dev/null || fail "the broker exited during start-up"
  ((SECONDS < deadline)) || fail "the broker did not start within ${timeout_s}s"
  sleep 0.2
done

if command -v kcat >/dev/null 2>&1; then
  tls=(-X "ssl.ca.location=${certs}/ca.pem")
  mtls=("${tls[@]}" -X "ssl.certificate.location=${certs}/client.pem"
    -X "ssl.key.location=${certs}/client.key.pem")
  # PLAIN, not SCRAM: librdkafka before 2.6.1 (Debian 12 ships 2.0.2) sends a
  # SCRAM nonce that Kafka 4.x rightly rejects, so a SCRAM probe through such
  # a kcat would fail against a healthy broker. SCRAM is verified by the tests
  # with sarama and the Java client instead.
  sasl=(-X "sasl.mechanisms=PLAIN" -X "sasl.username=${user}" -X "sasl.password=${password}")
  probe() { # probe LISTENER kcat-args...: metadata over one listener.
    local name="$1"
    shift
    until kcat -b "$(addr "${name}")" "$@" -L -m 5 >/dev/null 2>"${dir}/probe.log"; do
      kill -0 "${pid}" 2>/dev/null || fail "the broker exited during start-up"
      ((SECONDS < deadline)) || { cat "${dir}/probe.log" >&2; fail "${name} did not answer metadata"; }
      sleep 0.5
    done
  }
  probe PLAINTEXT
  # A restart reuses a configuration whose stores and SASL settings the first
  # start proved: serving metadata again is what a broker-fault test waits for.
  if ((!restart)); then
    probe SASL_PLAINTEXT -X security.protocol=SASL_PLAINTEXT "${sasl[@]}"
    probe SASL_SSL -X security.protocol=SASL_SSL "${sasl[@]}" "${tls[@]}"
    probe SSL -X security.protocol=SSL "${tls[@]}"
    probe SSL_MTLS -X security.protocol=SSL "${mtls[@]}"
  fi
  rm -f "${dir}/probe.log"
else
  log "kcat not found: readiness checked by open ports and the broker log only"
fi

# Single quotes in the values are impossible (paths come from mktemp/HOME, the
# checkout, and the rest is fixed), so plain single-quoting is safe for sourcing.
{
  echo "# Written by scripts/kafka/start.sh; source it."
  echo "export SLUICE_KAFKA_BOOTSTRAP='$(addr PLAINTEXT)'"
  echo "export SLUICE_KAFKA_PLAINTEXT='$(addr PLAINTEXT)'"
  echo "export SLUICE_KAFKA_SASL_PLAINTEXT='$(addr SASL_PLAINTEXT)'"
  echo "export SLUICE_KAFKA_SASL_SSL='$(addr SASL_SSL)'"
  echo "export SLUICE_KAFKA_SSL='$(addr SSL)'"
  echo "export SLUICE_KAFKA_SSL_MTLS='$(addr SSL_MTLS)'"
  echo "export SLUICE_KAFKA_LISTENERS='PLAINTEXT SASL_PLAINTEXT SASL_SSL SSL SSL_MTLS'"
  echo "export SLUICE_KAFKA_SASL_MECHANISMS='PLAIN SCRAM-SHA-256 SCRAM-SHA-512 OAUTHBEARER'"
  echo "export SLUICE_KAFKA_SASL_USERNAME='${user}'"
  echo "export SLUICE_KAFKA_SASL_PASSWORD='${password}'"
  echo "export SLUICE_KAFKA_CERTS='${certs}'"
  echo "export SLUICE_KAFKA_STORE_PASSWORD='${store_pass}'"
  echo "export SLUICE_KAFKA_VERSION='${version}'"
  echo "export SLUICE_KAFKA_PID='${pid}'"
  echo "export SLUICE_KAFKA_LOG='${dir}/broker.log'"
  echo "export SLUICE_KAFKA_CONTROL='${here}/control.sh ${dir}'"
} >"${dir}/env.tmp"
mv "${dir}/env.tmp" "${dir}/env"

what="up"
if ((restart)); then
  what="up again on the same ports and data"
fi
log "Kafka ${version} ${what} in $((SECONDS - started))s (pid ${pid}); PLAINTEXT $(addr PLAINTEXT), env in ${dir}/env"
