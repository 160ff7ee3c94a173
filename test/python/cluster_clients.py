#!/usr/bin/python3
"""kafka-python and confluent-kafka against a Sluice cluster of several nodes.

Usage: cluster_clients.py BOOTSTRAP TOPIC PARTITIONS BROKERS N PRIOR

BOOTSTRAP is one node's Kafka address (the clients discover the others from
Metadata). Checks that both clients see BROKERS brokers and a leader for
every partition, produce N records each (acks=all, spread over the
partitions, so to every node's partitions), and read all 2N back, with the
PRIOR records the topic held before, in consumer groups (one per client),
each record exactly once.
"""

import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer, KafkaProducer

from common import check, fail, ok, run


def main():
    bootstrap, topic, parts, brokers, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    prior = int(sys.argv[6])

    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=20)
    check(len(md.brokers) == brokers, "confluent-kafka sees %d brokers, want %d: %s" % (len(md.brokers), brokers, md.brokers))
    tmd = md.topics.get(topic)
    check(tmd is not None and len(tmd.partitions) == parts, "confluent-kafka metadata of %s: %s" % (topic, tmd))
    leaders = {p.id: p.leader for p in tmd.partitions.values()}
    check(all(l in md.brokers for l in leaders.values()), "a partition without a live leader: %s" % leaders)
    ok("confluent-kafka: %d brokers, leaders %s" % (len(md.brokers), sorted(leaders.items())))

    want = set()
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(err)

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 30000})
    for i in range(n):
        v = "ck-%d" % i
        want.add(v)
        p.produce(topic, value=v.encode(), partition=i % parts, on_delivery=delivered)
        p.poll(0)
    check(p.flush(30) == 0, "confluent-kafka: records left unflushed")
    check(not errors, "confluent-kafka delivery errors: %s" % errors[:5])
    ok("confluent-kafka produced %d records with acks=all" % n)

    kp = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=30000)
    futs = []
    for i in range(n):
        v = "kp-%d" % i
        want.add(v)
        futs.append(kp.send(topic, value=v.encode(), partition=i % parts))
    for f in futs:
        f.get(timeout=30)
    kp.close()
    ok("kafka-python produced %d records with acks=all" % n)

    # confluent-kafka consumer group reads everything exactly once.
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "cluster-ck", "auto.offset.reset": "earliest",
                  "enable.auto.commit": True})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < prior + 2 * n and time.monotonic() < deadline:
        for m in c.consume(1000, 1.0):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                fail("confluent-kafka consume: %s" % m.error())
            got.append(m.value().decode())
    c.close()
    check(len(got) == prior + 2 * n and len(set(got)) == len(got) and want <= set(got),
          "confluent-kafka group read %d records (%d distinct), want %d" % (len(got), len(set(got)), prior + 2 * n))
    ok("confluent-kafka group read all %d records once" % len(got))

    # kafka-python consumer group, likewise.
    kc = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="cluster-kp", auto_offset_reset="earliest",
                       consumer_timeout_ms=3000)
    got = []
    deadline = time.monotonic() + 60
    while len(got) < prior + 2 * n and time.monotonic() < deadline:
        for m in kc:
            got.append(m.value.decode())
    brokers_seen = len(kc._client.cluster.brokers())
    kc.close()
    check(brokers_seen == brokers, "kafka-python sees %d brokers, want %d" % (brokers_seen, brokers))
    check(len(got) == prior + 2 * n and len(set(got)) == len(got) and want <= set(got),
          "kafka-python group read %d records (%d distinct), want %d" % (len(got), len(set(got)), prior + 2 * n))
    ok("kafka-python group read all %d records once, %d brokers" % (len(got), brokers_seen))


if __name__ == "__main__":
    run(main)
