#!/usr/bin/python3
"""confluent-kafka (librdkafka) transactions on a compacted topic.

Usage: confluent_compacted_txn.py BOOTSTRAP produce|read

produce: creates topic cf-compact (1 partition, cleanup.policy=compact,
64 KiB segments, min.cleanable.dirty.ratio 0, delete.retention.ms 1 h),
then ROUNDS rounds, one after the other, each of: a committed transaction
writing every key ("c<round>-<key>"), an aborted one writing every key
again ("a<round>-<key>", delivered before the abort), and plain records
for the even keys ("p<round>-<key>"); then a plain tombstone for every
key k with k % 10 == 5, and one plain record larger than a segment (key
"roll") so that all the rest is in closed segments.

read (once the broker's cleaner has cleaned the topic; the Go test waits
for that in /metrics): a read_committed consumer reads the partition
from the start to the "roll" record and finds exactly one record per key,
in increasing offsets: the latest committed value (the last plain record
for even keys, the last committed transaction's for odd ones; never an
aborted one) or, for the tombstoned keys, the tombstone.
"""

import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import script_deadline, check, fail, ok, run

TOPIC = "cf-compact"
KEYS = 50
ROUNDS = 6
remaining = script_deadline(100)



def key(k):
    return ("k%02d" % k).encode()


def expected():
    want = {}
    last = ROUNDS - 1
    for k in range(KEYS):
        want[key(k)] = ("p%d-%d" % (last, k) if k % 2 == 0 else "c%d-%d" % (last, k)).encode()
        if k % 10 == 5:
            want[key(k)] = None
    return want


def produce(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1, config={
        "cleanup.policy": "compact", "segment.bytes": "65536", "min.cleanable.dirty.ratio": "0",
        "min.compaction.lag.ms": "0", "delete.retention.ms": "3600000"})])
    for f in fs.values():
        f.result(timeout=remaining(20))
    tp = Producer({"bootstrap.servers": bootstrap, "transactional.id": "cf-compact-txn", "enable.idempotence": True})
    tp.init_transactions(remaining(30))
    plain = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    pad = "x" * 512
    for r in range(ROUNDS):
        for prefix, commit in (("c", True), ("a", False)):
            tp.begin_transaction()
            for k in range(KEYS):
                tp.produce(TOPIC, key=key(k), value=("%s%d-%d" % (prefix, r, k)).encode(), headers=[("pad", pad)])
            if commit:
                tp.commit_transaction(remaining(30))
            else:
                check(tp.flush(remaining(30)) == 0, "aborted records not delivered")
                tp.abort_transaction(remaining(30))
        for k in range(0, KEYS, 2):
            plain.produce(TOPIC, key=key(k), value=("p%d-%d" % (r, k)).encode(), headers=[("pad", pad)])
        check(plain.flush(remaining(30)) == 0, "plain records not delivered")
    for k in range(5, KEYS, 10):
        plain.produce(TOPIC, key=key(k), value=None)
    check(plain.flush(remaining(30)) == 0, "tombstones not delivered")
    plain.produce(TOPIC, key=b"roll", value=b"r" * (100 << 10))
    check(plain.flush(remaining(30)) == 0, "roll record not delivered")
    ok("%d rounds of a committed and an aborted transaction and plain records over %d keys, then tombstones" % (ROUNDS, KEYS))


def read(bootstrap):
    c = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "cf-compact-" + uuid.uuid4().hex,
        "enable.auto.commit": False, "isolation.level": "read_committed",
    })
    c.assign([TopicPartition(TOPIC, 0, 0)])  # offset 0: the log start, a gap after compaction
    got = {}
    last = -1
    end = time.monotonic() + remaining(40)
    while True:
        if time.monotonic() > end:
            fail("read %d records of %s, no roll record" % (len(got), TOPIC))
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            fail("consume %s: %s" % (TOPIC, m.error()))
        check(m.offset() > last, "offset %d after %d" % (m.offset(), last))
        last = m.offset()
        if m.key() == b"roll":
            break
        check(m.key() not in got, "key %s twice: %s at an earlier offset, %s at %d" % (m.key(), got.get(m.key()), m.value(), m.offset()))
        check(m.value() is None or not m.value().startswith(b"a"), "aborted value %s read with read_committed" % m.value())
        got[m.key()] = m.value()
    c.close()
    want = expected()
    check(got == want, "read %r,\nwant %r" % (sorted(got.items()), sorted(want.items())))
    ok("read_committed reads exactly the latest committed value or tombstone of each of %d keys" % len(want))


def main():
    bootstrap, phase = sys.argv[1], sys.argv[2]
    if phase == "produce":
        produce(bootstrap)
    elif phase == "read":
        read(bootstrap)
    else:
        fail("phase %r: want produce or read" % phase)


run(main)
