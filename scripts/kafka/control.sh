#!/usr/bin/env bash
# Crashes the broker that start.sh runs from DIR and starts it again on the
# same ports, certificates and data: the broker faults of the e2e tests
# (e2e/faults_broker_test.go), against the real Apache Kafka of
# `make test-kafka`.
#
# Usage: scripts/kafka/control.sh DIR kill|start|stop
#
#   kill   SIGKILL, as a crash would end it (no clean shutdown); returns once
#          the process is gone. Safe when nothing runs.
#   start  start.sh --restart DIR: the same broker again, its topics and
#          records kept; returns once every listener serves (bounded by
#          SLUICE_KAFKA_START_TIMEOUT, default 120 s), non-zero if it did not.
#   stop   stop.sh DIR: a clean shutdown (SIGTERM).
#
# start.sh writes SLUICE_KAFKA_CONTROL="<this script> DIR" into DIR/env, so a
# test appends the action to that variable's words. broker.pid follows every
# restart, so stop.sh and run-tests.sh's cleanup stop whichever broker runs at
# the end, including one a test left killed (nothing to do) or restarted.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 DIR kill|start|stop" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

case "$2" in
kill) exec "${here}/stop.sh" --kill "$1" ;;
start) exec "${here}/start.sh" --restart "$1" ;;
stop) exec "${here}/stop.sh" "$1" ;;
*)
  echo "usage: $0 DIR kill|start|stop" >&2
  exit 2
  ;;
esac
