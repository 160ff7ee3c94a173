#!/usr/bin/python3
"""pika (1.2.x, BlockingConnection): where Sluice follows RabbitMQ rather
than the AMQP 0-9-1 specification, as pika expects it.

Usage: pika_compat.py SCENARIO HOST:PORT

Run by test/amqp_client_compat_test.go. Exits non-zero with a message
naming the failed check; prints each check that passed.
"""

import logging
import sys
import time

import pika
from pika.exceptions import ConnectionClosedByBroker

from common import check, fail, ok, run

DEADLINE = time.monotonic() + 80  # the whole script, so the Go test never waits on a hang


def connect(addr):
    host, port = addr.rsplit(":", 1)
    params = pika.ConnectionParameters(
        host=host, port=int(port), virtual_host="/",
        credentials=pika.PlainCredentials("guest", "guest"),
        socket_timeout=10, stack_timeout=15, connection_attempts=1)
    return pika.BlockingConnection(params)


def scenario_flow(addr):
    """channel.flow: active=True is answered flow-ok (pika returns True),
    active=False closes the connection with 540 NOT_IMPLEMENTED, as
    RabbitMQ answers it."""
    conn = connect(addr)
    ch = conn.channel()
    check(ch.flow(True) is True, "channel.flow(active=True) did not return True")
    ok("channel.flow(active=True) answered flow-ok active=True")
    try:
        ch.flow(False)
    except ConnectionClosedByBroker as e:
        check(e.reply_code == 540, "channel.flow(active=False): connection closed with %d %r, want 540" % (e.reply_code, e.reply_text))
        check("active=false" in e.reply_text, "540 reply text %r does not name active=false" % e.reply_text)
        check(not conn.is_open, "connection still open after 540")
        ok("channel.flow(active=False): connection closed %d %s" % (e.reply_code, e.reply_text))
    else:
        fail("channel.flow(active=False) succeeded, want 540 NOT_IMPLEMENTED")
    conn2 = connect(addr)
    conn2.channel().queue_declare("", exclusive=True)
    conn2.close()
    ok("a new connection works after the 540")


class Problems(logging.Handler):
    """Collects what pika logs at WARNING and above: a reset on an orderly
    close is logged there, not raised."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def scenario_close_many(addr):
    """200 connections opened, used and closed: every close is orderly,
    pika never sees the server reset the connection."""
    problems = Problems()
    logging.getLogger("pika").addHandler(problems)
    logging.getLogger("pika").setLevel(logging.WARNING)
    for i in range(200):
        if time.monotonic() > DEADLINE:
            fail("script deadline passed at connection %d" % i)
        conn = connect(addr)
        ch = conn.channel()
        ch.queue_declare("", exclusive=True)
        conn.close()
        check(conn.is_closed, "connection %d not closed after close()" % i)
        resets = [m for m in problems.records if "reset" in m.lower() or "104" in m]
        check(not resets, "connection %d: pika logged a reset on an orderly close: %s" % (i, resets))
    check(not problems.records, "pika logged problems on orderly closes: %s" % problems.records[:5])
    ok("200 connections closed, no reset and no warning from pika")


SCENARIOS = {
    "flow": scenario_flow,
    "close_many": scenario_close_many,
}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SCENARIOS:
        fail("usage: %s SCENARIO HOST:PORT, SCENARIO one of %s" % (sys.argv[0], ", ".join(SCENARIOS)))
    SCENARIOS[sys.argv[1]](sys.argv[2])
    ok("scenario %s passed" % sys.argv[1])


if __name__ == "__main__":
    run(main)
