#!/usr/bin/python3
"""Every Kafka topic config, set at creation by a real admin client.

Usage: topic_configs.py BOOTSTRAP (host:port) CLIENT (confluent | kafka-python)

With the client named: create a topic with every topic config Apache Kafka
4.x accepts, each at a realistic non-default value (CONFIGS); describe it and
find every value back with source DYNAMIC_TOPIC_CONFIG; produce to it
uncompressed and read the records back (recompressed to the topic's
codec, stamped with LogAppendTime, as its configs say); a topic with an
invalid value is refused with INVALID_CONFIG and a message naming the config,
and is not created. Then the broker: alter log.retention.ms on broker "1",
create a topic with no configs and find its retention.ms taken from that
broker config (source DYNAMIC_BROKER_CONFIG), and a read-only broker config
(num.partitions) refused.

Exits non-zero with a message naming the failed check; prints each check
that passed.
"""

import sys
import time

from common import check, fail, ok, run

# One realistic, non-default value for every topic config of Kafka 4.x.
CONFIGS = {
    "cleanup.policy": "compact,delete",
    "compression.gzip.level": "6",
    "compression.lz4.level": "10",
    "compression.type": "snappy",
    "compression.zstd.level": "5",
    "delete.retention.ms": "3600000",
    "file.delete.delay.ms": "30000",
    "flush.messages": "10000",
    "flush.ms": "1000",
    "follower.replication.throttled.replicas": "0:1",
    "index.interval.bytes": "8192",
    "leader.replication.throttled.replicas": "*",
    "local.retention.bytes": "-2",
    "local.retention.ms": "86400000",
    "max.compaction.lag.ms": "604800000",
    "max.message.bytes": "2097152",
    "message.downconversion.enable": "false",
    "message.timestamp.after.max.ms": "60000",
    "message.timestamp.before.max.ms": "86400000",
    "message.timestamp.type": "LogAppendTime",
    "min.cleanable.dirty.ratio": "0.25",
    "min.compaction.lag.ms": "60000",
    "min.insync.replicas": "2",
    "preallocate": "true",
    "remote.log.copy.disable": "true",
    "remote.log.delete.on.disable": "true",
    "remote.storage.enable": "false",
    "retention.bytes": "1073741824",
    "retention.ms": "172800000",
    "segment.bytes": "536870912",
    "segment.index.bytes": "5242880",
    "segment.jitter.ms": "1000",
    "segment.ms": "3600000",
    "unclean.leader.election.enable": "true",
}

DYNAMIC_TOPIC_CONFIG = 1
DYNAMIC_BROKER_CONFIG = 2
INVALID_CONFIG = 40
INVALID_REQUEST = 42


class Confluent:
    ordered_synonyms = False
    codec = "snappy"  # written Xerial-framed by the broker

    def __init__(self, bootstrap):
        from confluent_kafka.admin import AdminClient
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def create(self, name, configs):
        """Returns (error code, message) of creating name; (0, None) on success."""
        from confluent_kafka.admin import NewTopic
        f = self.admin.create_topics([NewTopic(name, 1, 1, config=configs)])[name]
        try:
            f.result(timeout=15)
            return 0, None
        except Exception as e:
            err = e.args[0]
            return err.code(), err.str()

    def describe(self, rtype, name):
        """{config: (value, source, [synonym sources])} of a resource."""
        from confluent_kafka.admin import ConfigResource
        res = ConfigResource(rtype, name)
        entries = self.admin.describe_configs([res])[res].result(timeout=15)
        return {k: (e.value, int(e.source), [int(s.source) for s in e.synonyms.values()]) for k, e in entries.items()}

    def describe_topic(self, name):
        return self.describe("topic", name)

    def alter_broker(self, configs):
        from confluent_kafka.admin import ConfigResource
        res = ConfigResource("broker", "1", set_config=configs)
        try:
            self.admin.alter_configs([res])[res].result(timeout=15)
            return 0
        except Exception as e:
            return e.args[0].code()

    def topics(self):
        return set(self.admin.list_topics(timeout=15).topics)

    def produce_consume(self, topic, values):
        """Produces values, reads them back: [(value, timestamp type, ts ms)]."""
        from confluent_kafka import Consumer, Producer
        p = Producer({"bootstrap.servers": self.bootstrap, "compression.type": "none"})
        for v in values:
            p.produce(topic, v.encode())
        check(p.flush(15) == 0, "produce to %s: messages left unsent" % topic)
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "g-" + topic, "auto.offset.reset": "earliest"})
        c.subscribe([topic])
        out, end = [], time.monotonic() + 20
        while len(out) < len(values) and time.monotonic() < end:
            m = c.poll(1.0)
            if m is None:
                continue
            check(not m.error(), "consume %s: %s" % (topic, m.error()))
            typ, ts = m.timestamp()
            out.append((m.value().decode(), {2: "LogAppendTime", 1: "CreateTime"}.get(typ, typ), ts))
        c.close()
        return out


class KafkaPython:
    ordered_synonyms = True
    codec = "gzip"  # Debian's kafka-python reads snappy only with python3-snappy

    def __init__(self, bootstrap):
        from kafka import KafkaAdminClient
        self.bootstrap = bootstrap
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)

    def create(self, name, configs):
        from kafka.admin import NewTopic
        from kafka.errors import KafkaError
        try:
            resp = self.admin.create_topics([NewTopic(name, 1, 1, topic_configs=configs)])
        except KafkaError as e:
            return e.errno, str(e)
        for t in resp.topic_errors:  # (name, code, message) from v1
            if t[1]:
                return t[1], t[2]
        return 0, None

    def describe(self, rtype, name):
        from kafka.admin import ConfigResource, ConfigResourceType
        typ = {"topic": ConfigResourceType.TOPIC, "broker": ConfigResourceType.BROKER}[rtype]
        resp = self.admin.describe_configs([ConfigResource(typ, name)], include_synonyms=True)[0]
        (code, msg, _, _, entries), = resp.resources
        check(code == 0, "describe %s %s: error %d %s" % (rtype, name, code, msg))
        # v1+ entries: name, value, read_only, source, is_sensitive, synonyms
        return {e[0]: (e[1], e[3], [s[2] for s in e[5]]) for e in entries}

    def describe_topic(self, name):
        return self.describe("topic", name)

    def alter_broker(self, configs):
        from kafka.admin import ConfigResource, ConfigResourceType
        resp = self.admin.alter_configs([ConfigResource(ConfigResourceType.BROKER, "1", configs=configs)])
        (code, _msg, _, _), = resp.resources
        return code

    def topics(self):
        return set(self.admin.list_topics())

    def produce_consume(self, topic, values):
        """Produces values, reads them back: [(value, timestamp type, ts ms)];
        the produce answers' timestamps must be the broker's append times."""
        from kafka import KafkaConsumer, KafkaProducer
        p = KafkaProducer(bootstrap_servers=self.bootstrap)
        for v in values:
            md = p.send(topic, v.encode(), timestamp_ms=978307200000).get(timeout=15)
            check(md.timestamp > 978307200000, "produce answer timestamp %d: not the LogAppendTime" % md.timestamp)
        p.close()
        c = KafkaConsumer(topic, bootstrap_servers=self.bootstrap, group_id="g-" + topic,
                          auto_offset_reset="earliest", consumer_timeout_ms=20000)
        out = []
        for m in c:
            out.append((m.value.decode(), {1: "LogAppendTime", 0: "CreateTime"}.get(m.timestamp_type), m.timestamp))
            if len(out) == len(values):
                break
        c.close()
        return out


def main():
    bootstrap, which = sys.argv[1], sys.argv[2]
    client = {"confluent": Confluent, "kafka-python": KafkaPython}[which](bootstrap)
    topic = "every-config-" + which
    CONFIGS["compression.type"] = client.codec

    code, msg = client.create(topic, CONFIGS)
    check(code == 0, "create %s with %d configs: error %s %s" % (topic, len(CONFIGS), code, msg))
    ok("created %s with all %d topic configs" % (topic, len(CONFIGS)))

    described = client.describe_topic(topic)
    for k, v in sorted(CONFIGS.items()):
        check(k in described, "describe: %s missing" % k)
        value, source, synonyms = described[k]
        check(value == v, "describe: %s = %r, want %r" % (k, value, v))
        check(source == DYNAMIC_TOPIC_CONFIG, "describe: %s source %d, want DYNAMIC_TOPIC_CONFIG" % (k, source))
        # confluent-kafka keeps synonyms in a dict by name, so a broker
        # synonym of the same name (compression.type) hides the topic's.
        check(synonyms and (synonyms[0] == DYNAMIC_TOPIC_CONFIG or not client.ordered_synonyms),
              "describe: %s synonyms %r" % (k, synonyms))
    ok("every config described back with source DYNAMIC_TOPIC_CONFIG")

    # The topic stores its codec (recompressed by the broker), stamped
    # with LogAppendTime: the client reads both back.
    values = ["v%d-%s" % (i, "x" * 200) for i in range(5)]
    before = int(time.time() * 1000) - 1000
    got = client.produce_consume(topic, values)
    check([g[0] for g in got] == values, "read back %r" % [g[0][:4] for g in got])
    for v, typ, ts in got:
        check(typ == "LogAppendTime" and before <= ts <= int(time.time() * 1000) + 1000,
              "record %s: timestamp %s %d, want a LogAppendTime of now" % (v[:3], typ, ts))
    ok("records read back from the recompressed topic, stamped LogAppendTime")

    for k, bad in [("compression.type", "brotli"), ("min.cleanable.dirty.ratio", "1.5"),
                   ("retention.ms", "-5"), ("preallocate", "maybe"), ("no.such.config", "1")]:
        name = "bad-config-" + which
        code, msg = client.create(name, {k: bad})
        check(code == INVALID_CONFIG, "create with %s=%s: error %s %s, want INVALID_CONFIG" % (k, bad, code, msg))
        check(msg is None or k in msg, "create with %s=%s: message %r does not name the config" % (k, bad, msg))
        check(name not in client.topics(), "topic with %s=%s was created" % (k, bad))
    ok("invalid values refused with INVALID_CONFIG")

    code = client.alter_broker({"log.retention.ms": "7200000"})
    check(code == 0, "alter broker log.retention.ms: error %d" % code)
    plain = "broker-default-" + which
    code, msg = client.create(plain, {})
    check(code == 0, "create %s: error %s %s" % (plain, code, msg))
    value, source, synonyms = client.describe_topic(plain)["retention.ms"]
    check(value == "7200000" and source == DYNAMIC_BROKER_CONFIG,
          "retention.ms of a topic without its own: %r source %d, want the broker's 7200000 DYNAMIC_BROKER_CONFIG" % (value, source))
    check(synonyms[0] == DYNAMIC_BROKER_CONFIG or not client.ordered_synonyms, "retention.ms synonyms %r do not start with the broker's" % synonyms)
    value, source, _ = client.describe("broker", "1")["log.retention.ms"]
    check(value == "7200000" and source == DYNAMIC_BROKER_CONFIG, "broker log.retention.ms %r source %d" % (value, source))
    check(client.describe_topic(topic)["retention.ms"][0] == CONFIGS["retention.ms"], "a topic's own retention.ms lost to the broker's")
    ok("broker log.retention.ms altered and inherited by a topic without its own")

    code = client.alter_broker({"num.partitions": "7"})
    check(code == INVALID_REQUEST, "alter read-only num.partitions: error %d, want INVALID_REQUEST" % code)
    ok("read-only broker config refused")


if __name__ == "__main__":
    run(main)
