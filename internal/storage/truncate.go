package storage

import (
	"errors"
	"fmt"
	"path/filepath"
)

// Offline surgery on a closed log, for the owner of a replicated
// partition: after a crash its segment log may hold more than its Raft
// checkpoint says was applied (TruncateAfter cuts the excess), and a
// follower that installs a Raft snapshot must drop what it holds and start
// empty where the snapshot ends (ResetOffline). Both work on the files
// alone, through the FS, while no Log has the directory open; what they
// leave behind is a log that Open recovers like any other, so they reuse
// recovery's rules instead of adding new ones: a checkpoint ahead of the
// data restarts the log empty there, an active segment's index files are
// a prefix that recovery checks and completes, and files of a segment
// without a data file are removed.
//
// Neither is atomic. Each step leaves a log that Open accepts, and both
// are idempotent, so a caller that crashed in the middle runs the same
// call again before it opens the log.

// ErrNotBatchBoundary is returned by TruncateAfter when the offset falls
// inside a batch: the log cannot end there without rewriting the batch.
var ErrNotBatchBoundary = errors.New("storage: offset inside a batch")

// TruncateAfter makes the closed log in dir end at end: once it returns
// nil, Open gives a log whose high watermark is end, holding every batch
// below end as it was and none at or above it, and appends continue at
// end. It is the offline counterpart of a follower's log truncation.
//
//   - A log that ends at or before end is left as it is (its high
//     watermark stays below or at end), and a missing directory is no
//     error (a log made with Options.CreateOnAppend that was never
//     written).
//   - Segments whose base offset is at or above end lose all their
//     files, and the directory is fsync'd. The segment holding end loses
//     its sidecar and has its index files cut to the entries of the
//     batches kept, then its data file truncated at the first batch whose
//     base offset is at or above end, each fsync'd (see cutSegment).
//   - If a batch holds both end-1 and end, it fails with
//     ErrNotBatchBoundary and changes nothing.
//   - If end is below the log start (the checkpoint of
//     DeleteRecordsBefore, or the first segment's base), nothing below end
//     is left to keep: it is ResetOffline(fsys, dir, end), and the log
//     starts empty at end, which moves its start back.
//
// A torn or corrupt tail below end is cut as recovery would cut it. The
// log must not be open, here or in another process.
//
// A call that returns nil has made its result durable, even when it found
// nothing left to do because an earlier call that failed (a failed fsync)
// did the work without making it durable: so the calls that change
// nothing still fsync the directory and the data file of the segment
// that ends the log, both clean and so cheap to fsync.
func TruncateAfter(fsys FS, dir string, end int64) error {
	if end < 0 {
		return fmt.Errorf("storage: truncate %s after %d: negative offset", dir, end)
	}
	dir = filepath.Clean(dir)
	bases, ckStart, exists, err := listOffline(fsys, dir)
	if err != nil || !exists {
		return err
	}
	if len(bases) == 0 {
		// Nothing but (maybe) a checkpoint: the log is empty at its start.
		if end < max(ckStart, 0) {
			return ResetOffline(fsys, dir, end)
		}
		return fsys.SyncDir(dir) // see "A call that returns nil" above
	}
	if end < max(ckStart, bases[0]) {
		return ResetOffline(fsys, dir, end)
	}
	keep := 0 // segments with base < end
	for keep < len(bases) && bases[keep] < end {
		keep++
	}
	if keep == 0 {
		// end == the first base == the log start: the log must be empty
		// there. Already is, if its only segment is empty.
		if len(bases) == 1 {
			if size, err := dataSize(fsys, newSegment(dir, bases[0])); err != nil {
				return err
			} else if size == 0 {
				return fsys.SyncDir(dir)
			}
		}
		return ResetOffline(fsys, dir, end)
	}
	s := newSegment(dir, bases[keep-1])
	if keep < len(bases) {
		s.offLimit = bases[keep]
	}
	cut, err := findCut(fsys, s, end)
	if err != nil {
		return fmt.Errorf("storage: truncate %s after %d: %w", dir, end, err)
	}
	// Later segments go first, newest first and each data file before its
	// other files: a crash leaves a shorter log and orphans Open removes.
	if err := removeSegments(fsys, dir, bases[keep:]); err != nil {
		return err
	}
	if cut.pos < cut.size {
		return cutSegment(fsys, s, cut)
	}
	return syncFile(fsys, s.dataPath())
}

// ResetOffline makes the closed log in dir empty, starting at start: every
// segment's files are removed and the log start checkpoint is set to
// start, so that Open gives a log whose StartOffset and HighWatermark are
// both start, and the first append gets offset start. A follower does this
// when it installs a snapshot that its log cannot continue from.
//
// The checkpoint is written first (atomically, fsync'd with its
// directory), then the segments are removed newest first, then the
// directory is fsync'd, and its parent: always, even when there is
// nothing to change, so that a call returning nil has made its result
// durable although an earlier call that failed did the work unsynced.
// A crash after the checkpoint leaves either the intended log (recovery
// restarts a log whose checkpoint is ahead of its data) or, if the old
// data reached past start, the old data from start on; running
// ResetOffline again finishes the job.
//
// A missing directory is created (with its entry in the parent fsync'd)
// unless start is 0, which Open gives anyway; under
// Options.CreateOnAppend the log then holds only the checkpoint and its
// first segment is created by its first write, as usual.
func ResetOffline(fsys FS, dir string, start int64) error {
	if start < 0 {
		return fmt.Errorf("storage: reset %s at %d: negative offset", dir, start)
	}
	dir = filepath.Clean(dir)
	bases, ckStart, exists, err := listOffline(fsys, dir)
	if err != nil {
		return err
	}
	if !exists {
		if start == 0 {
			return nil
		}
		if err := fsys.MkdirAll(dir); err != nil {
			return err
		}
	}
	// Always: a retry after a failed fsync finds the directory made.
	if err := fsys.SyncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	if ckStart != start {
		if err := writeCheckpoint(fsys, dir, start); err != nil {
			return err
		}
	}
	return removeSegments(fsys, dir, bases)
}

// listOffline returns the base offsets of dir's segments (those with a
// data file), ascending, and its checkpointed start (-1 if none).
func listOffline(fsys FS, dir string) (bases []int64, ckStart int64, exists bool, err error) {
	names, err := fsys.ReadDir(dir)
	if isNotExist(err) {
		return nil, -1, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	for _, n := range names { // ReadDir sorts, and names sort by offset
		if b, ok := parseSegmentName(n, logSuffix); ok {
			bases = append(bases, b)
		}
	}
	ckStart, err = readCheckpoint(fsys, dir)
	return bases, ckStart, true, err
}

// syncFile fsyncs an existing file.
func syncFile(fsys FS, name string) error {
	f, err := fsys.OpenFile(name, false)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func dataSize(fsys FS, s *segment) (int64, error) {
	f, err := fsys.OpenFile(s.dataPath(), false)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Size()
}

// cutPoint is where a segment's data must end so that it holds no batch
// at or above an offset.
type cutPoint struct {
	pos  int64 // first byte not kept
	next int64 // the offset after the last batch kept
	size int64 // the data file's size
}

// findCut walks the batch headers of s from its last offset index entry
// below end (checked against the data: the index is only a hint) or from
// its start, to the first batch at or above end. It stops early, keeping
// less, at a batch recovery would not accept either (framing, offsets
// that do not increase or do not fit the segment); it does not check
// CRCs, which recovery does for the active segment. A batch that holds
// end-1 and end is ErrNotBatchBoundary.
func findCut(fsys FS, s *segment, end int64) (cutPoint, error) {
	data, err := fsys.OpenFile(s.dataPath(), false)
	if err != nil {
		return cutPoint{}, err
	}
	defer data.Close()
	size, err := data.Size()
	if err != nil {
		return cutPoint{}, err
	}
	bp := recoverBufs.Get().(*[]byte)
	defer recoverBufs.Put(bp)
	sc := newScanner(data, size, *bp)
	pos, next := int64(0), s.base
	if e, ok, err := indexFloor(fsys, s, end); err != nil {
		return cutPoint{}, err
	} else if ok && int64(e.pos) < size {
		h, hok, err := sc.header(int64(e.pos))
		if err != nil {
			return cutPoint{}, err
		}
		if hok && h.BaseOffset == s.base+int64(e.rel) {
			pos, next = int64(e.pos), h.BaseOffset
		}
	}
	for pos < size {
		h, ok, err := sc.header(pos)
		if err != nil {
			return cutPoint{}, err
		}
		if !ok || h.BaseOffset < next || !relFits(s.base, h.BaseOffset) ||
			h.LastOffset() < h.BaseOffset || h.LastOffset() >= s.offLimit {
			break // recovery stops here too
		}
		if h.BaseOffset >= end {
			break
		}
		if h.LastOffset() >= end {
			return cutPoint{}, fmt.Errorf("%w: batch %d-%d", ErrNotBatchBoundary, h.BaseOffset, h.LastOffset())
		}
		next = h.LastOffset() + 1
		pos += int64(h.Size())
	}
	return cutPoint{pos: pos, next: next, size: size}, nil
}

// indexFloor returns the last offset index entry of s for a batch below
// end, if the index file exists and has one.
func indexFloor(fsys FS, s *segment, end int64) (offsetEntry, bool, error) {
	if end <= s.base {
		return offsetEntry{}, false, nil
	}
	f, err := fsys.OpenFile(s.indexPath(), false)
	if isNotExist(err) {
		return offsetEntry{}, false, nil
	}
	if err != nil {
		return offsetEntry{}, false, err
	}
	defer f.Close()
	idx, err := newIndexFile(f, offsetEntrySize)
	if err != nil {
		return offsetEntry{}, false, err
	}
	return idx.floorOffset(uint32(min(end-1-s.base, maxRel)))
}

// maxRel is the largest relative offset a segment can hold (relFits).
const maxRel = 1<<31 - 1

// cutSegment cuts segment s back to the batches before the cut: its
// sidecar (written for data it will no longer hold) is removed, its offset
// index cut to the entries before the cut's position and its time index
// to the entries of batches kept, and last its data file is truncated,
// each fsync'd. Derived files go first: if this fails or the process dies
// half-way, the indexes left are a prefix that recovery accepts for the
// longer data as well, and a retry finds the data still to cut, so it
// redoes every step.
func cutSegment(fsys FS, s *segment, cut cutPoint) error {
	switch err := fsys.Remove(s.sidecarPath()); {
	case err == nil:
		if err := fsys.SyncDir(filepath.Dir(s.path)); err != nil {
			return err
		}
	case !isNotExist(err):
		return err
	}
	rel := uint64(cut.next - s.base) // time entries name kept batches below it
	if err := cutIndex(fsys, s.indexPath(), offsetEntrySize, func(b []byte) bool {
		return uint64(decodeOffsetEntry(b).pos) < uint64(cut.pos)
	}); err != nil {
		return err
	}
	if err := cutIndex(fsys, s.timeIndexPath(), timeEntrySize, func(b []byte) bool {
		return uint64(decodeTimeEntry(b).rel) < rel
	}); err != nil {
		return err
	}
	data, err := fsys.OpenFile(s.dataPath(), false)
	if err != nil {
		return err
	}
	err = data.Truncate(cut.pos)
	if err == nil {
		err = data.Sync()
	}
	if cerr := data.Close(); err == nil {
		err = cerr
	}
	return err
}

// cutIndex truncates an index file to the prefix of entries that keep
// accepts (entries ascend, so the prefix is found by binary search),
// dropping a ragged tail; a missing file stays missing. Recovery checks
// what is left against the data, so a wrong entry costs a rescan, not
// correctness.
func cutIndex(fsys FS, name string, entrySize int, keep func([]byte) bool) error {
	f, err := fsys.OpenFile(name, false)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	idx, err := newIndexFile(f, entrySize)
	var n int
	if err == nil {
		n, err = idx.search(make([]byte, entrySize), keep)
	}
	var size int64
	if err == nil {
		size, err = f.Size()
	}
	if err == nil && int64(n)*int64(entrySize) < size {
		if err = f.Truncate(int64(n) * int64(entrySize)); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeSegments removes the files of the segments with the given bases,
// newest first, each data file before its other files, then fsyncs dir,
// even with nothing to remove: a retry after a failed fsync of dir finds
// nothing left to remove, and must still make the removals (and the
// rename of a checkpoint) durable.
func removeSegments(fsys FS, dir string, bases []int64) error {
	for i := len(bases) - 1; i >= 0; i-- {
		s := newSegment(dir, bases[i])
		for _, name := range []string{s.dataPath(), s.indexPath(), s.timeIndexPath(), s.sidecarPath()} {
			if err := fsys.Remove(name); err != nil && !isNotExist(err) {
				return err
			}
		}
	}
	return fsys.SyncDir(dir)
}
