package storage

import (
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Options fields left zero.
const (
	DefaultSegmentBytes       = 1 << 30
	DefaultSegmentAge         = 7 * 24 * time.Hour
	DefaultIndexIntervalBytes = 4096
	DefaultMaxBatchBytes      = 8 << 20
	DefaultSyncInterval       = time.Second

	maxMaxBatchBytes = 1 << 30
	// oldSegmentHandles bounds the old segments with open files, per log.
	oldSegmentHandles = 8
	// minPendingBytes is the least a log buffers for its writer before
	// Append waits (it waits longer for larger MaxBatchBytes).
	minPendingBytes = 16 << 20
	// keepBufferBytes is the largest group buffer kept while a log idles.
	keepBufferBytes = 1 << 20
)

func (o Options) withDefaults() Options {
	if o.FS == nil {
		o.FS = OSFS()
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	o.MaxBatchBytes = min(o.MaxBatchBytes, maxMaxBatchBytes)
	o.SegmentBytes = o.normSegmentBytes(o.SegmentBytes)
	if o.SegmentAge <= 0 {
		o.SegmentAge = DefaultSegmentAge
	}
	if o.IndexIntervalBytes <= 0 {
		o.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if o.Sync < SyncAlways || o.Sync > SyncNever {
		o.Sync = SyncAlways
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// normSegmentBytes applies the default and keeps every file position of a
// segment (at most SegmentBytes plus one batch) within the uint32 the
// index stores.
func (o Options) normSegmentBytes(n int64) int64 {
	if n <= 0 {
		n = DefaultSegmentBytes
	}
	return min(n, math.MaxUint32-int64(o.MaxBatchBytes))
}

// Log is one segmented append-only log (a Kafka partition or a queue).
// All methods are safe for concurrent use.
type Log struct {
	dir  string
	opts Options
	fs   FS

	adminMu sync.Mutex // serializes DeleteRecordsBefore, EnforceRetention and Delete

	mu         sync.Mutex
	space      sync.Cond  // on mu: the pending buffer drained, or the log failed or closed
	segs       []*segment // oldest first, the last is active; replaced, never modified in place
	next       int64      // next offset Append assigns
	pend       *group     // appends waiting for the writer
	changed    chan struct{}
	failErr    error       // set once: the log accepts no more writes until Recover
	failed     atomic.Bool // failErr != nil, for the writer to see without mu
	discard    atomic.Bool // set by Delete: Close need not make anything durable
	closed     bool
	size       int64 // bytes in all segments, as committed
	segBytes   int64
	segAge     time.Duration
	maxPending int

	hw    atomic.Int64 // high watermark; stored under mu
	rend  atomic.Int64 // readable end: hw, or ahead of it with ReadBeforeSync; stored under mu
	start atomic.Int64 // log start offset; stored under mu

	cache handleCache
	w     writer // owned by the writer goroutine (by Open before it starts)

	kick       chan struct{} // wakes the writer; capacity 1
	writerDone chan struct{}
	closeErr   error // set by the writer before writerDone closes
}

// group is the unit of group commit: the appends (and Sync, Roll, Close
// requests) that arrived while the writer was busy, written together.
type group struct {
	done    chan struct{}
	buf     []byte // the batches, offsets assigned
	ends    []int  // end of each batch in buf
	waiters []*Appended
	syncReq bool // fsync whatever the policy (Sync, Close)
	// syncBehind: SyncBehind requests, answered by an fsync that runs
	// off the writer once the group is written.
	syncBehind []*Appended
	rollAt     int // roll before batch rollAt (== len(ends): after the last); -1: no
	closing    bool
}

func newGroup() *group { return &group{done: make(chan struct{}), rollAt: -1} }

func (g *group) idle() bool {
	return len(g.ends) == 0 && len(g.waiters) == 0 && len(g.syncBehind) == 0 && !g.syncReq && g.rollAt < 0 && !g.closing
}

// reset readies a completed group for reuse. It keeps the buffer, big or
// not: a busy log reuses it for its next group, and the writer gives big
// buffers back once the log idles (Log.trimLater).
func (g *group) reset() {
	g.buf = g.buf[:0]
	g.ends = g.ends[:0]
	clear(g.waiters)
	g.waiters = g.waiters[:0]
	clear(g.syncBehind)
	g.syncBehind = g.syncBehind[:0]
	g.syncReq, g.rollAt, g.closing = false, -1, false
	g.done = make(chan struct{})
}

func (g *group) trim() {
	if cap(g.buf) > keepBufferBytes {
		g.buf = nil
	}
}

// Append appends one or more concatenated RecordBatch v2 batches. Each batch
// must already be validated (ValidateBatches). Append rewrites each batch's
// BaseOffset in place to the assigned offset (CRC is unaffected) and copies
// the bytes; the caller may reuse b after Append returns. Offsets are
// assigned in call order, so two Appends from one goroutine land in order.
//
// Append checks only the framing (lengths, magic, offset deltas; not the
// CRC) and fails with ErrCorruptBatch or ErrBatchTooLarge before assigning
// anything. It returns at once; Wait on the result for durability. It
// blocks only when the writer is far behind (backpressure).
func (l *Log) Append(b []byte) (*Appended, error) {
	var span int64
	for pos := 0; pos < len(b); {
		size, delta, err := l.frame(b[pos:])
		if err != nil {
			return nil, err
		}
		span += int64(delta) + 1
		pos += size
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: no batches", ErrCorruptBatch)
	}
	now := l.opts.Now()

	l.mu.Lock()
	for {
		if l.closed {
			l.mu.Unlock()
			return nil, ErrClosed
		}
		if l.failErr != nil {
			err := l.failErr
			l.mu.Unlock()
			return nil, err
		}
		if len(l.pend.buf) == 0 || len(l.pend.buf)+len(b) <= l.maxPending {
			break
		}
		l.space.Wait()
	}
	base := l.next
	if base > math.MaxInt64-span {
		l.mu.Unlock()
		return nil, fmt.Errorf("%w: offsets exhausted", ErrCorruptBatch)
	}
	g := l.pend
	wasIdle := g.idle()
	at := len(g.buf)
	g.buf = append(g.buf, b...)
	off := base
	for pos := 0; pos < len(b); {
		size := batchLogOverhead + int(binary.BigEndian.Uint32(b[pos+posLength:]))
		putBaseOffset(b[pos:], off)
		putBaseOffset(g.buf[at+pos:], off)
		off += int64(binary.BigEndian.Uint32(b[pos+posLastOffsetDelta:])) + 1
		pos += size
		g.ends = append(g.ends, at+pos)
	}
	l.next = off
	a := &Appended{BaseOffset: base, LastOffset: off - 1, LogAppendTime: now.UnixMilli(), done: g.done}
	g.waiters = append(g.waiters, a)
	l.mu.Unlock()
	if wasIdle {
		l.wake()
	}
	return a, nil
}

// frame checks the framing of the batch at the start of b and returns its
// size and last offset delta.
func (l *Log) frame(b []byte) (size int, delta int32, err error) {
	if len(b) < batchHeaderSize {
		return 0, 0, fmt.Errorf("%w: %d trailing bytes", ErrCorruptBatch, len(b))
	}
	length := int32(binary.BigEndian.Uint32(b[posLength:]))
	delta = int32(binary.BigEndian.Uint32(b[posLastOffsetDelta:]))
	switch {
	case length < minBatchLength || int64(length)+batchLogOverhead > int64(len(b)):
		return 0, 0, fmt.Errorf("%w: batch length %d of %d bytes", ErrCorruptBatch, length, len(b))
	case int64(length)+batchLogOverhead > int64(l.opts.MaxBatchBytes):
		return 0, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrBatchTooLarge, int64(length)+batchLogOverhead, l.opts.MaxBatchBytes)
	case b[posMagic] != 2:
		return 0, 0, fmt.Errorf("%w: magic %d", ErrCorruptBatch, int8(b[posMagic]))
	case delta < 0:
		return 0, 0, fmt.Errorf("%w: last offset delta %d", ErrCorruptBatch, delta)
	}
	return int(length) + batchLogOverhead, delta, nil
}

func (l *Log) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// refusesLocked is why the log takes no more requests: closed, or
// failed. l.mu is held.
func (l *Log) refusesLocked() error {
	if l.closed {
		return ErrClosed
	}
	return l.failErr
}

// request joins the pending group with a Sync, Roll or similar request and
// waits for the writer to carry it out.
func (l *Log) request(set func(g *group)) error {
	l.mu.Lock()
	if err := l.refusesLocked(); err != nil {
		l.mu.Unlock()
		return err
	}
	g := l.pend
	set(g)
	a := &Appended{done: g.done}
	g.waiters = append(g.waiters, a)
	l.mu.Unlock()
	l.wake()
	return a.Wait()
}

// Sync forces everything written to disk now.
func (l *Log) Sync() error { return l.request(func(g *group) { g.syncReq = true }) }

// SyncBehind forces everything appended so far to disk, like Sync,
// without holding up the appends that follow: on a log that fsyncs only
// on request (SyncNever), the writer writes what was appended before the
// request, then fsyncs off its goroutine while it goes on writing and
// completing later appends. On other logs it is Sync.
func (l *Log) SyncBehind() error {
	if l.opts.Sync != SyncNever || l.opts.SyncGroup != nil {
		return l.Sync()
	}
	l.mu.Lock()
	if err := l.refusesLocked(); err != nil {
		l.mu.Unlock()
		return err
	}
	a := &Appended{done: make(chan struct{})}
	l.pend.syncBehind = append(l.pend.syncBehind, a)
	l.mu.Unlock()
	l.wake()
	return a.Wait()
}

// Roll closes the active segment (if non-empty) and starts a new one.
// Appends made before Roll land in the old segment.
func (l *Log) Roll() error { return l.request(func(g *group) { g.rollAt = len(g.ends) }) }

// StartOffset is the first offset still readable.
func (l *Log) StartOffset() int64 { return l.start.Load() }

// HighWatermark is the offset after the last durable record (by the policy).
func (l *Log) HighWatermark() int64 { return l.hw.Load() }

// ReadableEnd is the offset after the last readable record: the high
// watermark, or with Options.ReadBeforeSync the end of what is written,
// durable or not.
func (l *Log) ReadableEnd() int64 { return l.rend.Load() }

// Changed returns a channel closed the next time the readable end moves
// (or the log closes): without Options.ReadBeforeSync, the next time the
// high watermark moves. For long-poll fetches.
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// notifyLocked wakes Changed waiters.
func (l *Log) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// SetSegmentOptions changes roll thresholds at run time. Zero or negative
// values take the defaults.
func (l *Log) SetSegmentOptions(segmentBytes int64, segmentAge time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.segBytes = l.opts.normSegmentBytes(segmentBytes)
	if segmentAge <= 0 {
		segmentAge = DefaultSegmentAge
	}
	l.segAge = segmentAge
}

// Size is the total bytes in all segments.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// SegmentBaseOffsets lists base offsets of the segments, oldest first.
func (l *Log) SegmentBaseOffsets() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]int64, len(l.segs))
	for i, s := range l.segs {
		out[i] = s.base
	}
	return out
}

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// Close flushes, fsyncs and closes the log. Pending appends complete.
// It returns the error that failed the log, if one did. Closing a closed
// log returns nil.
func (l *Log) Close() error {
	l.mu.Lock()
	done := l.writerDone // Recover replaces it: read it under mu
	if l.closed {
		l.mu.Unlock()
		<-done
		return nil
	}
	l.closed = true
	l.pend.closing = true
	l.pend.syncReq = !l.discard.Load()
	l.space.Broadcast()
	l.mu.Unlock()
	l.wake()
	<-done

	l.mu.Lock()
	close(l.changed) // and leave it closed: Changed on a closed log returns at once
	segs := l.segs
	err := l.closeErr
	l.mu.Unlock()
	l.cache.closeAll(segs)
	return err
}

// Discard closes the log for a caller about to remove its files: as Close,
// but without fsyncing the data and indexes (appends still waiting are
// answered as usual).
func (l *Log) Discard() error {
	l.discard.Store(true)
	return l.Close()
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	l.adminMu.Lock()
	defer l.adminMu.Unlock()
	l.Discard() // the data goes anyway: a failed log's error does not matter here
	if err := l.fs.RemoveAll(l.dir); err != nil {
		return err
	}
	return l.fs.SyncDir(filepath.Dir(l.dir))
}

// fail puts the log in the failed state (once) and returns the error every
// later write gets. A failed write or fsync leaves the file in an unknown
// state, so nothing more is written until the log is reopened and its
// tail recovered.
func (l *Log) fail(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failErr == nil {
		l.failErr = fmt.Errorf("storage: log %s failed: %w", l.dir, err)
		l.failed.Store(true)
		l.space.Broadcast()
	}
	return l.failErr
}

// segIndex returns the index of the segment that would hold offset: the
// last with base <= offset (0 if none).
func segIndex(segs []*segment, offset int64) int {
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > offset })
	return max(i-1, 0)
}
