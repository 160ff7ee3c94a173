#!/usr/bin/env bash
# The restart row of issue 13: a data directory of QUEUES durable queues
# (three messages each, some acked, some unacked at the stop) copied fresh
# for each start, timed from the exec to the first basic.get (amqp091-go)
# that returns a message, with the server's CPU seconds and RSS then and
# once it is quiet, binaries A and B alternated ROUNDS times.
# Usage: scripts/bench-restart.sh /path/sluice-A /path/sluice-B
# Env: QUEUES (10000), ROUNDS (3), TEMPLATE (the data directory, kept;
# built with A if missing; default a temporary one), STRACE (a directory:
# count fsync/openat/ftruncate per start with strace -c, which slows the
# server: read the counts, not the times).
set -eu
A=$1; B=$2
cd "$(dirname "$0")/.."
args=(-bins "$A,$B" -queues "${QUEUES:-10000}" -rounds "${ROUNDS:-3}")
[ -n "${TEMPLATE:-}" ] && args+=(-template "$TEMPLATE")
[ -n "${STRACE:-}" ] && args+=(-strace "$STRACE")
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
go run ./scripts/restartbench "${args[@]}"
