package test

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// amqpURL is the guest URL of b's AMQP listener.
func (b *broker) amqpURL() string { return "amqp://guest:guest@" + b.AMQP + "/" }

// dial opens an amqp091-go connection to b, closed when the test ends.
func (b *broker) dial(t testing.TB) *amqp.Connection {
	t.Helper()
	c, err := amqp.Dial(b.amqpURL())
	if err != nil {
		t.Fatalf("amqp dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// channel opens a channel on a new connection.
func (b *broker) channel(t testing.TB) *amqp.Channel {
	t.Helper()
	ch, err := b.dial(t).Channel()
	if err != nil {
		t.Fatalf("amqp channel: %v", err)
	}
	return ch
}

// recv takes one delivery or fails the test after timeout.
func recv(t testing.TB, d <-chan amqp.Delivery, timeout time.Duration) amqp.Delivery {
	t.Helper()
	select {
	case m, ok := <-d:
		if !ok {
			t.Fatal("delivery channel closed")
		}
		return m
	case <-time.After(timeout):
		t.Fatal("no delivery within", timeout)
	}
	return amqp.Delivery{}
}

// noDelivery asserts nothing arrives for a short while.
func noDelivery(t testing.TB, d <-chan amqp.Delivery, wait time.Duration) {
	t.Helper()
	select {
	case m := <-d:
		t.Fatalf("unexpected delivery %q", m.Body)
	case <-time.After(wait):
	}
}

// amqpErrCode returns the reply code of an *amqp.Error, or 0.
func amqpErrCode(err error) int {
	if e, ok := err.(*amqp.Error); ok {
		return e.Code
	}
	return 0
}

// fatalIf returns a function that fails the test at once on an error,
// for tests that make many calls in a row.
func fatalIf(t testing.TB) func(error) {
	return func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// drainAfterRestart consumes queue on a fresh connection with manual acks
// (prefetch as given), hands every delivery to each and then acks it,
// until no delivery has come for 300 ms and the queue is empty; it fails
// the test if messages stay ready and undelivered past 60 s. For the crash
// campaigns, which read back what survived a kill.
func drainAfterRestart(t *testing.T, b *broker, it int, queue string, prefetch int, each func(amqp.Delivery)) {
	t.Helper()
	conn, err := amqp.Dial(b.amqpURL())
	if err != nil {
		t.Fatalf("iteration %d: dial after the restart: %v", it, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Qos(prefetch, 0, false)
	}
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("iteration %d: consume after the restart: %v", it, err)
	}
	side, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	const quiet = 300 * time.Millisecond
	deadline := time.Now().Add(60 * time.Second)
	for {
		var d amqp.Delivery
		select {
		case dd, ok := <-deliveries:
			if !ok {
				t.Fatalf("iteration %d: drain consumer closed: %v", it, conn.IsClosed())
			}
			d = dd
		case <-time.After(quiet):
			q, err := side.QueueDeclarePassive(queue, true, false, false, false, nil)
			if err != nil {
				t.Fatalf("iteration %d: durable queue after the restart: %v", it, err)
			}
			if q.Messages == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("iteration %d: %d messages still ready, none delivered for %v", it, q.Messages, quiet)
			}
			continue
		}
		each(d)
		if err := d.Ack(false); err != nil {
			t.Fatalf("iteration %d: ack after the restart: %v", it, err)
		}
	}
}
