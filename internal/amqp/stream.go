package amqp

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluice-mq/sluice/internal/amqp/wire"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
)

// Consuming a stream queue (x-queue-type: stream), as RabbitMQ does over
// AMQP 0-9-1:
//
//   - basic.consume takes x-stream-offset (first, last, next, an offset,
//     a timestamp, an interval such as "30m"); the default is next;
//   - the consumer needs a per-consumer prefetch (basic.qos, global=false)
//     and manual acks: no prefetch is 406 PRECONDITION_FAILED, no-ack and
//     a global prefetch are 540 NOT_IMPLEMENTED;
//   - every delivery carries an x-stream-offset header (long) with the
//     message's offset;
//   - an ack only gives the consumer its credit back; basic.nack and
//     basic.reject are 540, and so are basic.get and queue.purge.
//
// A stream delivery's unackedEntry has no *queue.Queue: settling it
// touches no queue.

// streamConsume is basic.consume on a stream.
func (ch *channel) streamConsume(m *wire.BasicConsume, name string, s *queue.Stream) error {
	rs := fmt.Sprintf("queue '%s' in vhost '%s'", name, ch.c.vhost)
	ch.mu.Lock()
	prefetch, global := ch.prefetch, ch.globalPrefetch
	ch.mu.Unlock()
	switch {
	case prefetch == 0:
		return errorf(wire.PreconditionFailed, "consumer prefetch count is not set for '%s'", rs)
	case m.NoAck:
		return errorf(wire.NotImplemented, "automatic acknowledgement not supported by stream queues %s", rs)
	case global > 0:
		return errorf(wire.NotImplemented, "%s does not support global qos", rs)
	}
	v, present := m.Arguments["x-stream-offset"]
	start, err := broker.ParseStreamOffset(v, present, time.Now())
	if err != nil {
		return err
	}
	tag := m.ConsumerTag
	if tag == "" {
		tag = randomTag("amq.ctag-")
	}
	ch.mu.Lock()
	if _, dup := ch.consumers[tag]; dup {
		ch.mu.Unlock()
		return errorf(wire.NotAllowed, "attempt to reuse consumer tag '%s'", tag)
	}
	cs := &consumer{ch: ch, tag: tag, qname: name, q: s, prefetch: prefetch, stream: true}
	ch.consumers[tag] = cs
	ch.mu.Unlock()
	id, err := s.AddStreamConsumer(cs, start, m.Exclusive)
	if err != nil {
		ch.mu.Lock()
		delete(ch.consumers, tag)
		ch.mu.Unlock()
		switch {
		case errors.Is(err, queue.ErrExclusiveConsumer):
			return errorf(wire.AccessRefused, "queue '%s' in vhost '%s' in exclusive use", name, ch.c.vhost)
		case errors.Is(err, queue.ErrDeleted):
			return errorf(wire.NotFound, "no queue '%s' in vhost '%s'", name, ch.c.vhost)
		}
		return err
	}
	cs.id = id
	if !m.NoWait {
		ch.c.sendMethod(ch.id, &wire.BasicConsumeOk{ConsumerTag: tag})
	}
	ch.mu.Lock()
	cs.ready = true
	ch.mu.Unlock()
	s.Kick()
	return nil
}

// withStreamOffset adds the x-stream-offset header (long) to a stream
// delivery, on a copy of the message's headers.
func withStreamOffset(d *queue.Delivery) {
	p := &d.Message.Properties
	h := make(map[string]any, len(p.Headers)+1)
	for k, v := range p.Headers {
		h[k] = v
	}
	h["x-stream-offset"] = d.Offset
	p.Headers = h
	p.Present |= message.PropHeaders
}

// streamEntry returns the first of tags that is a stream delivery, if
// any. Called with ch.mu held.
func streamEntry(unacked map[uint64]unackedEntry, tags []uint64) (unackedEntry, bool) {
	for _, t := range tags {
		if e, ok := unacked[t]; ok && e.isStream() {
			return e, true
		}
	}
	return unackedEntry{}, false
}

// isStream reports whether e is a delivery from a stream queue.
func (e *unackedEntry) isStream() bool { return e.q == nil && e.cons != nil && e.cons.stream }
