package queue

import (
	"errors"
	"os"
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/storage"
)

// Reclaiming space behind a stuck message.
//
// The log start moves only past the settled prefix, so one old unacked
// (or requeued, or long-delayed) message would pin its segment and every
// later one. A closed segment that is wholly below the delivery cursor and
// mostly settled is therefore rewritten with only the batches that hold
// unsettled messages, at their original offsets (storage.CompactSegment):
// order is kept, the gaps read as settled, and the space comes back.

const (
	// compactLivePercent: a segment is compacted when at most this share
	// of its offsets is unsettled. Queue messages are one record per batch,
	// so the share of offsets stands for the share of bytes.
	compactLivePercent = 15
	// compactEvery spaces compaction passes; one pass may rewrite several
	// segments.
	compactEvery = time.Second
)

// compaction is a queue's compaction state, guarded by Queue.mu.
type compaction struct {
	running bool
	last    time.Time
	retry   bool // a pass is scheduled for when compactEvery has passed
	again   bool // asked for while running: look again when done
	// done maps a compacted segment's base to the unsettled offsets it had
	// then: it is compacted again only once that number has dropped.
	done map[int64]int64
	wg   sync.WaitGroup
	// Runs counts segments rewritten (for tests and metrics).
	runs int64
}

type compactJob struct {
	acks    []byte // ack entries buffered when the job was made
	segs    []storage.SegmentInfo
	live    []int64
	settled intervals // a snapshot over the segments' range
}

// maybeCompactLocked starts a compaction pass in the background when one
// is due and some segment qualifies. A tail queue never compacts: its
// log is its owner's.
func (q *Queue) maybeCompactLocked() {
	if q.tail != nil {
		return
	}
	c := &q.compaction
	if c.running {
		c.again = true
		return
	}
	if q.closed {
		return
	}
	start := q.log.StartOffset()
	var job compactJob
	for base := range c.done {
		if base < start {
			delete(c.done, base)
		}
	}
	for _, s := range q.log.Segments() {
		if s.Active || s.End <= start || s.End > q.c.next || s.Bytes == 0 {
			continue // only closed segments wholly behind the cursor
		}
		from := max(s.Base, start) // below the start is gone already
		total := s.End - s.Base
		live := s.End - from - q.c.settled.count(from, s.End)
		if live*100 > total*compactLivePercent {
			continue
		}
		if prev, ok := c.done[s.Base]; ok && live >= prev {
			continue // already compacted with these messages in it
		}
		job.segs = append(job.segs, s)
		job.live = append(job.live, live)
	}
	if len(job.segs) == 0 {
		return
	}
	now := time.Now()
	if wait := compactEvery - now.Sub(c.last); wait > 0 {
		if !c.retry {
			c.retry = true
			time.AfterFunc(wait, func() {
				q.mu.Lock()
				defer q.mu.Unlock()
				q.compaction.retry = false
				q.maybeCompactLocked()
			})
		}
		return
	}
	// What is settled must be on disk before a message it settles is
	// dropped from the log: a crash must not revive an ack whose message
	// is gone. The buffered entries go with the job, which writes and
	// fsyncs them (under ackMu, after any flush that took earlier ones)
	// before it rewrites a segment.
	job.acks = q.acks.takeBuffered()
	lo, hi := job.segs[0].Base, job.segs[len(job.segs)-1].End
	job.settled.add(lo, min(start, hi))
	for _, sp := range q.c.settled.r {
		if sp.to > lo && sp.from < hi {
			job.settled.add(max(sp.from, lo), min(sp.to, hi))
		}
	}
	c.running, c.last = true, now
	c.wg.Add(1)
	go q.compact(job)
}

// compact rewrites the job's segments. It runs without the queue lock; the
// settled snapshot only ever understates what is settled, so it never
// drops a batch that is still needed.
func (q *Queue) compact(job compactJob) {
	defer q.compaction.wg.Done()
	var freed int64
	done := map[int64]int64{}
	err := q.syncAcks(job.acks)
	ackErr := err != nil && !errors.Is(err, errAcksStale)
	for i := 0; err == nil && i < len(job.segs); i++ {
		s := job.segs[i]
		var n int64
		n, err = q.log.CompactSegment(s.Base, func(h storage.BatchHeader) bool {
			return job.settled.count(h.BaseOffset, h.LastOffset()+1) < h.LastOffset()+1-h.BaseOffset
		})
		if errors.Is(err, storage.ErrNoSegment) && q.log.StartOffset() >= s.End {
			// The job was planned before a flush moved the log start
			// past this segment and deleted it (a wholly settled segment
			// qualifies for both): its space is back already.
			err = nil
			continue
		}
		if err == nil {
			freed += n
			done[s.Base] = job.live[i]
		}
	}
	if err != nil && !errors.Is(err, storage.ErrClosed) && !errors.Is(err, os.ErrClosed) && !errors.Is(err, errAcksStale) {
		q.lg.Error("compacting the queue's log failed", "err", err)
	}
	if freed > 0 {
		q.lg.Debug("compacted queue segments", "segments", len(done), "freed_bytes", freed)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if ackErr && !q.closed {
		// The entries the job took are not written: the file is stale
		// now, and the retry rewrites it from the set.
		q.noteAckWrite(err)
	}
	c := &q.compaction
	c.running = false
	if c.done == nil {
		c.done = map[int64]int64{}
	}
	for b, live := range done {
		c.done[b] = live
	}
	c.runs += int64(len(done))
	if c.again {
		c.again = false
		q.maybeCompactLocked()
	}
}

// syncAcks makes the ack record durable with the entries b: appended and
// fsync'd, or, when the file is stale (a write failed), not at all: the
// next flush rewrites it from the set, and compaction waits for that.
func (q *Queue) syncAcks(b []byte) error {
	q.ackMu.Lock()
	defer q.ackMu.Unlock()
	if q.acks.stale {
		return errAcksStale
	}
	if err := q.acks.appendEntries(b); err != nil {
		return err
	}
	return q.acks.f.Sync()
}

var errAcksStale = errors.New("queue: the ack record awaits a rewrite")

// CompactedSegments is how many segments compaction has rewritten since
// the queue opened.
func (q *Queue) CompactedSegments() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.compaction.runs
}

// DiskBytes is the size of the queue's log on disk.
func (q *Queue) DiskBytes() int64 { return q.log.Size() }
