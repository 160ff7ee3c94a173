package storage

import (
	"encoding/binary"
	"fmt"
	"time"
)

// indexFlushEntries is how many index entries the writer lets pile up in
// memory before writing them to the index file. The in-memory index of the
// active segment is authoritative; the file only spares recovery a longer
// scan, so it may lag a little.
const indexFlushEntries = 256

// writer is the state of a log's single writer goroutine: the active
// segment as the writer sees it, ahead of what readers see.
type writer struct {
	seg         *segment
	files       *segFiles // the active segment's files, pinned in the cache
	written     int64     // bytes written to the active data file
	published   int64     // bytes of them made readable (seg.size)
	nextOffset  int64     // offset after the last batch written
	ib          indexBuilder
	newIdx      []offsetEntry // earned by written batches, not yet published
	newTidx     []timeEntry
	synced      int64     // bytes of the active data file known to be fsync'd
	idxOnDisk   int       // entries of seg.idx already in the index file
	tidxOnDisk  int       // entries of seg.tidx already in the time index file
	firstAppend time.Time // first append to the segment; zero while empty
	dirty       bool      // written since the last fsync
	scratch     []byte
}

// run is the writer goroutine: it takes whatever is pending, writes it
// with one write per segment touched, fsyncs once (by policy), publishes
// the new high watermark and completes every waiter of the group.
func (l *Log) run() {
	defer close(l.writerDone)
	var tick <-chan time.Time
	if l.opts.Sync == SyncInterval {
		t := time.NewTicker(l.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	spare := newGroup()
	for {
		select {
		case <-l.kick:
		case <-tick:
			l.intervalSync()
			continue
		default:
			l.idle(spare)
			select {
			case <-l.kick:
			case <-tick:
				l.intervalSync()
				continue
			}
		}
		l.mu.Lock()
		g := l.pend
		if g.idle() {
			l.mu.Unlock()
			continue
		}
		l.pend = spare
		failErr := l.failErr
		segBytes, segAge := l.segBytes, l.segAge
		l.space.Broadcast()
		l.mu.Unlock()

		err := failErr
		if err == nil {
			if obs := l.opts.Observer; obs != nil && len(g.ends) > 0 {
				start := time.Now() // real time, not the injected clock
				err = l.commit(g, segBytes, segAge)
				obs.ObserveAppend(time.Since(start), len(g.ends), len(g.buf))
			} else {
				err = l.commit(g, segBytes, segAge)
			}
		}
		complete(g, err)
		if g.closing {
			l.closeErr = l.shutdown()
			return
		}
		g.reset()
		spare = g
	}
}

// idle gives back big buffers before the writer sleeps, so that a log
// that once took a burst does not keep its memory.
func (l *Log) idle(spare *group) {
	spare.trim()
	l.mu.Lock()
	if len(l.pend.buf) == 0 {
		l.pend.trim()
	}
	l.mu.Unlock()
}

func complete(g *group, err error) {
	if err != nil {
		for _, a := range g.waiters {
			a.err = err
		}
	}
	close(g.done)
}

// commit writes group g to the active segment, rolling at batch
// boundaries as needed, fsyncs by policy and publishes the result.
func (l *Log) commit(g *group, segBytes int64, segAge time.Duration) error {
	w := &l.w
	now := l.opts.Now()
	run, pos := 0, 0 // g.buf[run:pos] is still to be written to the active segment
	rollHere := func() error {
		if err := l.writeRun(g.buf[run:pos]); err != nil {
			return err
		}
		run = pos
		return l.roll()
	}
	for i, end := range g.ends {
		if i == g.rollAt {
			if err := rollHere(); err != nil {
				return err
			}
		}
		b := g.buf[pos:end]
		h := BatchHeader{
			BaseOffset:      int64(binary.BigEndian.Uint64(b[posBaseOffset:])),
			Length:          int32(len(b) - batchLogOverhead),
			LastOffsetDelta: int32(binary.BigEndian.Uint32(b[posLastOffsetDelta:])),
			MaxTimestamp:    int64(binary.BigEndian.Uint64(b[posMaxTimestamp:])),
		}
		segLen := w.written + int64(pos-run)
		if segLen > 0 && (segLen+int64(len(b)) > segBytes ||
			!w.firstAppend.IsZero() && now.Sub(w.firstAppend) >= segAge ||
			!relFits(w.seg.base, h.LastOffset())) {
			if err := rollHere(); err != nil {
				return err
			}
		}
		if w.firstAppend.IsZero() {
			w.firstAppend = now
		}
		w.newIdx, w.newTidx = w.ib.add(h, w.written+int64(pos-run), w.newIdx, w.newTidx)
		w.nextOffset = h.LastOffset() + 1
		pos = end
	}
	if g.rollAt >= 0 && g.rollAt == len(g.ends) {
		if err := rollHere(); err != nil {
			return err
		}
	}
	if err := l.writeRun(g.buf[run:pos]); err != nil {
		return err
	}
	if l.opts.ReadBeforeSync {
		l.expose()
	}
	if l.opts.Sync == SyncAlways || g.syncReq {
		if err := l.syncData(); err != nil {
			return err
		}
	}
	return l.publish()
}

// writeRun appends b to the active data file with one write.
func (l *Log) writeRun(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	w := &l.w
	n, err := w.files.data.WriteAt(b, w.written)
	if n > 0 {
		w.dirty = true
	}
	if err != nil {
		return l.fail(fmt.Errorf("write: %w", err))
	}
	w.written += int64(n)
	return nil
}

// publish makes everything written so far readable (segment size,
// indexes, readable end) and durable (high watermark). The caller has
// fsync'd if the policy asks.
//
// The high watermark is stored before exposeLocked wakes Changed waiters,
// so a woken Kafka fetch sees it. With ReadBeforeSync the readable end
// moved earlier and the high watermark moves without a wake-up: nobody
// long-polls it on such a log (a queue waits on Appended instead).
func (l *Log) publish() error {
	l.mu.Lock()
	if next := l.w.nextOffset; next > l.hw.Load() {
		l.hw.Store(next)
	}
	l.exposeLocked()
	l.mu.Unlock()
	return l.flushIndex(false)
}

// expose makes everything written so far readable, ahead of the fsync
// (Options.ReadBeforeSync).
func (l *Log) expose() {
	l.mu.Lock()
	l.exposeLocked()
	l.mu.Unlock()
}

func (l *Log) exposeLocked() {
	w := &l.w
	s := w.seg
	s.size = w.written
	s.idx = append(s.idx, w.newIdx...)
	s.tidx = append(s.tidx, w.newTidx...)
	s.maxTs = w.ib.maxTs
	l.size += w.written - w.published
	w.published = w.written
	w.newIdx, w.newTidx = w.newIdx[:0], w.newTidx[:0]
	if w.nextOffset > l.rend.Load() {
		l.rend.Store(w.nextOffset)
		l.notifyLocked()
	}
}

// flushIndex writes published index entries that are not in the index
// files yet, once enough piled up (force: all of them, which the caller
// may ask only with all data fsync'd). Entries go to disk only when they
// point at fsync'd data, whatever the policy: so after a crash everything
// before the last index entry on disk is intact, and recovery need only
// validate from there. seg.idx is read without mu: only this goroutine
// changes it.
func (l *Log) flushIndex(force bool) error {
	w := &l.w
	s := w.seg
	ni := w.idxOnDisk
	for ni < len(s.idx) && (force || int64(s.idx[ni].pos) < w.synced) {
		ni++
	}
	nt := w.tidxOnDisk
	for nt < len(s.tidx) && (force || ni > 0 && s.tidx[nt].rel <= s.idx[ni-1].rel) {
		nt++
	}
	if ni == w.idxOnDisk && nt == w.tidxOnDisk ||
		!force && ni-w.idxOnDisk < indexFlushEntries && nt-w.tidxOnDisk < indexFlushEntries {
		return nil
	}
	if ni > w.idxOnDisk {
		w.scratch = appendOffsetEntries(w.scratch[:0], s.idx[w.idxOnDisk:ni])
		if _, err := w.files.index.WriteAt(w.scratch, int64(w.idxOnDisk)*offsetEntrySize); err != nil {
			return l.fail(fmt.Errorf("write index: %w", err))
		}
		w.idxOnDisk = ni
	}
	if nt > w.tidxOnDisk {
		w.scratch = appendTimeEntries(w.scratch[:0], s.tidx[w.tidxOnDisk:nt])
		if _, err := w.files.timeindex.WriteAt(w.scratch, int64(w.tidxOnDisk)*timeEntrySize); err != nil {
			return l.fail(fmt.Errorf("write time index: %w", err))
		}
		w.tidxOnDisk = nt
	}
	return nil
}

// syncData fsyncs the active data file if anything was written since the
// last fsync.
func (l *Log) syncData() error {
	w := &l.w
	if !w.dirty {
		return nil
	}
	var start time.Time
	if l.opts.Observer != nil {
		start = time.Now()
	}
	if err := w.files.data.Sync(); err != nil {
		return l.fail(fmt.Errorf("fsync: %w", err))
	}
	if l.opts.Observer != nil {
		l.opts.Observer.ObserveFsync(time.Since(start))
	}
	w.dirty, w.synced = false, w.written
	return nil
}

// syncIndexes writes and fsyncs the active segment's index files.
func (l *Log) syncIndexes() error {
	if err := l.flushIndex(true); err != nil {
		return err
	}
	for _, f := range []File{l.w.files.index, l.w.files.timeindex} {
		if err := f.Sync(); err != nil {
			return l.fail(fmt.Errorf("fsync index: %w", err))
		}
	}
	return nil
}

// roll closes the active segment, if it holds anything, and starts a new
// one at the next offset. A closed segment is fsync'd (data and indexes)
// whatever the policy, so only the active segment can have an unsynced
// tail; its time index ends with the segment's largest timestamp.
func (l *Log) roll() error {
	w := &l.w
	if w.written == 0 {
		return nil
	}
	old := w.seg
	if err := l.syncData(); err != nil {
		return err
	}
	w.newTidx = w.ib.final(w.newTidx)
	if err := l.publish(); err != nil {
		return err
	}
	if err := l.syncIndexes(); err != nil {
		return err
	}
	ns := newSegment(l.dir, w.nextOffset)
	files, err := createSegmentFiles(l.fs, ns)
	if err != nil {
		return l.fail(err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		files.close()
		return l.fail(fmt.Errorf("fsync dir: %w", err))
	}
	l.mu.Lock()
	old.idx, old.tidx = nil, nil // older segments search their index files
	segs := make([]*segment, len(l.segs), len(l.segs)+1)
	copy(segs, l.segs)
	l.segs = append(segs, ns)
	l.mu.Unlock()
	l.cache.unpin(old)
	l.cache.pin(ns, files)
	*w = writer{
		seg: ns, files: files, nextOffset: w.nextOffset,
		ib:     newIndexBuilder(ns.base, l.opts.IndexIntervalBytes),
		newIdx: w.newIdx[:0], newTidx: w.newTidx[:0], scratch: w.scratch,
	}
	return nil
}

// createSegmentFiles creates the (empty) files of a new segment.
func createSegmentFiles(fsys FS, s *segment) (*segFiles, error) {
	f := &segFiles{}
	var err error
	for _, x := range []struct {
		dst  *File
		name string
	}{{&f.data, s.dataPath()}, {&f.index, s.indexPath()}, {&f.timeindex, s.timeIndexPath()}} {
		if *x.dst, err = fsys.OpenFile(x.name, true); err == nil {
			err = (*x.dst).Truncate(0)
		}
		if err != nil {
			f.close()
			return nil, fmt.Errorf("create segment: %w", err)
		}
	}
	return f, nil
}

// intervalSync is the SyncInterval policy's periodic fsync.
func (l *Log) intervalSync() {
	l.mu.Lock()
	failed := l.failErr != nil
	l.mu.Unlock()
	if !failed {
		l.syncData()
	}
}

// shutdown finishes the writer's work at Close: the final group has been
// written and fsync'd; write out and fsync the indexes too. It returns
// the error that failed the log, if any.
func (l *Log) shutdown() error {
	l.mu.Lock()
	failErr := l.failErr
	l.mu.Unlock()
	if failErr != nil {
		return failErr
	}
	if err := l.syncIndexes(); err != nil {
		return err
	}
	return nil
}
