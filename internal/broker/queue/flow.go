package queue

import (
	"sync/atomic"
	"time"
)

// Credit flow: a queue whose consumers fall behind its publishers asks the
// publishers to wait, so that what it accepts it delivers in tens of
// milliseconds instead of letting the backlog (and every message's time in
// the queue) grow to seconds. RabbitMQ does the same with its credit_flow:
// a queue process that cannot keep up stops granting credit, the channels
// and then the reader of each publishing connection stop, and TCP pushes
// back on the client.
//
// The queue only says when publishers should wait (Flow); the front end
// decides how (the AMQP front end stops reading the publishing
// connection's socket for a moment). Nothing is refused or dropped: a
// publish the queue accepted is delivered and confirmed as always.
//
// A queue is in flow while it has consumers that are making progress (a
// delivery within FlowStall), and more than its bound of ready messages or
// of ready body bytes (the byte bound holds a queue of big messages to a
// backlog its consumers take in about the time 2048 messages of 1 KiB
// take). It leaves flow once the backlog falls to half of both bounds, its consumers
// go away, or they stop taking messages for FlowStall: a queue whose
// consumers are gone or stuck absorbs a burst on disk without slowing its
// publishers, as with RabbitMQ, whose credit flow does not wait on
// consumers that do not consume.

// DefaultFlowBacklog is the ready messages past which a queue with
// consumers makes its publishers wait (Options.FlowBacklog).
const DefaultFlowBacklog = 2048

// DefaultFlowBacklogBytes is the ready body bytes past which a queue with
// consumers makes its publishers wait (Options.FlowBacklogBytes): four
// times the count bound's bytes at 1 KiB, so that only big messages meet
// it first.
const DefaultFlowBacklogBytes = 8 << 20

// FlowStall is how long a queue in flow waits for a delivery before it
// lets its publishers go: consumers that take nothing for that long are
// stuck, not slow, and the queue absorbs what comes instead.
const FlowStall = time.Second

// flowState is a queue's credit-flow state.
type flowState struct {
	bound      int64 // ready messages past which publishers wait; 0: never
	boundBytes int64 // ready body bytes past which publishers wait; 0: never
	// on is closed when the queue leaves flow; non-nil, under Queue.mu,
	// while it is in flow. cur mirrors it for Flow, without the lock.
	on  chan struct{}
	cur atomic.Pointer[chan struct{}]
	// progress is the time of the last delivery, unix nanoseconds.
	progress atomic.Int64
}

// Flow returns nil when publishers to the queue may go on, or a channel
// closed when they may: the queue has more ready messages than its bound
// while its consumers take them. It takes no lock.
func (q *Queue) Flow() <-chan struct{} {
	ch := q.flow.cur.Load()
	if ch == nil {
		return nil
	}
	if q.now().UnixNano()-q.flow.progress.Load() > int64(FlowStall) {
		return nil // its consumers are stuck: absorb instead
	}
	return *ch
}

// InFlow reports whether the queue is asking its publishers to wait.
func (q *Queue) InFlow() bool { return q.Flow() != nil }

// enterFlowLocked puts the queue in flow after a publish if it is past
// its bound with consumers making progress.
func (q *Queue) enterFlowLocked(now time.Time) {
	if q.flow.bound <= 0 && q.flow.boundBytes <= 0 || q.flow.on != nil {
		return
	}
	ready, _, consumers := q.c.counts()
	if consumers == 0 || !q.pastFlowBoundLocked(ready, 1) ||
		now.UnixNano()-q.flow.progress.Load() > int64(FlowStall) {
		return
	}
	on := make(chan struct{})
	q.flow.on = on
	q.flow.cur.Store(&on)
}

// leaveFlowLocked lets the publishers go once the backlog is down to half
// the bound or the consumers are gone (force: the queue closes).
func (q *Queue) leaveFlowLocked(force bool) {
	if q.flow.on == nil {
		return
	}
	if !force {
		ready, _, consumers := q.c.counts()
		if consumers > 0 && q.pastFlowBoundLocked(ready, 2) {
			return
		}
	}
	close(q.flow.on)
	q.flow.on = nil
	q.flow.cur.Store(nil)
}

// pastFlowBoundLocked reports whether the ready messages (ready of them)
// are past 1/div of either bound.
func (q *Queue) pastFlowBoundLocked(ready, div int64) bool {
	f := &q.flow
	if f.bound > 0 && ready > f.bound/div {
		return true
	}
	// The live bytes (ready and unacked) first: readyBytes walks the
	// unacked, which only a queue of big messages needs.
	return f.boundBytes > 0 && q.c.liveBytes > f.boundBytes/div &&
		q.c.readyBytes() > f.boundBytes/div
}

// Flow is the credit flow of a priority queue: a lane in flow (each lane
// is a Queue with the priority queue's bound) holds the publishers of the
// whole queue, since a lane's consumers are the queue's.
func (p *Priority) Flow() <-chan struct{} {
	for _, q := range *p.view.Load() {
		if q == nil {
			continue
		}
		if f := q.Flow(); f != nil {
			return f
		}
	}
	return nil
}
