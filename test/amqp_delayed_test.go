package test

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestAMQPDelayedExchange: an x-delayed-message exchange holds a message
// for x-delay milliseconds, durably across a restart, then routes it by
// its x-delayed-type.
func TestAMQPDelayedExchange(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	must := fatalIf(t)
	must(ch.ExchangeDeclare("later", "x-delayed-message", true, false, false, false, amqp.Table{"x-delayed-type": "direct"}))
	_, err := ch.QueueDeclare("due", true, false, false, false, nil)
	must(err)
	must(ch.QueueBind("due", "k", "later", false, nil))
	must(ch.Confirm(false))
	ctx := ctxT(t, 10*time.Second)
	publish := func(body string, delay int32) {
		t.Helper()
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "later", "k", false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Headers: amqp.Table{"x-delay": delay}, Body: []byte(body)})
		must(err)
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("confirm of %s: %v %v", body, ok, err)
		}
	}
	start := time.Now()
	publish("slow", 600)
	publish("fast", 200)
	publish("now", 0)
	d, err := ch.Consume("due", "", true, false, false, false, nil)
	must(err)
	for _, want := range []struct {
		body string
		min  time.Duration
	}{{"now", 0}, {"fast", 200 * time.Millisecond}, {"slow", 600 * time.Millisecond}} {
		m := recv(t, d, 5*time.Second)
		if string(m.Body) != want.body {
			t.Fatalf("got %q, want %q", m.Body, want.body)
		}
		if el := time.Since(start); el < want.min {
			t.Fatalf("%s arrived after %v, before its delay %v", want.body, el, want.min)
		}
	}

	// A delay that spans a restart.
	publish("across", 1500)
	b.Stop()
	b.Restart()
	ch = b.channel(t)
	waitFor(t, 10*time.Second, "the delayed message after restart", func() bool {
		m, ok, err := ch.Get("due", true)
		must(err)
		return ok && string(m.Body) == "across"
	})
}

// A delayed message that comes due while the broker is down is delivered
// after the restart, not released before its queue is loaded and lost.
func TestAMQPDelayedDueWhileDown(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	must := fatalIf(t)
	must(ch.ExchangeDeclare("later", "x-delayed-message", true, false, false, false, amqp.Table{"x-delayed-type": "direct"}))
	_, err := ch.QueueDeclare("due", true, false, false, false, nil)
	must(err)
	must(ch.QueueBind("due", "k", "later", false, nil))
	must(ch.Confirm(false))
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), "later", "k", false, false,
		amqp.Publishing{DeliveryMode: amqp.Persistent, Headers: amqp.Table{"x-delay": int32(300)}, Body: []byte("while down")})
	must(err)
	if ok, err := dc.WaitContext(ctxT(t, 10*time.Second)); !ok || err != nil {
		t.Fatalf("confirm: %v %v", ok, err)
	}
	b.Stop()
	time.Sleep(time.Second) // the delay ends while the broker is down
	b.Restart()
	ch = b.channel(t)
	waitFor(t, 10*time.Second, "the message that came due while the broker was down", func() bool {
		m, ok, err := ch.Get("due", true)
		must(err)
		return ok && string(m.Body) == "while down"
	})
}
