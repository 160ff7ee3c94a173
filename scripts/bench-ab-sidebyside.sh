#!/usr/bin/env bash
# Before/after side by side, as docs/benchmarks.md's issue-13 summary was
# measured: for the checkout BEFORE (a directory, e.g. a git worktree of an
# older commit) and this checkout, ../shared/bench/sidebyside.sh kafka and
# amqp (ROUNDS, DUR as there), then the AMQP 4 publishers + 4 consumers
# flat-out run against both builds and RabbitMQ (127.0.0.1:5672, started by
# sidebyside.sh if not running), ROUNDS44 times each, in turn.
# Usage: scripts/bench-ab-sidebyside.sh /path/to/before-checkout
set -u
BEFORE=$(cd "$1" && pwd); AFTER=$(pwd)
SBS=${SBS:-$AFTER/../shared/bench/sidebyside.sh}
LG=${LG:-/tmp/loadgen-bin}
ROUNDS44=${ROUNDS44:-2}
OUT=$(mktemp -d /tmp/bench-ab.XXXXXX)
echo "load before: $(cat /proc/loadavg)"
for mode in kafka amqp; do
  for who in before after; do
    dir=$AFTER; [ $who = before ] && dir=$BEFORE
    (cd "$dir" && ROUNDS=${ROUNDS:-2} DUR=${DUR:-10s} "$SBS" $mode) > "$OUT/sbs-$mode-$who.txt" 2>&1
    tail -2 "$OUT/sbs-$mode-$who.txt" | sed "s/^/$mode $who: /"
  done
done
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
for who in before after; do
  dir=$AFTER; [ $who = before ] && dir=$BEFORE
  (cd "$dir" && go build -o "$OUT/sluice-$who" ./cmd/sluice) || exit 3
done
for _ in $(seq 1 "$ROUNDS44"); do
  for who in before after rabbitmq; do
    SP=""
    if [ $who = rabbitmq ]; then URL=amqp://guest:guest@127.0.0.1:5672/
    else
      D=$OUT/data-$who; PA=$(freeport)
      "$OUT/sluice-$who" server --data-dir "$D" --amqp-addr 127.0.0.1:$PA --kafka-addr 127.0.0.1:$(freeport) --http-addr 127.0.0.1:$(freeport) --log-level warn > "$OUT/sluice-$who.log" 2>&1 &
      SP=$!
      for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PA) 2>/dev/null && break; sleep 0.1; done
      URL=amqp://guest:guest@127.0.0.1:$PA/
    fi
    "$LG" amqp -url "$URL" -duration 10s -window 1024 -prefetch 256 -producers 4 -consumers 4 -label "44-$who" 2>/dev/null | tail -1 | tee -a "$OUT/flat44.jsonl" |
      python3 -c 'import json,sys;d=json.load(sys.stdin);print(d["label"],round(d["msgs_s"]),"msg/s p50",d["lat_ms"]["p50"],"ms p99",d["lat_ms"]["p99"],"ms")'
    [ -n "$SP" ] && { kill $SP; wait $SP 2>/dev/null; rm -rf "$D"; }
  done
done
echo "load after: $(cat /proc/loadavg)"
echo "runs: $OUT"
