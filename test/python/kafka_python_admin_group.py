#!/usr/bin/python3
"""kafka-python (2.0.x) against a Sluice broker: admin, producer, consumer group.

Usage: kafka_python_admin_group.py BOOTSTRAP (host:port)

Checks, in order: create_topics (3 partitions, one config), list_topics,
describe_topics, describe_configs; a KafkaProducer sends N keyed records;
a KafkaConsumer in a group with manual commits reads them all and commits;
committed offsets agree between consumer.committed and the admin's
list_consumer_group_offsets; lag (end offset - committed) is 0, then M
after M more records; the group is listed and described; delete_topics.

Exits non-zero with a message naming the failed check. Prints each check
that passed, so the Go test log shows what was covered.
"""

import sys
import time
from collections import Counter

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from common import check, fail, ok, run

TOPIC = "kp-orders"
GROUP = "kp-group"
PARTITIONS = 3
N = 60
M = 17
DEADLINE = time.monotonic() + 75  # the whole script, so the Go test never waits on a hang


def poll_until(what, cond, timeout=15.0):
    """Polls cond until it returns a true value; fails with what after timeout."""
    end = min(time.monotonic() + timeout, DEADLINE)
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            fail("timed out waiting for " + what)
        time.sleep(0.05)


def lag(consumer, admin, partitions):
    """Sum of end offset - committed offset, checked against the admin view."""
    ends = consumer.end_offsets(partitions)
    committed = admin.list_consumer_group_offsets(GROUP, partitions=partitions)
    total = 0
    for tp in partitions:
        c = consumer.committed(tp)
        check(tp in committed, "admin has no committed offset for %s (got %r)" % (tp, committed))
        check(c == committed[tp].offset,
              "%s: consumer.committed=%r but admin list_consumer_group_offsets=%r" % (tp, c, committed[tp]))
        check(c is not None and c >= 0, "%s: committed offset %r" % (tp, c))
        total += ends[tp] - c
    return total, ends, committed


def main():
    if len(sys.argv) != 2:
        fail("usage: %s BOOTSTRAP" % sys.argv[0])
    bootstrap = sys.argv[1]
    common = dict(bootstrap_servers=bootstrap, request_timeout_ms=15000, api_version_auto_timeout_ms=10000)

    admin = KafkaAdminClient(client_id="kp-admin", **common)
    ok("admin connected; broker version inferred from ApiVersions: %s" % (admin.config["api_version"],))

    admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1,
                                  topic_configs={"retention.ms": "3600000"})], timeout_ms=10000)
    ok("create_topics %s with %d partitions" % (TOPIC, PARTITIONS))

    topics = admin.list_topics()
    check(TOPIC in topics, "list_topics %r lacks %s" % (topics, TOPIC))
    ok("list_topics includes %s" % TOPIC)

    desc = admin.describe_topics([TOPIC])
    check(len(desc) == 1 and desc[0]["error_code"] == 0, "describe_topics: %r" % (desc,))
    parts = sorted(p["partition"] for p in desc[0]["partitions"])
    check(parts == list(range(PARTITIONS)), "describe_topics partitions %r, want 0..%d" % (parts, PARTITIONS - 1))
    for p in desc[0]["partitions"]:
        check(p["leader"] == 1 and p["replicas"] == [1] and p["isr"] == [1], "partition metadata %r" % (p,))
    ok("describe_topics: partitions %r, each led by node 1" % (parts,))

    responses = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, TOPIC)])
    configs = {}
    for resp in responses:
        for err, err_msg, rtype, rname, entries in resp.resources:
            check(err == 0, "describe_configs %s: error %d %s" % (rname, err, err_msg))
            check(rname == TOPIC, "describe_configs answered for %r, want %s" % (rname, TOPIC))
            for entry in entries:
                configs[entry[0]] = entry[1]
    check(configs.get("retention.ms") == "3600000",
          "describe_configs retention.ms=%r, want '3600000' (all: %r)" % (configs.get("retention.ms"), configs))
    check("cleanup.policy" in configs, "describe_configs lacks cleanup.policy: %r" % (configs,))
    ok("describe_configs: retention.ms=3600000 and %d entries in all" % len(configs))

    producer = KafkaProducer(client_id="kp-producer", acks="all", retries=0, linger_ms=5,
                             key_serializer=str.encode, value_serializer=str.encode, **common)
    sent = {}
    futures = [(i, producer.send(TOPIC, key="key-%d" % (i % 7), value="value-%03d" % i)) for i in range(N)]
    for i, fut in futures:
        md = fut.get(timeout=15)
        sent[i] = (md.partition, md.offset)
    producer.flush(timeout=15)
    per_partition = Counter(p for p, _ in sent.values())
    for p, count in per_partition.items():
        offsets = sorted(o for pp, o in sent.values() if pp == p)
        check(offsets == list(range(count)), "partition %d: produce offsets %r not contiguous from 0" % (p, offsets))
    check(len(per_partition) > 1, "7 keys all went to one partition: %r" % (per_partition,))
    ok("producer sent %d keyed records, offsets contiguous per partition %r" % (N, dict(per_partition)))

    consumer = KafkaConsumer(TOPIC, client_id="kp-consumer", group_id=GROUP, enable_auto_commit=False,
                             auto_offset_reset="earliest", session_timeout_ms=10000, heartbeat_interval_ms=1000,
                             key_deserializer=bytes.decode, value_deserializer=bytes.decode, **common)
    got = {}
    end = min(time.monotonic() + 30, DEADLINE)
    while len(got) < N:
        if time.monotonic() > end:
            fail("consumer read %d of %d records; assignment %r" % (len(got), N, consumer.assignment()))
        for tp, recs in consumer.poll(timeout_ms=500).items():
            for r in recs:
                i = int(r.value.split("-")[1])
                check(i not in got, "record %d consumed twice" % i)
                check(r.key == "key-%d" % (i % 7), "record %d has key %r" % (i, r.key))
                check((r.partition, r.offset) == sent[i],
                      "record %d read at %d@%d, produced at %r" % (i, r.partition, r.offset, sent[i]))
                got[i] = r
    assigned = sorted(tp.partition for tp in consumer.assignment())
    check(assigned == list(range(PARTITIONS)), "assignment %r, want all %d partitions" % (assigned, PARTITIONS))
    ok("consumer group %s read all %d records once, keys and offsets as produced" % (GROUP, N))

    consumer.commit()
    ok("commit() of consumed positions")

    tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    total, ends, committed = lag(consumer, admin, tps)
    check(total == 0, "lag after commit = %d, want 0 (end %r, committed %r)" % (total, ends, committed))
    for tp in tps:
        check(committed[tp].offset == per_partition[tp.partition],
              "%s committed %d, want %d" % (tp, committed[tp].offset, per_partition[tp.partition]))
    ok("committed offsets %r match end offsets: lag 0" % ({tp.partition: committed[tp].offset for tp in tps},))

    for i in range(N, N + M):
        producer.send(TOPIC, key="key-%d" % (i % 7), value="value-%03d" % i).get(timeout=15)
    total, ends, committed = lag(consumer, admin, tps)
    check(total == M, "lag after %d more records = %d (end %r, committed %r)" % (M, total, ends, committed))
    ok("after %d more records lag is %d" % (M, total))

    groups = admin.list_consumer_groups()
    check((GROUP, "consumer") in groups, "list_consumer_groups %r lacks (%s, consumer)" % (groups, GROUP))
    ok("list_consumer_groups includes %s" % GROUP)
    (info,) = admin.describe_consumer_groups([GROUP])
    check(info.error_code == 0 and info.group == GROUP, "describe_consumer_groups: %r" % (info,))
    check(info.state == "Stable" and len(info.members) == 1, "group %s state %r with %d members, want Stable with 1: %r"
          % (GROUP, info.state, len(info.members), info))
    member = info.members[0]
    check(member.client_id == "kp-consumer", "member client_id %r" % (member.client_id,))
    assigned = sorted(p for t, ps in member.member_assignment.assignment for p in ps if t == TOPIC)
    check(assigned == list(range(PARTITIONS)), "described assignment %r" % (member.member_assignment,))
    ok("describe_consumer_groups: Stable, member %s owns partitions %r" % (member.client_id, assigned))

    consumer.close(autocommit=False)
    producer.close(timeout=10)
    poll_until("group %s to become empty after close" % GROUP,
               lambda: admin.describe_consumer_groups([GROUP])[0].state == "Empty")
    ok("consumer close left the group: state Empty")

    admin.delete_topics([TOPIC], timeout_ms=10000)
    poll_until("%s to disappear from list_topics" % TOPIC, lambda: TOPIC not in admin.list_topics())
    ok("delete_topics removed %s" % TOPIC)
    admin.close()
    print("PASS", flush=True)


if __name__ == "__main__":
    run(main)
