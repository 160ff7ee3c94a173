package broker

import (
	"math"
	"sync"

	"github.com/sluice-mq/sluice/internal/storage"
)

// Partition is one partition of a topic: a log plus the idempotent
// producer state that decides whether a batch is new, a duplicate, or out
// of order.
type Partition struct {
	Topic string
	Index int32
	Log   *storage.Log

	mu        sync.Mutex // guards producers and orders appends with their checks
	producers map[int64]*producerState
}

// producerState remembers, per producer id, its epoch and its last few
// batches so that a retried batch is answered with its first offsets
// instead of being appended twice (Kafka keeps five; so do we).
type producerState struct {
	epoch  int16
	recent [5]seqEntry // ring of the latest batches, newest at (next-1)
	next   int
	n      int
}

type seqEntry struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	// ap is the append that wrote the batch, nil for a batch found in the
	// log at recovery. Until it completes the batch is not durable, so a
	// retry of it is answered only once it is, and fails if it failed.
	ap *storage.Appended
}

func (s *producerState) last() seqEntry { return s.recent[(s.next+len(s.recent)-1)%len(s.recent)] }

func (s *producerState) add(e seqEntry) {
	s.recent[s.next] = e
	s.next = (s.next + 1) % len(s.recent)
	if s.n < len(s.recent) {
		s.n++
	}
}

func (s *producerState) find(firstSeq, lastSeq int32) (seqEntry, bool) {
	for i := 0; i < s.n; i++ {
		e := s.recent[(s.next+len(s.recent)-1-i)%len(s.recent)]
		if e.firstSeq == firstSeq && e.lastSeq == lastSeq {
			return e, true
		}
	}
	return seqEntry{}, false
}

func nextSeq(seq int32) int32 {
	if seq == math.MaxInt32 {
		return 0
	}
	return seq + 1
}

func lastSeqOf(h storage.BatchHeader) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

// AppendResult says where a produced batch set landed.
type AppendResult struct {
	BaseOffset    int64
	LogAppendTime int64
	LogStart      int64
	// Duplicate is true when every batch was a retry of batches already
	// appended; nothing was appended. If the original is not durable yet,
	// the returned Appended is the original's: the retry is answered when
	// (and only if) the original is.
	Duplicate bool
}

// Append stores validated batches (headers from storage.ValidateBatches),
// enforcing idempotent-producer sequences. It returns the pending append
// to wait on for durability (nil when there is nothing to wait for).
//
// A producer's sequence state counts a batch from the moment it is handed
// to the log, so that pipelined batches (up to five in flight) are checked
// against each other; but a retry is answered as a duplicate only with the
// original's own durability: it waits for the original's fsync, and gets
// its error if that failed. A failed write fails the log, and Recover
// rebuilds the sequence state from what is durable, so a batch whose
// write failed is written again when its producer retries it.
func (p *Partition) Append(batches []byte, headers []storage.BatchHeader) (AppendResult, *storage.Appended, error) {
	p.mu.Lock()
	defer p.mu.Unlock()

	// Decide for every batch before appending any, so a request is applied
	// all or nothing.
	var dup *seqEntry
	for _, h := range headers {
		if h.ProducerID < 0 {
			continue
		}
		st := p.producers[h.ProducerID]
		if st == nil {
			continue // unknown producer (new, or its state aged out): accept
		}
		switch {
		case h.ProducerEpoch < st.epoch:
			return AppendResult{}, nil, ErrInvalidProducerEpoch
		case h.ProducerEpoch > st.epoch:
			if h.BaseSequence != 0 {
				return AppendResult{}, nil, ErrOutOfOrderSequence
			}
		default:
			if e, ok := st.find(h.BaseSequence, lastSeqOf(h)); ok && len(headers) == 1 {
				dup = &e
				continue
			}
			if h.BaseSequence != nextSeq(st.last().lastSeq) {
				return AppendResult{}, nil, ErrOutOfOrderSequence
			}
		}
	}
	if dup != nil {
		res := AppendResult{BaseOffset: dup.firstOffset, LogAppendTime: -1, LogStart: p.Log.StartOffset(), Duplicate: true}
		if dup.ap != nil { // not known durable yet: answer as the original is answered
			select {
			case <-dup.ap.Done():
				if err := dup.ap.Wait(); err != nil {
					return AppendResult{}, nil, err // the original was lost: the log is failed until Recover
				}
			default:
				return res, dup.ap, nil
			}
		}
		return res, nil, nil
	}

	ap, err := p.Log.Append(batches)
	if err != nil {
		return AppendResult{}, nil, err
	}
	off := ap.BaseOffset
	for _, h := range headers {
		if h.ProducerID >= 0 {
			p.observeLocked(h, off, ap)
		}
		off += int64(h.LastOffsetDelta) + 1
	}
	return AppendResult{BaseOffset: ap.BaseOffset, LogAppendTime: -1, LogStart: p.Log.StartOffset()}, ap, nil
}

// observeLocked records a batch of a producer at baseOffset, written by
// ap (nil: found durable in the log).
func (p *Partition) observeLocked(h storage.BatchHeader, baseOffset int64, ap *storage.Appended) {
	st := p.producers[h.ProducerID]
	if st == nil || h.ProducerEpoch > st.epoch {
		st = &producerState{epoch: h.ProducerEpoch}
		p.producers[h.ProducerID] = st
	}
	st.add(seqEntry{
		firstSeq: h.BaseSequence, lastSeq: lastSeqOf(h),
		firstOffset: baseOffset, lastOffset: baseOffset + int64(h.LastOffsetDelta), ap: ap,
	})
}

// Failed returns why the partition's log refuses writes, nil if it
// does not.
func (p *Partition) Failed() error { return p.Log.Failed() }

// Recover reopens a failed partition log from what is durable on disk
// (storage.Log.Recover) and rebuilds the producers' sequence state from
// it, forgetting the batches whose writes failed. A healthy partition is
// left alone.
func (p *Partition) Recover() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Log.Failed() == nil {
		return nil
	}
	if err := p.Log.Recover(); err != nil {
		return err
	}
	return p.rebuildProducersLocked()
}

// rebuildProducers replays batch headers from the last segments so that
// sequence checks survive a restart.
func (p *Partition) rebuildProducers() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rebuildProducersLocked()
}

func (p *Partition) rebuildProducersLocked() error {
	clear(p.producers)
	bases := p.Log.SegmentBaseOffsets()
	from := p.Log.StartOffset()
	if len(bases) > 2 {
		from = max(from, bases[len(bases)-2])
	}
	return p.Log.ScanHeaders(from, func(h storage.BatchHeader) bool {
		if h.ProducerID >= 0 {
			p.observeLocked(h, h.BaseOffset, nil)
		}
		return true
	})
}
