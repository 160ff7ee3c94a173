#!/usr/bin/python3
"""kafka-python (2.0.x) and confluent-kafka with SASL against a Sluice broker.

Usage: sasl_clients.py BOOTSTRAP (host:port) [CA_FILE]

With CA_FILE the bootstrap address is a TLS listener and every client runs
SASL_SSL, trusting that CA; without it, SASL_PLAINTEXT.

The broker requires SASL (--kafka-anonymous=none) and has the user
"py" with password "py-secret" (made by the Go test through the management
API). For each client and each mechanism, PLAIN and SCRAM-SHA-512: produce
records and consume them back; then log in with a wrong password and with an
unknown user, which must fail. kafka-python 2.0 sends SaslHandshake v0 and
then bare SASL tokens; confluent-kafka (librdkafka) SaslHandshake v1 and
SaslAuthenticate.
"""

import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError as KPError

from common import check, fail, ok, run, script_deadline

BOOTSTRAP = sys.argv[1]
CA = sys.argv[2] if len(sys.argv) > 2 else None
PROTOCOL = "SASL_SSL" if CA else "SASL_PLAINTEXT"
USER, PASSWORD = "py", "py-secret"
N = 10
remaining = script_deadline(100)


def kp_conf(mech, user, password):
    conf = dict(bootstrap_servers=BOOTSTRAP, security_protocol=PROTOCOL, sasl_mechanism=mech,
                sasl_plain_username=user, sasl_plain_password=password, api_version_auto_timeout_ms=5000,
                request_timeout_ms=10000)
    if CA:
        conf.update(ssl_cafile=CA, ssl_check_hostname=True)
    return conf


def kafka_python(mech):
    topic = "kp-%s-%s" % (PROTOCOL.lower(), mech.lower())
    p = KafkaProducer(**kp_conf(mech, USER, PASSWORD))
    for i in range(N):
        p.send(topic, value=b"%s-%d" % (topic.encode(), i)).get(timeout=remaining(10))
    p.close()
    c = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=int(remaining(15) * 1000),
                      **kp_conf(mech, USER, PASSWORD))
    got = []
    for msg in c:
        got.append(msg.value)
        if len(got) == N:
            break
    c.close()
    check(got == [b"%s-%d" % (topic.encode(), i) for i in range(N)], "kafka-python %s: consumed %r" % (mech, got))
    ok("kafka-python %s: produced and consumed %d records" % (mech, N))
    for user, password in (("py", "wrong"), ("nobody", PASSWORD)):
        try:
            conf = kp_conf(mech, user, password)
            conf["api_version_auto_timeout_ms"] = 2000  # the broker closes; no need to wait long
            p = KafkaProducer(**conf)
            p.send(topic, value=b"x").get(timeout=remaining(5))
        except KPError as e:
            ok("kafka-python %s as %s/%s refused: %s" % (mech, user, password, type(e).__name__))
        else:
            fail("kafka-python %s as %s/%s was let in" % (mech, user, password))


def ck_conf(mech, user, password, **kw):
    conf = {"bootstrap.servers": BOOTSTRAP, "security.protocol": PROTOCOL, "sasl.mechanisms": mech,
            "sasl.username": user, "sasl.password": password}
    if CA:
        conf["ssl.ca.location"] = CA
    conf.update(kw)
    return conf


def confluent(mech):
    topic = "ck-%s-%s" % (PROTOCOL.lower(), mech.lower())
    p = Producer(ck_conf(mech, USER, PASSWORD))
    errs = []
    for i in range(N):
        p.produce(topic, value=b"%s-%d" % (topic.encode(), i), on_delivery=lambda err, m: err and errs.append(err))
    check(p.flush(remaining(15)) == 0, "confluent %s: records not delivered" % mech)
    check(not errs, "confluent %s: delivery errors %r" % (mech, errs))
    c = Consumer(ck_conf(mech, USER, PASSWORD, **{"group.id": "ck-" + mech, "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    got = []
    while len(got) < N:
        m = c.poll(remaining(1))
        if m is None:
            continue
        check(not m.error(), "confluent %s: consume error %s" % (mech, m.error()))
        got.append(m.value())
    c.close()
    check(got == [b"%s-%d" % (topic.encode(), i) for i in range(N)], "confluent %s: consumed %r" % (mech, got))
    ok("confluent-kafka %s: produced and consumed %d records" % (mech, N))
    for user, password in (("py", "wrong"), ("nobody", PASSWORD)):
        seen = []
        a = AdminClient(ck_conf(mech, user, password, error_cb=lambda e: seen.append(e)))
        end = time.monotonic() + remaining(10)
        while not any(e.code() == KafkaError._AUTHENTICATION for e in seen) and time.monotonic() < end:
            a.poll(0.1)  # connects in the background; error_cb is served by poll
        try:
            a.list_topics(timeout=0.5)
        except KafkaException:
            pass
        else:
            fail("confluent %s as %s/%s listed topics" % (mech, user, password))
        auth = [e for e in seen if e.code() == KafkaError._AUTHENTICATION]
        check(auth and "Authentication failed" in auth[0].str(),
              "confluent %s as %s/%s: errors %r, want an authentication error from the broker" % (mech, user, password, [e.str() for e in seen]))
        ok("confluent-kafka %s as %s/%s refused: %s" % (mech, user, password, auth[0].str()))


def main():
    for mech in ("PLAIN", "SCRAM-SHA-512"):
        kafka_python(mech)
        confluent(mech)


run(main)
