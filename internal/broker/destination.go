package broker

import (
	"fmt"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/message"
	"github.com/sluice-mq/sluice/internal/broker/queue"
	"github.com/sluice-mq/sluice/internal/storage"
)

// Destination is anything a routed message can be stored in: a queue of
// any type (classic, priority, stream) or a topic, whose partition is
// chosen from the message's routing key. Routing collects destinations
// from the bindings it matches and publishes to each; the message is
// confirmed once every Pending it got is durable.
//
// Publish may return queue.ErrDeleted (the destination went away between
// routing and storing: the message counts as not routed there),
// queue.ErrRejected (a full queue refuses it), or a storage error. now is
// the time the message is stored at, from the router's clock.
type Destination interface {
	Publish(m *message.Message, now time.Time) (Pending, error)
}

// queueDestination is a queue as a Destination. A queue entry keeps one
// (set with its queue), so that routing allocates nothing per message.
type queueDestination struct{ q queue.Handle }

func (d *queueDestination) Publish(m *message.Message, _ time.Time) (Pending, error) {
	a, err := d.q.Publish(m)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// flowing is a Destination that can ask its publishers to wait: a classic
// queue in credit flow.
type flowing interface {
	Flow() <-chan struct{}
}

// Flow is the queue's credit flow (queue.Queue.Flow); nil for queues
// without it.
func (d *queueDestination) Flow() <-chan struct{} {
	if f, ok := d.q.(flowing); ok {
		return f.Flow()
	}
	return nil
}

// setQueue makes q the queue behind qe (at open, and when RecoverQueue
// swaps it), under Router.mu.
func (qe *queueEntry) setQueue(q queue.Handle) {
	qe.q = q
	if h, ok := q.(*quorumHandle); ok {
		qe.dest = quorumDest{h}
		return
	}
	qe.dest = &queueDestination{q: q}
}

// Publish stores m in one of the topic's partitions: the one a Kafka
// producer's default partitioner picks for the routing key as record
// key (murmur2), so that AMQP and Kafka publishers of one key share a
// partition and its order; round robin when the key is empty. The record
// is m in its stored form (message.Record), as a stream queue stores it,
// with its AMQP headers also as record headers (message.TopicRecord).
func (t *Topic) Publish(m *message.Message, now time.Time) (Pending, error) {
	n := len(t.Partitions)
	if n == 0 {
		return nil, queue.ErrDeleted
	}
	rec, err := m.TopicRecord()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPreconditionFailed, err)
	}
	var i int
	if len(rec.Key) > 0 {
		i = int(murmur2(rec.Key)&0x7fffffff) % n
	} else {
		// The first partition's rotor serves the topic: it outlives the
		// copies of the topic's definition that a change makes.
		i = int(t.Partitions[0].rotor.Add(1) % uint32(n))
	}
	return publishRecord(t.Partitions[i], rec, now)
}

// publishRecord appends one AMQP message as a record to partition p. A
// replicated partition without a leader for the moment (an election), or
// held by another node, refuses it as a full queue does: a publisher in
// confirm mode is nacked and sends it again.
func publishRecord(p *Partition, rec storage.Record, now time.Time) (Pending, error) {
	_, pending, err := p.Append(storage.BuildRecordBatch(0, now.UnixMilli(), []storage.Record{rec}))
	if err != nil {
		if KindOf(err) == KindUnavailable {
			return nil, fmt.Errorf("%w: %w", queue.ErrRejected, err)
		}
		return nil, err
	}
	return pending, nil
}

// murmur2 is the 32-bit MurmurHash2 with the seed Kafka's default
// partitioner uses, so that a key maps to the partition a Kafka producer
// would choose.
func murmur2(data []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(data))
	for len(data) >= 4 {
		k := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
