#!/usr/bin/python3
"""confluent-kafka (librdkafka) and kafka-python as a SASL PLAIN user
limited by its permission in the Kafka vhost (configure, write and read
^orders\\.): allowed on orders.*, refused with Kafka's authorization codes
elsewhere, and topics it may not describe are never listed to it.

Usage: authz_sasl.py BOOTSTRAP USER PASSWORD
The broker has topics orders.eu and payments (run from
test/kafka_acl_test.go, TestKafkaAuthorizationMatrix).
"""

import sys

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
import kafka
import kafka.errors

from common import check, ok, run, script_deadline


def main():
    bootstrap, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
    remaining = script_deadline(60)
    conf = {
        "bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": password,
    }

    # confluent-kafka: metadata lists only what the user may describe.
    admin = AdminClient(conf)
    md = admin.list_topics(timeout=remaining(20))
    names = sorted(t for t in md.topics if md.topics[t].error is None)
    check(names == ["orders.eu"], "confluent-kafka lists %s, want only orders.eu" % names)
    ok("confluent-kafka: metadata lists only orders.eu")

    results = {}

    def report(err, msg):
        results[msg.topic()] = err

    p = Producer(dict(conf, **{"message.timeout.ms": 15000}))
    p.produce("orders.eu", b"allowed", callback=report)
    p.produce("payments", b"refused", callback=report)
    p.flush(remaining(30))
    check(results.get("orders.eu") is None, "produce to orders.eu: %s" % results.get("orders.eu"))
    err = results.get("payments")
    check(err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED,
          "produce to payments: %s, want TOPIC_AUTHORIZATION_FAILED" % err)
    ok("confluent-kafka: produce allowed on orders.eu, TOPIC_AUTHORIZATION_FAILED on payments")

    # kafka-python: the same user, the same answers.
    kp = dict(bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT",
              sasl_mechanism="PLAIN", sasl_plain_username=user, sasl_plain_password=password)
    consumer = kafka.KafkaConsumer(**kp)
    topics = sorted(consumer.topics())
    consumer.close()
    check(topics == ["orders.eu"], "kafka-python lists %s, want only orders.eu" % topics)
    ok("kafka-python: metadata lists only orders.eu")
    producer = kafka.KafkaProducer(max_block_ms=int(remaining(20) * 1000), **kp)
    producer.send("orders.eu", b"allowed").get(timeout=remaining(20))
    try:
        producer.send("payments", b"refused").get(timeout=remaining(20))
        check(False, "kafka-python produced to payments")
    except kafka.errors.TopicAuthorizationFailedError:
        pass
    producer.close()
    ok("kafka-python: produce allowed on orders.eu, TopicAuthorizationFailedError on payments")


run(main)
