package queue

import (
	"sync"
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
// A queue enters flow when it has more than its bound of ready messages
// or of ready body bytes (the byte bound holds a queue of big messages to
// a backlog its consumers take in about the time 2048 messages of 1 KiB
// take) while its consumers are fast: they take half a bound (of
// messages, or of bytes) within FlowFastWithin. Consumers that start
// taking messages after a pause count as fast until FlowFastWithin has
// passed without their first half bound. A hold then lasts about that
// long: the queue leaves flow once the backlog falls to half of both
// bounds, its consumers go away, they stop being fast, or they take
// nothing for FlowStall.
//
// Slow consumers do not hold publishers: a queue whose consumers would
// need seconds to work the backlog down absorbs the burst on disk, and
// its publishers go on at their own pace. That is what a queue is for
// when a burst meets a slow consumer (peak shaving), and what RabbitMQ
// does: its credit flow holds a publisher while a queue process cannot
// keep up with taking messages in, not while consumers take them out
// slowly, nor when they take nothing.

// FlowFastWithin: consumers that take half a bound within this time are
// fast, and a hold of their publishers short. Slower ones are left a
// backlog instead.
const FlowFastWithin = 100 * time.Millisecond

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
	// The consumers' pace: marks when the deliveries cross each half
	// bound, of messages and of bytes.
	msgs, bytes pace
}

// pace marks each time a running total of deliveries passes another
// step (half a bound) and keeps how long the last step took. Deliveries
// after a pause of FlowFastWithin start afresh.
type pace struct {
	step  int64        // 0: not measured
	total atomic.Int64 // delivered so far
	next  atomic.Int64 // total at which the next mark is due
	mu    sync.Mutex   // taken only to mark or start afresh
	at    atomic.Int64 // time of the last mark or start, unix nanoseconds; 0: none
	atN   int64        // total then, under mu
	took  atomic.Int64 // nanoseconds the last step took; -1: none since the start
}

// init measures steps of half bound (none if bound is 0: off).
func (p *pace) init(bound int64) {
	if bound > 0 {
		p.step = max(bound/2, 1)
	}
	p.next.Store(p.step)
	p.took.Store(-1)
}

// add counts n deliveries at now (unix nanoseconds), the first after a
// pause if fresh, marking a step passed. Deliveries are counted outside
// the queue's lock, from any goroutine.
func (p *pace) add(n, now int64, fresh bool) {
	if p.step <= 0 || n == 0 {
		return
	}
	if fresh {
		p.mu.Lock()
		t := p.total.Load()
		p.at.Store(now)
		p.atN = t
		p.took.Store(-1)
		p.next.Store(t + p.step)
		p.mu.Unlock()
	}
	if p.total.Add(n) < p.next.Load() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.total.Load()
	if t < p.next.Load() {
		return // marked by another goroutine
	}
	// Deliveries come in batches: scale to one step.
	p.took.Store(max(now-p.at.Load(), 0) * p.step / max(t-p.atN, 1))
	p.at.Store(now)
	p.atN = t
	p.next.Store(t + p.step)
}

// fast reports whether the consumers are not overdue for their next step
// and took at most FlowFastWithin over the last one, if any.
func (p *pace) fast(now int64) bool {
	at := p.at.Load()
	if at == 0 || now-at > int64(FlowFastWithin) {
		return false
	}
	took := p.took.Load()
	return took <= int64(FlowFastWithin)
}

// countDeliveries feeds the pace with n deliveries of size bytes.
func (f *flowState) countDeliveries(n, size int64, now time.Time) {
	ns := now.UnixNano()
	fresh := ns-f.progress.Swap(ns) > int64(FlowFastWithin)
	f.msgs.add(n, ns, fresh)
	f.bytes.add(size, ns, fresh)
}

// fastConsumers reports whether the consumers take half a bound, of
// messages or of bytes, within FlowFastWithin.
func (f *flowState) fastConsumers(now time.Time) bool {
	ns := now.UnixNano()
	return f.msgs.fast(ns) || f.bytes.fast(ns)
}

// Flow returns nil when publishers to the queue may go on, or a channel
// closed when they may: the queue has more ready messages than its bound
// while its consumers take them. It takes no lock.
func (q *Queue) Flow() <-chan struct{} {
	ch := q.flow.cur.Load()
	if ch == nil {
		return nil
	}
	now := q.now()
	if now.UnixNano()-q.flow.progress.Load() > int64(FlowStall) || !q.flow.fastConsumers(now) {
		return nil // its consumers are stuck or slow now: absorb instead
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
		now.UnixNano()-q.flow.progress.Load() > int64(FlowStall) || !q.flow.fastConsumers(now) {
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
