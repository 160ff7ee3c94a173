package queue

import (
	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Length limits of a priority queue count the whole queue, as RabbitMQ's
// do: x-max-length and x-max-length-bytes are over the ready messages of
// every level together. With drop-head, the message dropped (or
// dead-lettered, reason maxlen) is the queue's head, the one a consumer
// would get next: the oldest message of the highest level with messages
// ready. RabbitMQ's priority queue drops through the same "fetch from the
// highest priority first" path. reject-publish and reject-publish-dlx
// refuse a publish that would take the total past a limit.
//
// The lanes themselves are opened without length limits (laneConfig).
// Message TTL stays with each lane: it is a per-message deadline applied
// at the head of each level, which is where RabbitMQ applies it too.

// limited reports whether the queue has a length limit.
func (p *Priority) limited() bool {
	cfg := p.Config()
	return cfg.MaxLength >= 0 || cfg.MaxLengthBytes >= 0
}

// laneConfig is a lane's Config: the queue's, less the length limits,
// which the Priority enforces over all lanes.
func laneConfig(c Config) Config {
	c.MaxLength, c.MaxLengthBytes = -1, -1
	return c
}

// full reports whether n more messages of size bytes would take the ready
// messages of all lanes past a limit.
func (p *Priority) full(n, size int64) bool {
	lanes := p.lanesSnapshot()
	loads := make([]levelLoad, len(lanes))
	for i, q := range lanes {
		loads[i].ready, loads[i].bytes = q.readyTotals()
	}
	cfg := p.Config()
	return overLimits(&cfg, loads, n, size)
}

// levelLoad is one level's ready messages and their body bytes.
type levelLoad struct{ ready, bytes int64 }

// overLimits is the length-limit decision of a priority queue: whether n
// more messages of size bytes take the ready messages of all levels
// together past cfg's limits.
func overLimits(cfg *Config, levels []levelLoad, n, size int64) bool {
	var ready, bytes int64
	for _, l := range levels {
		ready += l.ready
		bytes += l.bytes
	}
	return cfg.MaxLength >= 0 && ready+n > cfg.MaxLength ||
		cfg.MaxLengthBytes >= 0 && bytes+size > cfg.MaxLengthBytes
}

// publishLimited publishes m to lane q under the queue's length limits.
func (p *Priority) publishLimited(q *Queue, m *message.Message) (*storage.Appended, error) {
	c := p.Config()
	cfg := &c
	p.limitMu.Lock()
	if cfg.Overflow != DropHead && p.full(1, m.Size()) {
		p.limitMu.Unlock()
		if cfg.Overflow == RejectPublishDLX && cfg.DeadLetter && p.opts.DeadLetter != nil {
			if err := p.opts.DeadLetter(q, []Dead{{Message: *m, Reason: MaxLen}}); err != nil {
				q.lg.Warn("dead-lettering a rejected publish failed", "err", err)
			}
		}
		return nil, ErrRejected
	}
	app, err := q.Publish(m)
	p.limitMu.Unlock()
	if err != nil || cfg.Overflow != DropHead {
		return app, err
	}
	// Trim once the message is visible, so that the head dropped is the
	// head a consumer would see.
	go func() {
		if app.Wait() == nil {
			p.trim()
		}
	}()
	return app, nil
}

// trim drops heads, highest level first, while the queue is over a limit.
func (p *Priority) trim() {
	p.trimMu.Lock()
	defer p.trimMu.Unlock()
	for p.full(0, 0) {
		lanes := *p.view.Load()
		dropped := false
		for i := len(lanes) - 1; i >= 0 && !dropped; i-- {
			if lanes[i] != nil {
				dropped = lanes[i].dropHead()
			}
		}
		if !dropped {
			return
		}
	}
}

// readyTotals returns the ready message count and body bytes.
func (q *Queue) readyTotals() (n, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, _, _ = q.c.counts()
	return n, q.c.readyBytes()
}

// dropHead drops (or dead-letters, reason maxlen) the ready message at the
// head, whatever the consumers' credit. ok is false if none is visible.
func (q *Queue) dropHead() (ok bool) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return false
		}
		st := q.c.trimHead(q.now(), q.readableLocked())
		r := q.takeReadyLocked()
		q.mu.Unlock()
		if st == needRead && len(r.reads) == 1 {
			// Read the head without the lock and look again; an
			// unreadable head is settled, which counts as dropped.
			if !q.load(r.reads[0]) {
				return true
			}
			continue
		}
		q.perform(r)
		return st == took
	}
}
