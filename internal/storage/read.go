package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
)

// scanBufSize is the window readers walk batch headers through.
const scanBufSize = 8 << 10

// MaxReadBytes caps what one Read returns beyond its first batch, whatever
// maxBytes asks, so that a request cannot make storage allocate a segment's
// worth of memory.
const MaxReadBytes = 32 << 20

var scanBufs = sync.Pool{New: func() any { b := make([]byte, scanBufSize); return &b }}

// segView is a segment as one reader sees it: its readable size and, for
// the active segment, its in-memory indexes, with the files held open.
// Reads are (file, position, length) underneath: ReadRegion (region.go)
// uses locate as Read does and hands out the file and range instead of
// copying them, for sendfile.
type segView struct {
	l      *Log
	seg    *segment
	files  *segFiles
	size   int64
	active bool
	idx    []offsetEntry
	tidx   []timeEntry
	maxTs  int64
	buf    *[]byte
	sc     *scanner
}

// view snapshots segs[i] and acquires its files. Release with release.
func (l *Log) view(segs []*segment, i int) (*segView, error) {
	s := segs[i]
	var v *segView
	for {
		l.mu.Lock()
		v = &segView{l: l, seg: s, size: s.size, maxTs: s.maxTs}
		if v.active = len(l.segs) > 0 && l.segs[len(l.segs)-1] == s; v.active {
			v.idx, v.tidx = s.idx, s.tidx
		}
		l.mu.Unlock()
		f, err := l.cache.acquire(s)
		if errors.Is(err, errSegmentGone) {
			l.mu.Lock()
			next := s.successor
			l.mu.Unlock()
			if next != nil { // compacted under us: read the copy
				s = next
				continue
			}
			return nil, ErrOffsetOutOfRange // deleted under us: below the start now
		}
		if err != nil {
			return nil, err
		}
		v.files = f
		break
	}
	f := v.files
	v.buf = scanBufs.Get().(*[]byte)
	v.sc = newScanner(f.data, v.size, *v.buf)
	return v, nil
}

func (v *segView) release() {
	if v.files != nil { // nil when a Region took them over
		v.l.cache.release(v.files)
	}
	scanBufs.Put(v.buf)
}

// floorEntry returns the last offset index entry at or below offset.
func (v *segView) floorEntry(offset int64) (offsetEntry, bool, error) {
	rel := uint32(min(offset-v.seg.base, math.MaxUint32))
	if v.active {
		e, ok := floorOffsetEntry(v.idx, rel)
		return e, ok, nil
	}
	index, _, err := v.l.cache.indexFiles(v.seg, v.files)
	if err != nil || index == nil {
		return offsetEntry{}, false, err
	}
	x, err := newIndexFile(index, offsetEntrySize)
	if err != nil {
		return offsetEntry{}, false, err
	}
	return x.floorOffset(rel)
}

// timeBefore returns the last time index entry with a timestamp below ts.
func (v *segView) timeBefore(ts int64) (timeEntry, bool, error) {
	if v.active {
		e, ok := lastTimeEntryBefore(v.tidx, ts)
		return e, ok, nil
	}
	_, timeindex, err := v.l.cache.indexFiles(v.seg, v.files)
	if err != nil || timeindex == nil {
		return timeEntry{}, false, err
	}
	x, err := newIndexFile(timeindex, timeEntrySize)
	if err != nil {
		return timeEntry{}, false, err
	}
	return x.timeBefore(ts)
}

// corrupt reports bytes on disk that recovery should have caught.
func (v *segView) corrupt(pos int64) error {
	return fmt.Errorf("%w: segment %s at position %d", ErrCorruptBatch, v.seg.dataPath(), pos)
}

// locate finds the batch holding offset, or the first batch after it
// when offset falls in a gap. found=false: no such batch in this segment.
func (v *segView) locate(offset int64) (pos int64, h BatchHeader, found bool, err error) {
	if offset > v.seg.base {
		e, ok, err := v.floorEntry(offset)
		if err != nil {
			return 0, h, false, err
		}
		if ok && int64(e.pos) < v.size {
			// Trust the index only as far as the data agrees with it.
			h, ok, err := v.sc.header(int64(e.pos))
			if err != nil {
				return 0, h, false, err
			}
			if ok && h.BaseOffset == v.seg.base+int64(e.rel) {
				pos = int64(e.pos)
			}
		}
	}
	for pos < v.size {
		h, ok, err := v.sc.header(pos)
		if err != nil {
			return 0, h, false, err
		}
		if !ok {
			return 0, h, false, v.corrupt(pos)
		}
		if h.LastOffset() >= offset {
			return pos, h, true, nil
		}
		pos += int64(h.Size())
	}
	return 0, h, false, nil
}

// readState checks offset against the log's range and returns the
// segments to search; hw==offset means there is nothing to read.
func (l *Log) readState(offset int64) (segs []*segment, hw int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, 0, ErrClosed
	}
	hw = l.rend.Load()
	if offset < l.start.Load() || offset > hw {
		return nil, 0, ErrOffsetOutOfRange
	}
	return l.segs, hw, nil
}

// Read returns whole batches starting at the batch that contains offset,
// up to maxBytes, but always at least one whole batch if any is available
// (even past maxBytes). It returns only data below ReadableEnd (the high
// watermark unless Options.ReadBeforeSync). Reading at ReadableEnd returns
// (nil, nil). Below StartOffset or above ReadableEnd: ErrOffsetOutOfRange.
//
// The batches come from one segment; a read at the end of a segment
// returns less than maxBytes even when the next segment has more. One
// Read returns at most MaxReadBytes (or the first batch, if larger).
func (l *Log) Read(offset int64, maxBytes int) ([]byte, error) {
	segs, hw, err := l.readState(offset)
	if err != nil || offset == hw {
		return nil, err
	}
	for i := segIndex(segs, offset); i < len(segs); i++ {
		v, err := l.view(segs, i)
		if err != nil {
			return nil, err
		}
		pos, h, found, err := v.locate(offset)
		if err == nil && found {
			var data []byte
			data, err = v.readFrom(pos, h, maxBytes)
			v.release()
			return data, err
		}
		v.release()
		if err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// readFrom reads whole batches from pos (where the batch with header first
// starts): as many as fit in maxBytes, at least the first.
func (v *segView) readFrom(pos int64, first BatchHeader, maxBytes int) ([]byte, error) {
	n := min(max(min(int64(maxBytes), MaxReadBytes), int64(first.Size())), v.size-pos)
	if n < int64(first.Size()) {
		return nil, v.corrupt(pos)
	}
	buf := make([]byte, n)
	if err := readFull(v.files.data, buf, pos); err != nil {
		return nil, err
	}
	cut := 0
	for cut+batchHeaderSize <= len(buf) {
		length := int32(binary.BigEndian.Uint32(buf[cut+posLength:]))
		size := int(length) + batchLogOverhead
		if length < minBatchLength || size > len(buf)-cut {
			break
		}
		cut += size
	}
	return buf[:cut], nil
}

// ScanHeaders calls fn for each batch header from the batch containing
// from to the high watermark, stopping if fn returns false. Used to rebuild
// producer state at start. A from below the log start scans from the start.
func (l *Log) ScanHeaders(from int64, fn func(BatchHeader) bool) error {
	l.mu.Lock()
	closed, start := l.closed, l.start.Load()
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	from = max(from, start)
	segs, hw, err := l.readState(from)
	if errors.Is(err, ErrOffsetOutOfRange) {
		return nil // from at or past the high watermark: nothing to scan
	}
	if err != nil || from == hw {
		return err
	}
	for i := segIndex(segs, from); i < len(segs); i++ {
		v, err := l.view(segs, i)
		if err != nil {
			return err
		}
		more, err := v.scan(from, fn)
		v.release()
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// scan calls fn for the batches of the segment from the one holding from.
func (v *segView) scan(from int64, fn func(BatchHeader) bool) (more bool, err error) {
	pos, _, found, err := v.locate(from)
	if err != nil || !found {
		return err == nil, err
	}
	for pos < v.size {
		h, ok, err := v.sc.header(pos)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, v.corrupt(pos)
		}
		if !fn(h) {
			return false, nil
		}
		pos += int64(h.Size())
	}
	return true, nil
}

// OffsetForTimestamp returns the first offset whose batch max timestamp is
// >= ts, and that batch's max timestamp; ok=false if none.
//
// The offset is the batch's base offset (or the log start, if the batch
// straddles it): storage does not decode records, so a caller that needs
// the first record with timestamp >= ts decodes that batch.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool, err error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, 0, false, ErrClosed
	}
	segs, start := l.segs, l.start.Load()
	l.mu.Unlock()
	for i := range segs {
		v, err := l.view(segs, i)
		if errors.Is(err, ErrOffsetOutOfRange) {
			continue // deleted by retention meanwhile
		}
		if err != nil {
			return 0, 0, false, err
		}
		off, mts, found, err := v.firstAtOrAfter(ts, start)
		v.release()
		if err != nil || found {
			return off, mts, found, err
		}
	}
	return 0, 0, false, nil
}

// firstAtOrAfter finds the first batch of the segment with MaxTimestamp >=
// ts that ends at or after start.
func (v *segView) firstAtOrAfter(ts, start int64) (offset, timestamp int64, found bool, err error) {
	if v.maxTs < ts || v.size == 0 {
		return 0, 0, false, nil
	}
	pos := int64(0)
	// Every batch up to a time entry with a smaller timestamp is too old.
	if e, ok, err := v.timeBefore(ts); err != nil {
		return 0, 0, false, err
	} else if ok {
		if p, _, found, err := v.locate(v.seg.base + int64(e.rel)); err != nil {
			return 0, 0, false, err
		} else if found {
			pos = p
		}
	}
	if start > v.seg.base {
		p, _, found, err := v.locate(start)
		if err != nil || !found {
			return 0, 0, false, err
		}
		pos = max(pos, p)
	}
	for pos < v.size {
		h, ok, err := v.sc.header(pos)
		if err != nil {
			return 0, 0, false, err
		}
		if !ok {
			return 0, 0, false, v.corrupt(pos)
		}
		if h.MaxTimestamp >= ts && h.LastOffset() >= start {
			return max(h.BaseOffset, start), h.MaxTimestamp, true, nil
		}
		pos += int64(h.Size())
	}
	return 0, 0, false, nil
}
