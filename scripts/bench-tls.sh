#!/usr/bin/env bash
# Reproduces docs/benchmarks.md, "TLS cost": one broker with plain and TLS
# listeners side by side (dev certificates, default settings: fsync before
# every acknowledgement); Kafka acks=all produce+consume and AMQP confirms
# (amqp091-go), each over plain and over TLS, alternating so that load from
# elsewhere on the machine falls on both alike. Prints one line per run:
# throughput, p99, load average, and the broker's CPU seconds in the run.
#
#   scripts/bench-tls.sh [rounds] [seconds]     (default 3 rounds of 10 s)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-10}
work=$(mktemp -d /var/tmp/sluice-tls-bench.XXXXXX)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/sluice" ./cmd/sluice
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kafka=127.0.0.1:$(port) kafkas=127.0.0.1:$(port) amqp=127.0.0.1:$(port) amqps=127.0.0.1:$(port)
"$work/sluice" tls dev-cert --dir "$work/certs" >/dev/null
"$work/sluice" server --data-dir "$work/data" --kafka-addr "$kafka" --kafka-tls-addr "$kafkas" \
	--amqp-addr "$amqp" --amqps-addr "$amqps" --http-addr 127.0.0.1:$(port) \
	--tls-cert "$work/certs/server.pem" --tls-key "$work/certs/server.key" --log-level warn &
pid=$!
until "$work/sluice" topic list --brokers "$kafka" >/dev/null 2>&1; do sleep 0.2; done
echo "== $(nproc) CPUs, $(uname -r), $(date -u +%FT%TZ)"
cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/t}' /proc/$pid/stat; }
run() { # protocol plain|tls round
	local args
	case $1-$2 in
	kafka-plain) args=(bench kafka --brokers "$kafka" --topic "tls-bench-$2-$3") ;;
	kafka-tls) args=(bench kafka --brokers "$kafkas" --tls-ca "$work/certs/ca.pem" --topic "tls-bench-$2-$3") ;;
	amqp-plain) args=(bench amqp --client amqp091-go --url "amqp://guest:guest@$amqp/" --queue "tls-bench-$2-$3") ;;
	amqp-tls) args=(bench amqp --client amqp091-go --url "amqps://guest:guest@localhost:${amqps##*:}/" --tls-ca "$work/certs/ca.pem" --queue "tls-bench-$2-$3") ;;
	esac
	local load c0 c1 out
	load=$(cut -d' ' -f1 /proc/loadavg)
	c0=$(cpu)
	out=$("$work/sluice" "${args[@]}" --duration "${secs}s" --json 2>/dev/null)
	c1=$(cpu)
	printf '%-5s %-5s round %s  load %-5s  ' "$1" "$2" "$3" "$load"
	python3 -c 'import json,sys; j=json.load(sys.stdin); cpu=float(sys.argv[1])
r=j.get("produce_records_per_sec") or j.get("confirm_msgs_per_sec")
n=j.get("acked") or j.get("confirmed")
lat=j.get("ack_latency") or j.get("confirm_latency") or {}
print("%8.0f /s  p99 %6.1f ms  broker CPU %.2f us/msg" % (r, lat.get("p99_ms", 0), cpu*1e6/n))' "$(echo "$c1 - $c0" | bc)" <<<"$out"
}
for p in kafka amqp; do
	for r in $(seq "$rounds"); do
		if ((r % 2)); then run $p plain $r; run $p tls $r; else run $p tls $r; run $p plain $r; fi
	done
done
