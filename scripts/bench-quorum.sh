#!/usr/bin/env bash
# A quorum queue on a three-node Sluice cluster (`sluice cluster dev`) against
# a quorum queue on a three-node RabbitMQ cluster, both on this machine, driven
# by the shared load generator (../shared/bench/loadgen: amqp091-go; 1 KiB
# persistent messages, publisher confirms, manual acks, 1 producer and 1
# consumer connection, both on node 1, which declares the queue and so holds
# its leader on either broker). Two measurements, Sluice and RabbitMQ
# alternated, ROUNDS times:
#   max   flat out (loadgen defaults: window 256, prefetch 256), DUR long;
#   rate  end-to-end latency at a fixed RATE msg/s (-warmup 2s), DUR long.
# One line per run, then the medians and the ratios Sluice/RabbitMQ.
# Usage: scripts/bench-quorum.sh [sluice binary]
# (default: built from this checkout); env ROUNDS (2), DUR (15s), RATE (2000),
# EXTRA (more loadgen flags, both sides), LOADGEN_SRC (../shared/bench/loadgen),
# KEEP=1 keeps the work directory (logs, data) under /var/tmp.
set -u
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}; DUR=${DUR:-15s}; RATE=${RATE:-2000}
work=$(mktemp -d /var/tmp/qbench.XXXXXX)
B=${1:-}
if [ -z "$B" ]; then
	B=$work/sluice
	go build -o "$B" ./cmd/sluice || exit 3
fi
LG=$work/loadgen
(cd "${LOADGEN_SRC:-../shared/bench/loadgen}" && go build -o "$LG" .) || exit 3

RMQ=/usr/lib/rabbitmq/bin   # not /usr/sbin: as root those wrappers su to the rabbitmq user
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }

# Everything started here is stopped on exit: the Sluice nodes, the RabbitMQ
# nodes (rabbitmqctl stop, then their beam pids), and epmd if it was not
# running before.
spid=""; rnodes=""; epmd_before=$(pgrep -x epmd)
declare -A beam
cleanup() {
	[ -n "$spid" ] && { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
	for n in $rnodes; do rmqctl $n stop >/dev/null 2>&1 & done
	wait
	# whatever is left of them: the beam pids, or any beam run with our HOME
	for p in ${beam[@]} $(pgrep -f -- "-home $work/rmq/home"); do
		kill "$p" 2>/dev/null
		for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$p" 2>/dev/null
	done
	wait
	if [ -z "$epmd_before" ]; then
		for p in $(pgrep -x epmd); do kill "$p"; done
	fi
	[ "${KEEP:-}" = 1 ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Sluice: three nodes, addresses parsed from `cluster dev`'s output.
$B cluster dev --nodes 3 --dir "$work/sluice-c" -- --log-level warn >"$work/dev.out" 2>&1 &
spid=$!
until grep -q "Kafka bootstrap servers" "$work/dev.out" 2>/dev/null; do
	kill -0 $spid 2>/dev/null || { echo "sluice cluster dev exited:"; cat "$work/dev.out"; exit 1; }
	sleep 0.2
done
a1=$(grep "^node 1" "$work/dev.out" | grep -o "amqp [0-9.:]*" | cut -d' ' -f2)
S=amqp://guest:guest@$a1/

# --- RabbitMQ: three nodes <prefix>1..3@localhost with their own ports, data
# and log directories, one Erlang cookie (in their HOME), no plugins, the
# environment file under /etc ignored.
pfx=qbench$$-
mkdir -p "$work/rmq/home"
python3 -c 'import secrets;print(secrets.token_hex(20).upper(),end="")' >"$work/rmq/home/.erlang.cookie"
chmod 600 "$work/rmq/home/.erlang.cookie"
echo '[].' >"$work/rmq/enabled_plugins"
: >"$work/rmq/rabbitmq-env.conf"
: >"$work/rmq/rabbitmq.conf"
rmqenv() { # node number, then a command run with that node's environment
	local n=$1; shift
	HOME=$work/rmq/home RABBITMQ_CONF_ENV_FILE=$work/rmq/rabbitmq-env.conf \
	RABBITMQ_NODENAME=$pfx$n@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
	RABBITMQ_NODE_PORT=${rport[$n]:-0} RABBITMQ_DIST_PORT=${dport[$n]:-0} \
	RABBITMQ_MNESIA_BASE=$work/rmq/n$n/mnesia RABBITMQ_LOG_BASE=$work/rmq/n$n/log \
	RABBITMQ_PID_FILE=$work/rmq/n$n/pid RABBITMQ_ENABLED_PLUGINS_FILE=$work/rmq/enabled_plugins \
	RABBITMQ_CONFIG_FILE=$work/rmq/rabbitmq.conf RABBITMQ_ADVANCED_CONFIG_FILE=$work/rmq/advanced.config \
	"$@"
}
rmqctl() { local n=$1; shift; rmqenv "$n" "$RMQ/rabbitmqctl" -n "$pfx$n@localhost" "$@"; }
declare -A rport dport
for n in 1 2 3; do
	rport[$n]=$(freeport); dport[$n]=$(freeport)
	mkdir -p "$work/rmq/n$n"
	rnodes="$rnodes $n"
	rmqenv $n "$RMQ/rabbitmq-server" </dev/null >"$work/rmq/n$n/out" 2>&1 &
done
for n in 1 2 3; do # await_startup fails at once until the node is registered with epmd
	for i in $(seq 1 60); do
		rmqctl $n await_startup --timeout 120 >"$work/rmq/await$n.out" 2>&1 && break
		[ $i = 60 ] && { echo "rabbitmq node $n did not start:"; tail -n 20 "$work/rmq/await$n.out" "$work/rmq/n$n/out" "$work/rmq/n$n/log/"*.log; exit 1; }
		sleep 1
	done
	beam[$n]=$(rmqctl $n eval 'os:getpid().' | tr -d '"')
done
for n in 2 3; do
	{ rmqctl $n stop_app && rmqctl $n join_cluster "${pfx}1@localhost" && rmqctl $n start_app; } >"$work/rmq/join$n.out" 2>&1 ||
		{ echo "rabbitmq node $n could not join:"; cat "$work/rmq/join$n.out"; exit 1; }
done
rmqctl 1 await_startup >/dev/null
echo "rabbitmq $(rmqctl 1 eval 'rabbit_misc:version().' 2>/dev/null | tr -d '"'), erlang $(rmqctl 1 eval 'erlang:system_info(otp_release).' 2>/dev/null | tr -d '"'), \
running nodes: $(rmqctl 1 eval 'length(rabbit_nodes:all_running()).' 2>/dev/null)"
P=amqp://guest:guest@127.0.0.1:${rport[1]}/

# Both sides answer a small classic-queue run before the benchmark starts.
for u in "$S" "$P"; do
	for i in $(seq 1 60); do
		"$LG" amqp -url "$u" -queue qbench-ready -count 100 -duration 5s >/dev/null 2>&1 && break
		[ $i = 60 ] && { echo "$u never answered"; exit 1; }
		sleep 0.5
	done
done
sleep 1
echo "$(nproc) cores, $(free -g | awk '/^Mem/{print $2}') GiB; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# run SIDE TEST [loadgen flags]: one run, its JSON line kept in runs.jsonl,
# one readable line printed (or the load generator's error).
run() {
	local side=$1 test=$2 url=$S; shift 2
	[ "$side" = rabbitmq ] && url=$P
	if ! "$LG" amqp -url "$url" -queue qbench -queue-type quorum -size 1024 -duration "$DUR" \
		-label "$side $test" ${EXTRA:-} "$@" >"$work/out" 2>"$work/err"; then
		echo "$side $test FAILED: $(tail -3 "$work/err")"
		return
	fi
	tail -1 "$work/out" | tee -a "$work/runs.jsonl" | python3 -c '
import json, sys
d = json.load(sys.stdin)
c, e = d.get("confirm_lat_ms") or {}, d.get("lat_ms") or {}
note = ""
if d["received"] != d["confirmed"] or d["nacked"] or d["errors"]:
    # received above confirmed: deliveries of the same message again
    note = "  [sent %d confirmed %d nacked %d received %d (%+d) errors %d %s]" % (d["sent"], d["confirmed"],
        d["nacked"], d["received"], d["received"] - d["confirmed"], d["errors"], d.get("first_error", ""))
print("%-8s %-4s %8.0f msg/s confirmed, %8.0f consumed; confirm p50 %7.1f p99 %7.1f ms; end-to-end p50 %7.1f p99 %7.1f ms%s" % (
    *d["label"].split(), d["pub_msgs_s"], d["recv_msgs_s"], c.get("p50", 0), c.get("p99", 0), e.get("p50", 0), e.get("p99", 0), note))
'
	sleep 1
}
for r in $(seq 1 "$ROUNDS"); do
	run sluice max; run rabbitmq max
	run sluice rate -rate "$RATE" -warmup 2s; run rabbitmq rate -rate "$RATE" -warmup 2s
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Medians per side and test; ratios Sluice/RabbitMQ (throughput: above 1 means
# Sluice moves more; latency: below 1 means Sluice is faster).
[ -s "$work/runs.jsonl" ] && python3 - "$work/runs.jsonl" <<'PY'
import json, sys, statistics as st
runs = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    runs.setdefault(tuple(d["label"].split()), []).append(d)
def med(side, test, f):
    v = [f(d) for d in runs.get((side, test), [])]
    return st.median(v) if v else None
def ratio(a, b):
    return "%.2f" % (a / b) if a and b else "n/a"
print("summary (medians)            sluice    rabbitmq   sluice/rabbitmq")
for test, name, f in [
        ("max", "max confirmed msg/s", lambda d: d["pub_msgs_s"]),
        ("max", "max consumed msg/s", lambda d: d["recv_msgs_s"]),
        ("max", "max confirm p99 ms", lambda d: d["confirm_lat_ms"]["p99"]),
        ("max", "max end-to-end p99 ms", lambda d: d["lat_ms"]["p99"]),
        ("rate", "rate confirm p50 ms", lambda d: d["confirm_lat_ms"]["p50"]),
        ("rate", "rate confirm p99 ms", lambda d: d["confirm_lat_ms"]["p99"]),
        ("rate", "rate end-to-end p50 ms", lambda d: d["lat_ms"]["p50"]),
        ("rate", "rate end-to-end p99 ms", lambda d: d["lat_ms"]["p99"])]:
    s, p = med("sluice", test, f), med("rabbitmq", test, f)
    print("%-26s %9s %11s %12s" % (name, "%.1f" % s if s is not None else "-",
          "%.1f" % p if p is not None else "-", ratio(s, p)))
PY
