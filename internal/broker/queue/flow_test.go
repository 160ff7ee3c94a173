package queue

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
)

// flowClock is a queue's clock for the credit-flow tests: it stands still
// unless a test moves it, so the consumers' pace (how long each half a
// bound of deliveries took) is exact.
type flowClock struct{ at atomic.Int64 }

func newFlowClock() *flowClock {
	c := &flowClock{}
	c.at.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *flowClock) now() time.Time      { return time.Unix(0, c.at.Load()) }
func (c *flowClock) add(d time.Duration) { c.at.Add(int64(d)) }
func takeN(t *testing.T, c *testConsumer, n int) {
	t.Helper()
	for range n {
		c.next(t)
	}
}

// openFlowQueue opens a queue with a flow bound of bound messages on
// clock, and a function that publishes n small messages to it.
func openFlowQueue(t *testing.T, clock *flowClock, bound int64) (*Queue, func(n int)) {
	t.Helper()
	q, err := Open(Options{Name: "q", Dir: t.TempDir(), Config: NoLimits(), Now: clock.now, FlowBacklog: bound})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q, func(n int) {
		t.Helper()
		for range n {
			if _, err := q.Publish(&message.Message{RoutingKey: "q", Body: []byte("m")}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// takeOneByOne lets c, which has no credit, take n deliveries one at a
// time, so that each is counted on its own.
func takeOneByOne(t *testing.T, c *testConsumer, q interface{ Kick() }, n int) {
	t.Helper()
	for range n {
		c.grant(1, q)
		c.next(t)
	}
}

// A queue whose consumer lags asks its publishers to wait (Flow) past its
// bound, lets them go at half the bound, and never asks when it has no
// consumer or its consumer is stuck.
func TestFlowFollowsTheBacklogOfConsumersThatTakeMessages(t *testing.T) {
	clock := newFlowClock()
	q, pub := openFlowQueue(t, clock, 10)

	pub(60) // opens the first pace window
	if q.Flow() != nil {
		t.Fatal("in flow without consumers: a queue nobody consumes absorbs what comes")
	}
	c := newConsumer(0)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	takeOneByOne(t, c, q, 10) // two half bounds at once: fast
	pub(1)                    // 51 ready
	f := q.Flow()
	if f == nil {
		t.Fatal("not in flow with 51 ready past a bound of 10, the consumer taking half a bound in 100 ms")
	}
	c.grant(41, q) // 10 ready: still past half the bound
	takeN(t, c, 41)
	select {
	case <-f:
		t.Fatal("left flow with 10 ready, above half the bound")
	default:
	}
	c.grant(5, q) // 5 ready: half the bound
	takeN(t, c, 5)
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
	clock.add(FlowStall + time.Second)
	if q.Flow() != nil {
		t.Fatal("in flow while the consumer has taken nothing for longer than FlowStall")
	}
}

// A consumer that takes messages, but would need longer than
// FlowFastWithin to take half a bound, leaves its publishers free and the
// queue absorbs the backlog; once it is fast, the queue holds them.
func TestFlowLeavesSlowConsumersABacklog(t *testing.T) {
	clock := newFlowClock()
	q, pub := openFlowQueue(t, clock, 10)
	c := newConsumer(0)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	pub(10)
	for i := range 20 {
		for range 5 { // half the bound in 200 ms: slow
			clock.add(2 * FlowFastWithin / 5)
			takeOneByOne(t, c, q, 1)
		}
		pub(20)
		if q.Flow() != nil {
			ready, _, _ := q.Counts()
			t.Fatalf("step %d: in flow with %d ready and a consumer taking half the bound in 200 ms: a slow consumer's queue absorbs the burst", i, ready)
		}
	}
	if ready, _, _ := q.Counts(); ready < 200 {
		t.Fatalf("%d ready, want the backlog the slow consumer left", ready)
	}
	for range 5 { // half the bound in 50 ms: fast
		clock.add(FlowFastWithin / 10)
		takeOneByOne(t, c, q, 1)
	}
	pub(1)
	f := q.Flow()
	if f == nil {
		t.Fatal("not in flow once the consumer took half a bound in 50 ms")
	}
	// It stops being fast: the publishers go on.
	clock.add(FlowFastWithin + time.Millisecond)
	if q.Flow() != nil {
		t.Fatal("in flow with the consumer overdue for its next half bound")
	}
}

// A queue closing lets its held publishers go.
func TestFlowEndsWhenTheQueueCloses(t *testing.T) {
	clock := newFlowClock()
	q, err := Open(Options{Name: "q", Dir: t.TempDir(), Config: NoLimits(), Now: clock.now, FlowBacklog: 2})
	if err != nil {
		t.Fatal(err)
	}
	c := newConsumer(0)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := q.Publish(&message.Message{RoutingKey: "q", Body: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	takeOneByOne(t, c, q, 2) // two half bounds at once: fast
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
	clock := newFlowClock()
	p, err := OpenPriority(Options{Name: "p", Dir: t.TempDir(), Config: NoLimits(), Now: clock.now, FlowBacklog: 10}, 3)
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
	c := newConsumer(0)
	if _, err := p.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	pub(10, 2)
	takeOneByOne(t, c, p, 10) // the consumer takes two half bounds at once: fast
	pub(20, 2)
	f := p.Flow()
	if f == nil {
		t.Fatal("not in flow with 20 ready in a lane, past a bound of 10")
	}
	c.grant(20, p)
	takeN(t, c, 20)
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
	clock := newFlowClock()
	q, err := Open(Options{Name: "q", Dir: t.TempDir(), Config: NoLimits(), Now: clock.now, FlowBacklog: 1000, FlowBacklogBytes: 100 << 10})
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
	c := newConsumer(0)
	if _, err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	pub(10)
	takeOneByOne(t, c, q, 10) // two half byte bounds at once: fast; it holds them unacked
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
	takeN(t, c, 6)
	select {
	case <-f:
	case <-time.After(5 * time.Second):
		t.Fatal("still in flow at half the byte bound")
	}
}
