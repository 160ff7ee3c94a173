#!/usr/bin/python3
"""kafka-python on a compacted topic.

Usage: kafka_python_compacted.py BOOTSTRAP produce|read

produce: creates topic kp-compact (1 partition, cleanup.policy=compact,
64 KiB segments, min.cleanable.dirty.ratio 0, delete.retention.ms 1 h)
with kafka-python's admin client, then ROUNDS rounds, each writing every
key ("v<round>-<key>"), then a tombstone for every key k with
k % 10 == 5, and one record larger than a segment (key "roll") so that
all the rest is in closed segments.

read (once the broker's cleaner has cleaned the topic; the Go test waits
for that in /metrics): a consumer reads the partition from the start to
the "roll" record across the offset gaps the cleaner left and finds
exactly one record per key, in increasing offsets: the last round's value
or, for the tombstoned keys, the tombstone; and fewer records than were
written.
"""

import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from common import script_deadline, check, fail, ok, run

TOPIC = "kp-compact"
KEYS = 40
ROUNDS = 8
remaining = script_deadline(100)



def key(k):
    return ("k%02d" % k).encode()


def produce(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(TOPIC, 1, 1, topic_configs={
        "cleanup.policy": "compact", "segment.bytes": "65536", "min.cleanable.dirty.ratio": "0",
        "min.compaction.lag.ms": "0", "delete.retention.ms": "3600000"})])
    admin.close()
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    pad = ("x" * 512).encode()
    for r in range(ROUNDS):
        for k in range(KEYS):
            p.send(TOPIC, key=key(k), value=("v%d-%d" % (r, k)).encode(), headers=[("pad", pad)])
        p.flush(remaining(30))
    for k in range(5, KEYS, 10):
        p.send(TOPIC, key=key(k), value=None)
    p.send(TOPIC, key=b"roll", value=b"r" * (100 << 10))
    p.flush(remaining(30))
    p.close()
    ok("%d rounds over %d keys, tombstones and a roll record produced" % (ROUNDS, KEYS))


def read(bootstrap):
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                      max_partition_fetch_bytes=1 << 20, fetch_max_bytes=4 << 20)
    tp = TopicPartition(TOPIC, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got, n, last = {}, 0, -1
    end = time.monotonic() + remaining(40)
    done = False
    while not done:
        if time.monotonic() > end:
            fail("read %d records of %s, no roll record" % (n, TOPIC))
        for recs in c.poll(timeout_ms=500).values():
            for m in recs:
                check(m.offset > last, "offset %d after %d" % (m.offset, last))
                last = m.offset
                n += 1
                if m.key == b"roll":
                    done = True
                    break
                check(m.key not in got, "key %s twice: %s at an earlier offset, %s at %d" % (m.key, got.get(m.key), m.value, m.offset))
                got[m.key] = m.value
            if done:
                break
    c.close()
    want = {}
    for k in range(KEYS):
        want[key(k)] = None if k % 10 == 5 else ("v%d-%d" % (ROUNDS - 1, k)).encode()
    check(got == want, "read %r,\nwant %r" % (sorted(got.items()), sorted(want.items())))
    check(last + 1 > n, "no offset gap: %d records up to offset %d" % (n, last))
    ok("read the latest value or tombstone of each of %d keys, %d records up to offset %d" % (len(want), n, last))


def main():
    bootstrap, phase = sys.argv[1], sys.argv[2]
    if phase == "produce":
        produce(bootstrap)
    elif phase == "read":
        read(bootstrap)
    else:
        fail("phase %r: want produce or read" % phase)


run(main)
