package queue

import (
	"errors"

	"github.com/sluice-mq/sluice/internal/storage"
)

// Tail mode: a queue over a log it does not own.
//
// A quorum queue's messages are appended by Raft's apply to a log on every
// replica, and its ack record is replicated as Raft entries. The replica
// that leads runs a Queue in tail mode over that log: the queue reads the
// log, finds what its owner appended (catchUp) and enqueues it as Publish
// would have, decides deliveries as any queue does, and hands the ack
// record's entries (settled ranges, delivered marks) to Tail.Record
// instead of writing a file. Every replica applies them to its AckRecord
// (ackrecord.go), whose Entries the next leader opens its queue with.

// ErrTail: the queue reads a log another owner appends to (Options.Tail);
// messages reach it through that owner, not through Publish.
var ErrTail = errors.New("queue: tail queue, publish through the log's owner")

// tailMarkAhead is how far past the cursor a tail queue writes its
// delivered marks (core.markAhead): its ack-record entries are replicated
// without waiting, so a mark is written well before the deliveries it
// covers.
const tailMarkAhead = 1024

// Tail makes a Queue a reader of a log another owner appends to (a
// quorum queue's, which Raft appends on every replica) instead of the
// owner of a log and ack file under Options.Dir.
//
// The owner appends one record per batch, built as Publish builds it
// (storage.AppendRecordBatch(nil, 0, nowMs, []storage.Record{rec}) with
// rec from message.Message.Record), and lets the log assign offsets. The
// queue enqueues what lies below the log's high watermark when it next
// dispatches (it waits on Log.Changed, so the log must be opened without
// storage.Options.ReadBeforeSync) or serves a basic.get. Everything in
// the log is taken as committed: nothing is forgotten at open, and
// basic.get never waits for an append's durability.
type Tail struct {
	// Log is appended by its owner. The queue reads it; it never appends
	// to it, moves its start, syncs, closes or deletes it.
	Log *storage.Log
	// Acks are ack-record entries (AckRecord.Entries) to start from: the
	// settled set and the delivered mark. Replay stops at the first bad
	// entry, as for an ack file.
	Acks []byte
	// Record replicates ack-record entries (settled ranges, delivered
	// marks) in the order the queue made them; it may keep entries. It is
	// called without the queue's lock, never concurrently with itself,
	// and not waited for: it must not block long. An entry lost (a
	// leader's last ones, say) means a redelivery, never a loss.
	Record func(entries []byte)
	// DeleteBefore asks the owner to move the log start to offset: every
	// offset below it is settled. It is asked only when that frees a
	// whole segment that no earlier request freed; not waited for, called
	// without the queue's lock.
	DeleteBefore func(offset int64)
}

func (t *Tail) check() error {
	if t.Log == nil || t.Record == nil || t.DeleteBefore == nil {
		return errors.New("queue: Tail needs Log, Record and DeleteBefore")
	}
	return nil
}

// readableLocked is the end of what the core may read and deliver: the
// log's readable end, or in tail mode what the queue has enqueued, since
// the owner appends without telling it (a message is counted, against
// limits and in flow, before it goes out).
func (q *Queue) readableLocked() int64 {
	if q.tail != nil {
		return q.c.leo
	}
	return q.log.ReadableEnd()
}

// writeAcks writes entries taken from the ack record's buffer: to the ack
// file, or in tail mode to Tail.Record. The caller holds ackMu.
func (q *Queue) writeAcks(b []byte) error {
	if q.tail == nil {
		return q.acks.appendEntries(b)
	}
	if len(b) > 0 {
		q.tail.Record(b)
	}
	return nil
}

// askDeleteBefore asks the tail log's owner to move the log start to low
// when that frees a whole segment not freed by an earlier request: the
// owner moves the start later (through Raft), and until then every flush
// would find the same segments settled. The caller holds ackMu.
func (q *Queue) askDeleteBefore(start, low int64) {
	from := max(start, q.askedStart)
	if low <= from {
		return
	}
	segs := q.log.SegmentBaseOffsets()
	for i := 1; i < len(segs); i++ {
		if segs[i] > from && segs[i] <= low { // segs[i-1]'s segment is freed
			q.askedStart = low
			q.tail.DeleteBefore(low)
			return
		}
	}
}

// tailMsg is a message found in the tail log: its offset and the size
// Publish counts for it.
type tailMsg struct{ off, size int64 }

// catchUp enqueues what the tail log's owner appended since the queue
// last looked, up to the log's high watermark, counting each message as
// Publish counts it. It reads without the queue's lock; under the lock it
// enqueues only offsets at or past the core's log end, so that a
// concurrent catch-up (the dispatcher's and a basic.get's) counts nothing
// twice.
func (q *Queue) catchUp() {
	var msgs []tailMsg
	for {
		q.mu.Lock()
		from, closed := q.c.leo, q.closed
		q.mu.Unlock()
		hw := q.log.HighWatermark()
		if closed || from >= hw {
			return
		}
		b, err := q.log.Read(from, readAhead)
		if err != nil {
			if !errors.Is(err, storage.ErrClosed) {
				q.lg.Error("reading the queue's log failed", "offset", from, "err", err)
			}
			return
		}
		var end int64
		msgs, end = tailMessages(msgs[:0], b, from, hw)
		if end <= from {
			return
		}
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return
		}
		now := q.now()
		var n int64
		gap := false
		for _, m := range msgs {
			if m.off < q.c.leo {
				continue
			}
			if m.off > q.c.leo {
				q.c.skipped(q.c.leo, m.off)
				gap = true
			}
			q.c.enqueued(m.off, m.size, now)
			n++
		}
		if end > q.c.leo {
			q.c.skipped(q.c.leo, end)
			gap = true
		}
		if gap {
			q.lg.Warn("offsets without a readable message settled", "before", end)
			q.takeReadyLocked()
		}
		if n > 0 {
			q.enterFlowLocked(now)
		}
		q.mu.Unlock()
		q.Stats.Published.Add(n)
	}
}

// tailMessages appends to msgs the messages of the batches b (as read
// from the log) at offsets in [from, hw), and returns the offset up to
// which it looked: past the last whole batch, at most hw. Offsets below
// it that are not in msgs hold no readable message (a corrupt batch).
func tailMessages(msgs []tailMsg, b []byte, from, hw int64) ([]tailMsg, int64) {
	end := from
	for len(b) > 0 && end < hw {
		h, err := storage.ParseBatchHeader(b)
		if err != nil || h.Size() > len(b) {
			break
		}
		storage.ReadRecords(b, func(o, _ int64, r storage.Record) bool {
			if o >= hw {
				return false
			}
			if o >= from {
				msgs = append(msgs, tailMsg{off: o, size: messageSize(r)})
			}
			return true
		})
		end = max(end, min(h.LastOffset()+1, hw))
		b = b[h.Size():]
	}
	return msgs, end
}
