#!/usr/bin/python3
"""pika (1.2.x, BlockingConnection) against a Sluice broker's AMQP 0-9-1 port.

Usage: pika_scenarios.py SCENARIO HOST:PORT
       pika_scenarios.py --list

Each scenario is one function below (see SCENARIOS at the end); the Go
test test/amqp_python_test.go runs each as its own subtest against a fresh
broker. The expected behaviour is RabbitMQ's (3.x, classic queues, with the
delayed-message plugin for the delayed scenario).

Exits non-zero with a message naming the failed check; prints each check
that passed.
"""

import sys
import time

import pika
from pika.exceptions import ChannelClosedByBroker, NackError, UnroutableError

from common import check, fail, ok, run

DEADLINE = time.monotonic() + 50  # the whole script, so the Go test never waits on a hang


# --- helpers -----------------------------------------------------------------

def connect(addr):
    host, port = addr.rsplit(":", 1)
    params = pika.ConnectionParameters(
        host=host, port=int(port), virtual_host="/",
        credentials=pika.PlainCredentials("guest", "guest"),
        socket_timeout=10, blocked_connection_timeout=10,
        stack_timeout=15, connection_attempts=1)
    return pika.BlockingConnection(params)


def remaining(limit):
    left = min(limit, DEADLINE - time.monotonic())
    if left <= 0:
        fail("script deadline passed")
    return left


def get(ch, queue, auto_ack=True):
    """One basic.get; returns (method, properties, body) or None when empty."""
    m, p, b = ch.basic_get(queue, auto_ack=auto_ack)
    if m is None:
        return None
    return m, p, b


def wait_get(ch, queue, what, timeout=5.0, auto_ack=True):
    """Polls basic.get until a message is there; fails with what after timeout."""
    end = time.monotonic() + remaining(timeout)
    while True:
        r = get(ch, queue, auto_ack=auto_ack)
        if r is not None:
            return r
        if time.monotonic() > end:
            fail("timed out after %.1fs waiting for %s (queue %s still empty)" % (timeout, what, queue))
        ch.connection.sleep(0.02)


def expect_empty(ch, queue, what):
    r = get(ch, queue)
    check(r is None, "%s: queue %s should be empty but basic.get returned body %r (method %r)"
          % (what, queue, r and r[2], r and r[0]))


def drain(ch, queue):
    """Bodies of every message now in queue, in basic.get order (auto-ack)."""
    out = []
    while True:
        r = get(ch, queue)
        if r is None:
            return out
        out.append(r[2])


def expect_bodies(ch, queue, want, what):
    got = drain(ch, queue)
    check(got == want, "%s: queue %s holds %r, want %r" % (what, queue, got, want))
    ok("%s: %s holds %r" % (what, queue, want))


def count(ch, queue):
    return ch.queue_declare(queue, passive=True).method.message_count


def confirmed_channel(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    return ch


def expect_closed(conn, code, what, fn):
    """Runs fn(ch) on a new channel; it must close the channel with code."""
    ch = conn.channel()
    try:
        fn(ch)
    except ChannelClosedByBroker as e:
        check(e.reply_code == code, "%s: channel closed with %d %r, want %d" % (what, e.reply_code, e.reply_text, code))
        check(not ch.is_open, "%s: channel still open after ChannelClosedByBroker" % what)
        ok("%s: channel closed %d %s" % (what, e.reply_code, e.reply_text))
        return e
    fail("%s: succeeded, want channel.close %d" % (what, code))


def header_text(v):
    return v.decode() if isinstance(v, bytes) else v


def declare_dlq(ch, name):
    """A dead-letter exchange dlx-<name> (direct) and queue dlq-<name> bound with key 'dead'."""
    ch.exchange_declare("dlx-" + name, "direct")
    ch.queue_declare("dlq-" + name)
    ch.queue_bind("dlq-" + name, "dlx-" + name, routing_key="dead")
    return "dlx-" + name, "dlq-" + name


def check_death(props, what, reason, queue, exchange, routing_keys, dlx, got_method, want_count=1):
    """Checks the x-death header of a dead-lettered message as RabbitMQ writes it."""
    h = props.headers or {}
    deaths = h.get("x-death")
    check(isinstance(deaths, list) and deaths, "%s: x-death header is %r, want a non-empty list (headers %r)" % (what, deaths, h))
    d = deaths[0]
    check(isinstance(d, dict), "%s: x-death[0] is %r, want a table" % (what, d))
    checks = {
        "reason": reason, "queue": queue, "exchange": exchange,
    }
    for k, want in checks.items():
        check(header_text(d.get(k)) == want, "%s: x-death[0][%r] = %r, want %r (entry %r)" % (what, k, d.get(k), want, d))
    check(d.get("count") == want_count, "%s: x-death[0]['count'] = %r, want %d (entry %r)" % (what, d.get("count"), want_count, d))
    rks = [header_text(k) for k in (d.get("routing-keys") or [])]
    check(rks == routing_keys, "%s: x-death[0]['routing-keys'] = %r, want %r" % (what, d.get("routing-keys"), routing_keys))
    check("time" in d, "%s: x-death[0] has no 'time' (entry %r)" % (what, d))
    check(header_text(h.get("x-first-death-reason")) == reason,
          "%s: x-first-death-reason = %r, want %r" % (what, h.get("x-first-death-reason"), reason))
    check(header_text(h.get("x-first-death-queue")) == queue,
          "%s: x-first-death-queue = %r, want %r" % (what, h.get("x-first-death-queue"), queue))
    check(header_text(h.get("x-first-death-exchange")) == exchange,
          "%s: x-first-death-exchange = %r, want %r" % (what, h.get("x-first-death-exchange"), exchange))
    check(got_method.exchange == dlx, "%s: delivered from exchange %r, want the DLX %r" % (what, got_method.exchange, dlx))
    ok("%s: x-death[0] = %r" % (what, d))


# --- exchanges -----------------------------------------------------------------

def scenario_direct(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    ch.exchange_declare("logs-direct", "direct")
    for q in ("d-info", "d-error", "d-all"):
        ch.queue_declare(q)
    ch.queue_bind("d-info", "logs-direct", routing_key="info")
    ch.queue_bind("d-error", "logs-direct", routing_key="error")
    for k in ("info", "warn", "error"):
        ch.queue_bind("d-all", "logs-direct", routing_key=k)
    ch.queue_bind("d-all", "logs-direct", routing_key="info")  # a repeated binding is one binding
    for k in ("info", "warn", "error", "debug"):
        ch.basic_publish("logs-direct", k, ("m-" + k).encode())
    expect_bodies(ch, "d-info", [b"m-info"], "direct key info")
    expect_bodies(ch, "d-error", [b"m-error"], "direct key error")
    expect_bodies(ch, "d-all", [b"m-info", b"m-warn", b"m-error"], "direct three keys, one delivery each")

    # The default exchange routes by queue name.
    ch.basic_publish("", "d-info", b"via-default")
    r = wait_get(ch, "d-info", "a message through the default exchange")
    check(r[2] == b"via-default" and r[0].exchange == "" and r[0].routing_key == "d-info",
          "default exchange: got %r via exchange %r key %r" % (r[2], r[0].exchange, r[0].routing_key))
    ok("default exchange routes by queue name")

    ch.queue_unbind("d-all", "logs-direct", routing_key="warn")
    ch.basic_publish("logs-direct", "warn", b"after-unbind")
    expect_empty(ch, "d-all", "after queue.unbind warn")
    ok("queue.unbind stops routing")
    conn.close()


def scenario_fanout(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    ch.exchange_declare("logs-fanout", "fanout")
    for q in ("f-1", "f-2", "f-3"):
        ch.queue_declare(q)
    ch.queue_bind("f-1", "logs-fanout")
    ch.queue_bind("f-2", "logs-fanout", routing_key="ignored")
    for i, k in enumerate(("", "x", "y.z")):
        ch.basic_publish("logs-fanout", k, b"fan-%d" % i,
                         properties=pika.BasicProperties(content_type="text/plain", headers={"i": i}))
    for q in ("f-1", "f-2"):
        for i, k in enumerate(("", "x", "y.z")):
            m, p, body = wait_get(ch, q, "fanout message %d on %s" % (i, q))
            check(body == b"fan-%d" % i and m.routing_key == k and m.exchange == "logs-fanout",
                  "%s: got %r key %r exchange %r, want fan-%d key %r" % (q, body, m.routing_key, m.exchange, i, k))
            check(p.content_type == "text/plain" and p.headers == {"i": i},
                  "%s: properties %r" % (q, p))
        expect_empty(ch, q, "fanout after 3 messages")
    expect_empty(ch, "f-3", "unbound queue")
    ok("fanout copies every message to every bound queue, whatever the key")
    conn.close()


def scenario_topic(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    ch.exchange_declare("t-animals", "topic")
    for q in ("t-q1", "t-q2", "t-all"):
        ch.queue_declare(q)
    ch.queue_bind("t-q1", "t-animals", routing_key="*.orange.*")
    ch.queue_bind("t-q2", "t-animals", routing_key="*.*.rabbit")
    ch.queue_bind("t-q2", "t-animals", routing_key="lazy.#")
    ch.queue_bind("t-all", "t-animals", routing_key="#")
    keys = {
        "quick.orange.rabbit": ("t-q1", "t-q2"),
        "lazy.orange.elephant": ("t-q1", "t-q2"),
        "quick.orange.fox": ("t-q1",),
        "lazy.brown.fox": ("t-q2",),
        "lazy.pink.rabbit": ("t-q2",),  # matches two of t-q2's bindings: delivered once
        "quick.brown.fox": (),
        "orange": (),
        "quick.orange.male.rabbit": (),
        "lazy.orange.male.rabbit": ("t-q2",),
        "lazy": ("t-q2",),  # '#' matches zero words
        "": (),
    }
    for k in keys:
        ch.basic_publish("t-animals", k, k.encode() or b"<empty>")
    for q in ("t-q1", "t-q2"):
        want = [k.encode() for k, qs in keys.items() if q in qs]
        expect_bodies(ch, q, want, "topic bindings of " + q)
    expect_bodies(ch, "t-all", [k.encode() or b"<empty>" for k in keys], "topic '#' gets every key")
    conn.close()


def scenario_headers(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    ch.exchange_declare("h-match", "headers")
    for q in ("h-all", "h-any", "h-empty"):
        ch.queue_declare(q)
    ch.queue_bind("h-all", "h-match", arguments={"x-match": "all", "format": "pdf", "type": "report"})
    ch.queue_bind("h-any", "h-match", arguments={"x-match": "any", "format": "pdf", "type": "report"})
    ch.queue_bind("h-empty", "h-match", arguments={"x-match": "all"})  # matches everything
    msgs = [
        ("both", {"format": "pdf", "type": "report"}, ("h-all", "h-any")),
        ("both+extra", {"format": "pdf", "type": "report", "size": 10}, ("h-all", "h-any")),
        ("format-only", {"format": "pdf"}, ("h-any",)),
        ("type-only", {"type": "report"}, ("h-any",)),
        ("one-wrong", {"format": "zip", "type": "report"}, ("h-any",)),
        ("both-wrong", {"format": "zip", "type": "log"}, ()),
        ("none", None, ()),
    ]
    for body, headers, _ in msgs:
        ch.basic_publish("h-match", "any-key-ignored", body.encode(),
                         properties=pika.BasicProperties(headers=headers))
    for q in ("h-all", "h-any"):
        want = [b.encode() for b, _, qs in msgs if q in qs]
        expect_bodies(ch, q, want, "headers x-match=%s" % q[2:])
    expect_bodies(ch, "h-empty", [b.encode() for b, _, _ in msgs], "headers x-match=all with no headers to match")
    conn.close()


def scenario_exchange_to_exchange(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    ch.exchange_declare("e2e-src", "topic")
    ch.exchange_declare("e2e-dst", "fanout")
    ch.exchange_declare("e2e-dst2", "direct")
    ch.queue_declare("e2e-q")
    ch.queue_declare("e2e-q2")
    ch.queue_bind("e2e-q", "e2e-dst")
    ch.queue_bind("e2e-q2", "e2e-dst2", routing_key="a.b")
    ch.exchange_bind(destination="e2e-dst", source="e2e-src", routing_key="a.#")
    ch.exchange_bind(destination="e2e-dst2", source="e2e-dst", routing_key="")  # chain: src -> dst -> dst2
    for k in ("a.b", "a.c.d", "b.a"):
        ch.basic_publish("e2e-src", k, k.encode())
    m, _, body = wait_get(ch, "e2e-q", "a message through an exchange-to-exchange binding")
    check(body == b"a.b" and m.exchange == "e2e-src" and m.routing_key == "a.b",
          "e2e: got %r exchange %r key %r, want a.b from e2e-src" % (body, m.exchange, m.routing_key))
    expect_bodies(ch, "e2e-q", [b"a.c.d"], "e2e rest")
    expect_bodies(ch, "e2e-q2", [b"a.b"], "e2e two hops, the original key routes at the last")
    ch.exchange_unbind(destination="e2e-dst", source="e2e-src", routing_key="a.#")
    ch.basic_publish("e2e-src", "a.b", b"after-unbind")
    expect_empty(ch, "e2e-q", "after exchange.unbind")
    ok("exchange.unbind stops routing")
    conn.close()


def scenario_alternate_exchange(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    ch.exchange_declare("ae-alt", "fanout")
    ch.exchange_declare("ae-main", "direct", arguments={"alternate-exchange": "ae-alt"})
    ch.queue_declare("ae-routed")
    ch.queue_declare("ae-unrouted")
    ch.queue_bind("ae-routed", "ae-main", routing_key="known")
    ch.queue_bind("ae-unrouted", "ae-alt")
    ch.basic_publish("ae-main", "known", b"routed")
    # Mandatory: reaching the alternate exchange counts as routed, so no
    # basic.return (pika would raise UnroutableError).
    ch.basic_publish("ae-main", "unknown", b"unrouted", mandatory=True)
    expect_bodies(ch, "ae-routed", [b"routed"], "alternate exchange: routed message")
    m, _, body = wait_get(ch, "ae-unrouted", "the unroutable message on the alternate exchange")
    check(body == b"unrouted" and m.exchange == "ae-main" and m.routing_key == "unknown",
          "AE: got %r exchange %r key %r, want 'unrouted' with its original exchange ae-main and key" % (body, m.exchange, m.routing_key))
    expect_empty(ch, "ae-unrouted", "alternate exchange after one message")
    ok("alternate exchange receives unroutable messages, mandatory publish not returned")
    # Redeclaring with a different alternate-exchange is a 406.
    expect_closed(conn, 406, "redeclare with another alternate-exchange",
                  lambda c: c.exchange_declare("ae-main", "direct", arguments={"alternate-exchange": "other"}))
    conn.close()


def scenario_predeclared_exchanges(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    for name, typ in [("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.topic", "topic"),
                      ("amq.headers", "headers"), ("amq.match", "headers")]:
        ch.exchange_declare(name, typ, passive=True)
        ch.exchange_declare(name, typ, durable=True)  # an equivalent redeclare is fine
    ok("amq.direct, amq.fanout, amq.topic, amq.headers, amq.match exist")
    for q in ("pd-direct", "pd-fanout", "pd-topic", "pd-headers", "pd-match"):
        ch.queue_declare(q)
    ch.queue_bind("pd-direct", "amq.direct", routing_key="k")
    ch.queue_bind("pd-fanout", "amq.fanout")
    ch.queue_bind("pd-topic", "amq.topic", routing_key="a.*")
    ch.queue_bind("pd-headers", "amq.headers", arguments={"x-match": "any", "h": "1"})
    ch.queue_bind("pd-match", "amq.match", arguments={"x-match": "all", "h": "1"})
    ok("queue.bind to each predeclared exchange")
    ch.basic_publish("amq.direct", "k", b"direct")
    ch.basic_publish("amq.fanout", "whatever", b"fanout")
    ch.basic_publish("amq.topic", "a.b", b"topic")
    ch.basic_publish("amq.headers", "", b"headers", properties=pika.BasicProperties(headers={"h": "1"}))
    ch.basic_publish("amq.match", "", b"match", properties=pika.BasicProperties(headers={"h": "1"}))
    for q in ("direct", "fanout", "topic", "headers", "match"):
        expect_bodies(ch, "pd-" + q, [q.encode()], "amq." + q)
    ch.exchange_declare("pd-x", "fanout")
    ch.exchange_bind(destination="pd-x", source="amq.topic", routing_key="b.#")
    ch.queue_bind("pd-fanout", "pd-x")
    ch.basic_publish("amq.topic", "b.c", b"e2e")
    expect_bodies(ch, "pd-fanout", [b"e2e"], "exchange.bind from amq.topic")
    expect_closed(conn, 403, "declare an exchange named amq.*",
                  lambda c: c.exchange_declare("amq.mine", "direct"))
    expect_closed(conn, 403, "delete a predeclared exchange",
                  lambda c: c.exchange_delete("amq.direct"))
    expect_closed(conn, 403, "bind to the default exchange",
                  lambda c: c.queue_bind("pd-direct", "", routing_key="x"))
    conn.close()


# --- publisher confirms --------------------------------------------------------

def scenario_confirms(addr):
    conn = connect(addr)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare("c-durable", durable=True)
    for i in range(20):
        ch.basic_publish("", "c-durable", b"c-%d" % i,
                         properties=pika.BasicProperties(delivery_mode=2), mandatory=True)
    ok("20 persistent mandatory publishes to a durable queue confirmed")
    check(count(ch, "c-durable") == 20, "c-durable holds %d, want 20" % count(ch, "c-durable"))
    try:
        ch.basic_publish("", "no-such-queue", b"lost", mandatory=True)
    except UnroutableError as e:
        check(len(e.messages) == 1, "UnroutableError carries %d messages, want 1" % len(e.messages))
        r = e.messages[0]
        check(r.method.reply_code == 312 and r.method.routing_key == "no-such-queue" and r.body == b"lost",
              "basic.return %r body %r, want 312 NO_ROUTE for no-such-queue" % (r.method, r.body))
        ok("mandatory publish to nowhere: UnroutableError, basic.return %d %s" % (r.method.reply_code, r.method.reply_text))
    else:
        fail("mandatory publish to a missing queue was confirmed without a basic.return (want UnroutableError)")
    # Not mandatory: unroutable is simply confirmed.
    ch.basic_publish("amq.direct", "nobody-bound", b"dropped")
    ok("non-mandatory unroutable publish confirmed")
    # The channel is still good, and the durable queue got everything in order.
    ch.basic_publish("", "c-durable", b"last", properties=pika.BasicProperties(delivery_mode=2))
    got = drain(ch, "c-durable")
    want = [b"c-%d" % i for i in range(20)] + [b"last"]
    check(got == want, "c-durable holds %r, want %r" % (got, want))
    ok("durable queue holds the 21 confirmed messages in order")
    conn.close()


# --- dead-lettering ------------------------------------------------------------

def scenario_dlx_reject(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    dlx, dlq = declare_dlq(ch, "reject")
    ch.exchange_declare("rj-src", "direct")
    ch.queue_declare("rj-work", arguments={"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dead"})
    ch.queue_bind("rj-work", "rj-src", routing_key="work")
    ch.basic_publish("rj-src", "work", b"bad-job", properties=pika.BasicProperties(
        headers={"job": 7}, content_type="application/json", message_id="m-7"))
    m, _, body = wait_get(ch, "rj-work", "the job", auto_ack=False)
    check(body == b"bad-job", "rj-work: got %r" % body)
    ch.basic_reject(m.delivery_tag, requeue=False)
    m, p, body = wait_get(ch, dlq, "the rejected message in the DLQ")
    check(body == b"bad-job", "DLQ body %r" % body)
    check(m.routing_key == "dead", "DLQ message routing key %r, want the x-dead-letter-routing-key 'dead'" % m.routing_key)
    check(p.content_type == "application/json" and p.message_id == "m-7" and (p.headers or {}).get("job") == 7,
          "dead-lettered properties not kept: %r" % p)
    check_death(p, "reject", "rejected", "rj-work", "rj-src", ["work"], dlx, m)
    check(count(ch, "rj-work") == 0, "rj-work not empty after the reject")

    # basic.nack requeue=false dead-letters too; a second death from the same
    # queue for the same reason bumps count on the same entry.
    ch.queue_declare("rj-work2", arguments={"x-dead-letter-exchange": dlx})  # no DLRK: the original keys
    ch.queue_bind("rj-work2", "rj-src", routing_key="w2")
    ch.queue_bind(dlq, dlx, routing_key="w2")
    ch.basic_publish("rj-src", "w2", b"second")
    m, _, _ = wait_get(ch, "rj-work2", "the second job", auto_ack=False)
    ch.basic_nack(m.delivery_tag, requeue=False)
    m, p, body = wait_get(ch, dlq, "the nacked message in the DLQ")
    check(body == b"second" and m.routing_key == "w2", "DLQ got %r key %r, want 'second' with its original key w2" % (body, m.routing_key))
    check_death(p, "nack", "rejected", "rj-work2", "rj-src", ["w2"], dlx, m)
    conn.close()


def scenario_ttl_queue(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    dlx, dlq = declare_dlq(ch, "ttlq")
    ch.queue_declare("ttl-q", arguments={"x-message-ttl": 200, "x-dead-letter-exchange": dlx,
                                         "x-dead-letter-routing-key": "dead"})
    t0 = time.monotonic()
    ch.basic_publish("", "ttl-q", b"short-lived")
    m, p, body = wait_get(ch, dlq, "the expired message in the DLQ", timeout=10)
    took = time.monotonic() - t0
    check(body == b"short-lived", "DLQ body %r" % body)
    check(took >= 0.15, "message dead-lettered after %.3fs, before its 200ms TTL" % took)
    check_death(p, "queue TTL", "expired", "ttl-q", "", ["ttl-q"], dlx, m)
    check(count(ch, "ttl-q") == 0, "ttl-q not empty after expiry")
    ok("expired after %.3fs" % took)
    conn.close()


def scenario_ttl_message(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    dlx, dlq = declare_dlq(ch, "ttlm")
    ch.queue_declare("ttlm-q", arguments={"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dead"})
    t0 = time.monotonic()
    ch.basic_publish("", "ttlm-q", b"per-message", properties=pika.BasicProperties(expiration="200"))
    ch.basic_publish("", "ttlm-q", b"forever")
    m, p, body = wait_get(ch, dlq, "the message with expiration=200 in the DLQ", timeout=10)
    took = time.monotonic() - t0
    check(body == b"per-message", "DLQ body %r" % body)
    check(took >= 0.15, "message dead-lettered after %.3fs, before its 200ms expiration" % took)
    check_death(p, "message expiration", "expired", "ttlm-q", "", ["ttlm-q"], dlx, m)
    d = p.headers["x-death"][0]
    check(header_text(d.get("original-expiration")) == "200",
          "x-death[0]['original-expiration'] = %r, want '200' (RabbitMQ moves the expiration there)" % d.get("original-expiration"))
    check(p.expiration is None, "dead-lettered message still has expiration %r (RabbitMQ removes it)" % p.expiration)
    expect_bodies(ch, "ttlm-q", [b"forever"], "message without expiration stays")
    # expiration=0 on a queue with a consumer-less queue: expires at once.
    ch.basic_publish("", "ttlm-q", b"zero", properties=pika.BasicProperties(expiration="0"))
    m, p, body = wait_get(ch, dlq, "the expiration=0 message in the DLQ")
    check(body == b"zero", "DLQ got %r, want 'zero'" % body)
    ok("expiration=0 expires immediately")
    conn.close()


# --- max-length ----------------------------------------------------------------

def scenario_maxlen_drop_oldest(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    ch.queue_declare("ml-q", arguments={"x-max-length": 2})
    for i in range(1, 6):
        ch.basic_publish("", "ml-q", b"m%d" % i)
    check(count(ch, "ml-q") == 2, "ml-q holds %d messages, want 2" % count(ch, "ml-q"))
    expect_bodies(ch, "ml-q", [b"m4", b"m5"], "x-max-length=2 default overflow keeps the newest")
    conn.close()


def scenario_maxlen_reject_publish(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    ch.queue_declare("mlr-q", arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
    ch.basic_publish("", "mlr-q", b"m1")
    ch.basic_publish("", "mlr-q", b"m2")
    try:
        ch.basic_publish("", "mlr-q", b"m3")
    except NackError:
        # pika's NackError lists only returned messages: none here.
        ok("publish to a full reject-publish queue: NackError")
    else:
        fail("publish to a full x-overflow=reject-publish queue was acked, want basic.nack (NackError)")
    check(ch.is_open, "channel closed after a nack")
    check(count(ch, "mlr-q") == 2, "mlr-q holds %d, want 2" % count(ch, "mlr-q"))
    expect_bodies(ch, "mlr-q", [b"m1", b"m2"], "reject-publish keeps the oldest")
    ch.basic_publish("", "mlr-q", b"m4")
    ok("room again after draining: publish acked")
    expect_bodies(ch, "mlr-q", [b"m4"], "after draining")
    conn.close()


def scenario_maxlen_drop_head_dlx(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    dlx, dlq = declare_dlq(ch, "maxlen")
    ch.queue_declare("mld-q", arguments={"x-max-length": 2, "x-overflow": "drop-head",
                                         "x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dead"})
    for i in range(1, 4):
        ch.basic_publish("", "mld-q", b"m%d" % i)
    m, p, body = wait_get(ch, dlq, "the dropped head in the DLQ")
    check(body == b"m1", "DLQ got %r, want the oldest m1" % body)
    check_death(p, "drop-head", "maxlen", "mld-q", "", ["mld-q"], dlx, m)
    expect_empty(ch, dlq, "only one message dropped")
    expect_bodies(ch, "mld-q", [b"m2", b"m3"], "drop-head keeps the newest 2")
    conn.close()


# --- basic.get, nack, recover, purge, delete, passive ----------------------------

def scenario_get_nack_recover(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    ch.queue_declare("g-q")
    check(get(ch, "g-q") is None, "basic.get on an empty queue returned a message")
    ok("basic.get on an empty queue: get-empty")
    ch.basic_publish("", "g-q", b"one")
    ch.basic_publish("", "g-q", b"two")
    m, _, body = wait_get(ch, "g-q", "the first message", auto_ack=False)
    check(body == b"one" and not m.redelivered, "first get: %r redelivered=%r" % (body, m.redelivered))
    check(m.message_count == 1, "get-ok message-count %r, want 1 (messages left)" % m.message_count)
    ch.basic_nack(m.delivery_tag, requeue=True)
    m, _, body = wait_get(ch, "g-q", "the requeued message", auto_ack=False)
    check(body == b"one" and m.redelivered, "after nack requeue: got %r redelivered=%r, want 'one' redelivered" % (body, m.redelivered))
    ok("basic.nack requeue=True: redelivered first with the redelivered flag")
    ch.basic_ack(m.delivery_tag)

    # basic.recover requeue=True: unacked deliveries to a consumer come back, redelivered.
    got = []
    for method, props, body in ch.consume("g-q", auto_ack=False, inactivity_timeout=remaining(5)):
        if method is None:
            fail("consume: nothing within 5s (got %r)" % got)
        got.append((body, method.redelivered))
        if len(got) == 1:
            check(got[0] == (b"two", False), "consume first: %r" % (got[0],))
            ch.basic_recover(requeue=True)
            ok("basic.recover requeue=True answered recover-ok")
        else:
            check(got[1] == (b"two", True), "after basic.recover: %r, want ('two', redelivered)" % (got[1],))
            ch.basic_ack(method.delivery_tag)
            break
    ch.cancel()
    ok("basic.recover: unacked message redelivered with the redelivered flag")
    expect_empty(ch, "g-q", "after ack")

    # Closing a channel requeues its unacked basic.get messages.
    ch.basic_publish("", "g-q", b"three")
    ch2 = conn.channel()
    m, _, body = wait_get(ch2, "g-q", "three", auto_ack=False)
    ch2.close()
    m, _, body = wait_get(ch, "g-q", "three again after the channel closed", auto_ack=True)
    check(body == b"three" and m.redelivered, "after channel close: %r redelivered=%r" % (body, m.redelivered))
    ok("unacked basic.get message requeued on channel close")
    conn.close()


def scenario_purge_delete(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    ch.queue_declare("p-q")
    for i in range(3):
        ch.basic_publish("", "p-q", b"p%d" % i)
    r = ch.queue_purge("p-q")
    check(r.method.message_count == 3, "queue.purge-ok message-count %r, want 3" % r.method.message_count)
    check(count(ch, "p-q") == 0, "p-q holds %d after purge" % count(ch, "p-q"))
    ok("queue.purge: purged 3")

    ch.basic_publish("", "p-q", b"keep")
    expect_closed(conn, 406, "queue.delete if_empty on a non-empty queue",
                  lambda c: c.queue_delete("p-q", if_empty=True))
    check(conn.is_open, "connection closed by a channel error")
    ch = confirmed_channel(conn)
    check(count(ch, "p-q") == 1, "p-q lost its message after the failed delete")

    consumer = conn.channel()
    consumer.basic_consume("p-q", lambda *a: None, auto_ack=False, consumer_tag="busy")
    expect_closed(conn, 406, "queue.delete if_unused on a queue with a consumer",
                  lambda c: c.queue_delete("p-q", if_unused=True))
    consumer.basic_cancel("busy")
    consumer.close()  # requeues 'keep', delivered to it unacked
    ch = confirmed_channel(conn)
    end = time.monotonic() + remaining(5)
    while count(ch, "p-q") != 1:
        check(time.monotonic() < end, "p-q: 'keep' not back in the queue 5s after its consumer's channel closed")
        conn.sleep(0.02)
    r = ch.queue_delete("p-q", if_unused=True)
    check(r.method.message_count == 1, "queue.delete-ok message-count %r, want 1" % r.method.message_count)
    ok("queue.delete if_unused after the consumer left: deleted, 1 message")
    expect_closed(conn, 404, "passive declare of the deleted queue",
                  lambda c: c.queue_declare("p-q", passive=True))
    # Deleting a missing queue is not an error in RabbitMQ 3.x.
    ch = conn.channel()
    r = ch.queue_delete("p-q")
    check(r.method.message_count == 0, "delete of a missing queue: message-count %r" % r.method.message_count)
    ok("queue.delete of a missing queue: delete-ok 0")
    conn.close()


def scenario_passive_missing(addr):
    conn = connect(addr)
    e = expect_closed(conn, 404, "passive declare of a missing queue",
                      lambda c: c.queue_declare("never-declared", passive=True))
    check("NOT_FOUND" in e.reply_text and "never-declared" in e.reply_text,
          "reply text %r, want NOT_FOUND naming the queue" % e.reply_text)
    expect_closed(conn, 404, "passive declare of a missing exchange",
                  lambda c: c.exchange_declare("never-declared-x", "direct", passive=True))
    expect_closed(conn, 404, "bind to a missing exchange",
                  lambda c: (c.queue_declare("pm-q"), c.queue_bind("pm-q", "never-declared-x")))
    expect_closed(conn, 404, "basic.get on a missing queue",
                  lambda c: c.basic_get("never-declared"))
    expect_closed(conn, 406, "redeclare a queue with a different durable flag",
                  lambda c: c.queue_declare("pm-q", durable=True))
    ch = conn.channel()
    r = ch.queue_declare("pm-q", passive=True)
    check(r.method.queue == "pm-q" and r.method.message_count == 0 and r.method.consumer_count == 0,
          "passive declare-ok %r" % r.method)
    r = ch.queue_declare("", exclusive=True)
    check(r.method.queue.startswith("amq.gen-"), "server-named queue %r, want amq.gen-..." % r.method.queue)
    ok("connection still usable; server-named queue %s" % r.method.queue)
    conn.close()


def scenario_qos_ack_reject(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    ch.queue_declare("qos-q")
    for i in range(1, 6):
        ch.basic_publish("", "qos-q", b"q%d" % i)
    ch.basic_qos(prefetch_count=2)
    got = []
    ch.basic_consume("qos-q", lambda c, m, p, b: got.append((m, b)), auto_ack=False, consumer_tag="qos-c")

    def pump(n, what):
        end = time.monotonic() + remaining(5)
        while len(got) < n:
            check(time.monotonic() < end, "%s: %d deliveries, want %d" % (what, len(got), n))
            conn.process_data_events(time_limit=0.02)
        conn.process_data_events(time_limit=0.2)  # and no more arrive
        check(len(got) == n, "%s: %d deliveries, want exactly %d (prefetch 2)" % (what, len(got), n))

    pump(2, "prefetch 2")
    check([b for _, b in got] == [b"q1", b"q2"], "first deliveries %r" % [b for _, b in got])
    ok("basic.qos prefetch_count=2: two unacked deliveries, then nothing")
    ch.basic_ack(got[1][0].delivery_tag, multiple=True)
    pump(4, "after ack multiple")
    check([b for _, b in got[2:]] == [b"q3", b"q4"], "after ack multiple: %r" % [b for _, b in got[2:]])
    ok("basic.ack multiple=True frees both slots")
    ch.basic_reject(got[2][0].delivery_tag, requeue=True)
    pump(5, "after reject requeue")
    m, body = got[4]
    check(body == b"q3" and m.redelivered, "after reject requeue: got %r redelivered=%r, want q3 redelivered" % (body, m.redelivered))
    ok("basic.reject requeue=True: redelivered first, flagged")
    ch.basic_ack(got[4][0].delivery_tag)
    ch.basic_ack(got[3][0].delivery_tag)
    pump(6, "q5")
    check(got[5][1] == b"q5" and not got[5][0].redelivered, "last delivery %r" % (got[5],))
    # Delivery tags count up per channel from 1.
    tags = [m.delivery_tag for m, _ in got]
    check(tags == [1, 2, 3, 4, 5, 6], "delivery tags %r, want 1..6" % tags)
    ch.basic_ack(got[5][0].delivery_tag)
    ch.basic_cancel("qos-c")
    check(count(ch, "qos-q") == 0, "qos-q holds %d at the end" % count(ch, "qos-q"))
    # An unknown delivery tag is a channel error 406.
    expect_closed(conn, 406, "ack of an unknown delivery tag",
                  lambda c: (c.basic_ack(99), c.queue_declare("qos-q", passive=True)))
    conn.close()


def scenario_tx(addr):
    conn = connect(addr)
    ch = conn.channel()
    ch.queue_declare("tx-q")
    ch.tx_select()
    ch.basic_publish("", "tx-q", b"t1")
    ch.basic_publish("", "tx-q", b"t2")
    check(count(ch, "tx-q") == 0, "tx: %d messages visible before commit" % count(ch, "tx-q"))
    ch.tx_commit()
    check(count(ch, "tx-q") == 2, "tx: %d messages after commit, want 2" % count(ch, "tx-q"))
    ok("tx.commit makes the publishes visible")
    ch.basic_publish("", "tx-q", b"t3")
    ch.tx_rollback()
    ch.tx_commit()
    check(count(ch, "tx-q") == 2, "tx: %d messages after rollback, want 2" % count(ch, "tx-q"))
    ok("tx.rollback discards the publish")
    # Acks in a transaction take effect at commit.
    m, _, body = wait_get(ch, "tx-q", "t1", auto_ack=False)
    ch.basic_ack(m.delivery_tag)
    ch.tx_commit()
    expect_bodies(ch, "tx-q", [b"t2"], "after a committed ack")
    # confirm.select on a transactional channel is a 406.
    e = expect_closed(conn, 406, "confirm.select on a transactional channel",
                      lambda c: (c.tx_select(), c.confirm_delivery()))
    conn.close()


def scenario_exclusive_autodelete_expires(addr):
    owner = connect(addr)
    other = connect(addr)
    och = owner.channel()
    och.queue_declare("ex-q", exclusive=True)
    expect_closed(other, 405, "passive declare of another connection's exclusive queue",
                  lambda c: c.queue_declare("ex-q", passive=True))
    expect_closed(other, 405, "consume from another connection's exclusive queue",
                  lambda c: c.basic_consume("ex-q", lambda *a: None))
    owner.close()
    ch = other.channel()
    end = time.monotonic() + remaining(5)
    while True:
        try:
            ch.queue_declare("ex-q", passive=True)
        except ChannelClosedByBroker as e:
            check(e.reply_code == 404, "exclusive queue after its owner left: %d %s, want 404" % (e.reply_code, e.reply_text))
            break
        check(time.monotonic() < end, "exclusive queue still there 5s after its connection closed")
        other.sleep(0.05)
    ok("exclusive queue: 405 for another connection, deleted when its owner closes")

    ch = other.channel()
    ch.queue_declare("ad-q", auto_delete=True)
    ch.basic_publish("", "ad-q", b"x")
    ch.basic_consume("ad-q", lambda *a: None, auto_ack=True, consumer_tag="ad-c")
    ch.basic_cancel("ad-c")
    expect_closed(other, 404, "auto-delete queue after its last consumer cancelled",
                  lambda c: c.queue_declare("ad-q", passive=True))
    ok("auto-delete queue deleted when its last consumer goes")

    ch = other.channel()
    ch.queue_declare("exp-q", arguments={"x-expires": 300})
    check(ch.queue_declare("exp-q", passive=True).method.queue == "exp-q", "x-expires queue gone at once")
    other.sleep(1.5)
    expect_closed(other, 404, "x-expires=300 queue after 1.5s unused",
                  lambda c: c.queue_declare("exp-q", passive=True))
    ok("x-expires: unused queue deleted")
    other.close()


# --- across a restart: the Go test runs restart_setup, restarts the server
# (SIGTERM, same data directory), then runs restart_verify.

def scenario_restart_setup(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    ch.exchange_declare("rs-x", "direct", durable=True)
    ch.exchange_declare("rs-dlx", "fanout", durable=True)
    ch.exchange_declare("rs-transient-x", "fanout", durable=False)
    ch.queue_declare("rs-q", durable=True, arguments={"x-dead-letter-exchange": "rs-dlx", "x-max-length": 100})
    ch.queue_declare("rs-dlq", durable=True)
    ch.queue_declare("rs-transient-q", durable=False)
    ch.queue_bind("rs-q", "rs-x", routing_key="k")
    ch.queue_bind("rs-q", "amq.direct", routing_key="rs")
    ch.queue_bind("rs-dlq", "rs-dlx")
    persistent = pika.BasicProperties(delivery_mode=2, headers={"h": "v"})
    for i in range(1, 4):
        ch.basic_publish("rs-x", "k", b"m%d" % i, properties=persistent)
    ch.basic_publish("amq.direct", "rs", b"m4", properties=persistent)
    ch.basic_publish("", "rs-transient-q", b"gone")
    m, _, body = wait_get(ch, "rs-q", "m1", auto_ack=False)
    check(body == b"m1", "first message %r" % body)
    ch.basic_ack(m.delivery_tag)
    m, _, body = wait_get(ch, "rs-q", "m2", auto_ack=False)
    check(body == b"m2", "second message %r" % body)
    # m2 stays unacked: requeued when the connection closes.
    conn.close()
    ok("durable topology and 4 persistent messages (1 acked) set up")


def scenario_restart_verify(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    n = count(ch, "rs-q")
    check(n == 3, "rs-q holds %d messages after the restart, want 3 (m2 requeued, m3, m4)" % n)
    m, p, body = wait_get(ch, "rs-q", "m2", auto_ack=True)
    check(body == b"m2", "first after restart: %r, want the requeued m2" % body)
    # Not asserted: whether m2 (delivered, then requeued before the
    # restart) still carries the redelivered flag. Reported for information.
    print("note: m2 after restart has redelivered=%r" % m.redelivered, flush=True)
    check(p.delivery_mode == 2 and p.headers == {"h": "v"}, "properties after restart %r" % p)
    expect_bodies(ch, "rs-q", [b"m3", b"m4"], "after restart")
    ch.basic_publish("rs-x", "k", b"after-k")
    ch.basic_publish("amq.direct", "rs", b"after-rs")
    expect_bodies(ch, "rs-q", [b"after-k", b"after-rs"], "bindings (to rs-x and amq.direct) survive the restart")
    # The queue's arguments survive: an equivalent redeclare is fine, another is 406.
    ch.queue_declare("rs-q", durable=True, arguments={"x-dead-letter-exchange": "rs-dlx", "x-max-length": 100})
    expect_closed(conn, 406, "redeclare rs-q with another x-max-length after restart",
                  lambda c: c.queue_declare("rs-q", durable=True, arguments={"x-dead-letter-exchange": "rs-dlx", "x-max-length": 5}))
    ch = confirmed_channel(conn)
    ch.basic_publish("rs-x", "k", b"to-reject")
    m, _, _ = wait_get(ch, "rs-q", "to-reject", auto_ack=False)
    ch.basic_reject(m.delivery_tag, requeue=False)
    m, p, body = wait_get(ch, "rs-dlq", "the rejected message in rs-dlq")
    check_death(p, "DLX after restart", "rejected", "rs-q", "rs-x", ["k"], "rs-dlx", m)
    expect_closed(conn, 404, "transient queue after the restart",
                  lambda c: c.queue_declare("rs-transient-q", passive=True))
    expect_closed(conn, 404, "transient exchange after the restart",
                  lambda c: c.exchange_declare("rs-transient-x", "fanout", passive=True))
    conn.close()


# --- maybe not implemented yet ---------------------------------------------------

def scenario_priority(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    ch.queue_declare("prio-q", arguments={"x-max-priority": 10})
    for body, prio in [(b"p1", 1), (b"p5a", 5), (b"none", None), (b"p9", 9), (b"p5b", 5), (b"p0", 0), (b"p20", 20)]:
        ch.basic_publish("", "prio-q", body, properties=pika.BasicProperties(priority=prio))
    # Highest first (above the maximum counts as the maximum), FIFO within a
    # priority, no priority property = 0.
    expect_bodies(ch, "prio-q", [b"p20", b"p9", b"p5a", b"p5b", b"p1", b"none", b"p0"], "x-max-priority=10")
    conn.close()


def scenario_delayed(addr):
    conn = connect(addr)
    ch = confirmed_channel(conn)
    ch.exchange_declare("delayed-x", "x-delayed-message", arguments={"x-delayed-type": "direct"})
    ch.queue_declare("delayed-q")
    ch.queue_bind("delayed-q", "delayed-x", routing_key="later")
    t0 = time.monotonic()
    ch.basic_publish("delayed-x", "later", b"in-800ms", properties=pika.BasicProperties(headers={"x-delay": 800}))
    ch.basic_publish("delayed-x", "later", b"in-300ms", properties=pika.BasicProperties(headers={"x-delay": 300}))
    ch.basic_publish("delayed-x", "later", b"now")
    ch.basic_publish("delayed-x", "other-key", b"unbound", properties=pika.BasicProperties(headers={"x-delay": 100}))
    m, _, body = wait_get(ch, "delayed-q", "the undelayed message")
    check(body == b"now" and time.monotonic() - t0 < 0.25, "first message %r after %.3fs, want 'now' at once" % (body, time.monotonic() - t0))
    m, p, body = wait_get(ch, "delayed-q", "the 300ms message", timeout=5)
    took = time.monotonic() - t0
    check(body == b"in-300ms" and 0.25 <= took, "got %r after %.3fs, want in-300ms after >=300ms" % (body, took))
    check(m.exchange == "delayed-x" and m.routing_key == "later", "delayed via %r key %r" % (m.exchange, m.routing_key))
    m, p, body = wait_get(ch, "delayed-q", "the 800ms message", timeout=5)
    took = time.monotonic() - t0
    check(body == b"in-800ms" and 0.75 <= took, "got %r after %.3fs, want in-800ms after >=800ms" % (body, took))
    ok("x-delayed-message: delivered in delay order, not before the delay")
    ch.connection.sleep(0.3)
    expect_empty(ch, "delayed-q", "delayed message with an unbound key")
    conn.close()


def scenario_stream(addr):
    """A stream queue read by offset, as RabbitMQ's AMQP 0-9-1 stream support."""
    import datetime
    from pika.exceptions import ConnectionClosedByBroker
    conn = connect(addr)
    expect_closed(conn, 406, "non-durable stream",
                  lambda c: c.queue_declare("pika-stream", durable=False, arguments={"x-queue-type": "stream"}))
    expect_closed(conn, 406, "stream with x-message-ttl",
                  lambda c: c.queue_declare("pika-stream", durable=True,
                                            arguments={"x-queue-type": "stream", "x-message-ttl": 1000}))
    ch = confirmed_channel(conn)
    args = {"x-queue-type": "stream", "x-max-age": "7D", "x-stream-max-segment-size-bytes": 1000000}
    ch.queue_declare("pika-stream", durable=True, arguments=args)
    for i in range(5):
        ch.basic_publish("", "pika-stream", b"s%d" % i)
    ok("declared a stream (x-max-age 7D) and published 5 confirmed messages")

    ch.basic_qos(prefetch_count=10)
    got = {"first": [], "two": [], "ts": []}

    def on(name):
        def cb(c, m, p, b):
            got[name].append((p.headers.get("x-stream-offset"), b))
            c.basic_ack(m.delivery_tag)
        return cb
    ch.basic_consume("pika-stream", on("first"), arguments={"x-stream-offset": "first"})
    ch.basic_consume("pika-stream", on("two"), arguments={"x-stream-offset": 2})
    ch.basic_consume("pika-stream", on("ts"), arguments={"x-stream-offset": datetime.datetime(2001, 1, 1)})
    end = time.monotonic() + remaining(10)
    while len(got["first"]) < 5 or len(got["two"]) < 3 or len(got["ts"]) < 5:
        check(time.monotonic() < end, "stream deliveries so far: %r" % got)
        conn.process_data_events(time_limit=0.05)
    conn.process_data_events(time_limit=0.2)
    want = [(i, b"s%d" % i) for i in range(5)]
    check(got["first"] == want, "from first: %r, want %r" % (got["first"], want))
    check(got["two"] == want[2:], "from offset 2: %r, want %r" % (got["two"], want[2:]))
    check(got["ts"] == want, "from a 2001 timestamp: %r, want %r" % (got["ts"], want))
    ok("x-stream-offset first, 2 and a timestamp: each consumer reads the log, offsets in x-stream-offset")
    check(count(ch, "pika-stream") == 5, "after acks the stream holds %d, want 5" % count(ch, "pika-stream"))
    ok("acks remove nothing from a stream")
    ch.basic_publish("", "pika-stream", b"s5")
    end = time.monotonic() + remaining(5)
    while min(len(v) for v in got.values()) < 4 or len(got["first"]) < 6 or len(got["ts"]) < 6:
        check(time.monotonic() < end, "after one more publish: %r" % got)
        conn.process_data_events(time_limit=0.05)
    check(got["first"][-1] == (5, b"s5") and got["two"][-1] == (5, b"s5"), "new message: %r" % got)
    ok("a new message reaches every consumer")

    expect_closed(conn, 406, "consume a stream without basic.qos",
                  lambda c: c.basic_consume("pika-stream", lambda *a: None))
    c2 = connect(addr)
    try:
        c2.channel().basic_get("pika-stream")
        fail("basic.get on a stream succeeded, want 540")
    except ConnectionClosedByBroker as e:
        check(e.reply_code == 540, "basic.get on a stream: %d %s, want 540" % (e.reply_code, e.reply_text))
        ok("basic.get on a stream: connection closed %d %s" % (e.reply_code, e.reply_text))
    conn.close()


def scenario_memory_alarm(addr):
    """Run with a memory watermark below the broker's resident memory."""
    pub = connect(addr)
    reasons = []
    pub.add_on_connection_blocked_callback(lambda conn, frame: reasons.append(frame.method.reason))
    ch = pub.channel()
    ch.queue_declare("pika-mem")
    ch.basic_publish("", "pika-mem", b"held")
    while not reasons and remaining(10) > 0:
        pub.process_data_events(time_limit=0.1)
    check(reasons == ["low on memory"], "blocked reasons %r, want ['low on memory']" % reasons)
    ok("publisher got connection.blocked: low on memory")
    cons = connect(addr)
    cch = cons.channel()
    n = cch.queue_declare("pika-mem", passive=True).method.message_count
    check(n == 0, "queue holds %d messages during the alarm, want 0 (the publish is held)" % n)
    ok("a consumer-only connection still works; the held publish was not routed")
    cons.close()
    # The blocked connection is not closed: it is not read while blocked,
    # so connection.close would wait (as with RabbitMQ).


SCENARIOS = {
    "direct": scenario_direct,
    "fanout": scenario_fanout,
    "topic": scenario_topic,
    "headers": scenario_headers,
    "exchange_to_exchange": scenario_exchange_to_exchange,
    "alternate_exchange": scenario_alternate_exchange,
    "predeclared_exchanges": scenario_predeclared_exchanges,
    "confirms": scenario_confirms,
    "dlx_reject": scenario_dlx_reject,
    "ttl_queue": scenario_ttl_queue,
    "ttl_message": scenario_ttl_message,
    "maxlen_drop_oldest": scenario_maxlen_drop_oldest,
    "maxlen_reject_publish": scenario_maxlen_reject_publish,
    "maxlen_drop_head_dlx": scenario_maxlen_drop_head_dlx,
    "get_nack_recover": scenario_get_nack_recover,
    "purge_delete": scenario_purge_delete,
    "passive_missing": scenario_passive_missing,
    "qos_ack_reject": scenario_qos_ack_reject,
    "tx": scenario_tx,
    "exclusive_autodelete_expires": scenario_exclusive_autodelete_expires,
    "restart_setup": scenario_restart_setup,
    "restart_verify": scenario_restart_verify,
    "priority": scenario_priority,
    "delayed": scenario_delayed,
    "stream": scenario_stream,
    "memory_alarm": scenario_memory_alarm,
}


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        print("\n".join(SCENARIOS))
        return
    if len(sys.argv) != 3 or sys.argv[1] not in SCENARIOS:
        fail("usage: %s SCENARIO HOST:PORT, SCENARIO one of %s" % (sys.argv[0], ", ".join(SCENARIOS)))
    SCENARIOS[sys.argv[1]](sys.argv[2])
    ok("scenario %s passed" % sys.argv[1])


if __name__ == "__main__":
    run(main)
