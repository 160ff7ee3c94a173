package storage

import (
	"errors"
	"fmt"
	"hash/crc32"
)

// SegmentInfo describes one segment of a log.
type SegmentInfo struct {
	Base   int64 // base offset (the file name)
	End    int64 // the next segment's base: offsets here are below it; the next offset to assign for the active one
	Bytes  int64 // data file size
	Active bool  // the segment being appended to; never compacted
	// MaxTimestamp is the largest batch MaxTimestamp in the segment, -1
	// if it has none.
	MaxTimestamp int64
}

// Segments lists the log's segments, oldest first.
func (l *Log) Segments() []SegmentInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]SegmentInfo, len(l.segs))
	for i, s := range l.segs {
		out[i] = SegmentInfo{Base: s.base, End: l.next, Bytes: s.size, Active: i == len(l.segs)-1, MaxTimestamp: max(s.maxTs, -1)}
		if i+1 < len(l.segs) {
			out[i].End = l.segs[i+1].base
		}
	}
	return out
}

// ErrNoSegment: CompactSegment was asked for a segment the log does not
// have (closed): one deleted meanwhile by DeleteRecordsBefore, say, when
// the segment was chosen before the log start moved past it.
var ErrNoSegment = errors.New("storage: compact: no closed segment")

// CompactSegment rewrites the closed (non-active) segment with base offset
// base so that it holds only the batches keep accepts, byte for byte and
// at their original offsets: the offsets of dropped batches become a gap,
// and a read of an offset in a gap returns the next batch, as for any gap.
// The segment's indexes are rebuilt for the new positions. It returns the
// bytes freed.
//
// keep must be safe to call from this goroutine and must accept every
// batch anybody may still need: a dropped batch is gone for good once
// CompactSegment returns (and possibly before, if it fails after the
// swap). The caller makes durable whatever decided that a batch may go
// (a queue syncs its ack record first).
//
// The swap is crash-atomic; docs/storage-format.md lists the steps. A
// crash at any point leaves either the old or the new data file under the
// segment's name, possibly without index files (recovery rebuilds them)
// and possibly with stray temporary files (recovery removes them).
// Readers keep working across the swap: one that holds the old file reads
// the old bytes, one that comes later reads the new file.
func (l *Log) CompactSegment(base int64, keep func(BatchHeader) bool) (freed int64, err error) {
	return l.compactSegment(base, keep, nil)
}

// Rewrite decides what becomes of one batch of a segment being cleaned:
// it returns batch itself to keep it as it is, nil to drop it, or a
// replacement: a valid RecordBatch v2 with the same BaseOffset and
// LastOffsetDelta (a log cleaner's copy with fewer records, whose offset
// deltas keep their gaps). batch is only valid during the call.
type Rewrite func(h BatchHeader, batch []byte) ([]byte, error)

// ErrBadRewrite: a Rewrite returned bytes that are not a valid
// replacement of the batch it was given.
var ErrBadRewrite = errors.New("storage: compact: bad batch rewrite")

// RewriteSegment is CompactSegment for a log cleaner that works inside
// batches: rewrite sees every batch of the closed segment at base, with
// its bytes, and its answers make the new segment (same crash-atomic swap,
// same offsets, gaps allowed). A replacement is checked (framing, CRC,
// unchanged first and last offset) before it is written: ErrBadRewrite.
// A rewrite error aborts the rewrite and leaves the segment as it was.
func (l *Log) RewriteSegment(base int64, rewrite Rewrite) (freed int64, err error) {
	return l.compactSegment(base, nil, rewrite)
}

// compactSegment is CompactSegment (keep) or RewriteSegment (rewrite).
func (l *Log) compactSegment(base int64, keep func(BatchHeader) bool, rewrite Rewrite) (freed int64, err error) {
	l.adminMu.Lock()
	defer l.adminMu.Unlock()

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	var old *segment
	for _, s := range l.segs[:len(l.segs)-1] {
		if s.base == base {
			old = s
		}
	}
	var size int64
	if old != nil {
		size = old.size
	}
	l.mu.Unlock()
	if old == nil {
		return 0, fmt.Errorf("%w at %d", ErrNoSegment, base)
	}

	files, err := l.cache.acquire(old)
	if err != nil {
		return 0, err
	}
	defer l.cache.release(files)

	tmp := func(name string) string { return name + tmpSuffix }
	newSize, changed, maxTs, oi, ti, err := l.copyKept(old, files.data, size, tmp(old.dataPath()), keep, rewrite)
	if err != nil {
		l.removeQuietly(tmp(old.dataPath()))
		return 0, err
	}
	if !changed {
		l.removeQuietly(tmp(old.dataPath()))
		return 0, nil // nothing to drop
	}
	abort := func(err error) (int64, error) {
		for _, n := range []string{old.dataPath(), old.indexPath(), old.timeIndexPath()} {
			l.removeQuietly(tmp(n))
		}
		return 0, err
	}
	if err := writeWhole(l.fs, tmp(old.indexPath()), appendOffsetEntries(nil, oi)); err != nil {
		return abort(err)
	}
	if err := writeWhole(l.fs, tmp(old.timeIndexPath()), appendTimeEntries(nil, ti)); err != nil {
		return abort(err)
	}
	// The old indexes (and the sidecar) go first, durably, so that no
	// crash can leave them beside the new data file: an old segment without
	// indexes is rebuilt by recovery, one with wrong indexes might pass its
	// cheap check; its owner writes a sidecar again.
	for _, n := range []string{old.indexPath(), old.timeIndexPath(), old.sidecarPath()} {
		if err := l.fs.Remove(n); err != nil && !isNotExist(err) {
			return abort(err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return abort(err)
	}

	// The swap: the rename and the new segment become visible together,
	// under Log.mu and handleCache.mu, so that no reader opens the new file
	// with the old size or the old file with the new size.
	ns := &segment{base: old.base, path: old.path, offLimit: old.offLimit, size: newSize, maxTs: maxTs}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return abort(ErrClosed)
	}
	i := segIndex(l.segs, base)
	if l.segs[i] != old || i == len(l.segs)-1 {
		l.mu.Unlock()
		return abort(fmt.Errorf("storage: compact: segment %d changed", base))
	}
	if err := l.cache.replace(old, func() error { return l.fs.Rename(tmp(old.dataPath()), old.dataPath()) }); err != nil {
		l.mu.Unlock()
		return abort(err)
	}
	segs := append([]*segment(nil), l.segs...)
	segs[i] = ns
	l.segs = segs
	old.successor = ns
	l.size -= size - newSize
	l.mu.Unlock()

	if err := l.fs.SyncDir(l.dir); err != nil {
		return size - newSize, err
	}
	for _, n := range []string{old.indexPath(), old.timeIndexPath()} {
		if err := l.fs.Rename(tmp(n), n); err != nil {
			return size - newSize, err
		}
	}
	return size - newSize, l.fs.SyncDir(l.dir)
}

// copyKept writes the batches of segment s (data holds size bytes) that
// keep accepts (or, with rewrite, that rewrite returns) to the file dst,
// fsyncs it, and returns its size, whether it differs from s, its largest
// timestamp and indexes. Every batch is checked (framing, offsets, CRC)
// on the way: a compacted copy must not launder corruption.
func (l *Log) copyKept(s *segment, data File, size int64, dst string, keep func(BatchHeader) bool, rewrite Rewrite) (n int64, changed bool, maxTs int64, oi []offsetEntry, ti []timeEntry, err error) {
	fail := func(err error) (int64, bool, int64, []offsetEntry, []timeEntry, error) {
		return 0, false, 0, nil, nil, err
	}
	out, err := l.fs.OpenFile(dst, true)
	if err != nil {
		return fail(err)
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if err := out.Truncate(0); err != nil { // a leftover of an earlier attempt
		return fail(err)
	}
	buf := scanBufs.Get().(*[]byte)
	defer scanBufs.Put(buf)
	var copyBuf []byte
	ib := newIndexBuilder(s.base, l.opts.IndexIntervalBytes)
	var werr error
	res, err := scanBatches(newScanner(data, size, *buf), s, 0, s.base, true, func(h BatchHeader, pos int64) {
		if werr != nil {
			return
		}
		if keep != nil && !keep(h) {
			changed = true
			return
		}
		if cap(copyBuf) < h.Size() {
			copyBuf = make([]byte, h.Size())
		}
		b := copyBuf[:h.Size()]
		if werr = readFull(data, b, pos); werr != nil {
			return
		}
		if rewrite != nil {
			nb, err := rewrite(h, b)
			switch {
			case err != nil:
				werr = err
				return
			case nb == nil:
				changed = true
				return
			case len(nb) != len(b) || &nb[0] != &b[0]:
				changed = true
				if h, werr = checkRewrite(h, nb); werr != nil {
					return
				}
				b = nb
			}
		}
		if _, werr = out.WriteAt(b, n); werr != nil {
			return
		}
		oi, ti = ib.add(h, n, oi, ti)
		n += int64(h.Size())
	})
	switch {
	case err != nil:
		return fail(err)
	case werr != nil:
		return fail(werr)
	case res.bad || res.end != size:
		return fail(fmt.Errorf("%w: segment %s at position %d", ErrCorruptBatch, s.dataPath(), res.end))
	}
	if !changed {
		return n, false, 0, nil, nil, nil
	}
	if err := out.Sync(); err != nil {
		return fail(err)
	}
	return n, true, ib.maxTs, oi, ib.final(ti), nil
}

// checkRewrite checks that nb is a whole, intact batch standing for the
// batch with header h, and returns its header.
func checkRewrite(h BatchHeader, nb []byte) (BatchHeader, error) {
	nh, err := ParseBatchHeader(nb)
	if err != nil {
		return BatchHeader{}, fmt.Errorf("%w: %v", ErrBadRewrite, err)
	}
	if err := checkFraming(nh, int64(len(nb))); err != nil || nh.Size() != len(nb) {
		return BatchHeader{}, fmt.Errorf("%w: framing of batch at %d: %v", ErrBadRewrite, h.BaseOffset, err)
	}
	if nh.BaseOffset != h.BaseOffset || nh.LastOffsetDelta != h.LastOffsetDelta {
		return BatchHeader{}, fmt.Errorf("%w: batch at %d..%d became %d..%d", ErrBadRewrite, h.BaseOffset, h.LastOffset(), nh.BaseOffset, nh.LastOffset())
	}
	if crc32.Checksum(nb[posAttributes:], castagnoli) != nh.CRC {
		return BatchHeader{}, fmt.Errorf("%w: CRC of batch at %d", ErrBadRewrite, h.BaseOffset)
	}
	return nh, nil
}

// removeQuietly removes a temporary file; one left behind is removed by
// recovery.
func (l *Log) removeQuietly(name string) { _ = l.fs.Remove(name) }

// replace carries out rename (which puts a compacted copy in s's place)
// and, atomically with it for readers, retires s: readers that hold its
// files keep them, later acquires of s fail with errSegmentGone (and
// follow s.successor).
func (c *handleCache) replace(s *segment, rename func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := rename(); err != nil {
		return err
	}
	s.deleted = true
	c.removeLocked(s)
	c.dropFilesLocked(s)
	return nil
}
