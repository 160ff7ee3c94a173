#!/usr/bin/python3
"""pika against a Sluice broker whose dead-lettering comes from a policy.

Usage: pika_policy_dlx.py HOST:PORT

The Go test (test/policies_test.go, TestPolicyDeadLetterPika) has set a
policy giving queues named ^pol-work a dead-letter exchange 'pol-dlx' and
a dead-letter routing key 'dead'. This script declares the queue with no
arguments at all, rejects a message, and expects it in the dead-letter
queue with RabbitMQ's x-death header naming the queue and the reason.
"""

import time

import pika

from common import check, fail, ok


def main(addr):
    host, port = addr.rsplit(":", 1)
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        host=host, port=int(port), virtual_host="/",
        credentials=pika.PlainCredentials("guest", "guest"),
        socket_timeout=10, blocked_connection_timeout=10, stack_timeout=15, connection_attempts=1))
    ch = conn.channel()
    ch.confirm_delivery()
    ch.exchange_declare("pol-dlx", "direct")
    ch.queue_declare("pol-dead")
    ch.queue_bind("pol-dead", "pol-dlx", routing_key="dead")
    ch.queue_declare("pol-work")  # no x-arguments: the policy gives the DLX
    ch.basic_publish("", "pol-work", b"job-1", properties=pika.BasicProperties(message_id="m-1"))

    end = time.monotonic() + 10
    while True:
        m, _, body = ch.basic_get("pol-work", auto_ack=False)
        if m is not None:
            break
        if time.monotonic() > end:
            fail("no message in pol-work")
        time.sleep(0.05)
    check(body == b"job-1", "pol-work gave %r" % body)
    ch.basic_reject(m.delivery_tag, requeue=False)
    ok("rejected job-1 from pol-work")

    end = time.monotonic() + 10
    while True:
        m, p, body = ch.basic_get("pol-dead", auto_ack=True)
        if m is not None:
            break
        if time.monotonic() > end:
            fail("the rejected message never reached pol-dead through the policy's dead-letter exchange")
        time.sleep(0.05)
    check(body == b"job-1" and p.message_id == "m-1", "pol-dead gave %r %r" % (body, p))
    check(m.exchange == "pol-dlx" and m.routing_key == "dead",
          "dead-lettered through %r with key %r, want pol-dlx and the policy's key 'dead'" % (m.exchange, m.routing_key))
    deaths = (p.headers or {}).get("x-death") or []
    check(len(deaths) == 1, "x-death %r" % deaths)
    d = deaths[0]
    check(d.get("queue") == "pol-work" and d.get("reason") == "rejected" and d.get("count") == 1,
          "x-death entry %r, want queue pol-work, reason rejected, count 1" % d)
    ok("pol-dead got job-1 with x-death %r" % d)
    conn.close()


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 2:
        fail("usage: %s HOST:PORT" % sys.argv[0])
    main(sys.argv[1])
    ok("policy dead-lettering passed")
