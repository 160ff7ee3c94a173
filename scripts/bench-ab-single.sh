#!/usr/bin/env bash
# Compares a single node of two versions of Sluice (default: the commit
# before issue 16's cluster work, 4546bac, against the working tree), both
# started without cluster settings and default settings (fsync before every
# acknowledgement): Kafka acks=all produce+consume and AMQP publisher
# confirms (sluice bench, 1 KiB), alternating A and B so that load from
# elsewhere on the machine falls on both alike. docs/benchmarks.md,
# "Single node after the cluster work".
#
#   scripts/bench-ab-single.sh [base-commit] [rounds] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-4546bac}
rounds=${2:-3}
secs=${3:-8}
work=$(mktemp -d /var/tmp/sluice-ab.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; git worktree remove --force "$work/base-src" 2>/dev/null || true; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/base-src" "$base"
(cd "$work/base-src" && go build -o "$work/sluice-A" ./cmd/sluice)
go build -o "$work/sluice-B" ./cmd/sluice
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A kafka amqp pid
for v in A B; do
	kafka[$v]=127.0.0.1:$(port) amqp[$v]=127.0.0.1:$(port)
	"$work/sluice-$v" server --data-dir "$work/data-$v" --kafka-addr "${kafka[$v]}" --amqp-addr "${amqp[$v]}" \
		--http-addr 127.0.0.1:$(port) --log-level warn &
	pid[$v]=$!
	pids+=($!)
	until "$work/sluice-B" topic list --brokers "${kafka[$v]}" >/dev/null 2>&1; do sleep 0.2; done
done
echo "== A $base, B $(git rev-parse --short HEAD)+tree; $(nproc) CPUs, $(date -u +%FT%TZ)"
cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/t}' /proc/$1/stat; }
run() { # protocol version round
	local args load c0 c1 out
	case $1 in
	kafka) args=(bench kafka --brokers "${kafka[$2]}" --topic "ab-$3") ;;
	amqp) args=(bench amqp --client amqp091-go --url "amqp://guest:guest@${amqp[$2]}/" --queue "ab-$3") ;;
	esac
	load=$(cut -d' ' -f1 /proc/loadavg)
	c0=$(cpu "${pid[$2]}")
	out=$("$work/sluice-B" "${args[@]}" --duration "${secs}s" --json 2>/dev/null)
	c1=$(cpu "${pid[$2]}")
	printf '%-5s %s round %s  load %-5s  ' "$1" "$2" "$3" "$load"
	python3 -c 'import json,sys; j=json.load(sys.stdin); cpu=float(sys.argv[1])
r=j.get("produce_records_per_sec") or j.get("confirm_msgs_per_sec")
n=j.get("acked") or j.get("confirmed")
lat=j.get("ack_latency") or j.get("confirm_latency") or {}
print("%8.0f /s  p99 %6.1f ms  broker CPU %.2f us/msg" % (r, lat.get("p99_ms", 0), cpu*1e6/n))' "$(echo "$c1 - $c0" | bc)" <<<"$out"
}
for p in kafka amqp; do
	for r in $(seq "$rounds"); do
		if ((r % 2)); then run $p A $r; run $p B $r; else run $p B $r; run $p A $r; fi
	done
done
