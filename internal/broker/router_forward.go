package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/cluster/rpc"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Forwarding publishes. A message routed through this node to a classic
// queue living on another node (router_cluster.go) is sent to that node
// (package rpc), which appends it to the queue and answers once it is
// durable there; the publisher's confirm waits for that answer. Messages
// from one publisher reach the queue in the order published: they are
// sent in order over the one connection between the two nodes, and the
// home node appends them in the order they arrive. A message the home
// node does not take (the node unreachable, the queue gone or full, no
// answer within forwardTimeout) is refused: basic.nack in confirm mode.

// methodPublish is the call that appends a message to a queue.
const methodPublish rpc.Method = 1

// Answers to methodPublish.
const (
	forwardOK       rpc.Status = 1 // durable in the queue
	forwardGone     rpc.Status = 2 // no such queue here (deleted, or declared anew)
	forwardRejected rpc.Status = 3 // the queue refused it (x-overflow reject-publish)
	forwardFailed   rpc.Status = 4 // the queue's storage failed
)

// forwardTimeout bounds how long a forwarded publish waits for its answer.
const forwardTimeout = 30 * time.Second

// errForwardFailed is a forwarded message's error when the home node did
// not take it.
var errForwardFailed = errors.New("the queue's node did not take the message")

// remoteQueue is a queue living on another node, as a routing
// destination.
type remoteQueue struct {
	def meta.Queue
	r   *Router
}

func (r *Router) newRemoteQueue(def meta.Queue) *remoteQueue { return &remoteQueue{def: def, r: r} }

// Publish sends m to the queue's node; the Pending is done when the node
// answers. Without a way to reach other nodes it refuses m.
func (d *remoteQueue) Publish(m *message.Message, now time.Time) (Pending, error) {
	mux := d.r.opts.Forward
	if mux == nil {
		return nil, queue.ErrRejected
	}
	req, err := encodeForward(d.def, m, now)
	if err != nil {
		return nil, err
	}
	call, err := mux.Go(cluster.NodeID(d.def.Node), methodPublish, req, forwardTimeout)
	if err != nil {
		return nil, queue.ErrRejected
	}
	return forwarded{call}, nil
}

// forwarded is a forwarded message's Pending.
type forwarded struct{ call *rpc.Pending }

func (f forwarded) Done() <-chan struct{} { return f.call.Done() }

func (f forwarded) Wait() error {
	st, _, err := f.call.Result()
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", errForwardFailed, err)
	case st == forwardOK:
		return nil
	case st == forwardRejected:
		return queue.ErrRejected
	}
	return fmt.Errorf("%w (answer %d)", errForwardFailed, st)
}

// servePublish appends a message forwarded by another node to a queue of
// this node, and answers when it is durable.
func (r *Router) servePublish(from cluster.NodeID, req []byte, reply func(rpc.Status, []byte)) {
	def, m, err := decodeForward(req)
	if err != nil {
		r.log.Warn("malformed forwarded publish", "from", from, "err", err)
		reply(forwardFailed, nil)
		return
	}
	r.mu.RLock()
	var d Destination
	if v, ok := r.vhosts[def.Vhost]; ok && !r.closed {
		if def.ID == delayedForwardID {
			// For a delayed exchange's store, of which this node holds a
			// copy (router_delayed.go).
			if x, ok := v.exchanges[def.Name]; ok && x.delayed != nil {
				d = delayedDest{r: r, store: x.delayed}
			}
		} else if qe, ok := v.queues[def.Name]; ok && qe.def.ID == def.ID && qe.dest != nil {
			d = qe.dest
		}
	}
	r.mu.RUnlock()
	if d == nil {
		reply(forwardGone, nil)
		return
	}
	a, err := d.Publish(&m, r.opts.Now())
	switch {
	case errors.Is(err, queue.ErrRejected):
		reply(forwardRejected, nil)
		return
	case errors.Is(err, queue.ErrDeleted):
		reply(forwardGone, nil)
		return
	case err != nil:
		reply(forwardFailed, nil)
		return
	}
	// Appended in arrival order above; the wait for the fsync does not
	// hold up the next message.
	go func() {
		if err := a.Wait(); err != nil {
			reply(forwardFailed, nil)
			return
		}
		reply(forwardOK, nil)
	}()
}

// A forwarded publish is the queue's vhost, name and id, each a 2-byte
// length and its bytes, then the message as a record batch of one record.

func encodeForward(q meta.Queue, m *message.Message, now time.Time) ([]byte, error) {
	rec, err := m.Record()
	if err != nil {
		return nil, err
	}
	var b []byte
	for _, s := range []string{q.Vhost, q.Name, q.ID} {
		if len(s) > 0xffff {
			return nil, fmt.Errorf("forwarded publish: a name of %d bytes", len(s))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return append(b, storage.BuildRecordBatch(0, now.UnixMilli(), []storage.Record{rec})...), nil
}

var errMalformedForward = errors.New("malformed forwarded publish")

func decodeForward(b []byte) (meta.Queue, message.Message, error) {
	var names [3]string
	for i := range names {
		if len(b) < 2 {
			return meta.Queue{}, message.Message{}, errMalformedForward
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return meta.Queue{}, message.Message{}, errMalformedForward
		}
		names[i], b = string(b[2:2+n]), b[2+n:]
	}
	var (
		m     message.Message
		count int
		merr  error
	)
	n, err := storage.ReadRecords(b, func(_, _ int64, r storage.Record) bool {
		count++
		m, merr = message.FromRecord(r)
		return true
	})
	switch {
	case err != nil:
		return meta.Queue{}, message.Message{}, fmt.Errorf("%w: %w", errMalformedForward, err)
	case merr != nil:
		return meta.Queue{}, message.Message{}, fmt.Errorf("%w: %w", errMalformedForward, merr)
	case count != 1 || n != len(b):
		return meta.Queue{}, message.Message{}, fmt.Errorf("%w: %d records, %d bytes after the batch", errMalformedForward, count, len(b)-n)
	}
	return meta.Queue{Vhost: names[0], Name: names[1], ID: names[2]}, m, nil
}
