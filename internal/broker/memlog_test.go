package broker

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-mq/sluice/internal/storage"
)

// memLog is the in-memory twin of a PartitionLog, written the way a
// replicated log will behave: appended batches are held (readable by the
// log's own Read, past the high watermark) until commit moves the high
// watermark over them, as a Raft commit index would. With auto set every
// append commits at once.
type memLog struct {
	mu      sync.Mutex
	batches [][]byte // whole batches, base offsets assigned, in order
	start   int64    // first offset held
	end     int64    // offset after the last batch appended
	hw      int64    // offset after the last committed batch
	auto    bool
	waiting []*memPending
	changed chan struct{}
	failed  error
	closed  bool
}

var _ PartitionLog = (*memLog)(nil)

func newMemLog(auto bool) *memLog { return &memLog{auto: auto, changed: make(chan struct{})} }

type memPending struct {
	last int64
	done chan struct{}
	err  error
}

func (m *memPending) Done() <-chan struct{} { return m.done }
func (m *memPending) Wait() error           { <-m.done; return m.err }

func header(b []byte) storage.BatchHeader {
	h, err := storage.ParseBatchHeader(b)
	if err != nil {
		panic(err) // the partition validates before appending
	}
	return h
}

func (l *memLog) Append(batches []byte) (int64, Pending, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return 0, nil, storage.ErrClosed
	case l.failed != nil:
		return 0, nil, l.failed
	}
	base := l.end
	for len(batches) > 0 {
		h := header(batches)
		b := append([]byte(nil), batches[:h.Size()]...)
		binary.BigEndian.PutUint64(b, uint64(l.end)) // outside the CRC
		l.batches = append(l.batches, b)
		l.end += int64(h.LastOffsetDelta) + 1
		batches = batches[h.Size():]
	}
	p := &memPending{last: l.end - 1, done: make(chan struct{})}
	l.waiting = append(l.waiting, p)
	if l.auto {
		l.commitLocked(l.end)
	}
	return base, p, nil
}

// commit moves the high watermark to the end of what is appended.
func (l *memLog) commit() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.commitLocked(l.end)
}

func (l *memLog) commitLocked(to int64) {
	if to <= l.hw {
		return
	}
	l.hw = to
	kept := l.waiting[:0]
	for _, p := range l.waiting {
		if p.last < to {
			close(p.done)
		} else {
			kept = append(kept, p)
		}
	}
	l.waiting = kept
	l.notifyLocked()
}

func (l *memLog) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// fail fails the log and every append not yet committed, as a failed
// fsync does.
func (l *memLog) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed = err
	for _, p := range l.waiting {
		p.err = err
		close(p.done)
	}
	l.waiting = nil
}

// index is the position in batches of the one holding offset, len if none.
func (l *memLog) indexLocked(offset int64) int {
	for i, b := range l.batches {
		if header(b).LastOffset() >= offset {
			return i
		}
	}
	return len(l.batches)
}

func (l *memLog) Read(offset int64, maxBytes int) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, storage.ErrClosed
	}
	if offset < l.start || offset > l.end {
		return nil, fmt.Errorf("%w: %d", storage.ErrOffsetOutOfRange, offset)
	}
	var out []byte
	for _, b := range l.batches[l.indexLocked(offset):] {
		if len(out) > 0 && len(out)+len(b) > maxBytes {
			break
		}
		out = append(out, b...)
	}
	return out, nil
}

func (l *memLog) ScanHeaders(from int64, fn func(storage.BatchHeader) bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return storage.ErrClosed
	}
	for _, b := range l.batches[l.indexLocked(max(from, l.start)):] {
		if !fn(header(b)) {
			return nil
		}
	}
	return nil
}

func (l *memLog) OffsetForTimestamp(ts int64) (int64, int64, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.batches[l.indexLocked(l.start):] {
		if h := header(b); h.MaxTimestamp >= ts {
			return max(h.BaseOffset, l.start), h.MaxTimestamp, true, nil
		}
	}
	return 0, 0, false, nil
}

func (l *memLog) StartOffset() int64 { l.mu.Lock(); defer l.mu.Unlock(); return l.start }

func (l *memLog) HighWatermark() int64 { l.mu.Lock(); defer l.mu.Unlock(); return l.hw }

func (l *memLog) Changed() <-chan struct{} { l.mu.Lock(); defer l.mu.Unlock(); return l.changed }

// SegmentBaseOffsets: the twin is one segment.
func (l *memLog) SegmentBaseOffsets() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return []int64{l.start}
}

func (l *memLog) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, b := range l.batches {
		n += len(b)
	}
	return int64(n)
}

func (l *memLog) DeleteRecordsBefore(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if offset > l.hw {
		return storage.ErrOffsetOutOfRange
	}
	if offset > l.start {
		l.start = offset
		l.batches = l.batches[l.indexLocked(offset):]
	}
	return nil
}

func (l *memLog) EnforceRetention(time.Duration, int64) (int, error) { return 0, nil }
func (l *memLog) SetSegmentOptions(int64, time.Duration)             {}

func (l *memLog) Failed() error { l.mu.Lock(); defer l.mu.Unlock(); return l.failed }

// Recover forgets what was never committed, as a reopen from what is
// durable does.
func (l *memLog) Recover() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed = nil
	l.batches = l.batches[:l.indexLocked(l.hw)]
	l.end = l.hw
	return nil
}

func (l *memLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		l.notifyLocked()
	}
	return nil
}

func (l *memLog) Delete() error { return l.Close() }
