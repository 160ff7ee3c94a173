"""pika and a quorum queue on a three-node Sluice cluster: the queue declared
through node 1, 300 messages published through node 2 with publisher
confirms, consumed through node 3 with manual acks; after 100 the script
kills node 3 (SIGKILL) under its own consumer, reconnects to another node
as a pika application does (its reconnect loop over the cluster's nodes),
consumes again and publishes 100 more through node 1: every confirmed
message is delivered; the few delivered twice are those in flight when the
node died (deliveries not yet acked, acks not yet replicated), not more than
a few prefetch windows.
Usage: pika_quorum.py HOST:PORT HOST:PORT HOST:PORT NODE3_PID. Exits
non-zero on any failure."""
import os
import signal
import sys
import time

import pika

Q = "pika-qq"


def params(addr):
    host, port = addr.rsplit(":", 1)
    return pika.ConnectionParameters(host, int(port), connection_attempts=3, retry_delay=0.5)


def main():
    addrs = sys.argv[1:4]
    pid3 = int(sys.argv[4])
    c1 = pika.BlockingConnection(params(addrs[0]))
    ch1 = c1.channel()
    ch1.queue_declare(Q, durable=True, arguments={"x-queue-type": "quorum"})

    c2 = pika.BlockingConnection(params(addrs[1]))
    ch2 = c2.channel()
    for _ in range(200):
        try:
            ch2.queue_declare(Q, durable=True, passive=True)
            break
        except pika.exceptions.ChannelClosedByBroker:
            ch2 = c2.channel()
            c2.sleep(0.05)
    else:
        sys.exit("node 2 never saw the quorum queue declared through node 1")
    ch2.confirm_delivery()
    for i in range(300):
        # Raises on a nack: confirm_delivery makes basic_publish wait.
        ch2.basic_publish("", Q, str(i).encode(), pika.BasicProperties(delivery_mode=2))
    print("published 300 through node 2, each confirmed")

    seen = {}
    acked = set()
    killed = False
    # Node 3 first; once it is gone, the others (a pika application's
    # list of cluster nodes).
    order = [addrs[2], addrs[0], addrs[1]]
    deadline = time.time() + 60
    reconnects = 0
    while len(seen) < 300 and time.time() < deadline:
        addr = order[0]
        try:
            conn = pika.BlockingConnection(params(addr))
            ch = conn.channel()
            ch.basic_qos(prefetch_count=10)
            for method, props, body in ch.consume(Q, inactivity_timeout=5):
                if method is None:
                    if len(seen) >= 300:
                        break
                    continue
                b = body.decode()
                seen[b] = seen.get(b, 0) + 1
                ch.basic_ack(method.delivery_tag)
                acked.add(b)
                if len(acked) == 100 and not killed:
                    killed = True
                    os.kill(pid3, signal.SIGKILL)
                    print(f"killed node 3 (pid {pid3}) under the consumer after 100 acks")
                if len(seen) >= 300:
                    break
            try:
                conn.close()
            except Exception:
                pass
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.StreamLostError,
                pika.exceptions.ConnectionClosedByBroker, pika.exceptions.ChannelClosedByBroker,
                ConnectionResetError) as e:
            reconnects += 1
            print(f"connection through {addr} lost ({type(e).__name__}); reconnecting to another node")
            order = order[1:] + order[:1]
            time.sleep(0.2)
    if not killed:
        sys.exit("node 3 was never killed")
    missing = [i for i in range(300) if str(i) not in seen]
    if missing:
        sys.exit(f"{len(missing)} confirmed messages never delivered, first {missing[:10]}")
    twice = sorted(int(b) for b, n in seen.items() if n > 1)
    if len(twice) > 40:
        sys.exit(f"{len(twice)} messages delivered twice, more than were in flight at the kill: {twice[:20]}")
    print(f"all 300 delivered across the loss of the consumer's node after {reconnects} reconnects; {len(twice)} delivered twice")

    # The queue takes publishes through another node too.
    c1.sleep(0)
    ch1.confirm_delivery()
    for i in range(300, 400):
        ch1.basic_publish("", Q, str(i).encode(), pika.BasicProperties(delivery_mode=2))
    got = []
    for method, props, body in ch1.consume(Q, inactivity_timeout=10):
        if method is None:
            break
        got.append(int(body.decode()))
        ch1.basic_ack(method.delivery_tag)
        if len(set(got)) >= 100:
            break
    if sorted(set(got)) != list(range(300, 400)):
        sys.exit(f"published 300..399 through node 1, consumed {sorted(set(got))[:10]}... ({len(set(got))})")
    print("100 more published and consumed through node 1")


if __name__ == "__main__":
    main()
