#!/usr/bin/env bash
# Reproduces docs/benchmarks.md "Fetch: consumer MB/s and server CPU per
# GB": one data directory filled once (8 partitions of 1 KiB records,
# --fsync never, all in the page cache), then three servers taking turns
# on it, in a rotated order each round:
#   before  the build of <old-rev> (records read into memory, then written)
#   copy    this tree with --kafka-zero-copy=false
#   zc      this tree (records sent from the segment files with sendfile)
# For each server, two reads (sluice bench kafka-fetch with --server-pid):
#   big     the topic produced with 1 MiB batches, fetched 4 MiB a partition
#   small   the topic produced with 4 KiB batches, fetched 32 KiB a partition
# each after one unmeasured warm-up read of that topic.
#
#   scripts/bench-fetch.sh [rounds] [records] [old-rev]   (default 5 1000000 3abcc74)
#
# Prints one line per measured read with the 1-minute load average; the
# JSON summaries stay in the printed directory.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
records=${2:-1000000}
old=${3:-3abcc74}
work=$(mktemp -d /var/tmp/sluice-fetch.XXXXXX)
pid=
trap '[ -z "$pid" ] || kill $pid 2>/dev/null || true; wait 2>/dev/null || true' EXIT

go build -o "$work/new" ./cmd/sluice
mkdir "$work/src"
git archive "$old" | tar -x -C "$work/src"
(cd "$work/src" && go build -o "$work/old" ./cmd/sluice)
rm -rf "$work/src"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kafka=127.0.0.1:$(port)
start() { # binary, extra flags...
	local bin=$1
	shift
	"$work/$bin" server --data-dir "$work/data" --kafka-addr "$kafka" --amqp-addr 127.0.0.1:$(port) \
		--http-addr 127.0.0.1:$(port) --fsync never --log-level warn "$@" &
	pid=$!
	until (echo >"/dev/tcp/${kafka%:*}/${kafka#*:}") 2>/dev/null; do sleep 0.1; done
}
stop() { kill $pid; wait $pid || true; pid=; }
echo "== $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(uname -r), $(df -T "$work" | awk 'NR==2{print $2}') on $(df "$work" | awk 'NR==2{print $1}'), results in $work"

start new
"$work/new" bench kafka --brokers "$kafka" --topic fetch-big --consumers 0 --records "$records" \
	--acks 1 --linger 5ms --json >"$work/fill-big.json" 2>/dev/null
"$work/new" bench kafka --brokers "$kafka" --topic fetch-small --consumers 0 --records $((records / 4)) \
	--acks 1 --linger 5ms --batch-max-bytes 4096 --json >"$work/fill-small.json" 2>/dev/null
stop

variants=(before copy zc)
n=${#variants[@]}
for r in $(seq 1 "$rounds"); do
	for k in $(seq 0 $((n - 1))); do
		v=${variants[$(((k + r - 1) % n))]}
		case $v in
		before) start old ;;
		copy) start new --kafka-zero-copy=false ;;
		zc) start new ;;
		esac
		for t in big small; do
			pm=$((4 << 20))
			[ $t = big ] || pm=$((32 << 10))
			"$work/new" bench kafka-fetch --brokers "$kafka" --topic fetch-$t --partition-max-bytes $pm >/dev/null
			out="$work/r$r-$v-$t.json"
			load=$(cut -d' ' -f1 /proc/loadavg)
			"$work/new" bench kafka-fetch --brokers "$kafka" --topic fetch-$t --partition-max-bytes $pm \
				--server-pid $pid --json >"$out"
			python3 - "$out" "$r" "$v" "$t" "$load" <<-'PY'
				import json, sys
				j = json.load(open(sys.argv[1]))
				print("round %s %-6s %-5s: %7.1f MB/s, server %5.2f CPU-s, %5.2f CPU-s/GB (load %s)" % (
				    sys.argv[2], sys.argv[3], sys.argv[4], j["mb_per_sec"], j["server_cpu_seconds"],
				    j["server_cpu_seconds_per_gb"], sys.argv[5]))
			PY
		done
		stop
	done
done
rm -rf "$work/data"
