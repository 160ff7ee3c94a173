package queue

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
)

// A queue whose consumer lags asks its publishers to wait (Flow) past its
// bound, lets them go at half the bound, and never asks when it has no
// consumer or its consumer is stuck.
func TestFlowFollowsTheBacklogOfConsumersThatTakeMessages(t *testing.T) {
	var skew atomic.Int64 // the test's clock runs ahead of the wall clock by this
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	q, err := Open(Options{Name: "q", Dir: t.TempDir(), Config: NoLimits(), Now: now, FlowBacklog: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	pub := func(n int) {
		t.Helper()
		for range n {
			if _, err := q.Publish(&message.Message{RoutingKey: "q", Body: []byte("m")}); err != nil {
				t.Fatal(err)
			}
		}
	}

	pub(30)
	if q.Flow() != nil {
		t.Fatal("in flow without consumers: a queue nobody consumes absorbs what comes")
	}
	c := newConsumer(1)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	c.next(t) // 29 ready, and the consumer takes messages
	pub(1)
	f := q.Flow()
	if f == nil {
		t.Fatal("not in flow with 30 ready past a bound of 10, the consumer taking messages")
	}
	c.grant(20, q) // 10 ready: still past half the bound
	for range 20 {
		c.next(t)
	}
	select {
	case <-f:
		t.Fatal("left flow with 10 ready, above half the bound")
	default:
	}
	c.grant(5, q) // 5 ready: half the bound
	for range 5 {
		c.next(t)
	}
	select {
	case <-f:
	case <-time.After(5 * time.Second):
		t.Fatal("still in flow at half the bound")
	}
	if q.Flow() != nil {
		t.Fatal("Flow after leaving flow")
	}

	// Past the bound again, then the consumer stops taking messages: the
	// publishers go on once it has taken nothing for FlowStall.
	pub(20)
	if q.Flow() == nil {
		t.Fatal("not in flow with 25 ready")
	}
	skew.Add(int64(FlowStall + time.Second))
	if q.Flow() != nil {
		t.Fatal("in flow while the consumer has taken nothing for longer than FlowStall")
	}
}

// A queue closing lets its held publishers go.
func TestFlowEndsWhenTheQueueCloses(t *testing.T) {
	q, err := Open(Options{Name: "q", Dir: t.TempDir(), Config: NoLimits(), FlowBacklog: 2})
	if err != nil {
		t.Fatal(err)
	}
	c := newConsumer(1)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := q.Publish(&message.Message{RoutingKey: "q", Body: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	c.next(t)
	if _, err := q.Publish(&message.Message{RoutingKey: "q", Body: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	f := q.Flow()
	if f == nil {
		t.Fatal("not in flow")
	}
	q.Close()
	select {
	case <-f:
	case <-time.After(5 * time.Second):
		t.Fatal("publishers still held after the queue closed")
	}
}

// A priority queue is in flow while one of its lanes is.
func TestFlowOfAPriorityQueue(t *testing.T) {
	p, err := OpenPriority(Options{Name: "p", Dir: t.TempDir(), Config: NoLimits(), FlowBacklog: 10}, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	pub := func(n int, prio uint8) {
		t.Helper()
		for range n {
			m := &message.Message{RoutingKey: "p", Body: []byte("m"),
				Properties: message.Properties{Present: message.PropPriority, Priority: prio}}
			if _, err := p.Publish(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := newConsumer(1)
	if _, err := p.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	pub(1, 2)
	c.next(t) // the consumer takes messages
	pub(20, 2)
	f := p.Flow()
	if f == nil {
		t.Fatal("not in flow with 20 ready in a lane, past a bound of 10")
	}
	c.grant(20, p)
	for range 20 {
		c.next(t)
	}
	select {
	case <-f:
	case <-time.After(5 * time.Second):
		t.Fatal("still in flow with the lane drained")
	}
	if p.Flow() != nil {
		t.Fatal("in flow with nothing ready")
	}
}

// A queue of big messages is in flow past its byte bound, well before its
// count bound, and leaves it at half the byte bound.
func TestFlowFollowsTheBytesOfBigMessages(t *testing.T) {
	q, err := Open(Options{Name: "q", Dir: t.TempDir(), Config: NoLimits(), FlowBacklog: 1000, FlowBacklogBytes: 100 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	body := make([]byte, 10<<10)
	pub := func(n int) {
		t.Helper()
		for range n {
			if _, err := q.Publish(&message.Message{RoutingKey: "q", Body: body}); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := newConsumer(1)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	pub(1)
	c.next(t) // the consumer takes messages; it holds one unacked
	pub(10)
	if q.Flow() != nil {
		t.Fatal("in flow at 100 KiB ready, not past the byte bound")
	}
	pub(1)
	f := q.Flow()
	if f == nil {
		t.Fatal("not in flow with 110 KiB ready past a byte bound of 100 KiB (11 messages, count bound 1000)")
	}
	c.grant(6, q) // 5 ready, 50 KiB: half the byte bound
	for range 6 {
		c.next(t)
	}
	select {
	case <-f:
	case <-time.After(5 * time.Second):
		t.Fatal("still in flow at half the byte bound")
	}
}
