package test

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// confirmPublish publishes in confirm mode and returns whether the broker
// acked (true) or nacked (false) the message.
func confirmPublish(t *testing.T, ch *amqp.Channel, queue string, p amqp.Publishing) bool {
	t.Helper()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), "", queue, false, false, p)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := dc.WaitContext(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// drain consumes every message of queue with acks and returns the bodies
// and redelivered flags, in delivery order.
func drain(t *testing.T, ch *amqp.Channel, queue string, n int) (bodies []string, redelivered []bool) {
	t.Helper()
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		m := recv(t, d, 5*time.Second)
		bodies = append(bodies, string(m.Body))
		redelivered = append(redelivered, m.Redelivered)
		m.Ack(false)
	}
	noDelivery(t, d, 100*time.Millisecond)
	return bodies, redelivered
}

// TestAMQPRedeliveredAfterRestart: messages delivered but not acked before
// a restart come back with redelivered set, as RabbitMQ does; messages
// never delivered come back without it.
func TestAMQPRedeliveredAfterRestart(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	if _, err := ch.QueueDeclare("redeliv", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if !confirmPublish(t, ch, "redeliv", amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprint(i))}) {
			t.Fatal("publish nacked")
		}
	}
	// Consume two without acking them; the server is stopped with them
	// outstanding.
	c2 := b.channel(t)
	c2.Qos(2, 0, false)
	d, err := c2.Consume("redeliv", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if m := recv(t, d, 5*time.Second); string(m.Body) != fmt.Sprint(i) || m.Redelivered {
			t.Fatalf("first delivery: %q redelivered=%v", m.Body, m.Redelivered)
		}
	}
	b.Stop()
	b.Restart()

	bodies, re := drain(t, b.channel(t), "redeliv", 5)
	if got, want := fmt.Sprint(bodies, re), "[0 1 2 3 4] [true true false false false]"; got != want {
		t.Fatalf("after restart got %s, want %s", got, want)
	}
}

// TestAMQPPriorityMaxLengthWholeQueue: x-max-length counts every priority
// level together; drop-head drops the queue's head, which is the oldest
// message of the highest level (as RabbitMQ's priority queue does).
func TestAMQPPriorityMaxLengthWholeQueue(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	args := amqp.Table{"x-max-priority": int32(5), "x-max-length": int32(3)}
	if _, err := ch.QueueDeclare("pmax", true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		body string
		prio uint8
	}{{"low1", 1}, {"low2", 1}, {"high1", 5}, {"high2", 5}} {
		if !confirmPublish(t, ch, "pmax", amqp.Publishing{Priority: m.prio, Body: []byte(m.body)}) {
			t.Fatalf("publish %s nacked", m.body)
		}
	}
	waitFor(t, 5*time.Second, "3 messages", func() bool {
		q, err := ch.QueueDeclarePassive("pmax", true, false, false, false, args)
		return err == nil && q.Messages == 3
	})
	bodies, _ := drain(t, b.channel(t), "pmax", 3)
	if got, want := fmt.Sprint(bodies), "[high2 low1 low2]"; got != want {
		t.Fatalf("got %s, want %s (high1, the head, dropped)", got, want)
	}
}

// TestAMQPPriorityRejectPublishWholeQueue: with reject-publish, a publish
// that would take the whole queue (all levels) past x-max-length or
// x-max-length-bytes is nacked, whatever its level.
func TestAMQPPriorityRejectPublishWholeQueue(t *testing.T) {
	b := startBroker(t)
	ch := b.channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args amqp.Table
	}{
		{"plen", amqp.Table{"x-max-length": int32(2)}},
		{"pbytes", amqp.Table{"x-max-length-bytes": int32(10)}}, // two 5-byte bodies fit, a third does not
	} {
		tc.args["x-max-priority"] = int32(9)
		tc.args["x-overflow"] = "reject-publish"
		if _, err := ch.QueueDeclare(tc.name, true, false, false, false, tc.args); err != nil {
			t.Fatal(err)
		}
		var acks []bool
		for i, prio := range []uint8{0, 9, 5} {
			acks = append(acks, confirmPublish(t, ch, tc.name, amqp.Publishing{Priority: prio, Body: []byte(fmt.Sprintf("msg-%d", i))}))
		}
		if got := fmt.Sprint(acks); got != "[true true false]" {
			t.Fatalf("%s: confirms %s, want [true true false]", tc.name, got)
		}
		bodies, _ := drain(t, b.channel(t), tc.name, 2)
		if got, want := fmt.Sprint(bodies), "[msg-1 msg-0]"; got != want {
			t.Fatalf("%s: got %s, want %s", tc.name, got, want)
		}
		// Once consumed there is room again.
		if !confirmPublish(t, ch, tc.name, amqp.Publishing{Priority: 3, Body: []byte("again")}) {
			t.Fatalf("%s: publish into an empty queue nacked", tc.name)
		}
	}
}
