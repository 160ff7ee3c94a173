#!/usr/bin/env bash
# Reproduces docs/benchmarks.md "The Kafka produce path against klite":
#   cpu   fresh servers taking turns (<old-rev>'s build, this tree, this tree
#         with --fsync-shared), each: a 1 s warm-up, then a 10 s run of the
#         shared load generator flat out and one at 20,000 rec/s; prints
#         records/s, p99, server CPU µs per record (utime+stime from
#         /proc/<pid>/stat) and Produce requests and fsyncs (from /metrics)
#   parts fresh servers (and klite, if KLITE_BIN exists) taking turns: one
#         topic of 2,000 partitions, time to produce 1 record to each
# With STRACE=1 the flat-out runs are also counted with strace -c -f
# (syscalls per Produce request; the strace summary stays in the run's directory).
#
#   scripts/bench-produce.sh [rounds] [old-rev]   (default 3 7c79e54)
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; old=${2:-7c79e54}
KLITE_BIN=${KLITE_BIN:-/tmp/peers/bin/klite}
LG=${LG:-/tmp/loadgen-bin}
[ -x "$LG" ] || (cd ../shared/bench/loadgen && go build -o "$LG" .) || exit 3
out=$(mktemp -d /tmp/bench-produce.XXXXXX)
echo "results in $out"
git archive "$old" | (mkdir -p "$out/old" && tar -x -C "$out/old")
(cd "$out/old" && go build -o "$out/sluice-old" ./cmd/sluice) || exit 3
go build -o "$out/sluice-new" ./cmd/sluice || exit 3
go build -o "$out/parts" ./scripts/produce-partitions || exit 3
fp() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }

# one BIN LABEL EXTRA-SERVER-ARGS -- LOADGEN-ARGS...
one() {
  local bin=$1 label=$2 xargs=$3; shift 4
  local d; d=$(mktemp -d "$out/run.XXXX")
  local pa pk ph; pa=$(fp); pk=$(fp); ph=$(fp)
  "$bin" server $xargs --data-dir "$d/data" --amqp-addr 127.0.0.1:$pa --kafka-addr 127.0.0.1:$pk --http-addr 127.0.0.1:$ph >"$d/log" 2>&1 &
  local spid=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$pk) 2>/dev/null && break; sleep 0.1; done
  "$LG" kafka -brokers 127.0.0.1:$pk -partitions 8 -duration 1s -label warm >/dev/null 2>&1
  m() { curl -s "http://127.0.0.1:$ph/metrics" | awk '/^sluice_kafka_request_duration_seconds_count\{.*Produce/{p+=$2} /^sluice_storage_fsync_duration_seconds_count/{f+=$2} END{print p+0, f+0}'; }
  local m0 t0 m1 t1 j sp=""
  m0=$(m); t0=$(awk '{print $14+$15}' /proc/$spid/stat)
  if [ "${STRACE:-0}" = 1 ] && [ "$#" -eq 0 ]; then strace -c -f -p $spid -o "$d/strace.txt" 2>/dev/null & sp=$!; fi
  j=$("$LG" kafka -brokers 127.0.0.1:$pk -partitions 8 -duration 10s -label "$label" "$@" 2>/dev/null | tail -1)
  m1=$(m); t1=$(awk '{print $14+$15}' /proc/$spid/stat)
  [ -n "$sp" ] && { kill -INT $sp; wait $sp 2>/dev/null; }
  kill $spid; wait $spid 2>/dev/null
  python3 - "$j" "$t0" "$t1" "$label" "$m0" "$m1" "$d" <<'PY'
import json, sys
d = json.loads(sys.argv[1]); cpu = (int(sys.argv[3]) - int(sys.argv[2])) / 100
p0, f0 = map(float, sys.argv[5].split()); p1, f1 = map(float, sys.argv[6].split())
load = open("/proc/loadavg").read().split()[0]
print(f'{sys.argv[4]:<18} {d["msgs_s"]:>9.0f} rec/s  p99 {d["lat_ms"]["p99"]:>7.2f} ms  server {cpu/d["received"]*1e6:5.2f} us/record  '
      f'{int(p1-p0)} produce requests, {(f1-f0)/max(p1-p0,1):.2f} log sync requests each (shared rounds: see strace)  load {load}  {sys.argv[7]}')
PY
}

parts() {
  local who=$1 pk d spid; pk=$(fp); d=$(mktemp -d "$out/parts.XXXX")
  if [ "$who" = klite ]; then
    "$KLITE_BIN" --listen 127.0.0.1:$pk --data-dir "$d/data" --log-level warn >"$d/log" 2>&1 & spid=$!
  else
    local x=""; [[ $who == *+* ]] && x=${who#*+}
    "$out/sluice-${who%%+*}" server $x --data-dir "$d/data" --amqp-addr 127.0.0.1:$(fp) --kafka-addr 127.0.0.1:$pk --http-addr 127.0.0.1:$(fp) >"$d/log" 2>&1 & spid=$!
  fi
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$pk) 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
  echo "$who $("$out/parts" -brokers 127.0.0.1:$pk -n 2000) load $(cut -d' ' -f1 /proc/loadavg)"
  kill $spid; wait $spid 2>/dev/null
}

for r in $(seq 1 "$rounds"); do
  for v in old new new-shared; do
    bin=$out/sluice-${v%-shared}; x=""; [ "$v" = new-shared ] && x=--fsync-shared=true
    one "$bin" "$v-max" "$x" --
    one "$bin" "$v-rate" "$x" -- -rate 20000 -warmup 2s
  done
done
for r in $(seq 1 "$rounds"); do
  parts old; parts new; parts "new+--fsync-shared=true"; [ -x "$KLITE_BIN" ] && parts klite
done
