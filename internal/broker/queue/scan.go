package queue

import (
	"github.com/sluice-mq/sluice/internal/storage"
)

// LogEnd is the offset after the last message durable in the queue's
// log (its high watermark): a message appended later gets an offset at
// or above it.
func (q *Queue) LogEnd() int64 { return q.log.HighWatermark() }

// Scan calls fn with every message still stored in the queue's log from
// offset from (or the log start, if later) up to LogEnd, settled or not,
// in offset order, until fn returns false. It reads through the log a
// megabyte at a time, so its memory does not grow with the queue. The
// broker uses it to find, after a restart, what a topic feed had already
// appended (feed.go).
func (q *Queue) Scan(from int64, fn func(offset int64, r storage.Record) bool) error {
	off, end := max(from, q.log.StartOffset()), q.log.HighWatermark()
	for off < end {
		b, err := q.log.Read(off, 1<<20)
		if err != nil || len(b) == 0 {
			return err
		}
		before := off
		for len(b) > 0 && off < end {
			h, err := storage.ParseBatchHeader(b)
			if err != nil || h.Size() > len(b) {
				break
			}
			more := true
			if _, err := storage.ReadRecords(b, func(o, _ int64, r storage.Record) bool {
				if o >= off && o < end {
					more = fn(o, r)
				}
				return more
			}); err != nil {
				return err
			}
			if !more {
				return nil
			}
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
		if off == before {
			return storage.ErrCorruptBatch
		}
	}
	return nil
}
