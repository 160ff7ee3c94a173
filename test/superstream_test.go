package test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topics as super streams (docs/bridge.md): a Kafka topic with N
// partitions appears in the Kafka vhost as RabbitMQ shows a super stream,
// an exchange named after the topic and N partition stream queues.

// TestSuperStreamPublishAMQPReadKafka: the topic's exchange and partition
// queues are there for amqp091-go (passive declares) and the management
// API as RabbitMQ lists a super stream; publishing to the exchange with
// confirms appends to the topic, each routing key landing in the
// partition a franz-go producer picks for the same key, with the AMQP
// properties and headers as record headers; the views cannot be deleted,
// may be redeclared, follow CreatePartitions and deletion, and a topic
// whose name an exchange holds is refused.
func TestSuperStreamPublishAMQPReadKafka(t *testing.T) {
	b := startBroker(t)
	fatal := fatalIf(t)
	b.createTopic(t, "orders", 3, nil)

	ch := b.channel(t)
	fatal(ch.ExchangeDeclarePassive("orders", "direct", true, false, false, false, nil))
	for i := range 3 {
		if _, err := ch.QueueDeclarePassive(fmt.Sprintf("orders-%d", i), true, false, false, false, nil); err != nil {
			t.Fatalf("partition queue orders-%d: %v", i, err)
		}
	}
	if _, err := ch.QueueDeclarePassive("orders-3", true, false, false, false, nil); amqpErrCode(err) != amqp.NotFound {
		t.Fatalf("orders-3 (no such partition): %v, want NOT_FOUND", err)
	}

	var x struct {
		Type      string         `json:"type"`
		Durable   bool           `json:"durable"`
		Arguments map[string]any `json:"arguments"`
	}
	fatal(json.Unmarshal(b.api(t, "GET", "/api/exchanges/%2F/orders", nil, 200), &x))
	if x.Type != "direct" || !x.Durable || x.Arguments["x-super-stream"] != true {
		t.Errorf("exchange orders: %+v, want a durable direct exchange with x-super-stream: true", x)
	}
	var q struct {
		Type string `json:"type"`
	}
	fatal(json.Unmarshal(b.api(t, "GET", "/api/queues/%2F/orders-1", nil, 200), &q))
	if q.Type != "stream" {
		t.Errorf("queue orders-1: type %q, want stream", q.Type)
	}
	var bs []struct {
		Destination string         `json:"destination"`
		RoutingKey  string         `json:"routing_key"`
		Arguments   map[string]any `json:"arguments"`
	}
	fatal(json.Unmarshal(b.api(t, "GET", "/api/exchanges/%2F/orders/bindings/source", nil, 200), &bs))
	if len(bs) != 3 {
		t.Fatalf("bindings of orders: %+v, want 3", bs)
	}
	for i, bd := range bs {
		if bd.Destination != fmt.Sprintf("orders-%d", i) || bd.RoutingKey != strconv.Itoa(i) || bd.Arguments["x-stream-partition-order"] != float64(i) {
			t.Errorf("binding %d: %+v", i, bd)
		}
	}

	// The same keys through both protocols.
	var keys []string
	for i := range 24 {
		keys = append(keys, fmt.Sprintf("customer-%d", i))
	}
	ch = b.channel(t) // the failed passive declare closed the first
	fatal(ch.Confirm(false))
	for _, k := range keys {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), "orders", k, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, ContentType: "application/json", MessageId: "m-" + k,
			Headers: amqp.Table{"tenant": "acme", "attempt": int32(2)}, Body: []byte(`{"via":"amqp"}`)})
		fatal(err)
		if ok, err := dc.WaitContext(ctxT(t, 10*time.Second)); !ok || err != nil {
			t.Fatalf("publish %s: confirmed %v, %v", k, ok, err)
		}
	}
	prod := b.client(t)
	for _, k := range keys {
		fatal(prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "orders", Key: []byte(k), Value: []byte("kafka")}).FirstErr())
	}

	c := b.client(t, kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	viaAMQP, viaKafka := map[string]int32{}, map[string]int32{}
	for _, r := range consumeN(t, c, 2*len(keys), 20*time.Second) {
		if string(r.Value) == "kafka" {
			viaKafka[string(r.Key)] = r.Partition
			continue
		}
		viaAMQP[string(r.Key)] = r.Partition
		h := map[string]string{}
		for _, rh := range r.Headers {
			h[rh.Key] = string(rh.Value)
		}
		if h["content-type"] != "application/json" || h["message-id"] != "m-"+string(r.Key) || h["tenant"] != "acme" || h["attempt"] != "2" || h["amqp.exchange"] != "orders" {
			t.Errorf("record %s: headers %v", r.Key, h)
		}
	}
	used := map[int32]bool{}
	for _, k := range keys {
		p, ok := viaAMQP[k]
		if !ok || p != viaKafka[k] {
			t.Errorf("key %s: partition %d (found %v) over AMQP, %d from franz-go", k, p, ok, viaKafka[k])
		}
		used[p] = true
	}
	if len(used) < 2 {
		t.Errorf("24 keys all in one partition: %v", used)
	}

	// The views are not deleted over AMQP, and may be redeclared.
	ch2 := b.channel(t)
	if err := ch2.ExchangeDelete("orders", false, false); amqpErrCode(err) != amqp.AccessRefused {
		t.Errorf("deleting the super stream exchange: %v, want ACCESS_REFUSED", err)
	}
	ch3 := b.channel(t)
	if _, err := ch3.QueueDelete("orders-0", false, false, false); amqpErrCode(err) != amqp.AccessRefused {
		t.Errorf("deleting a partition queue: %v, want ACCESS_REFUSED", err)
	}
	for _, path := range []string{"/api/exchanges/%2F/orders", "/api/queues/%2F/orders-1"} {
		if code, out := b.httpDo(t, "guest", "guest", "DELETE", path, nil); code != 403 {
			t.Errorf("DELETE %s: %d %s, want 403", path, code, out)
		}
	}
	ch4 := b.channel(t)
	fatal(ch4.ExchangeDeclare("orders", "direct", true, false, false, false, amqp.Table{"x-super-stream": true}))
	declareStream(t, ch4, "orders-2", nil)

	// They follow the topic.
	if _, err := b.admin(t).CreatePartitions(ctxT(t, 10*time.Second), 4, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := ch4.QueueDeclarePassive("orders-3", true, false, false, false, nil); err != nil {
		t.Fatalf("orders-3 after CreatePartitions: %v", err)
	}
	if _, err := b.admin(t).DeleteTopics(ctxT(t, 10*time.Second), "orders"); err != nil {
		t.Fatal(err)
	}
	if err := ch4.ExchangeDeclarePassive("orders", "direct", true, false, false, false, nil); amqpErrCode(err) != amqp.NotFound {
		t.Errorf("exchange orders after the topic's deletion: %v, want NOT_FOUND", err)
	}

	// A name an exchange holds is refused to a topic.
	ch5 := b.channel(t)
	fatal(ch5.ExchangeDeclare("taken", "fanout", true, false, false, false, nil))
	resp, err := b.admin(t).CreateTopic(ctxT(t, 10*time.Second), 1, 1, nil, "taken")
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Errorf("topic named after an exchange: %v, want TOPIC_ALREADY_EXISTS", err)
	}
}

// TestSuperStreamConsumeKafkaRecords: records a franz-go producer wrote
// (zstd-compressed batches, keys, headers, timestamps) are consumed by
// amqp091-go from the partition queues with x-stream-offset first, an
// offset and a timestamp, prefetch and manual acks: each delivery carries
// the key (routing key and x-kafka-key), the headers, the offset in
// x-stream-offset and the timestamp (property in seconds, x-kafka-timestamp
// in ms); the same after a restart.
func TestSuperStreamConsumeKafkaRecords(t *testing.T) {
	b := startBroker(t)
	fatal := fatalIf(t)
	b.createTopic(t, "events", 2, nil)
	prod := b.client(t, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	type sent struct {
		key    string
		ts     time.Time
		offset int64
	}
	byPart := map[int32][]sent{}
	for i := range 20 {
		r := &kgo.Record{Topic: "events", Key: []byte(fmt.Sprintf("user-%d", i)), Value: []byte(fmt.Sprintf("event %d", i)),
			Timestamp: base.Add(time.Duration(i) * time.Second),
			Headers:   []kgo.RecordHeader{{Key: "source", Value: []byte("franz")}, {Key: "content-type", Value: []byte("text/plain")}}}
		fatal(prod.ProduceSync(ctxT(t, 10*time.Second), r).FirstErr())
		byPart[r.Partition] = append(byPart[r.Partition], sent{string(r.Key), r.Timestamp, r.Offset})
	}
	if len(byPart) != 2 {
		t.Fatalf("20 keys in %d partitions", len(byPart))
	}

	check := func(d amqp.Delivery, want sent) {
		t.Helper()
		if d.RoutingKey != want.key || d.Headers["x-kafka-key"] != want.key {
			t.Errorf("offset %d: routing key %q, x-kafka-key %v, want %s", want.offset, d.RoutingKey, d.Headers["x-kafka-key"], want.key)
		}
		if d.Headers["x-stream-offset"] != want.offset {
			t.Errorf("key %s: x-stream-offset %v, want %d", want.key, d.Headers["x-stream-offset"], want.offset)
		}
		if d.Headers["x-kafka-timestamp"] != want.ts.UnixMilli() || d.Timestamp.Unix() != want.ts.Unix() {
			t.Errorf("key %s: timestamp %v / x-kafka-timestamp %v, want %v", want.key, d.Timestamp, d.Headers["x-kafka-timestamp"], want.ts)
		}
		if d.Headers["source"] != "franz" || d.ContentType != "text/plain" {
			t.Errorf("key %s: headers %v, content type %q", want.key, d.Headers, d.ContentType)
		}
	}
	consume := func(p int32, offset any, want []sent) {
		t.Helper()
		conn := b.dial(t)
		_, ds := consumeStream(t, conn, fmt.Sprintf("events-%d", p), offset, 3)
		for _, w := range want {
			d := recv(t, ds, 10*time.Second)
			check(d, w)
			fatal(d.Ack(false))
		}
		conn.Close()
	}
	for p, s := range byPart {
		consume(p, "first", s)
		consume(p, s[2].offset, s[2:])
		// A timestamp in seconds: the first record stamped at or after it.
		consume(p, s[3].ts.Truncate(time.Second), s[3:])
	}

	b.Stop()
	b.Restart()
	for p, s := range byPart {
		consume(p, "first", s)
	}
}

// TestStreamQueueIsTopic: a stream queue declared over AMQP (amqp091-go)
// in the Kafka vhost is a one-partition topic of its name: franz-go sees
// it in Metadata with the stream's retention as topic configs and
// produces to it idempotently, kcat reads what both protocols appended in
// one offset order, amqp091-go and pika consume the same records; all of
// it survives a restart. Deleting the queue deletes the topic and the
// other way round; the topic cannot grow, and names held by the other
// protocol are refused by each.
func TestStreamQueueIsTopic(t *testing.T) {
	needTool(t, kcatPath)
	needPythonModule(t, "pika")
	b := startBroker(t)
	fatal := fatalIf(t)
	ch := b.channel(t)
	declareStream(t, ch, "audit", amqp.Table{"x-max-age": "7D"})

	adm := b.admin(t)
	td, err := adm.ListTopics(ctxT(t, 10*time.Second), "audit")
	fatal(err)
	if d := td["audit"]; d.Err != nil || len(d.Partitions) != 1 {
		t.Fatalf("topic audit in Metadata: %+v", d)
	}
	rc, err := adm.DescribeTopicConfigs(ctxT(t, 10*time.Second), "audit")
	fatal(err)
	cfg, err := rc.On("audit", nil)
	fatal(err)
	for _, c := range cfg.Configs {
		if c.Key == "retention.ms" && (c.Value == nil || *c.Value != "604800000") {
			t.Errorf("retention.ms %v, want 7 days", c.MaybeValue())
		}
	}

	publishConfirmed(t, ch, "audit", "a0", "a1", "a2")
	prod := b.client(t) // idempotent, franz-go's default
	for i := range 3 {
		r := &kgo.Record{Topic: "audit", Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("f%d", i)),
			Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("franz")}}}
		fatal(prod.ProduceSync(ctxT(t, 10*time.Second), r).FirstErr())
		if r.Offset != int64(3+i) {
			t.Errorf("produced at offset %d, want %d", r.Offset, 3+i)
		}
	}
	want := []string{"a0", "a1", "a2", "f0", "f1", "f2"}

	readKcat := func() {
		t.Helper()
		out := b.kcat(t, "", "-C", "-t", "audit", "-o", "beginning", "-e", "-f", "%o %s\n").must(t, b, "kcat consume").Stdout
		lines := splitLines(out)
		if len(lines) != len(want) {
			t.Fatalf("kcat read %q, want %d records", out, len(want))
		}
		for i, l := range lines {
			if l != fmt.Sprintf("%d %s", i, want[i]) {
				t.Errorf("kcat line %d: %q, want %d %s", i, l, i, want[i])
			}
		}
	}
	readAMQP := func() {
		t.Helper()
		conn := b.dial(t)
		defer conn.Close()
		_, ds := consumeStream(t, conn, "audit", "first", 10)
		for i, w := range want {
			d := recv(t, ds, 10*time.Second)
			if string(d.Body) != w || d.Headers["x-stream-offset"] != int64(i) {
				t.Errorf("delivery %d: %q at %v, want %q at %d", i, d.Body, d.Headers["x-stream-offset"], w, i)
			}
			if i >= 3 && (d.Headers["origin"] != "franz" || d.Headers["x-kafka-key"] != fmt.Sprintf("k%d", i-3)) {
				t.Errorf("delivery %d headers %v", i, d.Headers)
			}
			fatal(d.Ack(false))
		}
	}
	readPika := func() {
		t.Helper()
		script := `
import sys, pika
conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
ch = conn.channel()
ch.basic_qos(prefetch_count=10)
got = []
def on(ch, m, props, body):
    h = props.headers or {}
    got.append("%d %s %s" % (h["x-stream-offset"], body.decode(), h.get("x-kafka-key", "-")))
    ch.basic_ack(m.delivery_tag)
    if len(got) == 6:
        ch.stop_consuming()
ch.basic_consume("audit", on, arguments={"x-stream-offset": "first"})
conn.call_later(20, ch.stop_consuming)
ch.start_consuming()
print("\n".join(got))
`
		out := runTool(t, 40*time.Second, "", python3Path, "-c", script, "amqp://guest:guest@"+b.AMQP+"/%2F").must(t, b, "pika consume").Stdout
		// Published through the default exchange, the routing key (the
		// queue's name) is the record key.
		wantPika := []string{"0 a0 audit", "1 a1 audit", "2 a2 audit", "3 f0 k0", "4 f1 k1", "5 f2 k2"}
		if got := splitLines(out); fmt.Sprint(got) != fmt.Sprint(wantPika) {
			t.Errorf("pika read %q, want %q", got, wantPika)
		}
	}
	readKcat()
	readAMQP()
	readPika()

	b.Stop()
	b.Restart()
	readKcat()
	readAMQP()
	declareStream(t, b.channel(t), "audit", amqp.Table{"x-max-age": "7D"}) // a redeclare is fine

	// One partition only.
	grown, err := b.admin(t).CreatePartitions(ctxT(t, 10*time.Second), 2, "audit")
	fatal(err)
	if !errors.Is(grown["audit"].Err, kerr.InvalidPartitions) {
		t.Errorf("growing a stream's topic: %+v, want INVALID_PARTITIONS", grown["audit"])
	}

	// Deleting the queue deletes the topic.
	ch = b.channel(t)
	if _, err := ch.QueueDelete("audit", false, false, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "topic audit to go", func() bool {
		td, err := b.admin(t).ListTopics(ctxT(t, 10*time.Second), "audit")
		return err == nil && td["audit"].Err != nil
	})
	// Deleting the topic deletes the queue.
	declareStream(t, ch, "ledger", nil)
	if _, err := b.admin(t).DeleteTopics(ctxT(t, 10*time.Second), "ledger"); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclarePassive("ledger", true, false, false, false, nil); amqpErrCode(err) != amqp.NotFound {
		t.Fatalf("queue ledger after its topic's deletion: %v, want NOT_FOUND", err)
	}

	// Names held by the other protocol.
	ch = b.channel(t)
	_, err = ch.QueueDeclare("jobs-0", true, false, false, false, nil)
	fatal(err)
	resp, err := b.admin(t).CreateTopic(ctxT(t, 10*time.Second), 1, 1, nil, "jobs")
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Errorf("topic whose partition queue name a queue holds: %v, want TOPIC_ALREADY_EXISTS", err)
	}
	b.createTopic(t, "events", 1, nil)
	_, err = ch.QueueDeclare("events", true, false, false, false, amqp.Table{"x-queue-type": "stream"})
	if amqpErrCode(err) != amqp.PreconditionFailed {
		t.Errorf("stream named after a topic: %v, want PRECONDITION_FAILED", err)
	}
}

// TestSuperStreamConfirmedSurvivesKill: what amqp091-go publishers had
// confirmed on a super stream's exchange, while a franz-go producer wrote
// to the same topic, is there after kill -9, each record once, for
// franz-go and through the partition queues alike.
func TestSuperStreamConfirmedSurvivesKill(t *testing.T) {
	b := startBroker(t)
	fatal := fatalIf(t)
	b.createTopic(t, "ledger", 2, nil)
	ch := b.channel(t)
	fatal(ch.Confirm(false))
	prod := b.client(t)
	const n = 60
	var dcs []*amqp.DeferredConfirmation
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), "ledger", fmt.Sprintf("acct-%d", i), false, false,
			amqp.Publishing{Body: []byte(fmt.Sprintf("amqp-%d", i))})
		fatal(err)
		dcs = append(dcs, dc)
		prod.Produce(ctxT(t, 10*time.Second), &kgo.Record{Topic: "ledger", Key: []byte(fmt.Sprintf("acct-%d", i)), Value: []byte(fmt.Sprintf("kafka-%d", i))}, nil)
	}
	for i, dc := range dcs {
		if ok, err := dc.WaitContext(ctxT(t, 10*time.Second)); !ok || err != nil {
			t.Fatalf("confirm %d: %v %v", i, ok, err)
		}
	}
	fatal(prod.Flush(ctxT(t, 10*time.Second)))
	b.Kill()
	b.Restart()

	c := b.client(t, kgo.ConsumeTopics("ledger"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	for _, r := range consumeN(t, c, 2*n, 20*time.Second) {
		seen[string(r.Value)]++
	}
	for i := range n {
		for _, v := range []string{fmt.Sprintf("amqp-%d", i), fmt.Sprintf("kafka-%d", i)} {
			if seen[v] != 1 {
				t.Errorf("%s read %d times after kill -9", v, seen[v])
			}
		}
	}
	conn := b.dial(t)
	total := 0
	for p := range 2 {
		q, err := b.channel(t).QueueDeclarePassive(fmt.Sprintf("ledger-%d", p), true, false, false, false, nil)
		fatal(err)
		if q.Messages > 0 {
			_, ds := consumeStream(t, conn, q.Name, "first", 50)
			for range q.Messages {
				d := recv(t, ds, 10*time.Second)
				fatal(d.Ack(false))
			}
		}
		total += q.Messages
	}
	if total != 2*n {
		t.Errorf("partition queues hold %d messages, want %d", total, 2*n)
	}
}
