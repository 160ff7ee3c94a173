#!/usr/bin/env bash
# A classic queue living on node 1 of a three-node `sluice cluster dev`,
# loaded with `sluice bench amqp` (1 publisher, 1 consumer, 1 KiB persistent
# messages, confirms, manual acks) directly on node 1, then entirely through
# node 2 (publishes forwarded, deliveries through a proxy consumer),
# alternated. Usage: scripts/bench-cluster-amqp.sh [sluice binary]
# (default: built from this checkout); env ROUNDS (2), DUR (10s), EXTRA
# (more bench flags).
set -u
cd "$(dirname "$0")/.."
B=${1:-}
if [ -z "$B" ]; then
	B=$(mktemp -d)/sluice
	go build -o "$B" ./cmd/sluice || exit 3
fi
work=$(mktemp -d /var/tmp/fwd.XXXXXX)
$B cluster dev --nodes 3 --dir "$work/c" -- --log-level warn >"$work/dev.out" 2>&1 &
pid=$!
trap 'kill $pid; wait $pid 2>/dev/null; rm -rf $work' EXIT
until grep -q "Kafka bootstrap servers" "$work/dev.out" 2>/dev/null; do sleep 0.2; done
a1=$(grep "^node 1" $work/dev.out | grep -o "amqp [0-9.:]*" | cut -d' ' -f2)
a2=$(grep "^node 2" $work/dev.out | grep -o "amqp [0-9.:]*" | cut -d' ' -f2)
until $B bench amqp --url amqp://guest:guest@$a1/ --queue fwd --messages 100 --duration 5s >/dev/null 2>&1; do sleep 0.5; done
sleep 1
for r in $(seq 1 ${ROUNDS:-2}); do for v in direct through-2; do
  a=$a1; [ $v = through-2 ] && a=$a2
  $B bench amqp --url amqp://guest:guest@$a/ --queue fwd --duration ${DUR:-10s} ${EXTRA:-} --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
c, e = d["confirm_latency"], d["e2e_latency"]
print("%-10s %8.0f msg/s confirmed, %8.0f consumed; confirm p50 %.1f p99 %.1f ms; end-to-end p50 %.1f p99 %.1f ms" % (
    sys.argv[1], d["confirm_msgs_per_sec"], d["consume_msgs_per_sec"], c["p50_ms"], c["p99_ms"], e["p50_ms"], e["p99_ms"]))
' $v
done; done
