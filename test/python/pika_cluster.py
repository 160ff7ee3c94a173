"""pika against a three-node Sluice cluster: a queue declared through node 1,
published to through node 2 with publisher confirms, consumed through node 3
with manual acks (in order, nothing lost), and read with basic.get through
node 2. Usage: pika_cluster.py HOST:PORT HOST:PORT HOST:PORT (AMQP of nodes
1, 2, 3). Exits non-zero on any failure."""
import sys

import pika


def connect(addr):
    host, port = addr.rsplit(":", 1)
    return pika.BlockingConnection(pika.ConnectionParameters(host, int(port)))


def main():
    a1, a2, a3 = sys.argv[1:4]
    c1, c2, c3 = connect(a1), connect(a2), connect(a3)
    ch1 = c1.channel()
    ch1.queue_declare("pika-home-1", durable=True)

    # Node 2 learns of the queue through the metadata group.
    ch2 = c2.channel()
    for _ in range(200):
        try:
            ch2.queue_declare("pika-home-1", durable=True, passive=True)
            break
        except pika.exceptions.ChannelClosedByBroker:
            ch2 = c2.channel()
            c2.sleep(0.05)
    else:
        sys.exit("node 2 never saw the queue declared through node 1")

    ch2.confirm_delivery()
    n = 100
    for i in range(n):
        # Raises on a nack: confirm_delivery makes basic_publish wait.
        ch2.basic_publish("", "pika-home-1", str(i).encode(),
                          pika.BasicProperties(delivery_mode=2), mandatory=True)
    print(f"published {n} through node 2, each confirmed")

    ch3 = c3.channel()
    ch3.basic_qos(prefetch_count=10)
    got = []

    def on_message(ch, method, props, body):
        got.append(body.decode())
        ch.basic_ack(method.delivery_tag)
        if len(got) == n - 1:
            ch.stop_consuming()

    ch3.basic_consume("pika-home-1", on_message)
    c3.call_later(30, ch3.stop_consuming)
    ch3.start_consuming()
    if got != [str(i) for i in range(n - 1)]:
        sys.exit(f"consumed through node 3: {got[:10]}... ({len(got)}), want 0..{n - 2} in order")
    print(f"consumed {len(got)} through node 3 in order")

    # What node 3's consumer was sent beyond that (the last message, unacked
    # or still on its way) goes back to the queue with its channel.
    ch3.close()
    method = None
    for _ in range(200):
        method, props, body = ch2.basic_get("pika-home-1", auto_ack=False)
        if method is not None:
            break
        c2.sleep(0.05)
    if method is None or body.decode() != str(n - 1):
        sys.exit(f"basic.get through node 2: {method} {body}")
    ch2.basic_ack(method.delivery_tag)
    print("basic.get through node 2 took the last one")

    q = ch1.queue_declare("pika-home-1", durable=True, passive=True)
    for _ in range(100):
        if q.method.message_count == 0:
            break
        c1.sleep(0.05)
        q = ch1.queue_declare("pika-home-1", durable=True, passive=True)
    if q.method.message_count != 0:
        sys.exit(f"node 1's queue holds {q.method.message_count} after everything was acked")
    for c in (c1, c2, c3):
        c.close()
    print("ok")


if __name__ == "__main__":
    main()
