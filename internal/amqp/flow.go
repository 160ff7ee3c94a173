package amqp

// Flow control on resource alarms, as RabbitMQ does it.
//
// While an alarm is raised (Options.Flow), a connection that sends
// basic.publish is paused just before that publish is handled: the read
// loop stops reading the socket, so the publish and everything after it
// stay in the kernel buffers and then in the client, and TCP pushes back.
// Nothing is refused or dropped, and a publish held this way is neither
// routed nor confirmed until the alarm clears. Connections that do not
// publish (consumers) are never paused, so they can drain queues.
//
// Clients that announce the connection.blocked capability are told:
// connection.blocked (with a reason such as "low on disk") is sent to
// every connection that has published, when the alarm is raised or when
// it first publishes during the alarm, and connection.unblocked once
// every alarm has cleared. One blocked is sent per episode, however
// many alarms join it.

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
)

// FlowControl tells the server when publishers must be held:
// internal/broker/alarm's Monitor.
type FlowControl interface {
	// Blocked returns why publishers must wait ("" when they need not)
	// and a channel closed when that answer next changes.
	Blocked() (reason string, changed <-chan struct{})
}

// connFlow is one connection's flow-control state.
type connFlow struct {
	notify    bool        // the client announced connection.blocked; set in the handshake
	published atomic.Bool // the connection has sent basic.publish

	// credit is set by a publish that went to a queue in credit flow
	// (broker.Routed.Flow): the read loop waits on it before the next
	// publish. Only the read loop touches it.
	credit <-chan struct{}
	// inFlow is set while the read loop waits for credit, and flowEnd is
	// when it last stopped waiting (unix nanoseconds): the connection's
	// state is "flow" meanwhile and for flowShown after (registry.go).
	inFlow  atomic.Bool
	flowEnd atomic.Int64

	mu   sync.Mutex // orders the blocked/unblocked notifications
	sent bool       // connection.blocked sent, connection.unblocked not yet
}

func (s *Server) blocked() (string, <-chan struct{}) {
	if s.opts.Flow == nil {
		return "", nil
	}
	return s.opts.Flow.Blocked()
}

// watchFlow brings every publishing connection's notifications in line
// with each raise and clear, until the server closes.
func (s *Server) watchFlow() {
	_, changed := s.opts.Flow.Blocked()
	for {
		select {
		case <-changed:
		case <-s.done:
			return
		}
		_, changed = s.opts.Flow.Blocked()
		s.mu.Lock()
		for c := range s.conns {
			if c.flow.published.Load() {
				// Not inline: one client slow to read must not
				// delay the others' notifications.
				go c.syncBlocked()
			}
		}
		s.mu.Unlock()
	}
}

// syncBlocked sends connection.blocked or connection.unblocked if what the
// client was last told differs from the alarm state now. It reads the state
// under flow.mu, so whichever call runs last after a change sends the
// right answer, however the watcher and the read loop interleave.
func (c *conn) syncBlocked() {
	if !c.flow.notify {
		return
	}
	c.flow.mu.Lock()
	defer c.flow.mu.Unlock()
	reason, _ := c.s.blocked()
	want := reason != "" && c.flow.published.Load()
	switch {
	case want && !c.flow.sent:
		c.flow.sent = c.sendMethod(0, &wire.ConnectionBlocked{Reason: reason})
	case !want && c.flow.sent:
		c.sendMethod(0, &wire.ConnectionUnblocked{})
		c.flow.sent = false
	}
}

// isPublish reports whether a method frame's payload is basic.publish,
// without decoding the rest.
func isPublish(f wire.Frame) bool {
	p := f.Payload
	return f.Type == wire.FrameMethod && len(p) >= 4 &&
		p[0] == 0 && p[1] == 60 && p[2] == 0 && p[3] == 40
}

// holdPublish runs in the read loop before a basic.publish is handled and
// returns once no alarm is raised. It returns false if the server closes
// while it waits; the held publish is then not handled (nor confirmed).
func (c *conn) holdPublish() bool {
	if !c.flow.published.Load() {
		c.flow.published.Store(true)
	}
	if c.flow.credit != nil && !c.awaitCredit() {
		return false
	}
	reason, changed := c.s.blocked()
	if reason == "" {
		return true
	}
	c.syncBlocked()
	c.log.Info("publisher blocked by resource alarm", "reason", reason)
	for reason != "" {
		select {
		case <-changed:
		case <-c.s.done:
			return false
		}
		reason, changed = c.s.blocked()
	}
	c.syncBlocked()
	c.log.Info("publisher unblocked")
	return true
}

// Credit flow, as RabbitMQ's credit_flow: when a publish went to a queue
// whose consumers fall behind (queue.Queue.Flow), the read loop stops
// before the connection's next publish until the queue has caught up, so
// the client's writes stay in the socket buffers and TCP holds the
// publisher back. The connection's state is "flow" meanwhile, as
// RabbitMQ shows it. Publishers to other queues are not held: each
// connection waits only on the queues it published to.
//
// A wait lasts at most flowPause. A connection that publishes and also
// consumes, acking on the same connection, cannot have its acks read while
// it waits, and its queue would wait on those acks: after flowPause the
// loop reads on (the acks, and one more publish), so such a connection is
// slowed, never deadlocked. A publisher held for flowPause whose queue is
// still behind is held again at its next publish.
const flowPause = 100 * time.Millisecond

// flowShown is how long a connection still shows state "flow" after its
// last wait, as RabbitMQ shows a connection recently held by credit flow
// in flow rather than flickering between the two states.
const flowShown = time.Second

// inFlow reports whether the connection waits, or waited within
// flowShown, for credit.
func (c *conn) inFlow() bool {
	return c.flow.inFlow.Load() || time.Now().UnixNano()-c.flow.flowEnd.Load() < int64(flowShown)
}

// awaitCredit waits, before the next publish, for the queue the last
// publish went to to leave flow, for at most flowPause. It returns false
// if the server closes meanwhile.
func (c *conn) awaitCredit() bool {
	credit := c.flow.credit
	c.flow.credit = nil
	select {
	case <-credit:
		return true
	default:
	}
	c.flow.inFlow.Store(true)
	start := time.Now()
	t := time.NewTimer(flowPause)
	defer func() {
		t.Stop()
		c.flow.flowEnd.Store(time.Now().UnixNano())
		c.flow.inFlow.Store(false)
		c.s.opts.Hooks.FlowWaited(time.Since(start))
	}()
	select {
	case <-credit:
	case <-t.C:
	case <-c.s.done:
		return false
	}
	return true
}
