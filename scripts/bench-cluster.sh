#!/usr/bin/env bash
# Reproduces docs/benchmarks.md, "A cluster, first measurements" (issue
# 16's bars): a three-node cluster (sluice cluster dev) on this machine
# beside the load generator, a topic of 8 partitions with replication
# factor 3 and min.insync.replicas=2, 1 KiB records, acks=all: the
# maximum throughput and the end-to-end p99 at 5,000 records/s; then the
# same on one single node in the same run, for the ratio.
#
#   scripts/bench-cluster.sh [seconds]      (default 10 s a run)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
work=$(mktemp -d /var/tmp/sluice-cluster-bench.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/sluice" ./cmd/sluice
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$work/sluice" cluster dev --nodes 3 --dir "$work/cluster" -- --log-level warn >"$work/dev.out" 2>&1 &
pids+=($!)
until grep -q "Kafka bootstrap servers" "$work/dev.out" 2>/dev/null; do sleep 0.2; done
brokers=$(sed -n 's/^Kafka bootstrap servers: //p' "$work/dev.out")
until "$work/sluice" topic list --brokers "$brokers" >/dev/null 2>&1; do sleep 0.2; done
"$work/sluice" topic create bench-rf3 --brokers "$brokers" --partitions 8 --replication-factor 3 \
	--config min.insync.replicas=2 >/dev/null

single=127.0.0.1:$(port)
"$work/sluice" server --data-dir "$work/single" --kafka-addr "$single" --amqp-addr 127.0.0.1:$(port) \
	--http-addr 127.0.0.1:$(port) --log-level warn &
pids+=($!)
until "$work/sluice" topic list --brokers "$single" >/dev/null 2>&1; do sleep 0.2; done
"$work/sluice" topic create bench-rf3 --brokers "$single" --partitions 8 >/dev/null

echo "== $(nproc) CPUs, $(date -u +%FT%TZ), 1 KiB records, acks=all, 8 partitions"
run() { # label brokers rate
	local out
	out=$("$work/sluice" bench kafka --brokers "$2" --topic bench-rf3 --rate "$3" --duration "${secs}s" --json 2>/dev/null)
	printf '%-28s ' "$1"
	python3 -c 'import json,sys; j=json.load(sys.stdin)
a=j.get("ack_latency") or {}; e=j.get("e2e_latency") or j.get("end_to_end_latency") or {}
print("%8.0f rec/s  ack p99 %7.1f ms  e2e p99 %7.1f ms" % (j.get("produce_records_per_sec", 0), a.get("p99_ms", 0), e.get("p99_ms", 0)))' <<<"$out"
}
run "single node, max" "$single" 0
run "cluster RF=3, max" "$brokers" 0
run "single node, 5000/s" "$single" 5000
run "cluster RF=3, 5000/s" "$brokers" 5000
