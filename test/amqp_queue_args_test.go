package test

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestAMQPPriorityQueue: with x-max-priority, higher-priority messages are
// delivered first; equal priorities keep their order; priorities above the
// maximum count as the maximum.
func TestAMQPPriorityQueue(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	if _, err := ch.QueueDeclare("prio", true, false, false, false, amqp.Table{"x-max-priority": int32(5)}); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	for i, p := range []uint8{0, 3, 1, 9, 3, 0, 5} {
		if err := ch.PublishWithContext(ctx, "", "prio", false, false, amqp.Publishing{Priority: p, Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "7 messages", func() bool {
		q, err := ch.QueueDeclarePassive("prio", true, false, false, false, amqp.Table{"x-max-priority": int32(5)})
		return err == nil && q.Messages == 7
	})
	ch.Qos(1, 0, false)
	d, err := ch.Consume("prio", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 7 {
		m := recv(t, d, 5*time.Second)
		got = append(got, string(m.Body))
		m.Ack(false)
	}
	// 9 is capped at 5: messages 3 (p9) and 6 (p5) in arrival order, then
	// the two p3 messages, then p1, then the p0 ones.
	if want := "[3 6 1 4 2 0 5]"; fmt.Sprint(got) != want {
		t.Fatalf("delivery order %v, want %s", got, want)
	}
}

// TestAMQPDeadLetteringAndTTL: rejected and expired messages reach the
// dead-letter queue with x-death as RabbitMQ writes it.
func TestAMQPDeadLetteringAndTTL(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	must := fatalIf(t)
	must(ch.ExchangeDeclare("dlx", "fanout", true, false, false, false, nil))
	_, err := ch.QueueDeclare("dlq", true, false, false, false, nil)
	must(err)
	must(ch.QueueBind("dlq", "", "dlx", false, nil))
	_, err = ch.QueueDeclare("work", true, false, false, false, amqp.Table{"x-dead-letter-exchange": "dlx"})
	must(err)
	_, err = ch.QueueDeclare("short", true, false, false, false, amqp.Table{"x-dead-letter-exchange": "dlx", "x-message-ttl": int32(50)})
	must(err)
	ctx := ctxT(t, 10*time.Second)
	must(ch.PublishWithContext(ctx, "", "work", false, false, amqp.Publishing{Body: []byte("rejected")}))
	must(ch.PublishWithContext(ctx, "", "short", false, false, amqp.Publishing{Body: []byte("expired")}))
	var m amqp.Delivery
	waitFor(t, 5*time.Second, "message in work", func() bool {
		var ok bool
		m, ok, err = ch.Get("work", false)
		must(err)
		return ok
	})
	must(m.Reject(false))
	seen := map[string]amqp.Table{}
	waitFor(t, 5*time.Second, "two dead letters", func() bool {
		d, ok, err := ch.Get("dlq", true)
		must(err)
		if ok {
			seen[string(d.Body)] = d.Headers
		}
		return len(seen) == 2
	})
	check := func(body, reason, queue string) {
		t.Helper()
		h := seen[body]
		deaths, ok := h["x-death"].([]any)
		if !ok || len(deaths) != 1 {
			t.Fatalf("%s: x-death %#v", body, h["x-death"])
		}
		d := deaths[0].(amqp.Table)
		if d["reason"] != reason || d["queue"] != queue || d["count"] != int64(1) || d["exchange"] != "" {
			t.Fatalf("%s: x-death entry %#v", body, d)
		}
		if keys, _ := d["routing-keys"].([]any); len(keys) != 1 || keys[0] != queue {
			t.Fatalf("%s: routing-keys %#v", body, d["routing-keys"])
		}
		if _, ok := d["time"].(time.Time); !ok {
			t.Fatalf("%s: time %#v", body, d["time"])
		}
		if h["x-first-death-reason"] != reason || h["x-first-death-queue"] != queue {
			t.Fatalf("%s: first death headers %#v", body, h)
		}
	}
	check("rejected", "rejected", "work")
	check("expired", "expired", "short")
}

// TestAMQPDeadLetterCycles: as in RabbitMQ, a message that expires back
// into a queue it already died in, with no reject on the way, is dropped
// for that queue (and still reaches the others); a message a client
// rejects may go round, its x-death counting the turns.
func TestAMQPDeadLetterCycles(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	must := fatalIf(t)
	must(ch.ExchangeDeclare("loop-dlx", "fanout", true, false, false, false, nil))
	_, err := ch.QueueDeclare("loop", true, false, false, false, amqp.Table{"x-dead-letter-exchange": "loop-dlx", "x-message-ttl": int32(20)})
	must(err)
	_, err = ch.QueueDeclare("watch", true, false, false, false, nil)
	must(err)
	must(ch.QueueBind("loop", "", "loop-dlx", false, nil))
	must(ch.QueueBind("watch", "", "loop-dlx", false, nil))
	// Rejected messages go back to the same queue through the default
	// exchange (their routing key is the queue's name).
	_, err = ch.QueueDeclare("bounce", true, false, false, false, amqp.Table{"x-dead-letter-exchange": ""})
	must(err)
	ctx := ctxT(t, 10*time.Second)
	must(ch.PublishWithContext(ctx, "", "loop", false, false, amqp.Publishing{Body: []byte("expires")}))
	must(ch.PublishWithContext(ctx, "", "bounce", false, false, amqp.Publishing{Body: []byte("rejected")}))

	var count int64
	for turn := 1; turn <= 3; turn++ {
		var m amqp.Delivery
		waitFor(t, 5*time.Second, "message in bounce", func() bool {
			var ok bool
			m, ok, err = ch.Get("bounce", false)
			must(err)
			return ok
		})
		if deaths, ok := m.Headers["x-death"].([]any); ok {
			count, _ = deaths[0].(amqp.Table)["count"].(int64)
		}
		if count != int64(turn-1) {
			t.Fatalf("turn %d: x-death count %d, want %d", turn, count, turn-1)
		}
		must(m.Reject(false))
	}

	waitFor(t, 5*time.Second, "the expired copy in watch", func() bool {
		q, err := ch.QueueDeclarePassive("watch", true, false, false, false, nil)
		must(err)
		return q.Messages >= 1
	})
	// Had the copy gone back into loop, it would expire again and again,
	// and watch would fill up.
	time.Sleep(300 * time.Millisecond)
	for _, name := range []string{"loop", "watch"} {
		q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
		must(err)
		want := map[string]int{"loop": 0, "watch": 1}[name]
		if q.Messages != want {
			t.Fatalf("%s holds %d messages, want %d", name, q.Messages, want)
		}
	}
}
