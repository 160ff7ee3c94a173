#!/usr/bin/python3
"""A RabbitMQ tutorial-style monitor against a Sluice broker.

Usage: pika_rates_monitor.py AMQP_HOST:PORT HTTP_HOST:PORT

pika publishes 100 msg/s with publisher confirms to a queue and a second
pika connection consumes it with manual acks, while the monitor reads the
rates from the management API over HTTP, as the monitoring scripts in
RabbitMQ tutorials and runbooks do (with the standard library's urllib
where they use requests): /api/overview message_stats.publish_details.rate
and /api/queues/%2F/<queue> deliver_get and ack rates. It passes once
every rate is within 20% of what the publisher achieves; it fails if that
does not happen within its deadline. Run by test/python_test.go.
"""

import base64
import json
import sys
import threading
import time
import urllib.request

import pika

from common import check, fail, ok, run

QUEUE = "monitored"
RATE = 100
DEADLINE = time.monotonic() + 45


def connect(addr):
    host, port = addr.rsplit(":", 1)
    return pika.BlockingConnection(pika.ConnectionParameters(
        host=host, port=int(port), credentials=pika.PlainCredentials("guest", "guest"),
        socket_timeout=10, blocked_connection_timeout=10, stack_timeout=15, connection_attempts=1))


class Api:
    def __init__(self, addr):
        self.base = "http://" + addr
        self.auth = "Basic " + base64.b64encode(b"guest:guest").decode()

    def get(self, path):
        req = urllib.request.Request(self.base + path, headers={"Authorization": self.auth})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)


def publisher(addr, stop, counts):
    conn = connect(addr)
    ch = conn.channel()
    ch.confirm_delivery()
    start = time.monotonic()
    i = 0
    while not stop.is_set():
        due = start + i / RATE
        now = time.monotonic()
        if due > now:
            conn.sleep(due - now)
        ch.basic_publish("", QUEUE, b"tick %d" % i)  # returns once confirmed
        i += 1
        counts["published"] = i
        counts["elapsed"] = time.monotonic() - start
    conn.close()


def consumer(addr, stop, counts):
    conn = connect(addr)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=50)

    def on_message(ch, method, props, body):
        ch.basic_ack(method.delivery_tag)
        counts["acked"] = counts.get("acked", 0) + 1

    ch.basic_consume(QUEUE, on_message)
    while not stop.is_set():
        conn.process_data_events(time_limit=0.2)
    conn.close()


def rate(obj, path):
    for k in path.split("."):
        if not isinstance(obj, dict) or k not in obj:
            return None
        obj = obj[k]
    return obj


def main():
    amqp_addr, http_addr = sys.argv[1], sys.argv[2]
    conn = connect(amqp_addr)
    conn.channel().queue_declare(QUEUE, durable=True)
    conn.close()
    api = Api(http_addr)

    stop = threading.Event()
    counts = {}
    threads = [threading.Thread(target=publisher, args=(amqp_addr, stop, counts), daemon=True),
               threading.Thread(target=consumer, args=(amqp_addr, stop, counts), daemon=True)]
    for t in threads:
        t.start()
    try:
        last = None
        while time.monotonic() < DEADLINE:
            time.sleep(1)
            elapsed = counts.get("elapsed", 0)
            if elapsed < 1:
                continue
            achieved = counts["published"] / elapsed
            ov = api.get("/api/overview")
            q = api.get("/api/queues/%2F/" + QUEUE)
            got = {
                "overview publish": rate(ov, "message_stats.publish_details.rate"),
                "overview deliver_get": rate(ov, "message_stats.deliver_get_details.rate"),
                "queue publish": rate(q, "message_stats.publish_details.rate"),
                "queue deliver_get": rate(q, "message_stats.deliver_get_details.rate"),
                "queue ack": rate(q, "message_stats.ack_details.rate"),
            }
            last = "publisher %.1f/s; %s" % (achieved, ", ".join("%s %s" % kv for kv in got.items()))
            if all(isinstance(v, (int, float)) and v > 0 and abs(v - achieved) <= 0.2 * achieved for v in got.values()):
                ok("rates read over HTTP match the load: " + last)
                check(abs(achieved - RATE) <= 0.2 * RATE, "the publisher kept its pace: %.1f/s" % achieved)
                check(q.get("memory", 0) > 0, "the queue reports its memory: %r" % q.get("memory"))
                ok("queue memory %d bytes" % q["memory"])
                return
        fail("rates never matched the load within the deadline; last: %s" % last)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)


if __name__ == "__main__":
    run(main)
