package test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/amqp/benchclient"
	"github.com/sluice-mq/sluice/internal/fieldtable"
)

func leanDial(t *testing.T, b *broker, name string) *benchclient.Conn {
	t.Helper()
	c, err := benchclient.Dial(b.amqpURL(), name)
	if err != nil {
		t.Fatalf("benchclient dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The lean bench client against a real server: handshake, setup calls,
// pipelined publishing with confirms, then consuming with per-message acks
// until the queue is empty.
func TestBenchClientPublishConfirmConsume(t *testing.T) {
	b := startBroker(t)
	const q, n = "lean-q", 5000

	setup := leanDial(t, b, "lean-setup")
	if msgs, err := setup.QueueDeclare(q, true, fieldtable.Table{"x-queue-type": "classic"}); err != nil || msgs != 0 {
		t.Fatalf("declare: %d messages, %v", msgs, err)
	}
	if err := setup.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	pub := leanDial(t, b, "lean-publisher")
	if err := pub.ConfirmSelect(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acked, nacked, lastTag uint64
	allDone := make(chan struct{})
	loopErr := make(chan error, 1)
	go func() {
		loopErr <- pub.ReadLoop(benchclient.Handler{Confirm: func(tag uint64, multiple, ack bool) {
			mu.Lock()
			defer mu.Unlock()
			count := uint64(1)
			if multiple {
				count = tag - lastTag
			}
			if ack {
				acked += count
			} else {
				nacked += count
			}
			lastTag = max(lastTag, tag)
			if acked+nacked == n {
				close(allDone)
			}
		}})
	}()
	body := make([]byte, 300)
	for i := range n {
		body[0] = byte(i)
		if err := pub.Publish("", q, true, body); err != nil {
			t.Fatal(err)
		}
		if pub.Buffered() > 32<<10 {
			if err := pub.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-allDone:
	case err := <-loopErr:
		t.Fatalf("publisher's read loop ended: %v", err)
	case <-time.After(30 * time.Second):
		mu.Lock()
		t.Fatalf("confirms: %d acked, %d nacked of %d", acked, nacked, n)
	}
	mu.Lock()
	if acked != n || nacked != 0 || lastTag != n {
		t.Errorf("%d acked, %d nacked, last tag %d; want %d acked", acked, nacked, lastTag, n)
	}
	mu.Unlock()
	if err := pub.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := <-loopErr; !errors.Is(err, benchclient.ErrClosed) {
		t.Errorf("publisher's read loop returned %v, want ErrClosed", err)
	}

	// The queue holds them all.
	check := leanDial(t, b, "lean-check")
	if msgs, _, err := check.QueueDeclarePassive(q); err != nil || msgs != n {
		t.Fatalf("passive declare: %d messages, %v; want %d", msgs, err, n)
	}

	cons := leanDial(t, b, "lean-consumer")
	if err := cons.Qos(100); err != nil {
		t.Fatal(err)
	}
	if err := cons.Consume(q, "lean"); err != nil {
		t.Fatal(err)
	}
	got := 0
	seen := make([]bool, 256)
	consumed := make(chan struct{})
	go func() {
		loopErr <- cons.ReadLoop(benchclient.Handler{
			FlushBeforeRead: true,
			Deliver: func(tag uint64, redelivered bool, body []byte) {
				if len(body) != 300 || redelivered {
					t.Errorf("delivery %d: %d bytes, redelivered %v", tag, len(body), redelivered)
				}
				seen[body[0]] = true
				got++
				cons.Ack(tag, false)
				if got == n {
					close(consumed)
				}
			},
		})
	}()
	select {
	case <-consumed:
	case err := <-loopErr:
		t.Fatalf("consumer's read loop ended after %d deliveries: %v", got, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("consumed %d of %d", got, n)
	}
	for i, s := range seen {
		if !s {
			t.Errorf("no message with first byte %d", i)
		}
	}
	// The acks were written without an explicit Flush: the queue empties.
	waitFor(t, 10*time.Second, "queue empty after acks", func() bool {
		c, err := benchclient.Dial(b.amqpURL(), "lean-check-2")
		if err != nil {
			return false
		}
		defer c.Close()
		msgs, _, err := c.QueueDeclarePassive(q)
		return err == nil && msgs == 0
	})
	if err := cons.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := <-loopErr; !errors.Is(err, benchclient.ErrClosed) {
		t.Errorf("consumer's read loop returned %v, want ErrClosed", err)
	}
	// amqp091-go agrees, and sees the queue unacked-free.
	q2, err := b.channel(t).QueueDeclarePassive(q, true, false, false, false, nil)
	if err != nil || q2.Messages != 0 {
		t.Errorf("amqp091-go passive declare: %d messages, %v", q2.Messages, err)
	}

	// Purge reports what it dropped.
	pub2 := leanDial(t, b, "lean-publisher-2")
	for range 7 {
		pub2.Publish("", q, false, []byte("x"))
	}
	pub2.Flush()
	waitFor(t, 10*time.Second, "7 messages queued", func() bool {
		q3, err := b.channel(t).QueueDeclarePassive(q, true, false, false, false, nil)
		return err == nil && q3.Messages == 7
	})
	if n, err := check.QueuePurge(q); err != nil || n != 7 {
		t.Errorf("purge: %d, %v; want 7", n, err)
	}
}

// A channel error the server sends (publishing to a missing exchange)
// ends the read loop with an *Error carrying 404.
func TestBenchClientChannelError(t *testing.T) {
	b := startBroker(t)
	c := leanDial(t, b, "lean-404")
	if err := c.ConfirmSelect(); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish("no-such-exchange", "k", false, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.ReadLoop(benchclient.Handler{}) }()
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("no channel error within 10s")
	}
	var e *benchclient.Error
	if !errors.As(err, &e) || e.Code != 404 || !e.Channel {
		t.Fatalf("read loop returned %v, want a 404 channel.close", err)
	}
	if err := c.Publish("", "q", false, []byte("x")); err == nil {
		t.Error("publish after the channel closed succeeded")
	}
	if err := c.Close(); err != nil {
		t.Errorf("close after a channel error: %v", err)
	}

	// A passive declare of a missing queue closes the channel with 404
	// during setup.
	c2 := leanDial(t, b, "lean-404-passive")
	if _, _, err := c2.QueueDeclarePassive("no-such-queue"); !errors.As(err, &e) || e.Code != 404 {
		t.Errorf("passive declare of a missing queue: %v", err)
	}

	// Bad credentials fail the handshake.
	if c3, err := benchclient.Dial("amqp://guest:wrong@"+b.AMQP+"/", "lean-bad-login"); err == nil {
		c3.Close()
		t.Error("dial with a wrong password succeeded")
	}
}
