#!/usr/bin/python3
"""confluent-kafka (librdkafka) transactions against a Sluice broker.

Usage: confluent_transactions.py BOOTSTRAP (host:port)

A transactional producer (transactional.id) runs init_transactions, then
a committed transaction of N records, an aborted one of N, and another
committed one of N into topic cf-txn (3 partitions). A read_committed
consumer sees exactly the 2N committed records (none of the aborted ones);
a read_uncommitted consumer sees all 3N data records.

Then consume-transform-produce: a read_committed consumer in group
cf-txn-g reads cf-txn and, in one transaction per poll batch, produces
each record upper-cased to cf-txn-out and sends the consumer's positions
with send_offsets_to_transaction; one batch's transaction is aborted and
its records reprocessed. At the end cf-txn-out read with read_committed
holds every committed input exactly once, and the group's committed
offsets (seen by a fresh consumer) are the input's end offsets.

Exits non-zero with a message naming the failed check; prints each check
that passed.
"""

import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import script_deadline, check, fail, ok, run

PARTITIONS = 3
N = 100
remaining = script_deadline(100)



def create(admin, name):
    fs = admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
    for f in fs.values():
        f.result(timeout=remaining(20))


def producer(bootstrap, txn_id):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, "enable.idempotence": True})
    p.init_transactions(remaining(30))
    return p


def read_values(bootstrap, topic, isolation):
    """Produces a plain sentinel record at the end of every partition of
    topic, then reads the topic from the start at isolation until every
    sentinel arrived, and returns the values before them, sorted."""
    mine = ("sentinel-" + uuid.uuid4().hex).encode()
    plain = Producer({"bootstrap.servers": bootstrap})
    for i in range(PARTITIONS):
        plain.produce(topic, value=mine, partition=i)
    check(plain.flush(remaining(20)) == 0, "sentinels not delivered")
    c = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "reader-" + uuid.uuid4().hex,
        "auto.offset.reset": "earliest", "enable.auto.commit": False, "isolation.level": isolation,
    })
    c.subscribe([topic])
    out = []
    sentinels = 0
    end = time.monotonic() + remaining(40)
    while sentinels < PARTITIONS:
        if time.monotonic() > end:
            fail("reading %s (%s): %d of %d sentinels" % (topic, isolation, sentinels, PARTITIONS))
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            fail("consume %s: %s" % (topic, m.error()))
        if m.value() == mine:
            sentinels += 1
        elif not m.value().startswith(b"sentinel-"):  # an earlier read's
            out.append(m.value().decode())
    c.close()
    return sorted(out)


def main():
    bootstrap = sys.argv[1]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    create(admin, "cf-txn")
    create(admin, "cf-txn-out")

    p = producer(bootstrap, "cf-txn-producer")
    ok("init_transactions")
    committed = []
    for name, commit in (("c1", True), ("a1", False), ("c2", True)):
        p.begin_transaction()
        vals = ["%s-%03d" % (name, i) for i in range(N)]
        for v in vals:
            p.produce("cf-txn", key=v.encode(), value=v.encode())
        if commit:
            p.commit_transaction(remaining(30))
            committed += vals
        else:
            # abort_transaction drops what is not sent yet: send it all
            # first, so that the aborted records are in the log.
            check(p.flush(remaining(30)) == 0, "aborted records not delivered")
            p.abort_transaction(remaining(30))
    ok("commit, abort, commit of %d records each" % N)

    got = read_values(bootstrap, "cf-txn", "read_committed")
    check(got == sorted(committed), "read_committed saw %d records (%d aborted), want the %d committed" %
          (len(got), len([v for v in got if v.startswith("a1")]), len(committed)))
    ok("read_committed consumer sees exactly the committed records")
    got = read_values(bootstrap, "cf-txn", "read_uncommitted")
    check(len(got) == 3 * N, "read_uncommitted saw %d records (%s), want %d" % (
        len(got), {k: len([v for v in got if v.startswith(k)]) for k in ("c1", "a1", "c2")}, 3 * N))
    ok("read_uncommitted consumer sees every record")

    # Consume-transform-produce.
    group = "cf-txn-g"
    c = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "isolation.level": "read_committed",
    })
    c.subscribe(["cf-txn"])
    tp = producer(bootstrap, "cf-txn-pipeline")
    done = 0
    last = {}  # partition -> offset of the last input record processed in a committed transaction
    aborted_once = False
    end = time.monotonic() + remaining(60)
    while done < len(committed) and time.monotonic() < end:
        msgs = c.consume(50, 1.0)
        if not msgs:
            continue
        for m in msgs:
            if m.error():
                fail("pipeline consume: %s" % m.error())
        data = [m for m in msgs if not m.value().startswith(b"sentinel-")]
        tp.begin_transaction()
        for m in data:
            tp.produce("cf-txn-out", key=m.key(), value=m.value().decode().upper().encode())
        tp.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), remaining(30))
        if not aborted_once:
            tp.abort_transaction(remaining(30))
            aborted_once = True
            # Rewind to the last committed offsets and process again.
            for part in c.committed(c.assignment(), remaining(20)):
                c.seek(TopicPartition(part.topic, part.partition, part.offset if part.offset >= 0 else 0))
            continue
        tp.commit_transaction(remaining(30))
        done += len(data)
        for m in data:
            last[m.partition()] = max(last.get(m.partition(), -1), m.offset())
    check(done == len(committed), "pipeline processed %d of %d" % (done, len(committed)))
    c.close()
    ok("pipeline: send_offsets_to_transaction with commit and abort")

    got = read_values(bootstrap, "cf-txn-out", "read_committed")
    check(got == sorted(v.upper() for v in committed), "output holds %d records, want each of %d exactly once" %
          (len(got), len(committed)))
    ok("output holds every committed input exactly once")

    fresh = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    parts = [TopicPartition("cf-txn", i) for i in range(PARTITIONS)]
    offs = fresh.committed(parts, remaining(20))
    for part in offs:
        lo, hi = fresh.get_watermark_offsets(TopicPartition("cf-txn", part.partition), timeout=remaining(20), cached=False)
        want = last.get(part.partition, -1)
        check(want < part.offset <= hi,
              "group offset of partition %d is %d: want past the last record processed (%d), at most %d" %
              (part.partition, part.offset, want, hi))
    fresh.close()
    ok("group offsets committed through the transactions")


run(main)
