#!/usr/bin/env bash
# Reproduces docs/benchmarks.md, "A cluster at rest" (issue 16's bar: with
# 1,000 idle replicated partitions the three nodes together use under 10%
# of one core and under 300 MB resident each): a three-node cluster
# (sluice cluster dev), one topic of N partitions with replication factor 3,
# one record produced to every partition, then the nodes' CPU time over a
# window once the groups have gone quiet, and their resident memory.
#
#   scripts/bench-cluster-idle.sh [partitions] [window seconds]   (1000, 30)
set -euo pipefail
cd "$(dirname "$0")/.."
parts=${1:-1000}
window=${2:-30}
work=$(mktemp -d /var/tmp/sluice-cluster-idle.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/sluice" ./cmd/sluice
"$work/sluice" cluster dev --nodes 3 --dir "$work/cluster" -- --log-level warn >"$work/dev.out" 2>&1 &
pids+=($!)
until grep -q "Kafka bootstrap servers" "$work/dev.out" 2>/dev/null; do sleep 0.2; done
brokers=$(sed -n 's/^Kafka bootstrap servers: //p' "$work/dev.out")
until "$work/sluice" topic list --brokers "$brokers" >/dev/null 2>&1; do sleep 0.2; done
"$work/sluice" topic create idle --brokers "$brokers" --partitions "$parts" --replication-factor 3 >/dev/null
sleep 5
# One record to every partition (a round robin over all of them).
"$work/sluice" bench kafka --brokers "$brokers" --topic idle --records "$parts" --rate 0 --json >/dev/null 2>&1 || true
echo "== $(nproc) CPUs, $(date -u +%FT%TZ), $parts partitions RF=3, settling 30 s, then a ${window} s window"
sleep 30
nodepids=$(pgrep -f "$work/sluice server" || true)
tick=$(getconf CLK_TCK)
declare -A before
for p in $nodepids; do before[$p]=$(awk '{print $14+$15}' /proc/$p/stat); done
sleep "$window"
total=0
for p in $nodepids; do
	after=$(awk '{print $14+$15}' /proc/$p/stat)
	cpu=$(python3 -c "print(round(100*($after-${before[$p]})/$tick/$window, 2))")
	rss=$(awk '/VmRSS/ {print int($2/1024)}' /proc/$p/status)
	echo "node pid $p: ${cpu}% of one core, RSS ${rss} MB"
	total=$(python3 -c "print(round($total+$cpu, 2))")
done
echo "three nodes together: ${total}% of one core"
