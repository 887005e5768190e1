#!/usr/bin/env bash
# `make test-kafka`: runs the end-to-end suite, and the Kafka endpoint's tests
# that need real security listeners, against a real Apache Kafka 4.x broker.
#
# Steps: fetch the broker jars (cached), generate certificates, start a broker
# in a fresh temporary folder, run the tests with the broker's addresses in
# the environment, and stop the broker on every exit path. The exit status is
# the first failing test run's, or start-up's.
#
# Environment read (all optional):
#   GO                        go command (default go)
#   SLUICE_BIN_DIR            built binaries (default <repo>/bin; make sets it)
#   SLUICE_KAFKA_E2E_PKGS     e2e packages (default ./e2e/...)
#   SLUICE_KAFKA_PLUGIN_PKGS  more packages whose real-broker tests run too
#                             (default none: today they all live in e2e)
#   SLUICE_KAFKA_PLUGIN_RUN   -run pattern for those (default .)
#   SLUICE_KAFKA_KEEP=1       keep the temporary folder (logs, certs, data);
#                             after a failure its logs are kept regardless
#   plus what fetch.sh and start.sh read (version, cache, timeouts).
#
# The hook for plugin tests: everything start.sh lists in DIR/env is exported
# (SLUICE_KAFKA_BOOTSTRAP, SLUICE_KAFKA_SASL_PLAINTEXT, SLUICE_KAFKA_SASL_SSL,
# SLUICE_KAFKA_SSL, SLUICE_KAFKA_SSL_MTLS, SLUICE_KAFKA_LISTENERS,
# SLUICE_KAFKA_SASL_MECHANISMS, SLUICE_KAFKA_SASL_USERNAME/PASSWORD,
# SLUICE_KAFKA_CERTS, SLUICE_KAFKA_STORE_PASSWORD, SLUICE_KAFKA_CONTROL, ...).
# SLUICE_KAFKA_CONTROL (control.sh) lets the broker-fault tests crash the
# broker and start it again; broker.pid follows, so the cleanup below stops
# whichever broker runs at the end. A test that needs a
# listener reads its variable and skips when it is empty, so the same test
# file runs under `make test` (skipped) and `make test-kafka` (live).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
go="${GO:-go}"
e2e_pkgs="${SLUICE_KAFKA_E2E_PKGS:-./e2e/...}"
plugin_pkgs="${SLUICE_KAFKA_PLUGIN_PKGS:-}"
plugin_run="${SLUICE_KAFKA_PLUGIN_RUN:-.}"
export SLUICE_BIN_DIR="${SLUICE_BIN_DIR:-${root}/bin}"

work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-kafka.XXXXXX")"

# The test run in progress, as a process group id (see run_group).
group=""

# shellcheck disable=SC2317 # reached through the EXIT trap only.
cleanup() {
  local rc=$?
  # Interrupted mid-test: end the whole test process tree first (go test, its
  # test binaries, the gateways they started), so nothing outlives the broker
  # or keeps writing to it while it shuts down.
  if [[ -n "${group}" ]] && kill -0 -- "-${group}" 2>/dev/null; then
    kill -INT -- "-${group}" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 -- "-${group}" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-${group}" 2>/dev/null || true
  fi
  "${here}/stop.sh" "${work}" || true
  if [[ "${SLUICE_KAFKA_KEEP:-}" == 1 ]]; then
    echo "run-tests.sh: kept ${work}" >&2
  elif ((rc != 0)) && [[ -f "${work}/broker.log" ]]; then
    # The broker's side of a failure is often the clue (authentication errors,
    # rejected TLS handshakes): keep its logs and config, drop the data.
    rm -rf "${work}/data"
    echo "run-tests.sh: exit ${rc}; broker log kept in ${work}/broker.log" >&2
  else
    rm -rf "${work}"
  fi
  exit "${rc}"
}
trap cleanup EXIT
# Turn signals into an ordinary exit so the EXIT trap stops the broker; the
# codes are the shell's usual 128+signal.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

t0=$SECONDS
"${here}/start.sh" "${work}"
t_start=$((SECONDS - t0))
# A path, not a bare name: `source env` would find /usr/bin/env on PATH.
# shellcheck source=/dev/null
source "${work}/env"

# run_group CMD...: runs CMD in a process group of its own and waits for it.
# Waiting on a background job (rather than running it in the foreground) lets
# a signal reach our traps at once instead of after a 15-minute test run, and
# the group lets cleanup end every process the tests started, not only `go`.
run_group() {
  local rc=0
  setsid "$@" &
  group=$!
  wait "${group}" || rc=$?
  group=""
  return "${rc}"
}

cd "${root}"
status=0

t1=$SECONDS
echo "run-tests.sh: e2e suite against Kafka ${SLUICE_KAFKA_VERSION} at ${SLUICE_KAFKA_BOOTSTRAP}" >&2
# shellcheck disable=SC2086 # package lists are meant to split on spaces.
run_group "${go}" test -count=1 -timeout 15m ${e2e_pkgs} || status=$?
t_e2e=$((SECONDS - t1))

t2=$SECONDS
if [[ -n "${plugin_pkgs}" ]]; then
  echo "run-tests.sh: real-broker tests (-run '${plugin_run}') in ${plugin_pkgs}" >&2
  # shellcheck disable=SC2086 # package lists are meant to split on spaces.
  run_group "${go}" test -count=1 -timeout 10m -run "${plugin_run}" ${plugin_pkgs} || {
    rc=$?
    ((status != 0)) || status=${rc}
  }
fi
t_plugin=$((SECONDS - t2))

echo "run-tests.sh: broker start ${t_start}s, e2e ${t_e2e}s, plugin ${t_plugin}s, exit ${status}" >&2
exit "${status}"
