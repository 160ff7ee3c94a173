package queue

import (
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
)

// Totals count each way a message enters and leaves a queue.
func TestTotals(t *testing.T) {
	var dead []Dead
	cfg := NoLimits()
	cfg.DeadLetter = true
	q := openQueue(t, t.TempDir(), cfg, func(_ *Queue, d []Dead) error { dead = append(dead, d...); return nil })
	publish(t, q, "a", "b", "c", "d")
	c := newConsumer(4)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	a, b, cc, d := c.next(t), c.next(t), c.next(t), c.next(t)
	q.Ack(a.Offset, b.Offset)
	q.Requeue(cc.Offset)
	c.grant(1, q)
	if r := c.next(t); !r.Redelivered {
		t.Fatalf("want the requeued message back, got %+v", r)
	}
	q.Reject(d.Offset)
	// A no-ack consumer's deliveries are counted apart.
	publish(t, q, "e")
	na := newConsumer(1)
	if _, err := q.AddConsumer(na, ConsumerOptions{NoAck: true}); err != nil {
		t.Fatal(err)
	}
	na.next(t)
	want := Totals{Published: 5, Delivered: 6, Acked: 2, Redelivered: 1, DeadLettered: 1, DeliveredNoAck: 1}
	if got := q.Totals(); got != want || len(dead) != 1 {
		t.Fatalf("totals %+v, want %+v (dead copies %d)", got, want, len(dead))
	}
}

// A priority queue's totals are the sum over its lanes.
func TestPriorityTotals(t *testing.T) {
	p, err := OpenPriority(Options{Name: "p", Dir: t.TempDir(), Config: NoLimits()}, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, prio := range []uint8{0, 3, 5} {
		m := &message.Message{Body: []byte("x")}
		m.Properties.Priority = prio
		m.Properties.Present |= message.PropPriority
		app, err := p.Publish(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := app.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		d, ok := p.Get(false)
		if !ok {
			t.Fatal("no message")
		}
		d.Queue.Ack(d.Offset)
	}
	if d, ok := p.Get(true); !ok {
		t.Fatal("no message")
	} else if d.Redelivered {
		t.Fatal("a message never delivered came flagged redelivered")
	}
	want := Totals{Published: 3, Delivered: 3, Acked: 2, Got: 3, GotNoAck: 1}
	if got := p.Totals(); got != want {
		t.Fatalf("totals %+v, want %+v", got, want)
	}
}

// A stream counts what is appended to it.
func TestStreamTotals(t *testing.T) {
	s := openStream(t, t.TempDir(), StreamConfig{MaxBytes: -1}, time.Now)
	publishStream(t, s, "a", "b")
	if got := s.Totals(); got != (Totals{Published: 2}) {
		t.Fatalf("totals %+v, want 2 published", got)
	}
}
