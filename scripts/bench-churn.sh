#!/usr/bin/env bash
# Reproduces docs/benchmarks.md "Queue churn (issue 10)": for each revision
# given (default: the four measured there, the last being this tree), a
# server with a fresh data directory on free loopback ports, then
# sluice bench churn without churners (the baseline) and with 4, both at
# 1,000 persistent 1 KiB msgs/s with confirms. The revisions take turns,
# in a rotated order each round. The bench client is always this tree's.
#
#   scripts/bench-churn.sh [rounds] [duration] [rev...]   (default 3 20s 6d3d3af b26a649 c5efcb3 HEAD)
#
# Prints one line per run; the JSON summaries stay in the printed directory.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
duration=${2:-20s}
shift 2 || shift $#
revs=("$@")
[ ${#revs[@]} -gt 0 ] || revs=(6d3d3af b26a649 c5efcb3 HEAD)
work=$(mktemp -d /var/tmp/sluice-churn.XXXXXX)
pid=
trap '[ -z "$pid" ] || kill $pid 2>/dev/null || true; wait 2>/dev/null || true' EXIT

go build -o "$work/client" ./cmd/sluice
for rev in "${revs[@]}"; do
	git worktree add --detach "$work/src-$rev" "$rev" >/dev/null 2>&1
	(cd "$work/src-$rev" && go build -o "$work/sluice-$rev" ./cmd/sluice)
	git worktree remove --force "$work/src-$rev"
done
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo "== $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(df -T "$work" | awk 'NR==2{print $2}') on $(df "$work" | awk 'NR==2{print $1}'), results in $work"

n=${#revs[@]}
for r in $(seq 1 "$rounds"); do
	for k in $(seq 0 $((n - 1))); do
		rev=${revs[$(((k + r - 1) % n))]}
		amqp=127.0.0.1:$(port)
		rm -rf "$work/data"
		"$work/sluice-$rev" server --data-dir "$work/data" --amqp-addr "$amqp" \
			--kafka-addr 127.0.0.1:$(port) --http-addr 127.0.0.1:$(port) --log-level warn &
		pid=$!
		until (echo >"/dev/tcp/${amqp%:*}/${amqp#*:}") 2>/dev/null; do sleep 0.1; done
		for churners in 0 4; do
			out="$work/r$r-$rev-c$churners.json"
			load=$(cut -d' ' -f1 /proc/loadavg)
			"$work/client" bench churn --url "amqp://guest:guest@$amqp/" --churners $churners \
				--rate 1000 --size 1024 --duration "$duration" --json >"$out" 2>/dev/null
			python3 - "$out" "$r" "$rev" "$load" <<-'EOF'
				import json, sys
				j = json.load(open(sys.argv[1])); c = j["confirm_latency"]
				print("round %s %-8s churners %d: %4.0f declarations/s, publish p50 %6.2f ms p99 %7.2f ms p99.9 %7.2f ms max %7.2f ms (load %s)" % (
				    sys.argv[2], sys.argv[3], j["churners"], j["declarations_per_sec"],
				    c["p50_ms"], c["p99_ms"], c["p99_9_ms"], c["max_ms"], sys.argv[4]))
			EOF
		done
		kill $pid
		wait $pid || true
		pid=
	done
done
rm -rf "$work/data"
