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
	seg          *segment
	files        *segFiles // the active segment's files, pinned in the cache
	written      int64     // bytes written to the active data file
	published    int64     // bytes of them made readable (seg.size)
	nextOffset   int64     // offset after the last batch written
	ib           indexBuilder
	newIdx       []offsetEntry // earned by written batches, not yet published
	newTidx      []timeEntry
	synced       int64     // bytes of the active data file known to be fsync'd
	idxOnDisk    int       // entries of seg.idx already in the index file
	tidxOnDisk   int       // entries of seg.tidx already in the time index file
	firstAppend  time.Time // first append to the segment; zero while empty
	dirty        bool      // written since the last fsync
	cut          bool      // after a failure: the unsynced tail is cut off (cutToDurable)
	uncreated    bool      // the active segment's data file (and maybe the directory) is not created yet (CreateOnAppend)
	dirsUnsynced bool      // created so, and its names not yet fsync'd (syncDirs)
	scratch      []byte

	// Pipelined fsync (Log.pipelined): the waiters of groups written but
	// not yet known durable, and the fsync under way, if any. Whenever
	// unsynced is not empty an fsync is under way. A written group's
	// buffers are reused at once; only its waiters wait for the fsync.
	unsynced []groupWaiters
	op       *syncOp
	free     []*group // groups for reuse as the pending group
}

// groupWaiters are the appends of one written group, completed together.
type groupWaiters struct {
	done    chan struct{}
	waiters []*Appended
}

func (gw groupWaiters) complete(err error) {
	if err != nil {
		for _, a := range gw.waiters {
			a.err = err
		}
	}
	close(gw.done)
}

// syncOp is one fsync of the active data file run off the writer
// goroutine, so that the writer can write (and, with ReadBeforeSync,
// expose) the next group meanwhile. It covers the file up to upto bytes,
// the offsets below next, and completes groups when it succeeds.
type syncOp struct {
	upto   int64
	next   int64
	groups []groupWaiters
	done   chan error
}

// run is the writer goroutine: it takes whatever is pending, writes it
// with one write per segment touched, fsyncs once (by policy), publishes
// the new high watermark and completes every waiter of the group. On a
// pipelined log the fsync runs while the writer goes on to the next group.
func (l *Log) run() {
	defer close(l.writerDone)
	var tick <-chan time.Time
	if l.opts.Sync == SyncInterval {
		t := time.NewTicker(l.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	w := &l.w
	w.free = append(w.free, newGroup())
	var trimT *time.Timer // trimLater's
	defer func() {
		if trimT != nil {
			trimT.Stop()
		}
	}()
	for {
		if l.failed.Load() && w.op == nil && !w.cut {
			l.cutToDurable()
		}
		var synced <-chan error
		if w.op != nil {
			synced = w.op.done
		}
		select {
		case <-l.kick:
		case err := <-synced:
			l.syncDone(err)
			continue
		case <-tick:
			l.intervalSync()
			continue
		default:
			trim := l.trimLater(&trimT)
			select {
			case <-l.kick:
			case err := <-synced:
				l.syncDone(err)
				continue
			case <-tick:
				l.intervalSync()
				continue
			case <-trim:
				l.idle()
				continue
			}
		}
		l.mu.Lock()
		g := l.pend
		if g.idle() {
			l.mu.Unlock()
			continue
		}
		if n := len(w.free); n > 0 {
			l.pend, w.free = w.free[n-1], w.free[:n-1]
		} else {
			l.pend = newGroup()
		}
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
		closing := g.closing // finish resets g
		if len(g.syncBehind) > 0 {
			l.syncBehind(g.syncBehind, err)
			clear(g.syncBehind)
			g.syncBehind = g.syncBehind[:0]
		}
		if l.pipelined() && err == nil {
			// The data is written: only the waiters wait for the fsync,
			// and the group goes back for reuse now, so that memory
			// does not grow with the groups written during one fsync.
			w.unsynced = append(w.unsynced, groupWaiters{done: g.done, waiters: g.waiters})
			g.waiters = nil // now unsynced's
			l.recycle(g)
			l.startSync()
		} else {
			if err != nil || l.opts.Sync != SyncNever {
				l.awaitSyncs() // after a failure, these fail too
			}
			l.finish(g, err)
		}
		if closing {
			l.awaitSyncs()
			if l.failed.Load() && !w.cut {
				l.cutToDurable()
			}
			l.closeErr = l.shutdown()
			return
		}
	}
}

// pipelined reports whether the log fsyncs off the writer goroutine: with
// SyncAlways and ReadBeforeSync, where what is written is readable at once
// and only the waiters and the high watermark wait for the fsync. Logs
// without ReadBeforeSync expose a group only once it is durable, so
// their writer fsyncs each group before the next.
func (l *Log) pipelined() bool { return l.opts.Sync == SyncAlways && l.opts.ReadBeforeSync }

// finish completes group g and keeps it for reuse.
func (l *Log) finish(g *group, err error) {
	groupWaiters{done: g.done, waiters: g.waiters}.complete(err)
	l.recycle(g)
}

// recycle keeps a group whose waiters are taken care of for reuse.
func (l *Log) recycle(g *group) {
	g.reset()
	l.w.free = append(l.w.free, g)
}

// syncBehind answers the SyncBehind requests of a group just written
// (err: how the write went): by an fsync off the writer goroutine, after
// any under way, or by one here when the names of new files must be
// fsync'd too.
func (l *Log) syncBehind(reqs []*Appended, err error) {
	w := &l.w
	if err == nil && w.dirsUnsynced {
		err = l.awaitSyncs()
		if err == nil {
			err = l.syncData()
		}
	}
	if err != nil || !w.dirty && w.op == nil && len(w.unsynced) == 0 {
		for _, a := range reqs {
			groupWaiters{done: a.done, waiters: []*Appended{a}}.complete(err)
		}
		return
	}
	for _, a := range reqs {
		w.unsynced = append(w.unsynced, groupWaiters{done: a.done, waiters: []*Appended{a}})
	}
	l.startSync()
}

// startSync starts an fsync of everything written so far, for the
// unsynced groups, unless one is under way: when it ends, syncDone starts
// the next for the groups written meanwhile.
func (l *Log) startSync() {
	w := &l.w
	if w.op != nil || len(w.unsynced) == 0 {
		return
	}
	op := &syncOp{upto: w.written, next: w.nextOffset, groups: w.unsynced, done: make(chan error, 1)}
	w.unsynced = nil
	w.op = op
	w.dirty = false
	f, obs := w.files.data, l.opts.Observer
	go func() {
		start := time.Now()
		err := l.syncFile(f)
		if err == nil && obs != nil {
			obs.ObserveFsync(time.Since(start))
		}
		op.done <- err
	}()
}

// syncDone ends the fsync under way with its result: on success the high
// watermark moves to what it covered and its groups complete; on failure
// the log fails. Then the next fsync starts, if groups wait for one.
func (l *Log) syncDone(err error) error {
	w := &l.w
	op := w.op
	w.op = nil
	if err != nil {
		err = l.fail(fmt.Errorf("fsync: %w", err))
		w.dirty = true
	} else {
		w.synced = max(w.synced, op.upto)
		l.mu.Lock()
		if op.next > l.hw.Load() {
			l.hw.Store(op.next)
		}
		l.mu.Unlock()
		err = l.flushIndex(false)
	}
	for _, gw := range op.groups {
		gw.complete(err)
	}
	if err != nil {
		for _, gw := range w.unsynced {
			gw.complete(err)
		}
		w.unsynced = nil
		return err
	}
	l.startSync()
	return nil
}

// awaitSyncs waits until no group waits for an fsync, for a roll (which
// must not close a file being synced) or the end of the writer.
func (l *Log) awaitSyncs() error {
	for l.w.op != nil {
		if err := l.syncDone(<-l.w.op.done); err != nil {
			return err
		}
	}
	return nil
}

// idleTrim is how long a log's writer idles before it gives back its
// big group buffers.
const idleTrim = time.Second

// trimLater returns a channel that fires when the writer has idled for
// idleTrim while it keeps a group buffer past keepBufferBytes, nil when
// it keeps none. Trimming at once, every time the writer waits, made a
// log under steady bursts (publishers released together by credit flow)
// grow a fresh buffer for each burst: most of what the publish path
// allocated.
func (l *Log) trimLater(t **time.Timer) <-chan time.Time {
	big := false
	for _, g := range l.w.free {
		big = big || cap(g.buf) > keepBufferBytes
	}
	if !big {
		l.mu.Lock()
		big = cap(l.pend.buf) > keepBufferBytes
		l.mu.Unlock()
	}
	if !big {
		return nil
	}
	if *t == nil {
		*t = time.NewTimer(idleTrim)
	} else {
		(*t).Reset(idleTrim)
	}
	return (*t).C
}

// idle gives back big buffers once the writer has slept a while, so that
// a log that once took a burst does not keep its memory.
func (l *Log) idle() {
	for _, g := range l.w.free {
		g.trim()
	}
	l.mu.Lock()
	if len(l.pend.buf) == 0 {
		l.pend.trim()
	}
	l.mu.Unlock()
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
	if l.pipelined() {
		return nil // run starts the fsync; syncDone publishes
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
	if w.uncreated {
		if err := l.createActive(); err != nil {
			return l.fail(fmt.Errorf("create segment: %w", err))
		}
	}
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
		if err := l.createIndexFiles(true, false); err != nil {
			return err
		}
		w.scratch = appendOffsetEntries(w.scratch[:0], s.idx[w.idxOnDisk:ni])
		if _, err := w.files.index.WriteAt(w.scratch, int64(w.idxOnDisk)*offsetEntrySize); err != nil {
			return l.fail(fmt.Errorf("write index: %w", err))
		}
		w.idxOnDisk = ni
	}
	if nt > w.tidxOnDisk {
		if err := l.createIndexFiles(false, true); err != nil {
			return err
		}
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
	if err := l.syncFile(w.files.data); err != nil {
		return l.fail(fmt.Errorf("fsync: %w", err))
	}
	if g := l.opts.SyncGroup; g != nil && g.all != nil {
		// The round was a whole-file-system sync that started after the
		// creates: it made their names durable too.
		w.dirsUnsynced = false
	} else if err := l.syncDirs(); err != nil {
		return l.fail(err)
	}
	if l.opts.Observer != nil {
		l.opts.Observer.ObserveFsync(time.Since(start))
	}
	w.dirty, w.synced = false, w.written
	return nil
}

// syncFile makes the active data file f durable: through the log's
// SyncGroup, shared with other logs, if it has one.
func (l *Log) syncFile(f File) error {
	if g := l.opts.SyncGroup; g != nil {
		return g.Sync(f)
	}
	return f.Sync()
}

// createIndexFiles creates the active segment's offset index (index)
// and time index (tindex) files if they are not open yet. Readers find them
// through the segment's shared files under the cache's lock.
func (l *Log) createIndexFiles(index, tindex bool) error {
	for _, x := range []struct {
		want bool
		dst  *File
		name string
	}{{index, &l.w.files.index, l.w.seg.indexPath()}, {tindex, &l.w.files.timeindex, l.w.seg.timeIndexPath()}} {
		if !x.want || *x.dst != nil {
			continue
		}
		f, err := l.fs.OpenFile(x.name, true)
		if err == nil {
			if err = f.Truncate(0); err != nil {
				f.Close()
			}
		}
		if err != nil {
			return l.fail(fmt.Errorf("create index: %w", err))
		}
		l.cache.mu.Lock()
		*x.dst = f
		l.cache.mu.Unlock()
	}
	return nil
}

// syncIndexes writes and fsyncs the active segment's index files; with
// create (a segment being closed) it creates them first if need be, so
// that a closed segment always has both.
func (l *Log) syncIndexes(create bool) error {
	if err := l.flushIndex(true); err != nil {
		return err
	}
	if create {
		if err := l.createIndexFiles(true, true); err != nil {
			return err
		}
	}
	for _, f := range []File{l.w.files.index, l.w.files.timeindex} {
		if f == nil {
			continue
		}
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
	if err := l.awaitSyncs(); err != nil {
		return err
	}
	if err := l.syncData(); err != nil {
		return err
	}
	w.newTidx = w.ib.final(w.newTidx)
	if err := l.publish(); err != nil {
		return err
	}
	if err := l.syncIndexes(true); err != nil {
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
		free: w.free, // no fsync is under way (awaitSyncs above)
	}
	return nil
}

// createDataFile creates the (empty) data file of a new segment; its
// index files are created when entries are written (createIndexFiles).
func createDataFile(fsys FS, s *segment) (*segFiles, error) {
	f, err := fsys.OpenFile(s.dataPath(), true)
	if err == nil {
		if err = f.Truncate(0); err != nil {
			f.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	return &segFiles{data: f}, nil
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
	if l.discard.Load() {
		return nil // Delete removes the files next
	}
	if err := l.syncIndexes(false); err != nil {
		return err
	}
	return nil
}
