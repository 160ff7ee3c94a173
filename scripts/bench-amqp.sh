#!/usr/bin/env bash
# Reproduces the AMQP section of docs/benchmarks.md: the disk's own fsync'd
# sequential write bandwidth (fio), then Sluice and RabbitMQ side by side,
# one after the other for each workload, with `sluice bench amqp`: 1 KiB
# persistent messages, publisher confirms, a durable queue, manual acks.
#
#   flat out, 1 publisher + 1 consumer, and 4 + 4
#   a fixed 5,000 msg/s, 1 + 1 (latency)
#   the same three on a RabbitMQ quorum queue (skip with QUORUM=0)
#
# Both brokers run on free loopback ports with their data in a temporary
# directory on /var/tmp, and are stopped at the end. RabbitMQ runs as a
# separate node (bench-<pid>@localhost, its own epmd port), so a system
# RabbitMQ, if any, is left alone. Needs fio and rabbitmq-server
# (apt-get install fio rabbitmq-server); about 13 minutes with the defaults.
#
# The load generator's AMQP client is $CLIENT: lean (the default, Sluice's
# pipelined bench client) or amqp091-go; the summaries name it.
#
#   [CLIENT=lean|amqp091-go] scripts/bench-amqp.sh [duration] [runs]     (default 30s, 2)
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-30s}
runs=${2:-2}
rmqbin=/usr/lib/rabbitmq/bin
work=$(mktemp -d /var/tmp/sluice-amqp-bench.XXXXXX)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

sluice_pid=
epmd_port=$(port)
export RABBITMQ_NODENAME=bench-$$@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
	RABBITMQ_NODE_PORT=$(port) RABBITMQ_DIST_PORT=$(port) ERL_EPMD_PORT=$epmd_port \
	RABBITMQ_MNESIA_BASE=$work/rmq/mnesia RABBITMQ_LOG_BASE=$work/rmq/log \
	RABBITMQ_PID_FILE=$work/rmq/pid RABBITMQ_CONFIG_FILE=$work/rmq/rabbitmq \
	RABBITMQ_ADVANCED_CONFIG_FILE=$work/rmq/advanced.config \
	RABBITMQ_ENABLED_PLUGINS_FILE=$work/rmq/enabled_plugins
stop() {
	[ -n "$sluice_pid" ] && kill "$sluice_pid" 2>/dev/null || true
	HOME=$work/rmq "$rmqbin/rabbitmqctl" -n "$RABBITMQ_NODENAME" stop >/dev/null 2>&1 || true
	epmd -port "$epmd_port" -kill >/dev/null 2>&1 || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap stop EXIT

go build -o "$work/sluice" ./cmd/sluice

echo "== machine"; nproc; grep MemTotal /proc/meminfo; uname -r; df -h "$work" | tail -1
echo "rabbitmq-server $(dpkg-query -W -f '${Version}' rabbitmq-server), erlang $(dpkg-query -W -f '${Version}' erlang-base)"
echo "== fio: sequential write, fsync after every write, on the same file system"
for bs in 4k 64k 256k 1m; do
	fio --name=seq-$bs --directory="$work" --rw=write --bs=$bs --size=256m --fsync=1 \
		--ioengine=sync --output-format=terse | awk -F';' -v bs=$bs \
		'{printf "fio bs=%s fsync=1: %.1f MB/s (%.0f writes+fsyncs/s)\n", bs, $48*1024/1e6, $49}'
	rm -f "$work"/seq-$bs*
done

# Sluice with its defaults: fsync before every confirm (--fsync=always).
s_amqp=127.0.0.1:$(port)
"$work/sluice" server --data-dir "$work/sluice-data" --amqp-addr "$s_amqp" \
	--kafka-addr 127.0.0.1:$(port) --http-addr 127.0.0.1:$(port) --log-level warn &
sluice_pid=$!
until (exec 3<>"/dev/tcp/${s_amqp%:*}/${s_amqp#*:}") 2>/dev/null; do sleep 0.2; done

# RabbitMQ with its defaults, guest allowed from loopback only.
mkdir -p "$work/rmq"
echo '[].' >"$work/rmq/enabled_plugins"
echo '[].' >"$work/rmq/advanced.config"
: >"$work/rmq/rabbitmq.conf"
HOME=$work/rmq setsid "$rmqbin/rabbitmq-server" >"$work/rmq/stdout" 2>&1 &
for _ in $(seq 120); do
	HOME=$work/rmq "$rmqbin/rabbitmqctl" -n "$RABBITMQ_NODENAME" await_startup >/dev/null 2>&1 && break
	sleep 1
done

declare -A url=(
	[sluice]=amqp://guest:guest@$s_amqp/
	[rabbitmq]=amqp://guest:guest@127.0.0.1:$RABBITMQ_NODE_PORT/
)
bench() { # broker queue-type label flags...
	local b=$1 qt=$2 label=$3
	shift 3
	echo "== $b, $qt queue, $label"
	"$work/sluice" bench amqp --url "${url[$b]}" --queue "bench-$qt" --queue-type "$qt" \
		--size 1024 --persistent --confirm --confirm-window 256 --prefetch 100 \
		--multi-ack-every 1 --purge-first --duration "$dur" --client "${CLIENT:-lean}" "$@" 2>/dev/null || true
	if [ "$b" = sluice ]; then
		echo "sluice RSS $(($(awk '/VmRSS/{print $2}' /proc/$sluice_pid/status) / 1024)) MiB"
	fi
}
for i in $(seq "$runs"); do
	for b in sluice rabbitmq; do bench $b classic "flat out 1+1, run $i"; done
	for b in sluice rabbitmq; do bench $b classic "flat out 4+4, run $i" --publishers 4 --consumers 4; done
	for b in sluice rabbitmq; do bench $b classic "5,000 msg/s 1+1, run $i" --rate 5000; done
	if [ "${QUORUM:-1}" = 1 ]; then
		bench rabbitmq quorum "flat out 1+1, run $i"
		bench rabbitmq quorum "flat out 4+4, run $i" --publishers 4 --consumers 4
		bench rabbitmq quorum "5,000 msg/s 1+1, run $i" --rate 5000
	fi
done
