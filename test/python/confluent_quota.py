#!/usr/bin/python3
"""confluent-kafka (librdkafka) held to a Kafka client quota by a Sluice broker.

Usage: confluent_quota.py BOOTSTRAP (host:port)

The Go test (TestPythonConfluentQuota) sets producer_byte_rate RATE for the
client id "py-slow" and creates the topic "py-metered". A producer with that
client id sends 5 * RATE bytes: every delivery report is error-free,
librdkafka was told to back off (throttle_cb with a throttle time above 0),
and the bytes took at least as long as twice the rate allows after the
one-second burst, however fast the machine.
"""

import sys
import time

from confluent_kafka import Producer

from common import script_deadline, check, ok, run

RATE = 100 * 1024  # bytes a second, as set by the Go test
SIZE = 8 * 1024
remaining = script_deadline(90)


def main():
    bootstrap = sys.argv[1]
    throttles = []
    errors = []
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "client.id": "py-slow",
        "acks": "all",
        "compression.type": "none",
        "linger.ms": 5,
        "batch.num.messages": 4,
        "throttle_cb": lambda ev: throttles.append(ev.throttle_time),
        "error_cb": lambda err: errors.append(err),
    })
    failed = []

    def report(err, msg):
        if err is not None:
            failed.append(err)

    total = 5 * RATE
    start = time.monotonic()
    sent = 0
    while sent < total:
        producer.produce("py-metered", b"x" * SIZE, on_delivery=report)
        sent += SIZE
        producer.poll(0)
    left = producer.flush(remaining(60))
    elapsed = time.monotonic() - start
    producer.poll(0)
    check(left == 0, "%d messages not delivered" % left)
    check(not failed, "delivery errors: %s" % failed[:3])
    ok("%d bytes delivered in %.2fs at a %d B/s quota" % (sent, elapsed, RATE))
    minimum = (total - RATE) / (2.0 * RATE)
    check(elapsed >= minimum, "%d bytes took %.2fs, under %.2fs: the quota did not hold" % (total, elapsed, minimum))
    ok("no faster than twice the quota")
    check(throttles and max(throttles) > 0, "no throttle reported to librdkafka (throttle_cb): %s" % throttles)
    ok("librdkafka saw %d throttles, the longest %.3fs" % (len(throttles), max(throttles)))


run(main)
