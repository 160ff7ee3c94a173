package queue

import "unsafe"

// Memory estimates: what a queue keeps in RAM, for the management API's
// per-queue "memory". A queue's messages live in its log (read through the
// page cache, which the kernel owns and may drop), so what is counted is
// the queue's own state: the structs, the in-flight (unacked) entries,
// requeued offsets and their delivery counts, the settled ranges not yet
// trimmed, the consumers, and the messages read ahead of the cursor or
// read back for redelivery, bodies included. Map entries are costed at
// twice their key and value, Go's usual overhead for small maps.

const (
	queueFixedBytes  = int64(unsafe.Sizeof(Queue{})) + int64(unsafe.Sizeof(core{})) + 4096 // plus the ack record's buffer and the log's handles
	mapEntryOverhead = 2
	messageOverhead  = int64(unsafe.Sizeof(loadedMsg{}))
)

// memoryBytes estimates the core's memory. Called with the queue's lock.
func (c *core) memoryBytes() int64 {
	n := int64(len(c.unacked)) * mapEntryOverhead * int64(8+unsafe.Sizeof(inflight{}))
	n += int64(len(c.redelivs)) * mapEntryOverhead * (8 + 4)
	n += int64(cap(c.requeued)) * 8
	n += int64(cap(c.settled.r)) * int64(unsafe.Sizeof(span{}))
	n += int64(len(c.consumers)) * int64(unsafe.Sizeof(consumerEntry{})+8)
	for _, lm := range c.ahead {
		n += messageOverhead + lm.m.Size() + int64(len(lm.m.Exchange)+len(lm.m.RoutingKey))
	}
	for _, lm := range c.loaded {
		n += mapEntryOverhead*8 + messageOverhead + lm.m.Size() + int64(len(lm.m.Exchange)+len(lm.m.RoutingKey))
	}
	return n
}

// MemoryBytes estimates what the queue keeps in RAM (see memoryBytes);
// its messages on disk are not counted.
func (q *Queue) MemoryBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return queueFixedBytes + q.c.memoryBytes()
}

// MemoryBytes is the sum over the lanes.
func (p *Priority) MemoryBytes() int64 {
	var n int64
	for _, q := range p.lanesSnapshot() {
		n += q.MemoryBytes()
	}
	return n
}

// MemoryBytes estimates what the stream keeps in RAM: its structs and
// each reader's read-ahead buffer.
func (s *Stream) MemoryBytes() int64 {
	n := int64(unsafe.Sizeof(Stream{})) + 4096
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.readers {
		n += mapEntryOverhead*8 + int64(unsafe.Sizeof(streamReader{})) + r.held.Load()
	}
	return n
}
