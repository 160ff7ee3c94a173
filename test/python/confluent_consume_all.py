#!/usr/bin/python3
"""confluent-kafka (librdkafka) reads a topic while retention deletes it.

Usage: confluent_consume_all.py BOOTSTRAP TOPIC PARTITIONS LAST

Assigns every partition of TOPIC from the beginning (no group) and reads
until it has seen offset LAST in each, with auto.offset.reset=earliest so
that a read below the log start (retention deleted the segment meanwhile)
starts again at the log start. Prints one line per record, "partition
offset crc32-of-value", for the Go test to check (test/zero_copy_test.go).
"""

import sys
import time
import zlib

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from common import fail, run

# Errors that are the client telling what it did, not failures.
BENIGN = {KafkaError._PARTITION_EOF, KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE}


def main():
    bootstrap, topic, parts, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "zc-unused",  # required by the client; nothing is committed
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 8 << 20,
        "max.partition.fetch.bytes": 1 << 20,
    })
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(parts)])
    deadline = time.monotonic() + 90
    done, out = set(), []
    while len(done) < parts:
        if time.monotonic() > deadline:
            fail("read %d records; offset %d not reached in partitions %s" % (
                len(out), last, sorted(set(range(parts)) - done)))
        for m in c.consume(1000, 1.0):
            if m.error():
                if m.error().code() in BENIGN:
                    continue
                fail("consume: %s" % m.error())
            out.append("%d %d %d" % (m.partition(), m.offset(), zlib.crc32(m.value())))
            if m.offset() == last:
                done.add(m.partition())
    c.close()
    sys.stdout.write("\n".join(out) + "\n")


run(main)
