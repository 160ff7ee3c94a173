#!/usr/bin/python3
"""confluent-kafka (librdkafka) against a Sluice broker: idempotent producer
with every compression codec, read back by a consumer group.

Usage: confluent_idempotent.py BOOTSTRAP (host:port)

For each compression.type in none, gzip, snappy, lz4, zstd: create a topic
with 3 partitions; an idempotent producer (enable.idempotence, acks=all)
sends N keyed records with a header; every delivery report is error-free,
the producer got a producer id (librdkafka statistics), and per partition
the offsets are contiguous from 0 in produce order. A Consumer in a group
(auto.offset.reset=earliest) reads every record back, checks value, key
and header in offset order per partition, commits, and the committed
offsets equal the high watermarks.

Exits non-zero with a message naming the failed check; prints each check
that passed.
"""

import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import script_deadline, check, fail, ok, run

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PARTITIONS = 3
N = 500
remaining = script_deadline(90)

errors = []  # from error_cb of every client



def on_error(name):
    def cb(err):
        errors.append((name, err))
        print("client error from %s: %s" % (name, err), file=sys.stderr, flush=True)
    return cb


def no_client_errors(where):
    check(not errors, "%s: client errors reported: %s" % (where, "; ".join("%s: %s" % e for e in errors)))


def produce(bootstrap, topic, codec):
    """Produces N records idempotently; returns {partition: [(offset, i)]} in offset order and the producer id."""
    stats = {}

    def on_stats(js):
        eos = json.loads(js).get("eos")
        if eos:
            stats.update(eos)

    p = Producer({
        "bootstrap.servers": bootstrap,
        "client.id": "cf-producer-" + codec,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": codec,
        "linger.ms": 20,
        "message.timeout.ms": 20000,
        "socket.timeout.ms": 10000,
        "statistics.interval.ms": 100,
        "stats_cb": on_stats,
        "error_cb": on_error("producer " + codec),
    })
    reports = []  # (i, err, partition, offset) in callback order

    def on_delivery(err, msg):
        i = int(msg.value().decode().rsplit("-", 1)[1])
        reports.append((i, err, msg.partition(), msg.offset()))

    for i in range(N):
        while True:
            try:
                p.produce(topic, key="key-%d" % (i % 11), value="%s-value-%05d" % (codec, i),
                          headers=[("i", str(i))], on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(remaining(30))
    check(left == 0, "%s: %d records still undelivered after flush" % (codec, left))
    check(len(reports) == N, "%s: %d delivery reports, want %d" % (codec, len(reports), N))
    bad = [(i, err) for i, err, _, _ in reports if err is not None]
    check(not bad, "%s: delivery errors, first %r" % (codec, bad[:5]))

    # Idempotence: the producer holds an id the broker assigned.
    end = time.monotonic() + remaining(10)
    while stats.get("idemp_state") != "Assigned" and time.monotonic() < end:
        p.poll(0.05)
    check(stats.get("idemp_state") == "Assigned" and stats.get("producer_id", -1) >= 0,
          "%s: idempotent producer state %r" % (codec, stats))
    pid = stats["producer_id"]

    by_part = {}
    for i, _, part, off in reports:
        by_part.setdefault(part, []).append((off, i))
    for part, recs in by_part.items():
        recs.sort()
        offsets = [o for o, _ in recs]
        check(offsets == list(range(len(recs))), "%s partition %d: offsets %r... not contiguous from 0"
              % (codec, part, offsets[:20]))
        order = [i for _, i in recs]
        check(order == sorted(order), "%s partition %d: offset order differs from produce order" % (codec, part))
    check(len(by_part) == PARTITIONS, "%s: records landed in partitions %r, want all %d"
          % (codec, sorted(by_part), PARTITIONS))
    no_client_errors(codec + " produce")
    return by_part, pid


def consume(bootstrap, topic, codec, by_part):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "client.id": "cf-consumer-" + codec,
        "group.id": "cf-group-" + codec,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "socket.timeout.ms": 10000,
        "error_cb": on_error("consumer " + codec),
    })
    c.subscribe([topic])
    got = {}  # partition -> [(offset, value, key, header i)]
    count = 0
    end = time.monotonic() + remaining(30)
    while count < N:
        if time.monotonic() > end:
            fail("%s: consumed %d of %d records; assignment %r" % (codec, count, N, c.assignment()))
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            check(msg.error().code() == KafkaError._PARTITION_EOF, "%s: consume error %s" % (codec, msg.error()))
            continue
        got.setdefault(msg.partition(), []).append(
            (msg.offset(), msg.value().decode(), msg.key().decode(), dict(msg.headers() or []).get("i")))
        count += 1
    for part, want in by_part.items():
        recs = got.get(part, [])
        check(len(recs) == len(want), "%s partition %d: consumed %d records, produced %d" % (codec, part, len(recs), len(want)))
        for (off, value, key, hdr), (woff, i) in zip(recs, want):
            wv = "%s-value-%05d" % (codec, i)
            check((off, value, key, hdr) == (woff, wv, "key-%d" % (i % 11), str(i).encode()),
                  "%s partition %d: got offset %d value %r key %r header %r, want offset %d value %r key %r header %r"
                  % (codec, part, off, value, key, hdr, woff, wv, "key-%d" % (i % 11), str(i).encode()))

    c.commit(asynchronous=False)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    committed = c.committed(tps, timeout=remaining(10))
    for tp in committed:
        check(tp.error is None, "%s: committed %s error %s" % (codec, tp, tp.error))
        low, high = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=remaining(10))
        check(low == 0 and high == len(by_part[tp.partition]),
              "%s partition %d: watermarks (%d, %d), want (0, %d)" % (codec, tp.partition, low, high, len(by_part[tp.partition])))
        check(tp.offset == high, "%s partition %d: committed %d, high watermark %d" % (codec, tp.partition, tp.offset, high))
    c.close()
    no_client_errors(codec + " consume")


def main():
    if len(sys.argv) != 2:
        fail("usage: %s BOOTSTRAP" % sys.argv[0])
    bootstrap = sys.argv[1]
    admin = AdminClient({"bootstrap.servers": bootstrap, "error_cb": on_error("admin")})
    topics = {codec: "cf-idem-" + codec for codec in CODECS}
    futures = admin.create_topics([NewTopic(t, num_partitions=PARTITIONS, replication_factor=1)
                                   for t in topics.values()], operation_timeout=10, request_timeout=15)
    for t, f in futures.items():
        f.result(timeout=remaining(15))
    md = admin.list_topics(timeout=remaining(10))
    for t in topics.values():
        check(t in md.topics and len(md.topics[t].partitions) == PARTITIONS,
              "metadata for %s: %r" % (t, md.topics.get(t)))
    ok("AdminClient created %d topics with %d partitions" % (len(topics), PARTITIONS))

    pids = {}
    for codec in CODECS:
        by_part, pid = produce(bootstrap, topics[codec], codec)
        pids[codec] = pid
        ok("%s: idempotent producer (id %d) delivered %d records, offsets contiguous per partition %r"
           % (codec, pid, N, {p: len(r) for p, r in sorted(by_part.items())}))
        consume(bootstrap, topics[codec], codec, by_part)
        ok("%s: consumer group read every value, key and header in order; committed = high watermark" % codec)
    check(len(set(pids.values())) == len(pids), "producer ids not unique: %r" % (pids,))
    ok("each producer got its own producer id: %r" % (pids,))
    no_client_errors("end")
    print("PASS", flush=True)


if __name__ == "__main__":
    run(main)
