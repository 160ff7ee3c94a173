package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Stream queues (x-queue-type: stream) through amqp091-go, with the
// behaviour RabbitMQ documents for streams used over AMQP 0-9-1.

func declareStream(t testing.TB, ch *amqp.Channel, name string, args amqp.Table) {
	t.Helper()
	a := amqp.Table{"x-queue-type": "stream"}
	for k, v := range args {
		a[k] = v
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, a); err != nil {
		t.Fatalf("declare stream %s: %v", name, err)
	}
}

// publishConfirmed publishes bodies to queue through the default exchange
// and waits for every confirm.
func publishConfirmed(t testing.TB, ch *amqp.Channel, queue string, bodies ...string) {
	t.Helper()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 30*time.Second)
	var cs []*amqp.DeferredConfirmation
	for _, b := range bodies {
		c, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp.Publishing{Body: []byte(b), Headers: amqp.Table{"n": b}})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	for i, c := range cs {
		ok, err := c.WaitContext(ctx)
		if err != nil || !ok {
			t.Fatalf("confirm of message %d: ok=%v err=%v", i, ok, err)
		}
	}
}

// consumeStream opens a channel with prefetch and consumes queue from
// offset (nil: no x-stream-offset argument).
func consumeStream(t testing.TB, conn *amqp.Connection, queue string, offset any, prefetch int) (*amqp.Channel, <-chan amqp.Delivery) {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(prefetch, 0, false); err != nil {
		t.Fatal(err)
	}
	var args amqp.Table
	if offset != nil {
		args = amqp.Table{"x-stream-offset": offset}
	}
	d, err := ch.Consume(queue, "", false, false, false, false, args)
	if err != nil {
		t.Fatalf("consume %s from %v: %v", queue, offset, err)
	}
	return ch, d
}

// takeStream receives n deliveries, acks each, and returns their bodies
// and x-stream-offset headers.
func takeStream(t testing.TB, d <-chan amqp.Delivery, n int) (bodies []string, offsets []int64) {
	t.Helper()
	for i := 0; i < n; i++ {
		m := recv(t, d, 10*time.Second)
		off, ok := m.Headers["x-stream-offset"].(int64)
		if !ok {
			t.Fatalf("delivery %q has x-stream-offset %#v, want an int64 header", m.Body, m.Headers["x-stream-offset"])
		}
		if m.Headers["n"] != string(m.Body) {
			t.Fatalf("delivery %q lost its own header: %v", m.Body, m.Headers)
		}
		bodies = append(bodies, string(m.Body))
		offsets = append(offsets, off)
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	return bodies, offsets
}

func numbered(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func wantBodies(t testing.TB, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func TestAMQPStreamOffsets(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	pub := b.channel(t)
	declareStream(t, pub, "events", nil)
	publishConfirmed(t, pub, "events", numbered("m", 0, 5)...)

	t.Run("first", func(t *testing.T) {
		_, d := consumeStream(t, conn, "events", "first", 10)
		got, offs := takeStream(t, d, 5)
		wantBodies(t, "first", got, numbered("m", 0, 5))
		for i, o := range offs {
			if o != int64(i) {
				t.Fatalf("offsets %v, want 0..4", offs)
			}
		}
		noDelivery(t, d, 100*time.Millisecond)
	})
	t.Run("numeric offset", func(t *testing.T) {
		_, d := consumeStream(t, conn, "events", int64(3), 10)
		got, offs := takeStream(t, d, 2)
		wantBodies(t, "offset 3", got, []string{"m3", "m4"})
		if offs[0] != 3 {
			t.Fatalf("first offset %d, want 3", offs[0])
		}
		noDelivery(t, d, 100*time.Millisecond)
	})
	t.Run("last", func(t *testing.T) {
		_, d := consumeStream(t, conn, "events", "last", 10)
		got, _ := takeStream(t, d, 1)
		wantBodies(t, "last", got, []string{"m4"})
		noDelivery(t, d, 100*time.Millisecond)
	})
	t.Run("interval", func(t *testing.T) {
		_, d := consumeStream(t, conn, "events", "1h", 10)
		got, _ := takeStream(t, d, 5)
		wantBodies(t, "1h ago", got, numbered("m", 0, 5))
	})
	t.Run("next and default", func(t *testing.T) {
		_, next := consumeStream(t, conn, "events", "next", 10)
		_, dflt := consumeStream(t, conn, "events", nil, 10)
		noDelivery(t, next, 100*time.Millisecond)
		noDelivery(t, dflt, 10*time.Millisecond)
		publishConfirmed(t, pub, "events", "m5")
		for _, d := range []<-chan amqp.Delivery{next, dflt} {
			got, offs := takeStream(t, d, 1)
			wantBodies(t, "next", got, []string{"m5"})
			if offs[0] != 5 {
				t.Fatalf("offset of m5 is %d, want 5", offs[0])
			}
		}
	})
	t.Run("timestamp", func(t *testing.T) {
		// x-stream-offset as an AMQP timestamp (seconds): wait for the
		// next whole second, then publish; a consumer from that second
		// sees only what came after it.
		now := time.Now()
		time.Sleep(now.Truncate(time.Second).Add(time.Second).Sub(now) + 10*time.Millisecond)
		from := time.Now().Truncate(time.Second)
		publishConfirmed(t, pub, "events", "t0", "t1")
		_, d := consumeStream(t, conn, "events", from, 10)
		got, offs := takeStream(t, d, 2)
		wantBodies(t, "from a timestamp", got, []string{"t0", "t1"})
		if offs[0] != 6 {
			t.Fatalf("offset of t0 is %d, want 6", offs[0])
		}
		noDelivery(t, d, 100*time.Millisecond)
	})
}

func TestAMQPStreamFanOutAndCredit(t *testing.T) {
	b := startBroker(t)
	pub := b.channel(t)
	declareStream(t, pub, "fan", nil)
	// A stream bound to an exchange gets what is routed to it.
	if err := pub.QueueBind("fan", "", "amq.fanout", false, nil); err != nil {
		t.Fatal(err)
	}
	publishConfirmed(t, pub, "fan", numbered("a", 0, 4)...)
	if err := pub.PublishWithContext(ctxT(t, 5*time.Second), "amq.fanout", "any", false, false,
		amqp.Publishing{Body: []byte("a4"), Headers: amqp.Table{"n": "a4"}}); err != nil {
		t.Fatal(err)
	}

	// Two consumers on two connections: each sees every message.
	_, d1 := consumeStream(t, b.dial(t), "fan", "first", 10)
	_, d2 := consumeStream(t, b.dial(t), "fan", "first", 10)
	for i, d := range []<-chan amqp.Delivery{d1, d2} {
		got, _ := takeStream(t, d, 5)
		wantBodies(t, fmt.Sprintf("consumer %d", i+1), got, numbered("a", 0, 5))
	}
	// Acks removed nothing.
	q, err := pub.QueueDeclarePassive("fan", true, false, false, false, amqp.Table{"x-queue-type": "stream"})
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 5 || q.Consumers != 2 {
		t.Fatalf("after acking everything: %d messages, %d consumers; want 5 and 2", q.Messages, q.Consumers)
	}

	// Prefetch is credit: two unacked at most; an ack gives one more.
	ch, err := b.dial(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume("fan", "", false, false, false, false, amqp.Table{"x-stream-offset": "first"})
	if err != nil {
		t.Fatal(err)
	}
	m0, m1 := recv(t, d, 10*time.Second), recv(t, d, 10*time.Second)
	noDelivery(t, d, 200*time.Millisecond)
	if err := m0.Ack(false); err != nil {
		t.Fatal(err)
	}
	m2 := recv(t, d, 10*time.Second)
	noDelivery(t, d, 200*time.Millisecond)
	// A multiple ack returns both credits.
	if err := m2.Ack(true); err != nil {
		t.Fatal(err)
	}
	m3, m4 := recv(t, d, 10*time.Second), recv(t, d, 10*time.Second)
	wantBodies(t, "with prefetch 2", []string{string(m0.Body), string(m1.Body), string(m2.Body), string(m3.Body), string(m4.Body)}, numbered("a", 0, 5))
}

func TestAMQPStreamSurvivesKill(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	declareStream(t, ch, "durable-log", amqp.Table{"x-max-age": "7D"})
	publishConfirmed(t, ch, "durable-log", numbered("k", 0, 50)...)
	b.Kill()
	b.Restart()

	conn := b.dial(t)
	_, d := consumeStream(t, conn, "durable-log", "first", 100)
	got, offs := takeStream(t, d, 50)
	wantBodies(t, "after kill -9", got, numbered("k", 0, 50))
	if offs[49] != 49 {
		t.Fatalf("last offset %d, want 49", offs[49])
	}
	// Appending goes on after the old end, and a redeclare with the same
	// arguments is fine.
	ch2 := b.channel(t)
	declareStream(t, ch2, "durable-log", amqp.Table{"x-max-age": "7D"})
	publishConfirmed(t, ch2, "durable-log", "k50")
	got, offs = takeStream(t, d, 1)
	wantBodies(t, "after restart", got, []string{"k50"})
	if offs[0] != 50 {
		t.Fatalf("offset after restart %d, want 50", offs[0])
	}
}

func TestAMQPStreamRetentionByBytes(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	declareStream(t, ch, "bounded", amqp.Table{
		"x-max-length-bytes":              int64(20_000),
		"x-stream-max-segment-size-bytes": int64(5_000),
	})
	body := strings.Repeat("x", 500)
	bodies := make([]string, 200)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("%03d%s", i, body)
	}
	publishConfirmed(t, ch, "bounded", bodies...)
	waitFor(t, 20*time.Second, "retention to delete old segments", func() bool {
		q, err := ch.QueueDeclarePassive("bounded", true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return q.Messages < 200
	})
	q, _ := ch.QueueDeclarePassive("bounded", true, false, false, false, nil)
	// Each record is about 1.6 kB (the body three times: publishConfirmed
	// also puts it in a header, and the stream, a one-partition topic in
	// the Kafka vhost, stores that header also as a record header of its
	// own: docs/bridge.md). Retention keeps at most 20 kB and deletes only
	// whole 5 kB segments, so 15-20 kB stay: 9 to 12 messages.
	if q.Messages < 9 || q.Messages > 12 {
		t.Fatalf("%d messages left after retention to 20 kB, want between 9 and 12", q.Messages)
	}
	_, d := consumeStream(t, b.dial(t), "bounded", "first", 100)
	first := recv(t, d, 10*time.Second)
	off := first.Headers["x-stream-offset"].(int64)
	if off == 0 || off != int64(200-q.Messages) {
		t.Fatalf("first kept offset %d with %d messages left, want %d", off, q.Messages, 200-q.Messages)
	}
	if !strings.HasPrefix(string(first.Body), fmt.Sprintf("%03d", off)) {
		t.Fatalf("message at offset %d is %.3s...", off, first.Body)
	}
}

func TestAMQPStreamErrors(t *testing.T) {
	b := startBroker(t)
	// Declare: a stream is durable, not exclusive, not auto-delete, and
	// refuses work-queue arguments: 406 each, the connection stays.
	conn := b.dial(t)
	declare := func(durable, autoDelete, exclusive bool, args amqp.Table) error {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		a := amqp.Table{"x-queue-type": "stream"}
		for k, v := range args {
			a[k] = v
		}
		_, err = ch.QueueDeclare("s-bad", durable, autoDelete, exclusive, false, a)
		if err == nil {
			ch.Close()
		}
		return err
	}
	for _, tc := range []struct {
		name                          string
		durable, autoDelete, exclusiv bool
		args                          amqp.Table
	}{
		{"non-durable", false, false, false, nil},
		{"auto-delete", true, true, false, nil},
		{"exclusive", true, false, true, nil},
		{"x-message-ttl", true, false, false, amqp.Table{"x-message-ttl": int32(1000)}},
		{"x-max-length", true, false, false, amqp.Table{"x-max-length": int32(10)}},
		{"x-dead-letter-exchange", true, false, false, amqp.Table{"x-dead-letter-exchange": "dlx"}},
		{"x-max-priority", true, false, false, amqp.Table{"x-max-priority": int32(5)}},
		{"x-max-age lowercase d", true, false, false, amqp.Table{"x-max-age": "7d"}},
		{"x-max-age zero", true, false, false, amqp.Table{"x-max-age": "0s"}},
		{"x-max-length-bytes negative", true, false, false, amqp.Table{"x-max-length-bytes": int64(-5)}},
	} {
		if err := declare(tc.durable, tc.autoDelete, tc.exclusiv, tc.args); amqpErrCode(err) != amqp.PreconditionFailed {
			t.Fatalf("declare stream with %s: %v, want 406", tc.name, err)
		}
	}
	if conn.IsClosed() {
		t.Fatal("connection closed by soft errors")
	}

	ch := b.channel(t)
	declareStream(t, ch, "s", amqp.Table{"x-max-age": "1h"})
	publishConfirmed(t, ch, "s", "one")
	rch, _ := conn.Channel()
	if _, err := rch.QueueDeclare("s", true, false, false, false, amqp.Table{"x-queue-type": "stream", "x-max-age": "2h"}); amqpErrCode(err) != amqp.PreconditionFailed {
		t.Fatalf("redeclare with another x-max-age: %v, want 406", err)
	}

	// Consume without a prefetch: 406, channel closed.
	c2 := b.dial(t)
	ch2, _ := c2.Channel()
	if _, err := ch2.Consume("s", "", false, false, false, false, nil); amqpErrCode(err) != amqp.PreconditionFailed {
		t.Fatalf("consume a stream without basic.qos: %v, want 406", err)
	}
	// A bad x-stream-offset: 406.
	ch2, _ = c2.Channel()
	ch2.Qos(10, 0, false)
	if _, err := ch2.Consume("s", "", false, false, false, false, amqp.Table{"x-stream-offset": "yesterday"}); amqpErrCode(err) != amqp.PreconditionFailed {
		t.Fatalf("consume with x-stream-offset 'yesterday': %v, want 406", err)
	}
	if c2.IsClosed() {
		t.Fatal("connection closed by a soft error")
	}

	// The 540 NOT_IMPLEMENTED answers close the connection.
	hard := func(what string, fn func(ch *amqp.Channel) error) {
		t.Helper()
		c := b.dial(t)
		closed := c.NotifyClose(make(chan *amqp.Error, 1))
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		err = fn(ch)
		if err == nil {
			select {
			case e := <-closed:
				if e != nil {
					err = e
				}
			case <-time.After(10 * time.Second):
			}
		}
		if amqpErrCode(err) != amqp.NotImplemented {
			t.Fatalf("%s: %v, want 540", what, err)
		}
		waitFor(t, 5*time.Second, what+": connection closed", c.IsClosed)
	}
	hard("no-ack consume", func(ch *amqp.Channel) error {
		ch.Qos(10, 0, false)
		_, err := ch.Consume("s", "", true, false, false, false, amqp.Table{"x-stream-offset": "first"})
		return err
	})
	hard("global qos", func(ch *amqp.Channel) error {
		ch.Qos(10, 0, false)
		ch.Qos(10, 0, true)
		_, err := ch.Consume("s", "", false, false, false, false, nil)
		return err
	})
	hard("basic.get", func(ch *amqp.Channel) error {
		_, _, err := ch.Get("s", false)
		return err
	})
	hard("queue.purge", func(ch *amqp.Channel) error {
		_, err := ch.QueuePurge("s", false)
		return err
	})
	hard("basic.nack", func(ch *amqp.Channel) error {
		ch.Qos(10, 0, false)
		d, err := ch.Consume("s", "", false, false, false, false, amqp.Table{"x-stream-offset": "first"})
		if err != nil {
			return err
		}
		m := recv(t, d, 10*time.Second)
		return m.Nack(false, true)
	})
	hard("basic.reject", func(ch *amqp.Channel) error {
		ch.Qos(10, 0, false)
		d, err := ch.Consume("s", "", false, false, false, false, amqp.Table{"x-stream-offset": "first"})
		if err != nil {
			return err
		}
		m := recv(t, d, 10*time.Second)
		return m.Reject(false)
	})

	// The stream is untouched by all that.
	_, d := consumeStream(t, b.dial(t), "s", "first", 10)
	got, _ := takeStream(t, d, 1)
	wantBodies(t, "after the errors", got, []string{"one"})
}

// BenchmarkAMQPStreamReplay measures reading a stream from the first
// message with one amqp091-go consumer (prefetch 1000, an ack with
// multiple every 500 deliveries), 100-byte bodies, default fsync policy
// for the publishes that fill it (not timed).
func BenchmarkAMQPStreamReplay(b *testing.B) {
	br := startBroker(b)
	ch := br.channel(b)
	declareStream(b, ch, "bench", nil)
	const n = 20_000
	body := strings.Repeat("b", 100)
	for i := 0; i < n; i += 1000 {
		bodies := make([]string, 1000)
		for j := range bodies {
			bodies[j] = body
		}
		publishConfirmed(b, ch, "bench", bodies...)
	}
	conn := br.dial(b)
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		c, d := consumeStream(b, conn, "bench", "first", 1000)
		for i := 1; i <= n; i++ {
			m := recv(b, d, 10*time.Second)
			if i%500 == 0 {
				m.Ack(true)
			}
		}
		c.Close()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
