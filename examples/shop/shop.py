#!/usr/bin/python3
"""The e-commerce order pipeline on Sluice: the reference system.

One file, one process per service, Debian's python3-pika and python3-kafka
only. See docs/shop.md for the walk-through.

    shop.py run                   start every service (restarts any that dies)
    shop.py service NAME          run one service (order, inventory, payment,
                                  shipping, notification, points, analytics)
    shop.py load --orders N       place N orders over HTTP, pay most of them
    shop.py check [--wait S]      verify the end state; exit 0 when it holds
    shop.py analytics --replay    recount the topic from its first offset (a new
                                  consumer group) and print the counts

Configuration (environment, defaults for a local Sluice):
    SHOP_AMQP_URL         amqp://guest:guest@127.0.0.1:5672/
    SHOP_KAFKA            127.0.0.1:9092
    SHOP_MGMT             http://guest:guest@127.0.0.1:15672
    SHOP_HTTP             127.0.0.1:8080   (the order service's HTTP address)
    SHOP_STATE            ./shop-state     (each service's sqlite file)
    SHOP_PAYMENT_TIMEOUT  1800             (seconds an order may stay unpaid)
    SHOP_PREFETCH         20
    SHOP_FAIL_RATE        0.1              (payment gateway's first-try failures)
    SHOP_STOCK            1000000          (initial stock of each SKU)
    SHOP_WORK_MS          0                (simulated work per message in the
                                            AMQP consumers: a slow downstream)
"""

import argparse
import base64
import http.client
import http.server
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

import pika

AMQP_URL = os.environ.get("SHOP_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
KAFKA = os.environ.get("SHOP_KAFKA", "127.0.0.1:9092")
MGMT = os.environ.get("SHOP_MGMT", "http://guest:guest@127.0.0.1:15672")
HTTP = os.environ.get("SHOP_HTTP", "127.0.0.1:8080")
STATE = os.environ.get("SHOP_STATE", "shop-state")
PAYMENT_TIMEOUT = float(os.environ.get("SHOP_PAYMENT_TIMEOUT", "1800"))
PREFETCH = int(os.environ.get("SHOP_PREFETCH", "20"))
FAIL_RATE = float(os.environ.get("SHOP_FAIL_RATE", "0.1"))
STOCK = int(os.environ.get("SHOP_STOCK", "1000000"))
WORK_MS = float(os.environ.get("SHOP_WORK_MS", "0"))

EVENTS = "shop.events"        # topic exchange every event goes through
DELAYED = "shop.delayed"      # x-delayed-message exchange: payment timeouts
DLX = "shop.dlx"              # where messages go after too many failed tries
DLQ = "shop.dead-letters"
# The Kafka topic the events exchange feeds. Not named after the exchange:
# a topic appears in the Kafka vhost as a super stream, an exchange of its
# own name (docs/bridge.md).
TOPIC = "shop.event-log"
TOPIC_PARTITIONS = 3
DELIVERY_LIMIT = 5
SKUS = ["book", "lamp", "mug", "shirt", "tea"]

# Each AMQP service: its queue and the routing keys it is bound with.
QUEUES = {
    "order": ("shop.order", ["stock.reserved", "stock.failed", "payment.succeeded"]),
    "inventory": ("shop.inventory", ["order.created", "order.cancelled"]),
    "payment": ("shop.payment", ["payment.requested", "payment.refund"]),
    "shipping": ("shop.shipping", ["order.paid"]),
    "notification": ("shop.notification", ["order.*"]),
    "points": ("shop.points", ["order.paid"]),
}
TIMEOUT_QUEUE = "shop.order-timeouts"
SERVICES = ["order", "inventory", "payment", "shipping", "notification", "points", "analytics"]


def log(name, msg):
    print("%s [%s] %s" % (time.strftime("%H:%M:%S"), name, msg), flush=True)


# ---------------------------------------------------------------- storage

def open_db(name):
    """A service's own sqlite file: its state, the ids of the messages it has
    processed (idempotence) and its outbox (events to publish)."""
    os.makedirs(STATE, exist_ok=True)
    db = sqlite3.connect(os.path.join(STATE, name + ".db"), timeout=30, isolation_level=None,
                         check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS processed (message_id TEXT PRIMARY KEY)")
    db.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,"
               " exchange TEXT, routing_key TEXT, message_id TEXT, body TEXT, delay_ms INTEGER)")
    return db


SCHEMA = {
    "order": ["CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, sku TEXT, qty INTEGER,"
              " amount INTEGER, user TEXT, status TEXT, reason TEXT, pay_requested INTEGER DEFAULT 0)"],
    "inventory": ["CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, available INTEGER)",
                  "CREATE TABLE IF NOT EXISTS reservations (order_id TEXT, sku TEXT, qty INTEGER, state TEXT)"],
    "payment": ["CREATE TABLE IF NOT EXISTS charges (order_id TEXT, amount INTEGER, tries INTEGER)",
                "CREATE TABLE IF NOT EXISTS refunds (order_id TEXT, amount INTEGER)"],
    "shipping": ["CREATE TABLE IF NOT EXISTS shipments (order_id TEXT, sku TEXT, qty INTEGER)"],
    "notification": ["CREATE TABLE IF NOT EXISTS notifications (order_id TEXT, event TEXT)"],
    "points": ["CREATE TABLE IF NOT EXISTS ledger (user TEXT, order_id TEXT, points INTEGER)"],
    "analytics": ["CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, type TEXT,"
                  " order_id TEXT, part INTEGER, off INTEGER)"],
}
# The effect tables above deliberately have no unique order_id: idempotence
# comes from the processed table, and check counts duplicates.


def service_db(name):
    db = open_db(name)
    for stmt in SCHEMA[name]:
        db.execute(stmt)
    if name == "inventory":
        for sku in SKUS:
            db.execute("INSERT OR IGNORE INTO stock VALUES (?, ?)", (sku, STOCK))
    return db


def event(etype, order_id, **fields):
    """An event; its id is deterministic (type and order), so an event
    published twice (a crash between publish and outbox delete) is the same
    message to every consumer and is processed once."""
    fields.update(type=etype, order_id=order_id, id="%s:%s" % (etype, order_id))
    return fields


def emit(db, ev, exchange=EVENTS, delay_ms=0):
    """Queues an event in the outbox, inside the caller's transaction."""
    rk = ev["type"].lower().replace("_", ".", 1)
    db.execute("INSERT INTO outbox (exchange, routing_key, message_id, body, delay_ms) VALUES (?,?,?,?,?)",
               (exchange, rk, ev["id"], json.dumps(ev), delay_ms))


# ---------------------------------------------------------------- AMQP

def connect():
    params = pika.URLParameters(AMQP_URL)
    params.heartbeat = 30
    params.blocked_connection_timeout = 60
    return pika.BlockingConnection(params)


def declare(ch):
    """The whole AMQP topology; every service declares it, so any one can
    start first."""
    ch.exchange_declare(EVENTS, "topic", durable=True)
    ch.exchange_declare(DLX, "fanout", durable=True)
    ch.exchange_declare(DELAYED, "x-delayed-message", durable=True, arguments={"x-delayed-type": "direct"})
    ch.queue_declare(DLQ, durable=True)
    ch.queue_bind(DLQ, DLX)
    args = {"x-queue-type": "quorum", "x-dead-letter-exchange": DLX, "x-delivery-limit": DELIVERY_LIMIT}
    for queue, keys in QUEUES.values():
        ch.queue_declare(queue, durable=True, arguments=args)
        for k in keys:
            ch.queue_bind(queue, EVENTS, k)
    ch.queue_declare(TIMEOUT_QUEUE, durable=True, arguments=args)
    ch.queue_bind(TIMEOUT_QUEUE, DELAYED, "order.timeout")


class Outbox:
    """Publishes a service's outbox rows with publisher confirms, deleting
    each row once the broker has confirmed it. It publishes on conn (a
    consumer's connection, whose I/O loop also serves its heartbeats) or
    on a connection of its own, which its caller must flush at least every
    few seconds so that heartbeats are answered."""

    def __init__(self, db, db_lock=None, conn=None):
        self.db = db
        self.db_lock = db_lock or threading.Lock()  # held around every use of db
        self.lock = threading.Lock()
        self.conn, self.ch = conn, None

    def flush(self):
        with self.lock:
            if self.conn is None:
                self.conn = connect()
            if self.ch is None:
                self.ch = self.conn.channel()
                self.ch.confirm_delivery()
            self.conn.process_data_events(0)  # heartbeats; raises if the connection is gone
            with self.db_lock:
                rows = self.db.execute("SELECT id, exchange, routing_key, message_id, body, delay_ms"
                                       " FROM outbox ORDER BY id").fetchall()
            for rid, exchange, rk, mid, body, delay_ms in rows:
                headers = {"x-delay": delay_ms} if delay_ms else None
                self.ch.basic_publish(exchange, rk, body.encode(), pika.BasicProperties(
                    delivery_mode=2, content_type="application/json", message_id=mid,
                    type=json.loads(body)["type"], headers=headers))
                with self.db_lock:
                    self.db.execute("DELETE FROM outbox WHERE id = ?", (rid,))
            return len(rows)


def consume(name, handlers, extra_queues=()):
    """Runs a consumer service: manual acks, prefetch, one sqlite
    transaction per message (the processed id, the effects and the outbox
    rows commit together), then publish the outbox, then ack. A handler
    exception nacks with requeue; after DELIVERY_LIMIT tries the broker
    dead-letters the message to shop.dead-letters."""
    db = service_db(name)
    conn = connect()
    ch = conn.channel()
    declare(ch)
    ch.basic_qos(prefetch_count=PREFETCH)
    outbox = Outbox(db, conn=conn)
    outbox.flush()  # what a previous life committed but did not publish

    def on_message(ch, method, props, body):
        if WORK_MS:
            time.sleep(WORK_MS / 1000)
        try:
            ev = json.loads(body)
            mid = props.message_id or ev["id"]
            db.execute("BEGIN IMMEDIATE")
            try:
                if db.execute("SELECT 1 FROM processed WHERE message_id = ?", (mid,)).fetchone():
                    log(name, "duplicate %s ignored" % mid)
                else:
                    handlers[ev["type"]](db, ev, method.redelivered)
                    db.execute("INSERT INTO processed VALUES (?)", (mid,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except Exception as e:
            log(name, "failed %r (redelivered=%s): %s; requeued" % (body[:80], method.redelivered, e))
            ch.basic_nack(method.delivery_tag, requeue=True)
            return
        outbox.flush()
        ch.basic_ack(method.delivery_tag)

    ch.basic_consume(QUEUES[name][0], on_message)
    for q in extra_queues:
        ch.basic_consume(q, on_message)
    log(name, "consuming %s" % ", ".join([QUEUES[name][0]] + list(extra_queues)))
    ch.start_consuming()


# ---------------------------------------------------------------- services

def order_service():
    """HTTP in, events out: POST /orders stores the order and its
    ORDER_CREATED event (plus the delayed payment timeout) in one sqlite
    transaction and answers 202 at once; a publisher thread sends the
    outbox. The same process consumes the saga's replies."""
    name = "order"
    db = service_db(name)
    db_lock = threading.Lock()
    outbox = Outbox(db, db_lock)
    wake = threading.Event()

    def publisher():
        while True:
            wake.wait(1)
            wake.clear()
            try:
                outbox.flush()
            except Exception as e:  # the supervisor restarts us
                log(name, "publisher: %s" % e)
                os._exit(1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, code, obj):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            parts = self.path.strip("/").split("/")
            if parts == ["orders"]:
                with db_lock:
                    rows = db.execute("SELECT status, count(*) FROM orders GROUP BY status").fetchall()
                return self.reply(200, dict(rows))
            if len(parts) == 2 and parts[0] == "orders":
                with db_lock:
                    row = db.execute("SELECT id, sku, qty, amount, status, reason FROM orders WHERE id = ?",
                                     (parts[1],)).fetchone()
                if row is None:
                    return self.reply(404, {"error": "no such order"})
                return self.reply(200, dict(zip(["id", "sku", "qty", "amount", "status", "reason"], row)))
            self.reply(404, {"error": "not found"})

        def do_POST(self):
            parts = self.path.strip("/").split("/")
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 <= length <= 1 << 16:
                    raise ValueError("body too large")
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("not an object")
                oid = str(body.get("id") or "o-%d-%06d" % (time.time(), random.randrange(10 ** 6)))
                sku, qty, user = body.get("sku", "book"), int(body.get("qty", 1)), str(body.get("user", "anon"))
            except (ValueError, TypeError) as e:
                return self.reply(400, {"error": "bad request: %s" % e})
            if parts == ["orders"]:
                if sku not in SKUS or not 1 <= qty <= 100:
                    return self.reply(400, {"error": "bad sku or qty"})
                amount = qty * 10
                with db_lock:
                    db.execute("BEGIN IMMEDIATE")
                    if db.execute("SELECT 1 FROM orders WHERE id = ?", (oid,)).fetchone():
                        db.execute("ROLLBACK")  # a client retry: same order, once
                        return self.reply(200, {"id": oid})
                    db.execute("INSERT INTO orders (id, sku, qty, amount, user, status) VALUES (?,?,?,?,?,?)",
                               (oid, sku, qty, amount, user, "pending"))
                    emit(db, event("ORDER_CREATED", oid, sku=sku, qty=qty, amount=amount, user=user))
                    emit(db, event("ORDER_TIMEOUT", oid), exchange=DELAYED, delay_ms=int(PAYMENT_TIMEOUT * 1000))
                    db.execute("COMMIT")
                wake.set()
                return self.reply(202, {"id": oid, "status": "pending"})
            if len(parts) == 3 and parts[0] == "orders" and parts[2] == "pay":
                oid = parts[1]
                with db_lock:
                    db.execute("BEGIN IMMEDIATE")
                    row = db.execute("SELECT status, amount, pay_requested FROM orders WHERE id = ?",
                                     (oid,)).fetchone()
                    if row is None or row[0] not in ("reserved", "paid"):
                        db.execute("ROLLBACK")
                        return self.reply(409 if row else 404, {"status": row and row[0]})
                    if not row[2]:
                        db.execute("UPDATE orders SET pay_requested = 1 WHERE id = ?", (oid,))
                        emit(db, event("PAYMENT_REQUESTED", oid, amount=row[1]))
                    db.execute("COMMIT")
                wake.set()
                return self.reply(202, {"id": oid, "status": "payment requested"})
            self.reply(404, {"error": "not found"})

    def set_status(db, oid, new, reason=None):
        db.execute("UPDATE orders SET status = ?, reason = ? WHERE id = ?", (new, reason, oid))

    def status(db, oid):
        row = db.execute("SELECT status FROM orders WHERE id = ?", (oid,)).fetchone()
        if row is None:
            raise KeyError("unknown order %s" % oid)
        return row[0]

    def on_reserved(db, ev, _):
        if status(db, ev["order_id"]) == "pending":
            set_status(db, ev["order_id"], "reserved")

    def on_stock_failed(db, ev, _):
        if status(db, ev["order_id"]) in ("pending", "reserved"):
            set_status(db, ev["order_id"], "cancelled", "out of stock")
            emit(db, event("ORDER_CANCELLED", ev["order_id"], reason="out of stock"))

    def on_paid(db, ev, _):
        st = status(db, ev["order_id"])
        if st == "reserved":
            set_status(db, ev["order_id"], "paid")
            row = db.execute("SELECT sku, qty, user FROM orders WHERE id = ?", (ev["order_id"],)).fetchone()
            emit(db, event("ORDER_PAID", ev["order_id"], sku=row[0], qty=row[1], user=row[2], amount=ev["amount"]))
        elif st == "cancelled":  # paid after the timeout: give the money back
            emit(db, event("PAYMENT_REFUND", ev["order_id"], amount=ev["amount"]))

    def on_timeout(db, ev, _):
        if status(db, ev["order_id"]) in ("pending", "reserved"):
            set_status(db, ev["order_id"], "cancelled", "payment timeout")
            emit(db, event("ORDER_CANCELLED", ev["order_id"], reason="payment timeout"))

    # The consumer and the HTTP handlers share one sqlite connection under
    # db_lock; the consumer takes it around each message.
    handlers = {"STOCK_RESERVED": on_reserved, "STOCK_FAILED": on_stock_failed,
                "PAYMENT_SUCCEEDED": on_paid, "ORDER_TIMEOUT": on_timeout}
    threading.Thread(target=publisher, daemon=True).start()
    host, port = HTTP.rsplit(":", 1)
    srv = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    log(name, "HTTP on %s, payment timeout %gs" % (HTTP, PAYMENT_TIMEOUT))
    wake.set()
    consume_locked(name, db, db_lock, outbox, handlers, [TIMEOUT_QUEUE])


def consume_locked(name, db, db_lock, outbox, handlers, extra_queues):
    """consume() for the order service, whose sqlite connection is shared
    with its HTTP handlers."""
    conn = connect()
    ch = conn.channel()
    declare(ch)
    ch.basic_qos(prefetch_count=PREFETCH)

    def on_message(ch, method, props, body):
        try:
            ev = json.loads(body)
            mid = props.message_id or ev["id"]
            with db_lock:
                db.execute("BEGIN IMMEDIATE")
                try:
                    if not db.execute("SELECT 1 FROM processed WHERE message_id = ?", (mid,)).fetchone():
                        handlers[ev["type"]](db, ev, method.redelivered)
                        db.execute("INSERT INTO processed VALUES (?)", (mid,))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except Exception as e:
            log(name, "failed %r: %s; requeued" % (body[:80], e))
            ch.basic_nack(method.delivery_tag, requeue=True)
            return
        outbox.flush()
        ch.basic_ack(method.delivery_tag)

    ch.basic_consume(QUEUES[name][0], on_message)
    for q in extra_queues:
        ch.basic_consume(q, on_message)
    log(name, "consuming")
    ch.start_consuming()


def inventory_service():
    def on_created(db, ev, _):
        avail = db.execute("SELECT available FROM stock WHERE sku = ?", (ev["sku"],)).fetchone()
        if avail is None or avail[0] < ev["qty"]:
            emit(db, event("STOCK_FAILED", ev["order_id"]))
            return
        db.execute("UPDATE stock SET available = available - ? WHERE sku = ?", (ev["qty"], ev["sku"]))
        db.execute("INSERT INTO reservations VALUES (?,?,?,'held')", (ev["order_id"], ev["sku"], ev["qty"]))
        emit(db, event("STOCK_RESERVED", ev["order_id"]))

    def on_cancelled(db, ev, _):
        row = db.execute("SELECT sku, qty FROM reservations WHERE order_id = ? AND state = 'held'",
                         (ev["order_id"],)).fetchone()
        if row:  # release the stock the order held
            db.execute("UPDATE stock SET available = available + ? WHERE sku = ?", (row[1], row[0]))
            db.execute("UPDATE reservations SET state = 'released' WHERE order_id = ?", (ev["order_id"],))

    consume("inventory", {"ORDER_CREATED": on_created, "ORDER_CANCELLED": on_cancelled})


def payment_service():
    def on_requested(db, ev, redelivered):
        # A flaky gateway: the first try of some payments fails; the broker
        # redelivers it (nack + requeue) and the retry goes through.
        if not redelivered and zlib.crc32(ev["order_id"].encode()) % 1000 < FAIL_RATE * 1000:
            raise RuntimeError("payment gateway timeout for %s" % ev["order_id"])
        db.execute("INSERT INTO charges VALUES (?,?,1)", (ev["order_id"], ev["amount"]))
        emit(db, event("PAYMENT_SUCCEEDED", ev["order_id"], amount=ev["amount"]))

    def on_refund(db, ev, _):
        db.execute("INSERT INTO refunds VALUES (?,?)", (ev["order_id"], ev["amount"]))

    consume("payment", {"PAYMENT_REQUESTED": on_requested, "PAYMENT_REFUND": on_refund})


def shipping_service():
    def on_paid(db, ev, _):
        db.execute("INSERT INTO shipments VALUES (?,?,?)", (ev["order_id"], ev["sku"], ev["qty"]))

    consume("shipping", {"ORDER_PAID": on_paid})


def notification_service():
    def on_order_event(db, ev, _):
        db.execute("INSERT INTO notifications VALUES (?,?)", (ev["order_id"], ev["type"]))

    consume("notification", {t: on_order_event for t in ("ORDER_CREATED", "ORDER_PAID", "ORDER_CANCELLED")})


def points_service():
    def on_paid(db, ev, _):
        db.execute("INSERT INTO ledger VALUES (?,?,?)", (ev["user"], ev["order_id"], ev["amount"]))

    consume("points", {"ORDER_PAID": on_paid})


def analytics_service():
    """A Kafka consumer group on the topic the events exchange feeds. Each
    record is stored under its event id (INSERT OR IGNORE) before the group
    offset is committed, so a crash re-reads and counts nothing twice."""
    from kafka import KafkaConsumer

    db = service_db("analytics")
    consumer = KafkaConsumer(bootstrap_servers=KAFKA.split(","), group_id="shop-analytics",
                             enable_auto_commit=False, auto_offset_reset="earliest")
    consumer.subscribe([TOPIC])
    log("analytics", "consuming topic %s as group shop-analytics" % TOPIC)
    while True:
        batch = consumer.poll(timeout_ms=1000)
        if not batch:
            continue
        db.execute("BEGIN")
        for tp, records in batch.items():
            for r in records:
                store_event(db, tp.partition, r)
        db.execute("COMMIT")
        consumer.commit()


def store_event(db, partition, r):
    try:
        ev = json.loads(r.value)
    except ValueError:
        return
    db.execute("INSERT OR IGNORE INTO events VALUES (?,?,?,?,?)",
               (ev.get("id"), ev.get("type"), ev.get("order_id"), partition, r.offset))


def analytics_replay():
    """Reads the whole topic again from its first offset, as a new consumer
    group, into a scratch database, and prints the counts: what the
    analytics service would have computed had it started today. Exits once
    it has read up to the end offsets it saw when it started."""
    from kafka import KafkaConsumer, TopicPartition

    path = os.path.join(STATE, "analytics-replay.db")
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(SCHEMA["analytics"][0])
    group = "shop-analytics-replay-%d" % time.time()
    consumer = KafkaConsumer(bootstrap_servers=KAFKA.split(","), group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest")
    parts = [TopicPartition(TOPIC, p) for p in sorted(consumer.partitions_for_topic(TOPIC) or [])]
    end = consumer.end_offsets(parts)
    consumer.subscribe([TOPIC])
    seen = {tp: 0 for tp in parts}
    deadline = time.time() + 60
    while any(seen[tp] < end[tp] for tp in parts):
        if time.time() > deadline:
            sys.exit("replay: did not reach the end offsets %s (at %s)" % (end, seen))
        for tp, records in consumer.poll(timeout_ms=1000).items():
            for r in records:
                store_event(db, tp.partition, r)
                seen[tp] = r.offset + 1
    consumer.close()
    counts = dict(db.execute("SELECT type, count(*) FROM events GROUP BY type").fetchall())
    print(json.dumps({"group": group, "records": sum(end.values()), "events": counts}, sort_keys=True))


# ---------------------------------------------------------------- setup, run

def mgmt(method, path, body=None):
    u = urllib.parse.urlsplit(MGMT)
    req = urllib.request.Request("%s://%s%s" % (u.scheme, u.hostname + (":%d" % u.port if u.port else ""), path),
                                 method=method, data=json.dumps(body).encode() if body is not None else None)
    auth = base64.b64encode(("%s:%s" % (u.username or "guest", u.password or "guest")).encode()).decode()
    req.add_header("Authorization", "Basic " + auth)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read()


def setup():
    """Declares the AMQP topology, creates the Kafka topic and binds the
    events exchange to it, so every event also lands in the topic."""
    conn = connect()
    declare(conn.channel())
    conn.close()
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError
    admin = KafkaAdminClient(bootstrap_servers=KAFKA.split(","))
    try:
        admin.create_topics([NewTopic(TOPIC, TOPIC_PARTITIONS, 1)])
    except TopicAlreadyExistsError:
        pass
    admin.close()
    mgmt("POST", "/api/bindings/%%2F/e/%s/t/%s" % (EVENTS, TOPIC), {"routing_key": "#"})
    log("setup", "exchange %s feeds topic %s (%d partitions)" % (EVENTS, TOPIC, TOPIC_PARTITIONS))


def run():
    """Starts every service as its own process and restarts any that exits:
    a killed service catches up from its durable queue (or its committed
    group offset) when it comes back."""
    setup()
    os.makedirs(os.path.join(STATE, "pids"), exist_ok=True)
    procs = {}

    def start(name):
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "service", name])
        procs[name] = p
        with open(os.path.join(STATE, "pids", name), "w") as f:
            f.write("%d\n" % p.pid)
        log("run", "started %s (pid %d)" % (name, p.pid))

    def stop(*_):
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for name in SERVICES:
        start(name)
    while True:
        time.sleep(0.2)
        for name, p in list(procs.items()):
            if p.poll() is not None:
                log("run", "%s exited (%s); restarting" % (name, p.returncode))
                start(name)


# ---------------------------------------------------------------- load, check

def http_call(method, path, body=None):
    """Calls the order service, retrying for up to 30 s while it is down
    (being restarted, or killed in the middle of an answer): both POSTs are idempotent (the client picks the
    order id; a payment is requested once per order)."""
    deadline = time.time() + 30
    while True:
        req = urllib.request.Request("http://%s%s" % (HTTP, path), method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as e:
            # HTTPException: the service killed while answering (an
            # IncompleteRead or RemoteDisconnected), retried as unreachable.
            if time.time() > deadline:
                raise
            log("load", "order service unreachable (%s); retrying" % e)
            time.sleep(0.2)


def load(n, unpaid, seed, poison):
    """Places n orders; pays all but about `unpaid` of them once their stock
    is reserved. The unpaid ones are cancelled by the payment timeout.
    `poison` malformed ORDER_CREATED messages go straight to the exchange:
    every queue bound to order.created retries them DELIVERY_LIMIT times,
    then the broker dead-letters them to shop.dead-letters."""
    rnd = random.Random(seed)
    os.makedirs(STATE, exist_ok=True)
    if poison:
        conn = connect()
        ch = conn.channel()
        ch.confirm_delivery()
        for i in range(poison):
            ch.basic_publish(EVENTS, "order.created", b"{not json", pika.BasicProperties(
                delivery_mode=2, message_id="poison-%d-%d" % (time.time(), i)))
        conn.close()
        with open(os.path.join(STATE, "poison"), "a") as f:
            f.write("%d\n" % poison)
    run_id = "%d" % time.time()
    ids, took = [], []
    started = time.monotonic()
    for i in range(n):
        oid = "o-%s-%05d" % (run_id, i)
        t0 = time.monotonic()
        code, _ = http_call("POST", "/orders", {"id": oid, "sku": rnd.choice(SKUS), "qty": rnd.randint(1, 3),
                                                "user": "u%d" % rnd.randrange(10)})
        if code not in (200, 202):
            sys.exit("POST /orders: %d" % code)
        took.append(time.monotonic() - t0)
        ids.append(oid)
    elapsed = time.monotonic() - started
    os.makedirs(STATE, exist_ok=True)
    with open(os.path.join(STATE, "load.jsonl"), "a") as f:
        for oid in ids:
            f.write(json.dumps({"id": oid}) + "\n")
    to_pay = [oid for oid in ids if rnd.random() >= unpaid]
    took.sort()
    if took:
        log("load", "placed %d orders in %.1fs (%.0f/s); POST /orders p50 %.1f ms, p99 %.1f ms" % (
            n, elapsed, n / max(elapsed, 1e-9), took[len(took) // 2] * 1000, took[int(len(took) * 0.99)] * 1000))
    log("load", "paying %d orders" % len(to_pay))
    deadline = time.time() + 60
    pending = list(to_pay)
    while pending and time.time() < deadline:
        rest = []
        for oid in pending:
            code, body = http_call("POST", "/orders/%s/pay" % oid)
            if code == 409 and body.get("status") == "pending":
                rest.append(oid)  # stock not reserved yet: the pay button is not shown yet
        pending = rest
        if pending:
            time.sleep(0.1)
    log("load", "paid %d orders; %d never reached the pay button" % (len(to_pay) - len(pending), len(pending)))


def check_once():
    problems = []
    ids = set()
    path = os.path.join(STATE, "load.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            ids = {json.loads(line)["id"] for line in f if line.strip()}
    dbs = {n: service_db(n) for n in SERVICES}
    orders = {r[0]: r[1:] for r in dbs["order"].execute("SELECT id, sku, qty, status FROM orders")}
    missing = ids - set(orders)
    if missing:
        problems.append("%d orders placed but not stored" % len(missing))
    open_orders = [o for o, (_, _, st) in orders.items() if st not in ("paid", "cancelled")]
    if open_orders:
        problems.append("%d orders neither paid nor cancelled (e.g. %s)" % (len(open_orders), open_orders[0]))
    paid = {o for o, (_, _, st) in orders.items() if st == "paid"}
    cancelled = {o for o, (_, _, st) in orders.items() if st == "cancelled"}

    inv = dbs["inventory"]
    for sku in SKUS:
        avail = inv.execute("SELECT available FROM stock WHERE sku = ?", (sku,)).fetchone()[0]
        sold = sum(q for o, (s, q, st) in orders.items() if s == sku and st == "paid")
        if avail != STOCK - sold:
            problems.append("stock of %s is %d, want %d - %d sold" % (sku, avail, STOCK, sold))
    held = {r[0] for r in inv.execute("SELECT order_id FROM reservations WHERE state = 'held'")}
    if held != paid:
        problems.append("stock held for %d orders, %d paid" % (len(held), len(paid)))

    def once(db, sql, what):
        dup = db.execute(sql + " GROUP BY 1 HAVING count(*) > 1").fetchall()
        if dup:
            problems.append("%s twice: %s" % (what, dup[:3]))

    once(inv, "SELECT order_id FROM reservations", "stock reserved")
    once(dbs["payment"], "SELECT order_id FROM charges", "payment charged")
    once(dbs["payment"], "SELECT order_id FROM refunds", "payment refunded")
    once(dbs["shipping"], "SELECT order_id FROM shipments", "order shipped")
    once(dbs["points"], "SELECT order_id FROM ledger", "points awarded")
    once(dbs["notification"], "SELECT order_id || '/' || event FROM notifications", "notification sent")
    charged = {r[0] for r in dbs["payment"].execute("SELECT order_id FROM charges")}
    refunded = {r[0] for r in dbs["payment"].execute("SELECT order_id FROM refunds")}
    if charged - refunded != paid:
        problems.append("%d charged - %d refunded != %d paid" % (len(charged), len(refunded), len(paid)))
    shipped = {r[0] for r in dbs["shipping"].execute("SELECT order_id FROM shipments")}
    if shipped != paid:
        problems.append("%d shipped, %d paid" % (len(shipped), len(paid)))
    pointed = {r[0] for r in dbs["points"].execute("SELECT order_id FROM ledger")}
    if pointed != paid:
        problems.append("points for %d orders, %d paid" % (len(pointed), len(paid)))
    notified = dbs["notification"].execute("SELECT count(*) FROM notifications").fetchone()[0]
    if notified != len(orders) + len(paid) + len(cancelled):
        problems.append("%d notifications, want %d" % (notified, len(orders) + len(paid) + len(cancelled)))
    created = dbs["analytics"].execute("SELECT count(*) FROM events WHERE type = 'ORDER_CREATED'").fetchone()[0]
    if created != len(orders):
        problems.append("analytics counted %d orders, %d stored" % (created, len(orders)))
    conn = connect()
    dead = conn.channel().queue_declare(DLQ, passive=True).method.message_count
    conn.close()
    poison = 0
    if os.path.exists(os.path.join(STATE, "poison")):
        with open(os.path.join(STATE, "poison")) as f:
            poison = sum(int(line) for line in f if line.strip())
    # Each poison message is dead-lettered once by every queue it reached.
    want_dead = poison * sum(1 for _, keys in QUEUES.values() if "order.created" in keys or "order.*" in keys)
    if dead != want_dead:
        problems.append("%d messages dead-lettered in %s, want %d" % (dead, DLQ, want_dead))
    for db in dbs.values():
        db.close()
    summary = "%d orders: %d paid, %d cancelled; %d refunds; analytics saw %d; %d dead letters" % (
        len(orders), len(paid), len(cancelled), len(refunded), created, dead)
    return problems, summary


def check(wait):
    deadline = time.time() + wait
    while True:
        problems, summary = check_once()
        if not problems or time.time() >= deadline:
            break
        time.sleep(0.5)
    print(summary)
    for p in problems:
        print("FAIL:", p)
    if problems:
        sys.exit(1)
    print("ok: every order paid or cancelled, stock consistent, nothing processed twice, analytics complete")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run")
    sub.add_parser("setup")
    sp = sub.add_parser("service")
    sp.add_argument("name", choices=SERVICES)
    ap_an = sub.add_parser("analytics")
    ap_an.add_argument("--replay", action="store_true", help="recount from the topic's first offset and exit")
    lp = sub.add_parser("load")
    lp.add_argument("--orders", type=int, default=100)
    lp.add_argument("--unpaid", type=float, default=0.2, help="fraction of orders left unpaid")
    lp.add_argument("--seed", type=int, default=1)
    lp.add_argument("--poison", type=int, default=0, help="malformed messages to send (dead-lettered)")
    cp = sub.add_parser("check")
    cp.add_argument("--wait", type=float, default=0, help="seconds to wait for the end state")
    args = ap.parse_args()
    if args.cmd == "run":
        run()
    elif args.cmd == "setup":
        setup()
    elif args.cmd == "service":
        {"order": order_service, "inventory": inventory_service, "payment": payment_service,
         "shipping": shipping_service, "notification": notification_service,
         "points": points_service, "analytics": analytics_service}[args.name]()
    elif args.cmd == "analytics" and args.replay:
        analytics_replay()
    elif args.cmd == "analytics":
        analytics_service()
    elif args.cmd == "load":
        load(args.orders, args.unpaid, args.seed, args.poison)
    elif args.cmd == "check":
        check(args.wait)


if __name__ == "__main__":
    main()
