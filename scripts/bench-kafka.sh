#!/usr/bin/env bash
# Reproduces docs/benchmarks.md: the disk's own fsync'd sequential write
# bandwidth (fio), then sluice flat out and at a fixed 20,000 records/s,
# then resident memory and throughput again after the broker holds more
# data. Needs fio (apt-get install fio). Everything runs on 127.0.0.1.
#
#   scripts/bench-kafka.sh [fill-GiB]     (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
fill_gib=${1:-20}
work=$(mktemp -d /var/tmp/sluice-bench.XXXXXX)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/sluice" ./cmd/sluice
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kafka=127.0.0.1:$(port)

echo "== machine"; nproc; grep MemTotal /proc/meminfo; uname -r; df -h "$work" | tail -1
echo "== fio: sequential write, fsync after every write, on the same file system"
for bs in 64k 256k 1m; do
	fio --name=seq-$bs --directory="$work" --rw=write --bs=$bs --size=1g --fsync=1 \
		--ioengine=sync --output-format=terse | awk -F';' -v bs=$bs \
		'{printf "fio bs=%s fsync=1: %.1f MB/s (%.0f writes+fsyncs/s)\n", bs, $48*1024/1e6, $49}'
	rm -f "$work"/seq-$bs*
done

"$work/sluice" server --data-dir "$work/data" --kafka-addr "$kafka" \
	--http-addr 127.0.0.1:$(port) --amqp-addr 127.0.0.1:$(port) --log-level warn &
pid=$!
until "$work/sluice" topic list --brokers "$kafka" >/dev/null 2>&1; do sleep 0.2; done
bench() { "$work/sluice" bench kafka --brokers "$kafka" --partitions 8 --record-size 1024 --acks all "$@"; }
rss() { echo "broker RSS: $(($(awk '/VmRSS/{print $2}' /proc/$pid/status) / 1024)) MiB, data: $(du -sh "$work/data" | cut -f1)"; }

# The fixed-rate runs go first so the first stage reports memory at a
# couple of GiB stored; the flat-out runs then add several more.
stage() {
	for i in 1 2 3; do
		echo "== fixed 20,000 records/s, 1 KiB, acks=all, fsync=always, 8 partitions ($1, run $i)"
		bench --duration 30s --rate 20000 2>/dev/null
		rss
	done
	for i in 1 2; do
		echo "== flat out, 1 KiB, acks=all, fsync=always, 8 partitions ($1, run $i)"
		bench --duration 30s 2>/dev/null
		rss
	done
}
stage "new broker"
echo "== filling to ${fill_gib} GiB (produce only)"
while [ "$(du -s --block-size=1G "$work/data" | cut -f1)" -lt "$fill_gib" ]; do
	bench --duration 20s --consumers 0 >/dev/null 2>&1
	rss
done
stage "${fill_gib} GiB stored"
