package broker

import (
	"fmt"
	"os"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/storage"
)

// QueueFailure is a queue whose storage refuses writes.
type QueueFailure struct {
	Vhost, Name string
	Err         error
}

// FailedQueues lists the queues whose storage refuses writes.
func (r *Router) FailedQueues() []QueueFailure {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []QueueFailure
	for _, v := range r.vhosts {
		for _, qe := range v.queues {
			if err := qe.q.Failed(); err != nil {
				out = append(out, QueueFailure{Vhost: v.name, Name: qe.def.Name, Err: err})
			}
		}
	}
	return out
}

// RecoverQueue reopens a queue whose storage failed from what is durable
// on disk. Its consumers are told the queue went away (basic.cancel, as
// RabbitMQ does when a queue's process goes down), what they had unacked
// is ready again, flagged redelivered, and messages whose writes failed
// (their publishers were nacked or saw the channel close) are gone. While
// the queue reopens, publishes to it fail as they did while it was failed;
// no lock is held across the reopen's disk work. A healthy or deleted
// queue is left alone. If the reopen fails, the queue stays failed and
// RecoverQueue may be called again.
func (r *Router) RecoverQueue(vh, name string) error {
	r.mu.Lock()
	v, ok := r.vhosts[vh]
	var qe *queueEntry
	if ok {
		qe, ok = v.queues[name]
	}
	if !ok || r.closed {
		r.mu.Unlock()
		return nil
	}
	old := qe.q
	cause := old.Failed()
	if cause == nil {
		r.mu.Unlock()
		return nil
	}
	ph := &recoveringQueue{name: name, dir: r.queueDir(qe.def.ID), cfg: old.Config(), err: cause}
	qe.setQueue(ph)
	pols := v.pols
	r.mu.Unlock()

	old.Shutdown() // its error is the failure itself
	fresh, err := r.openQueue(v, qe.def, pols)

	r.mu.Lock()
	gone := v.queues[name] != qe // deleted meanwhile (and maybe declared anew)
	current := !r.closed && !gone && qe.q == ph
	switch {
	case current && err == nil:
		qe.setQueue(fresh.q)
		r.applyQueuePolicyLocked(v, qe, true) // opened with the policies of before
	case current:
		ph.err = fmt.Errorf("%w: reopening queue '%s' in vhost '%s': %w", ErrStorage, name, vh, err)
	}
	r.mu.Unlock()
	switch {
	case err != nil:
		return err
	case gone:
		return fresh.q.Delete()
	case !current:
		return fresh.q.Close()
	}
	return nil
}

// recoveringQueue stands in for a queue while it is reopened after a
// storage failure: publishes fail with the failure, as they did before,
// so that no publisher is told a message was stored, and nothing is
// delivered.
type recoveringQueue struct {
	name, dir string
	cfg       queue.Config
	err       error
}

func (q *recoveringQueue) Name() string         { return q.name }
func (q *recoveringQueue) Config() queue.Config { return q.cfg }
func (q *recoveringQueue) Publish(*message.Message) (*storage.Appended, error) {
	return nil, fmt.Errorf("%w: queue '%s' is recovering from a storage failure: %w", ErrStorage, q.name, q.err)
}
func (q *recoveringQueue) AddConsumer(queue.Consumer, queue.ConsumerOptions) (uint64, error) {
	return 0, fmt.Errorf("%w: queue '%s' is recovering from a storage failure: %w", ErrStorage, q.name, q.err)
}
func (q *recoveringQueue) RemoveConsumer(uint64)                    {}
func (q *recoveringQueue) Kick()                                    {}
func (q *recoveringQueue) Get(bool) (queue.Delivery, bool)          { return queue.Delivery{}, false }
func (q *recoveringQueue) Counts() (ready, unacked int64, cons int) { return 0, 0, 0 }
func (q *recoveringQueue) Purge() int64                             { return 0 }
func (q *recoveringQueue) LastUsed() (time.Time, bool)              { return time.Now(), true } // never expires meanwhile
func (q *recoveringQueue) Touch()                                   {}
func (q *recoveringQueue) Close() error                             { return nil }
func (q *recoveringQueue) Shutdown() error                          { return nil }
func (q *recoveringQueue) Delete() error                            { return os.RemoveAll(q.dir) }
func (q *recoveringQueue) Failed() error                            { return q.err }
