package test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceKeys produces one record per key to topic with franz-go (acks=all,
// the default) and header h=v, and returns the partition of each key.
func produceKeys(t testing.TB, c *kgo.Client, topic string, keys ...string) map[string]int32 {
	t.Helper()
	var recs []*kgo.Record
	for _, k := range keys {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte("value of " + k),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}})
	}
	res := c.ProduceSync(ctxT(t, 20*time.Second), recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	parts := map[string]int32{}
	for _, r := range res {
		parts[string(r.Record.Key)] = r.Record.Partition
	}
	return parts
}

// queueDepth is a queue's ready message count.
func queueDepth(t testing.TB, ch *amqp.Channel, name string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("queue %s: %v", name, err)
	}
	return q.Messages
}

// TestQueueBoundToTopic: queue.bind with a topic's name as exchange, in
// the vhost topics show in, binds the queue to the topic. Records a
// franz-go producer sends reach amqp091-go consumers with the key as
// routing key, the record headers as AMQP headers and x-kafka-topic,
// -partition and -offset; per-message ack and requeue work; a binding key
// naming a partition takes that partition only; unbind stops the feed;
// a binding survives a restart and the management API lists it.
func TestQueueBoundToTopic(t *testing.T) {
	b := startBroker(t)
	fatal := fatalIf(t)
	b.createTopic(t, "events", 3, nil)
	ch := b.channel(t)
	for _, q := range []string{"ev.all", "ev.p1", "ev.after"} {
		_, err := ch.QueueDeclare(q, true, false, false, false, nil)
		fatal(err)
	}
	fatal(ch.QueueBind("ev.all", "#", "events", false, nil))
	fatal(ch.QueueBind("ev.p1", "1", "events", false, nil))
	if err := b.channel(t).QueueBind("ev.all", "#", "no-such-topic-or-exchange", false, nil); err == nil {
		t.Fatalf("binding to a missing topic succeeded")
	} else if amqpErrCode(err) != amqp.NotFound {
		t.Fatalf("binding to a missing topic: %v, want NOT_FOUND", err)
	}
	var listed []map[string]any
	fatal(json.Unmarshal(b.api(t, "GET", "/api/queues/%2F/ev.all/bindings", nil, 200), &listed))
	found := false
	for _, l := range listed {
		if l["source"] == "events" && l["source_type"] == "topic" {
			found = true
		}
	}
	if !found {
		t.Fatalf("the topic binding is not listed: %v", listed)
	}

	kc := b.client(t)
	var keys []string
	for i := range 30 {
		keys = append(keys, fmt.Sprintf("k%02d", i))
	}
	parts := produceKeys(t, kc, "events", keys...)
	inP1 := 0
	for _, p := range parts {
		if p == 1 {
			inP1++
		}
	}

	fatal(ch.Qos(5, 0, false))
	ds, err := ch.Consume("ev.all", "", false, false, false, false, nil)
	fatal(err)
	seen := map[string]bool{}
	requeued := ""
	for len(seen) < len(keys) {
		d := recv(t, ds, 20*time.Second)
		k := d.RoutingKey
		if d.Exchange != "events" || string(d.Body) != "value of "+k {
			t.Fatalf("delivery %s: exchange %q body %q", k, d.Exchange, d.Body)
		}
		if d.Headers["h"] != "v" || d.Headers["x-kafka-topic"] != "events" || d.Headers["x-kafka-key"] != k {
			t.Fatalf("delivery %s: headers %v", k, d.Headers)
		}
		if p, _ := d.Headers["x-kafka-partition"].(int32); p != parts[k] {
			t.Fatalf("delivery %s: x-kafka-partition %v, produced to %d", k, d.Headers["x-kafka-partition"], parts[k])
		}
		if _, ok := d.Headers["x-kafka-offset"].(int64); !ok || d.Timestamp.IsZero() {
			t.Fatalf("delivery %s: x-kafka-offset %v timestamp %v", k, d.Headers["x-kafka-offset"], d.Timestamp)
		}
		if requeued == "" {
			requeued = k
			fatal(d.Nack(false, true))
			continue
		}
		if k == requeued && !d.Redelivered {
			t.Fatalf("the requeued %s came back without redelivered", k)
		}
		if seen[k] {
			t.Fatalf("%s delivered twice", k)
		}
		seen[k] = true
		fatal(d.Ack(false))
	}

	ch2 := b.channel(t)
	waitFor(t, 20*time.Second, "partition 1's records in ev.p1", func() bool { return queueDepth(t, ch2, "ev.p1") == inP1 })
	d, ok, err := ch2.Get("ev.p1", true)
	fatal(err)
	if !ok || d.Headers["x-kafka-partition"] != int32(1) {
		t.Fatalf("ev.p1 got %v (ok %v), want a record of partition 1", d.Headers, ok)
	}

	// Unbind stops the feed; a queue bound afterwards gets only what
	// comes after its binding.
	fatal(ch2.QueueUnbind("ev.p1", "1", "events", nil))
	fatal(ch2.QueueBind("ev.after", "", "events", false, nil))
	produceKeys(t, kc, "events", "late1", "late2", "late3")
	waitFor(t, 20*time.Second, "the late records in ev.after", func() bool { return queueDepth(t, ch2, "ev.after") == 3 })
	if n := queueDepth(t, ch2, "ev.p1"); n != inP1-1 {
		t.Fatalf("ev.p1 holds %d after its unbind, want %d", n, inP1-1)
	}

	b.Stop()
	b.Restart()
	kc = b.client(t)
	ch3 := b.channel(t)
	produceKeys(t, kc, "events", "after-restart")
	waitFor(t, 20*time.Second, "a record produced after a restart in ev.after and ev.all", func() bool {
		return queueDepth(t, ch3, "ev.after") >= 4 && queueDepth(t, ch3, "ev.all") >= 4
	})
	// The management API shows where the queue's feed stands.
	var q struct {
		Feeds []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Next      int64  `json:"next_offset"`
			Lag       int64  `json:"lag"`
		} `json:"topic_feeds"`
	}
	var fed int64
	waitFor(t, 10*time.Second, "ev.all's feeds up to date in the management API", func() bool {
		fatal(json.Unmarshal(b.api(t, "GET", "/api/queues/%2F/ev.all", nil, 200), &q))
		fed = 0
		for _, f := range q.Feeds {
			if f.Topic != "events" || f.Lag != 0 {
				return false
			}
			fed += f.Next
		}
		return true
	})
	if len(q.Feeds) != 3 || fed != 34 {
		t.Fatalf("ev.all's feeds: %+v, want 3 partitions fed up to the 34 records produced", q.Feeds)
	}
	// And /metrics, per partition.
	for p := range 3 {
		if v, ok := b.scrape(t).value("sluice_topic_feed_lag", "vhost=/", "queue=ev.all", "topic=events", fmt.Sprintf("partition=%d", p)); !ok || v != 0 {
			t.Fatalf("sluice_topic_feed_lag of ev.all partition %d: %v (present %v), want 0", p, v, ok)
		}
	}
	// Everything is fed now: nothing came twice across the restart.
	if n, m := queueDepth(t, ch3, "ev.all"), queueDepth(t, ch3, "ev.after"); n != 4 || m != 4 {
		t.Fatalf("ev.all holds %d and ev.after %d after the restart, want the 3 late records and 1 after each", n, m)
	}
}

// TestBoundQueueTTLDeliveryLimitDLX: a topic's records in bound queues
// get AMQP's per-message machinery: a quorum queue's x-delivery-limit
// dead-letters a record requeued too often, x-message-ttl dead-letters
// one nobody took in time, both through the dead-letter exchange with
// x-death, and pika consumes a bound queue with manual acks.
func TestBoundQueueTTLDeliveryLimitDLX(t *testing.T) {
	needTool(t, python3Path)
	b := startBroker(t)
	fatal := fatalIf(t)
	b.createTopic(t, "jobs", 1, nil)
	ch := b.channel(t)
	_, err := ch.QueueDeclare("jobs.dead", true, false, false, false, nil)
	fatal(err)
	_, err = ch.QueueDeclare("jobs.work", true, false, false, false, amqp.Table{
		"x-queue-type": "quorum", "x-delivery-limit": int32(1),
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "jobs.dead"})
	fatal(err)
	_, err = ch.QueueDeclare("jobs.ttl", true, false, false, false, amqp.Table{
		"x-message-ttl": int32(100), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "jobs.dead"})
	fatal(err)
	_, err = ch.QueueDeclare("jobs.pika", true, false, false, false, nil)
	fatal(err)
	_, err = ch.QueueDeclare("jobs.capped", true, false, false, false, amqp.Table{"x-max-length": int32(2), "x-overflow": "reject-publish"})
	fatal(err)
	for _, q := range []string{"jobs.work", "jobs.ttl", "jobs.pika", "jobs.capped"} {
		fatal(ch.QueueBind(q, "#", "jobs", false, nil))
	}
	produceKeys(t, b.client(t), "jobs", "j1", "j2", "j3")

	// jobs.ttl: nobody consumes; all three expire into jobs.dead.
	// jobs.work: j1 requeued twice goes past the limit into jobs.dead.
	fatal(ch.Qos(1, 0, false))
	ds, err := ch.Consume("jobs.work", "", false, false, false, false, nil)
	fatal(err)
	rejected := 0
	acked := 0
	for rejected < 2 || acked < 2 {
		d := recv(t, ds, 20*time.Second)
		if d.RoutingKey == "j1" {
			rejected++
			fatal(d.Nack(false, true))
			continue
		}
		acked++
		fatal(d.Ack(false))
	}
	waitFor(t, 20*time.Second, "3 expired and 1 over the delivery limit in jobs.dead", func() bool { return queueDepth(t, ch, "jobs.dead") == 4 })
	reasons := map[string]int{}
	for range 4 {
		d, ok, err := ch.Get("jobs.dead", false)
		fatal(err)
		if !ok {
			t.Fatal("jobs.dead ran dry")
		}
		deaths, _ := d.Headers["x-death"].([]any)
		if len(deaths) == 0 || d.Headers["x-kafka-topic"] != "jobs" {
			t.Fatalf("dead-lettered %s: headers %v", d.RoutingKey, d.Headers)
		}
		death := deaths[0].(amqp.Table)
		reasons[fmt.Sprint(death["queue"], "/", death["reason"])]++
		fatal(d.Ack(false))
	}
	if reasons["jobs.ttl/expired"] != 3 || reasons["jobs.work/delivery_limit"] != 1 {
		t.Fatalf("x-death reasons %v, want 3 expired from jobs.ttl and 1 delivery_limit from jobs.work", reasons)
	}

	// pika: basic_consume with manual acks takes the three records.
	script := `
import sys, pika
conn = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@" + sys.argv[1] + "/%2F"))
ch = conn.channel()
ch.basic_qos(prefetch_count=2)
got = []
for method, props, body in ch.consume("jobs.pika", inactivity_timeout=20):
    if method is None:
        break
    got.append("%s|%s|%s|%s" % (method.routing_key, body.decode(), props.headers.get("h"), props.headers.get("x-kafka-topic")))
    ch.basic_ack(method.delivery_tag)
    if len(got) == 3:
        break
print("\n".join(sorted(got)))
conn.close()
`
	out := runTool(t, 40*time.Second, "", python3Path, "-c", script, b.AMQP).must(t, b, "pika consumer").Stdout
	want := "j1|value of j1|v|jobs\nj2|value of j2|v|jobs\nj3|value of j3|v|jobs"
	if strings.TrimSpace(out) != want {
		t.Fatalf("pika got\n%s\nwant\n%s", out, want)
	}
	if n := queueDepth(t, ch, "jobs.pika"); n != 0 {
		t.Fatalf("jobs.pika holds %d after pika acked everything", n)
	}

	// jobs.capped (x-max-length 2, reject-publish): the feed waits for
	// room instead of dropping j3, and delivers it once j1 is taken.
	waitFor(t, 20*time.Second, "jobs.capped full", func() bool { return queueDepth(t, ch, "jobs.capped") == 2 })
	var order []string
	for len(order) < 3 {
		waitFor(t, 20*time.Second, "a record in jobs.capped", func() bool { return queueDepth(t, ch, "jobs.capped") > 0 })
		d, ok, err := ch.Get("jobs.capped", true)
		fatal(err)
		if ok {
			order = append(order, d.RoutingKey)
		}
	}
	if strings.Join(order, ",") != "j1,j2,j3" {
		t.Fatalf("jobs.capped delivered %v, want j1,j2,j3", order)
	}
}

// TestTopicForwardsToExchange: a topic with sluice.forward.exchange set
// (at CreateTopics, then changed by IncrementalAlterConfigs) publishes
// every record franz-go produces through that exchange: a topic
// exchange routes by the record key, a delayed-message exchange holds a
// record for its x-delay header; a loop (the exchange also bound to the
// topic) does not go round.
func TestTopicForwardsToExchange(t *testing.T) {
	b := startBroker(t)
	fatal := fatalIf(t)
	ch := b.channel(t)
	fatal(ch.ExchangeDeclare("fx", "topic", true, false, false, false, nil))
	fatal(ch.ExchangeDeclare("fx.delay", "x-delayed-message", true, false, false, false, amqp.Table{"x-delayed-type": "direct"}))
	for q, bind := range map[string][2]string{"fx.eu": {"fx", "eu.#"}, "fx.us": {"fx", "us.#"}, "fx.later": {"fx.delay", "k"}} {
		_, err := ch.QueueDeclare(q, true, false, false, false, nil)
		fatal(err)
		fatal(ch.QueueBind(q, bind[1], bind[0], false, nil))
	}
	x := "fx"
	b.createTopic(t, "fwd", 2, map[string]*string{"sluice.forward.exchange": &x})
	kc := b.client(t)
	produceKeys(t, kc, "fwd", "eu.1", "us.1", "eu.2")
	waitFor(t, 20*time.Second, "records routed by key", func() bool {
		return queueDepth(t, ch, "fx.eu") == 2 && queueDepth(t, ch, "fx.us") == 1
	})
	d, ok, err := ch.Get("fx.us", true)
	fatal(err)
	if !ok || d.RoutingKey != "us.1" || d.Exchange != "fx" || d.Headers["h"] != "v" || string(d.Body) != "value of us.1" {
		t.Fatalf("forwarded record: %+v", d)
	}

	// A loop: fx also feeds the topic. eu.3 is forwarded once, lands in
	// the topic again through the binding, and stops there.
	b.api(t, "POST", "/api/bindings/%2F/e/fx/t/fwd", map[string]any{"routing_key": "eu.#"}, 201)
	produceKeys(t, kc, "fwd", "eu.3")
	waitFor(t, 20*time.Second, "eu.3 forwarded", func() bool { return queueDepth(t, ch, "fx.eu") == 3 })
	produceKeys(t, kc, "fwd", "us.2") // a marker after the loop's copy
	waitFor(t, 20*time.Second, "the marker forwarded", func() bool { return queueDepth(t, ch, "fx.us") == 1 })
	if n := queueDepth(t, ch, "fx.eu"); n != 3 {
		t.Fatalf("fx.eu holds %d: a record went round the loop", n)
	}
	ends := b.admin(t)
	total := func() int64 {
		lo, err := ends.ListEndOffsets(ctxT(t, 10*time.Second), "fwd")
		fatal(err)
		n := int64(0)
		lo.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n
	}
	// 5 produced, 1 copy of eu.3 through the binding (durable a moment
	// after it was counted in fx.eu).
	waitFor(t, 20*time.Second, "the loop's copy of eu.3 in the topic", func() bool { return total() >= 6 })
	produceKeys(t, kc, "fwd", "us.3") // another marker, after the copy was fed
	waitFor(t, 20*time.Second, "the second marker forwarded", func() bool { return queueDepth(t, ch, "fx.us") == 2 })
	if n, q := total(), queueDepth(t, ch, "fx.eu"); n != 7 || q != 3 {
		t.Fatalf("topic fwd holds %d records (want 6 produced and 1 copy), fx.eu %d (want 3): a record went round the loop", n, q)
	}

	// Forward to a delayed exchange instead: x-delay holds the record.
	y := "fx.delay"
	_, err = ends.AlterTopicConfigs(ctxT(t, 10*time.Second), []kadm.AlterConfig{{Name: "sluice.forward.exchange", Value: &y}}, "fwd")
	fatal(err)
	res := kc.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "fwd", Key: []byte("k"), Value: []byte("later"),
		Headers: []kgo.RecordHeader{{Key: "x-delay", Value: []byte(strconv.Itoa(300))}}})
	fatal(res.FirstErr())
	waitFor(t, 20*time.Second, "the delayed record", func() bool { return queueDepth(t, ch, "fx.later") == 1 })
	d, ok, err = ch.Get("fx.later", true)
	fatal(err)
	if !ok || string(d.Body) != "later" || d.Headers["x-delay"] != int64(300) {
		t.Fatalf("delayed record: ok %v body %q headers %v", ok, d.Body, d.Headers)
	}
}

// TestCLIBindsQueueToTopic: `sluice binding declare TOPIC QUEUE
// --source-type topic` binds a queue to a topic through the management
// API, `binding list` shows it as topic:NAME, records reach the queue, and
// `binding delete` removes it.
func TestCLIBindsQueueToTopic(t *testing.T) {
	b := startBroker(t)
	fatal := fatalIf(t)
	b.createTopic(t, "payments", 2, nil)
	ch := b.channel(t)
	_, err := ch.QueueDeclare("pay.retries", true, false, false, false, nil)
	fatal(err)
	mustAdmin(t, b, "binding", "declare", "payments", "pay.retries", "--source-type", "topic", "--routing-key", "#")
	if out := mustAdmin(t, b, "binding", "list"); !strings.Contains(out, "topic:payments") {
		t.Fatalf("binding list does not show the topic binding:\n%s", out)
	}
	produceKeys(t, b.client(t), "payments", "p1", "p2")
	waitFor(t, 20*time.Second, "the records in pay.retries", func() bool { return queueDepth(t, ch, "pay.retries") == 2 })
	mustAdmin(t, b, "binding", "delete", "payments", "pay.retries", "--source-type", "topic", "--routing-key", "#")
	if out := mustAdmin(t, b, "binding", "list"); strings.Contains(out, "topic:payments") {
		t.Fatalf("the topic binding is still listed after its deletion:\n%s", out)
	}
}

// TestBoundQueueTopicRecreated: a binding outlives its topic; a topic
// deleted and created anew under the name is fed from its first record,
// though its offsets restart below where the old one's feed stood.
func TestBoundQueueTopicRecreated(t *testing.T) {
	b := startBroker(t)
	fatal := fatalIf(t)
	b.createTopic(t, "reborn", 1, nil)
	ch := b.channel(t)
	_, err := ch.QueueDeclare("reborn.q", true, false, false, false, nil)
	fatal(err)
	fatal(ch.QueueBind("reborn.q", "#", "reborn", false, nil))
	kc := b.client(t)
	produceKeys(t, kc, "reborn", "old1", "old2")
	waitFor(t, 20*time.Second, "the old topic's records", func() bool { return queueDepth(t, ch, "reborn.q") == 2 })
	_, err = b.admin(t).DeleteTopics(ctxT(t, 10*time.Second), "reborn")
	fatal(err)
	b.createTopic(t, "reborn", 1, nil)
	produceKeys(t, kc, "reborn", "new1", "new2", "new3")
	waitFor(t, 20*time.Second, "the new topic's records", func() bool { return queueDepth(t, ch, "reborn.q") == 5 })
	var keys []string
	for {
		d, ok, err := ch.Get("reborn.q", true)
		fatal(err)
		if !ok {
			break
		}
		keys = append(keys, d.RoutingKey)
	}
	if strings.Join(keys, ",") != "old1,old2,new1,new2,new3" {
		t.Fatalf("reborn.q got %v", keys)
	}
}
