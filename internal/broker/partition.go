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
	// Duplicate is true when every batch was a retry of batches already in
	// the log; nothing was appended and there is nothing to wait for.
	Duplicate bool
}

// Append stores validated batches (headers from storage.ValidateBatches),
// enforcing idempotent-producer sequences. It returns the pending append
// to wait on for durability (nil when nothing was appended).
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
		return AppendResult{BaseOffset: dup.firstOffset, LogAppendTime: -1, LogStart: p.Log.StartOffset(), Duplicate: true}, nil, nil
	}

	ap, err := p.Log.Append(batches)
	if err != nil {
		return AppendResult{}, nil, err
	}
	off := ap.BaseOffset
	for _, h := range headers {
		if h.ProducerID >= 0 {
			p.observeLocked(h, off)
		}
		off += int64(h.LastOffsetDelta) + 1
	}
	return AppendResult{BaseOffset: ap.BaseOffset, LogAppendTime: -1, LogStart: p.Log.StartOffset()}, ap, nil
}

// observeLocked records a batch of a producer at baseOffset.
func (p *Partition) observeLocked(h storage.BatchHeader, baseOffset int64) {
	st := p.producers[h.ProducerID]
	if st == nil || h.ProducerEpoch > st.epoch {
		st = &producerState{epoch: h.ProducerEpoch}
		p.producers[h.ProducerID] = st
	}
	st.add(seqEntry{
		firstSeq: h.BaseSequence, lastSeq: lastSeqOf(h),
		firstOffset: baseOffset, lastOffset: baseOffset + int64(h.LastOffsetDelta),
	})
}

// rebuildProducers replays batch headers from the last segments so that
// sequence checks survive a restart.
func (p *Partition) rebuildProducers() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	bases := p.Log.SegmentBaseOffsets()
	from := p.Log.StartOffset()
	if len(bases) > 2 {
		from = max(from, bases[len(bases)-2])
	}
	return p.Log.ScanHeaders(from, func(h storage.BatchHeader) bool {
		if h.ProducerID >= 0 {
			p.observeLocked(h, h.BaseOffset)
		}
		return true
	})
}

// MaxTimestamp finds the first batch with the largest max timestamp in the
// active segment and returns its last offset and that timestamp. Records
// are normally timestamped in order, so the newest segment holds it.
func (p *Partition) MaxTimestamp() (offset, ts int64, ok bool, err error) {
	bases := p.Log.SegmentBaseOffsets()
	if len(bases) == 0 {
		return 0, 0, false, nil
	}
	from := max(bases[len(bases)-1], p.Log.StartOffset())
	ts = -1
	err = p.Log.ScanHeaders(from, func(h storage.BatchHeader) bool {
		if h.MaxTimestamp > ts {
			offset, ts, ok = h.LastOffset(), h.MaxTimestamp, true
		}
		return true
	})
	return offset, ts, ok, err
}
