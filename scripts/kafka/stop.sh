#!/usr/bin/env bash
# Stops the broker that start.sh left running from DIR.
#
# Usage: scripts/kafka/stop.sh [--kill] DIR
#
# SIGTERM first so Kafka shuts down cleanly (it closes logs and leaves the
# quorum), SIGKILL after SLUICE_KAFKA_STOP_TIMEOUT seconds (default 20) so a
# wedged JVM can never hold a CI run hostage. Safe to call when nothing runs.
#
# --kill sends SIGKILL at once, as a crash or a power cut would end it (no
# clean shutdown: the next start recovers its logs). Either way the script
# returns once the process is gone and its ports are free.
set -euo pipefail

signal=TERM
if [[ "${1:-}" == --kill ]]; then
  signal=KILL
  shift
fi
if [[ $# -ne 1 ]]; then
  echo "usage: $0 [--kill] DIR" >&2
  exit 2
fi
pidfile="$1/broker.pid"
grace="${SLUICE_KAFKA_STOP_TIMEOUT:-20}"

[[ -s "${pidfile}" ]] || exit 0
pid="$(cat "${pidfile}")"

# The pid file could outlive its process and the number be reused: only
# signal a process that is really a Kafka JVM.
is_ours() {
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null)" || return 1
  [[ "${cmdline}" == *kafka.Kafka* ]]
}

# Alive until the kernel has torn the process down. A zombie counts as gone:
# it holds no ports or files, and its reaping is its parent's business.
alive() {
  local stat
  stat="$(cat "/proc/${pid}/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

if is_ours; then
  kill "-${signal}" "${pid}" 2>/dev/null || true
  deadline=$((SECONDS + grace))
  while alive && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if alive; then
    echo "stop.sh: broker ${pid} ignored SIGTERM for ${grace}s; sending SIGKILL" >&2
    kill -KILL "${pid}" 2>/dev/null || true
    while alive; do sleep 0.1; done
  fi
fi
rm -f "${pidfile}"
