#!/usr/bin/env bash
# The metadata scale rows of issue 13, side by side in one run, each broker
# fresh for each measurement, rounds alternating A B (peer):
#   kafka-topics   create TOPICS topics x PARTS partitions (one CreateTopics request)
#   kafka-commits  consumer-group offset commits/s, 8 groups, 8 partitions (B also
#                  with --fsync=interval: klite answers commits without any fsync)
#   churn          AMQP queue declare+delete pairs/s and confirm p99 on another queue
#   churn0         the same publisher without churn (the baseline p99; not in the default ROWS)
# against Sluice binaries A and B (e.g. built from main and from this branch),
# klite (KLITE_BIN) for the Kafka rows and RabbitMQ on 127.0.0.1:5672 for churn
# (not started by this script; PEER_AMQP=0 skips it).
# Usage: scripts/bench-meta.sh /path/sluice-A /path/sluice-B
# Env: ROUNDS (3), TOPICS (200), PARTS (10), DUR (5s), ROWS ("topics commits churn").
# Prints one line per run: row label seconds-or-rate server-cpu-seconds load-average.
set -u
A=$1; B=$2
ROUNDS=${ROUNDS:-3}; TOPICS=${TOPICS:-200}; PARTS=${PARTS:-10}; DUR=${DUR:-5s}
ROWS=${ROWS:-"topics commits churn"}
KLITE_BIN=${KLITE_BIN:-/tmp/peers/bin/klite}
PEER_AMQP=${PEER_AMQP:-1}
OUT=$(mktemp -d /tmp/bench-meta.XXXXXX)
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
waitport() { for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
cpu() { awk '{print ($14+$15)/100}' /proc/$1/stat 2>/dev/null || echo 0; }
load() { cut -d' ' -f1 /proc/loadavg; }
PID=""; KAFKA=""; AMQP=""
start() { # start <label>: a fresh broker; sets PID, KAFKA, AMQP
  local d=$OUT/data-$RANDOM$RANDOM
  KAFKA=127.0.0.1:$(freeport)
  case $1 in
  klite) "$KLITE_BIN" --listen "$KAFKA" --data-dir "$d" --log-level warn >"$OUT/klite.log" 2>&1 & PID=$!;;
  rabbitmq) PID=$(pgrep -o -f 'beam.*rabbit' || echo 0); AMQP=amqp://guest:guest@127.0.0.1:5672/; return;;
  *) local bin=$A extra=(); [ "$1" != A ] && bin=$B
     [ "$1" = B-interval ] && extra=(--fsync=interval)
     local pa; pa=$(freeport); AMQP=amqp://guest:guest@127.0.0.1:$pa/
     "$bin" server --data-dir "$d" --kafka-addr "$KAFKA" --amqp-addr 127.0.0.1:$pa --http-addr 127.0.0.1:$(freeport) --log-level warn "${extra[@]}" >"$OUT/sluice-$1.log" 2>&1 & PID=$!
     waitport "$pa";;
  esac
  waitport "${KAFKA##*:}"
}
stop() { [ "$1" = rabbitmq ] || { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }; }
run() { # run <row> <label>
  start "$2"; local c0; c0=$(cpu "$PID"); local r
  case $1 in
  topics)  r=$("$B" bench kafka-topics --brokers "$KAFKA" --topics "$TOPICS" --partitions "$PARTS" --per-request "$TOPICS" --keep --json 2>/dev/null | python3 -c 'import json,sys;print(json.load(sys.stdin)["seconds"])');;
  commits) r=$("$B" bench kafka-commits --brokers "$KAFKA" --duration "$DUR" --json 2>/dev/null | python3 -c 'import json,sys;d=json.load(sys.stdin);print(round(d["commits_per_sec"]), "p99", d["commit_latency"]["p99_ms"])');;
  churn0)  r=$("$B" bench churn --url "$AMQP" --churners 0 --duration "$DUR" --rate 1000 --json 2>/dev/null | python3 -c 'import json,sys;d=json.load(sys.stdin);print("confirm_p99",d["confirm_latency"]["p99_ms"],"missing",d["missing"])');;
  churn)   r=$("$B" bench churn --url "$AMQP" --churners 4 --duration "$DUR" --rate 1000 --json 2>/dev/null | python3 -c 'import json,sys;d=json.load(sys.stdin);print(round(d["declarations_per_sec"]),"pairs/s confirm_p99",d["confirm_latency"]["p99_ms"],"missing",d["missing"])');;
  esac
  echo "$1 $2 ${r:-FAILED} cpu_s=$(echo "$(cpu "$PID") $c0" | awk '{printf "%.2f", $1-$2}') load=$(load)"
  stop "$2"
}
for _ in $(seq 1 "$ROUNDS"); do
  for row in $ROWS; do
    peers=klite; case $row in churn*) peers=""; [ "$PEER_AMQP" = 1 ] && peers=rabbitmq;; esac
    who_b=B; [ "$row" = commits ] && who_b="B B-interval"
    for who in A $who_b $peers; do run "$row" "$who"; done
  done
done
rm -rf "$OUT"/data-*
