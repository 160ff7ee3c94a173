package storage

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Open opens (creating if needed) the log in dir, recovering its tail.
//
// Recovery never refuses to start because of a torn or corrupt tail: the
// active segment is checked batch by batch (framing, increasing offsets,
// CRC32C) from its last trustworthy index entry and truncated at the
// first bad batch; older segments get a cheap consistency check of their
// indexes and tail, and are rebuilt (and truncated if need be) when it
// fails. Stray temporary files are removed. Only I/O errors fail Open.
func Open(dir string, opts Options) (*Log, error) {
	l, err := openLog(filepath.Clean(dir), opts.withDefaults())
	if err != nil {
		return nil, err
	}
	go l.run()
	return l, nil
}

// openLog recovers the log in dir into a new Log whose writer is not
// started yet (Open and Recover start it).
func openLog(dir string, opts Options) (*Log, error) {
	l := &Log{
		dir:        dir,
		opts:       opts,
		fs:         opts.FS,
		changed:    make(chan struct{}),
		segBytes:   opts.SegmentBytes,
		segAge:     opts.SegmentAge,
		maxPending: max(minPendingBytes, 2*opts.MaxBatchBytes),
		pend:       newGroup(),
		kick:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
		cache:      handleCache{fs: opts.FS, max: oldSegmentHandles},
	}
	l.space.L = &l.mu
	if err := l.recover(); err != nil {
		l.cache.closeAll(l.segs)
		if l.w.files != nil {
			l.w.files.close()
		}
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	return l, nil
}

// recoverBufs are the windows recovery scans data files through, shared
// by the logs opened one after another (thousands at a start): nothing
// keeps one after recover returns.
var recoverBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func (l *Log) recover() error {
	fsys := l.fs
	names, err := fsys.ReadDir(l.dir)
	if isNotExist(err) && l.opts.CreateOnAppend {
		names, err = nil, nil // the first write makes the directory
	} else if isNotExist(err) {
		if err := fsys.MkdirAll(l.dir); err != nil {
			return err
		}
		names, err = nil, fsys.SyncDir(filepath.Dir(l.dir))
	}
	if err != nil {
		return err
	}
	bases, err := l.tidy(names)
	if err != nil {
		return err
	}
	ckStart, err := readCheckpoint(fsys, l.dir)
	if err != nil {
		return err
	}
	var buf []byte
	if len(bases) > 0 || !l.opts.CreateOnAppend {
		// (A log with no segment under CreateOnAppend scans nothing: its
		// active segment stays uncreated.)
		bp := recoverBufs.Get().(*[]byte)
		defer recoverBufs.Put(bp)
		buf = *bp
	}
	if len(bases) == 0 {
		bases = []int64{max(ckStart, 0)}
	}
	for _, b := range bases {
		l.segs = append(l.segs, newSegment(l.dir, b))
	}
	for i := 1; i < len(l.segs); i++ {
		l.segs[i-1].offLimit = l.segs[i].base
	}
	for _, s := range l.segs[:len(l.segs)-1] {
		if err := l.recoverOld(s, buf); err != nil {
			return err
		}
	}
	if err := l.recoverActive(l.segs[len(l.segs)-1], buf); err != nil {
		return err
	}
	start := max(ckStart, l.segs[0].base)
	if start > l.w.nextOffset {
		// The start checkpoint is ahead of the data (unsynced data lost in a
		// crash, or deleted records past the end): nothing below it is
		// readable, so begin afresh at the checkpoint.
		if err := l.restartAt(start, buf); err != nil {
			return err
		}
	}
	for _, s := range l.segs {
		l.size += s.size
	}
	l.next = l.w.nextOffset
	l.hw.Store(l.next)
	l.rend.Store(l.next)
	l.start.Store(start)
	return nil
}

// tidy removes temporary files and indexes and sidecars without a data
// file, and
// returns the base offsets of the segments, ascending.
func (l *Log) tidy(names []string) ([]int64, error) {
	var bases []int64
	logs := make(map[int64]bool)
	for _, n := range names {
		if b, ok := parseSegmentName(n, logSuffix); ok {
			bases = append(bases, b)
			logs[b] = true
		}
	}
	removed := false
	for _, n := range names {
		b, isIndex := parseSegmentName(n, indexSuffix)
		if !isIndex {
			b, isIndex = parseSegmentName(n, timeIndexSuffix)
		}
		if !isIndex {
			b, isIndex = parseSegmentName(n, sidecarSuffix)
		}
		if strings.HasSuffix(n, tmpSuffix) || isIndex && !logs[b] {
			if err := l.fs.Remove(filepath.Join(l.dir, n)); err != nil && !isNotExist(err) {
				return nil, err
			}
			removed = true
		}
	}
	if removed {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return nil, err
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

// openIndexFile opens an index file for reading, nil if it is missing.
func (l *Log) openIndexFile(name string) (File, error) {
	f, err := l.fs.OpenFile(name, false)
	if isNotExist(err) {
		return nil, nil
	}
	return f, err
}

// recoverOld checks an old segment and rebuilds its indexes if the check
// fails. Its files are closed afterwards; readers open them on demand.
func (l *Log) recoverOld(s *segment, buf []byte) error {
	data, err := l.fs.OpenFile(s.dataPath(), false)
	if err != nil {
		return err
	}
	defer data.Close()
	size, err := data.Size()
	if err != nil {
		return err
	}
	ok, maxTs, err := l.checkOld(s, data, size, buf)
	if err != nil {
		return err
	}
	if ok {
		s.size, s.maxTs = size, maxTs
		return nil
	}
	rb, err := l.rescan(s, data, size, buf)
	if err != nil {
		return err
	}
	rb.ti = rb.ib.final(rb.ti)
	if err := l.writeIndexes(s, rb.oi, rb.ti); err != nil {
		return err
	}
	s.size, s.maxTs = rb.res.end, rb.ib.maxTs
	return nil
}

// checkOld is the cheap check of a closed segment: the last offset index
// entry points at the batch it names, the batches after it are intact up
// to the end of the file (CRC included) and would earn no new entry, and
// the last time index entry names a batch with that timestamp.
func (l *Log) checkOld(s *segment, data File, size int64, buf []byte) (ok bool, maxTs int64, err error) {
	if size == 0 {
		return true, noTimestamp, nil
	}
	idxF, err := l.openIndexFile(s.indexPath())
	if err != nil || idxF == nil {
		return false, 0, err
	}
	defer idxF.Close()
	tF, err := l.openIndexFile(s.timeIndexPath())
	if err != nil || tF == nil {
		return false, 0, err
	}
	defer tF.Close()
	idx, err := newIndexFile(idxF, offsetEntrySize)
	if err != nil {
		return false, 0, err
	}
	tidx, err := newIndexFile(tF, timeEntrySize)
	if err != nil {
		return false, 0, err
	}
	if sz, err := idxF.Size(); err != nil || sz%offsetEntrySize != 0 {
		return false, 0, err
	}
	if sz, err := tF.Size(); err != nil || sz%timeEntrySize != 0 {
		return false, 0, err
	}
	ib := newIndexBuilder(s.base, l.opts.IndexIntervalBytes)
	from, next := int64(0), s.base
	if idx.n > 0 {
		var eb [offsetEntrySize]byte
		if err := idx.entry(eb[:], idx.n-1); err != nil {
			return false, 0, err
		}
		e := decodeOffsetEntry(eb[:])
		if int64(e.pos) >= size {
			return false, 0, nil
		}
		from, next = int64(e.pos), s.base+int64(e.rel)
		ib.resumeAfter([]offsetEntry{e})
	}
	sc := newScanner(data, size, buf)
	var earned []offsetEntry
	res, err := scanBatches(sc, s, from, next, true, func(h BatchHeader, pos int64) {
		earned, _ = ib.add(h, pos, earned, nil)
	})
	if err != nil || res.bad || res.end != size || res.lastBase < 0 || len(earned) > 0 {
		return false, 0, err
	}
	if idx.n > 0 {
		// The scan started at the entry's batch; check it was that batch.
		if h, ok, err := sc.header(from); err != nil || !ok || h.BaseOffset != next {
			return false, 0, err
		}
	}
	if tidx.n == 0 {
		// No time entry is right only if no batch has a timestamp, which
		// the scan saw only if it covered the whole segment.
		return idx.n == 0 && ib.maxTs == noTimestamp, noTimestamp, nil
	}
	var tb [timeEntrySize]byte
	if err := tidx.entry(tb[:], tidx.n-1); err != nil {
		return false, 0, err
	}
	te := decodeTimeEntry(tb[:])
	if int64(te.rel) > res.lastBase-s.base {
		return false, 0, nil
	}
	pos := int64(0)
	if e, ok, err := idx.floorOffset(te.rel); err != nil {
		return false, 0, err
	} else if ok {
		pos = int64(e.pos)
	}
	h, _, found, err := findBatch(sc, pos, s.base+int64(te.rel))
	if err != nil || !found || h.MaxTimestamp != te.ts {
		return false, 0, err
	}
	return true, max(te.ts, ib.maxTs), nil
}

// findBatch walks from pos to the batch with base offset base.
func findBatch(sc *scanner, pos, base int64) (h BatchHeader, at int64, found bool, err error) {
	for pos < sc.limit {
		h, ok, err := sc.header(pos)
		if err != nil || !ok || h.BaseOffset > base {
			return h, 0, false, err
		}
		if h.BaseOffset == base {
			return h, pos, true, nil
		}
		pos += int64(h.Size())
	}
	return BatchHeader{}, 0, false, nil
}

// rebuilt is a segment's indexes as a scan of its data file found them.
type rebuilt struct {
	ib  indexBuilder
	oi  []offsetEntry
	ti  []timeEntry
	res scanResult
}

// rescan validates the whole data file (CRC included), truncates it at
// the first bad batch and derives the indexes from scratch.
func (l *Log) rescan(s *segment, data File, size int64, buf []byte) (rebuilt, error) {
	rb := rebuilt{ib: newIndexBuilder(s.base, l.opts.IndexIntervalBytes)}
	return rb, l.scanFrom(&rb, s, data, size, 0, s.base, buf)
}

// scanFrom validates batches from pos to the end of data, adding the
// index entries they earn to rb, and truncates the file after the last
// good batch.
func (l *Log) scanFrom(rb *rebuilt, s *segment, data File, size, pos, next int64, buf []byte) error {
	sc := newScanner(data, size, buf)
	var err error
	rb.res, err = scanBatches(sc, s, pos, next, true, func(h BatchHeader, pos int64) {
		rb.oi, rb.ti = rb.ib.add(h, pos, rb.oi, rb.ti)
	})
	if err != nil {
		return err
	}
	return truncateTo(data, size, rb.res.end)
}

// writeIndexes replaces a segment's index files with the given entries.
func (l *Log) writeIndexes(s *segment, oi []offsetEntry, ti []timeEntry) error {
	if err := writeWhole(l.fs, s.indexPath(), appendOffsetEntries(nil, oi)); err != nil {
		return err
	}
	return writeWhole(l.fs, s.timeIndexPath(), appendTimeEntries(nil, ti))
}

// writeWhole makes name hold exactly b, durably.
func writeWhole(fsys FS, name string, b []byte) error {
	f, err := fsys.OpenFile(name, true)
	if err != nil {
		return err
	}
	if _, err = f.WriteAt(b, 0); err == nil {
		if err = f.Truncate(int64(len(b))); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// recoverActive recovers the last segment and makes it the writer's.
func (l *Log) recoverActive(s *segment, buf []byte) error {
	files := &segFiles{}
	l.w.files = files
	var err error
	files.data, err = l.fs.OpenFile(s.dataPath(), false)
	created := isNotExist(err)
	if created && l.opts.CreateOnAppend {
		l.openUncreated(s)
		return nil
	}
	if created {
		files.data, err = l.fs.OpenFile(s.dataPath(), true)
	}
	if err != nil {
		return err
	}
	size, err := files.data.Size()
	if err != nil {
		return err
	}
	oi, ti, fileN, fileM, err := l.loadIndexes(s, size)
	if err != nil {
		return err
	}
	rb, full, err := l.resume(s, files.data, size, oi, ti, buf)
	if err != nil {
		return err
	}
	// A segment just created is empty: no index to rewrite, nothing to
	// sync but its directory entries (below).
	// A full rescan rewrites the index files, unless they and the rescan
	// both hold no entry (a segment smaller than one index interval, as
	// most queues' are): rewriting them empty would cost two fsyncs.
	empty := fileN == 0 && fileM == 0 && len(rb.oi) == 0 && len(rb.ti) == 0
	if !created && (full && !empty || rb.res.end < size || len(rb.oi) != fileN || len(rb.ti) != fileM) {
		if err := l.writeIndexes(s, rb.oi, rb.ti); err != nil {
			return err
		}
	}
	if !created {
		if err := files.data.Sync(); err != nil { // expose only what is on disk
			return err
		}
	}
	// The index files are created when the writer first has entries for
	// them (flushIndex), not here: a log that never grows past its first
	// index interval (most partitions and queues of a broker holding many)
	// keeps one file, and a log created empty costs one file create. They
	// are derived data: a missing one is rebuilt by the next recovery.
	if files.index, err = l.openIndexFile(s.indexPath()); err != nil {
		return err
	}
	if files.timeindex, err = l.openIndexFile(s.timeIndexPath()); err != nil {
		return err
	}
	if created { // data will be acknowledged in this file: its entry must last
		if err := l.fs.SyncDir(l.dir); err != nil {
			return err
		}
	}
	s.size, s.maxTs, s.idx, s.tidx = rb.res.end, rb.ib.maxTs, rb.oi, rb.ti
	l.w = writer{
		seg: s, files: files, written: s.size, published: s.size, synced: s.size,
		nextOffset: max(rb.res.next, s.base),
		ib:         rb.ib, idxOnDisk: len(rb.oi), tidxOnDisk: len(rb.ti),
	}
	if l.opts.CreateOnAppend {
		// The log may have been made by a first write whose names were
		// not fsync'd yet when the process died or the log failed (they
		// are synced after the data's first fsync): sync them again
		// after the first fsync of this open, before anything it
		// acknowledges. Once per open, and cheap after that fsync.
		l.w.dirsUnsynced = true
		if l.pipelined() {
			if err := l.syncDirs(); err != nil {
				return err
			}
		}
	}
	if s.size > 0 {
		// Age the segment from its first batch's timestamp, if plausible.
		now := l.opts.Now()
		l.w.firstAppend = now
		sc := newScanner(files.data, s.size, buf)
		if h, ok, err := sc.header(0); err == nil && ok && h.MaxTimestamp > 0 {
			l.w.firstAppend = time.UnixMilli(min(h.MaxTimestamp, now.UnixMilli()))
		}
	}
	l.cache.pin(s, files)
	return nil
}

// openUncreated makes s, whose data file does not exist, the writer's
// empty active segment under Options.CreateOnAppend: readers see an empty
// file until the first write creates the real one (createActive).
func (l *Log) openUncreated(s *segment) {
	files := &segFiles{data: noFile{}}
	s.size, s.maxTs = 0, noTimestamp
	l.w = writer{seg: s, files: files, nextOffset: s.base, ib: newIndexBuilder(s.base, l.opts.IndexIntervalBytes), uncreated: true}
	l.cache.pin(s, files)
}

// createActive creates the directory and the data file of an active
// segment opened by openUncreated and pins the new file for readers in
// place of the empty stand-in. Their names (the data file's entry in the
// log's directory, the directory's in its parent, which Open left as it
// found them) are made durable by the first fsync of the data (syncDirs),
// before anything written is acknowledged: after that fsync, on a
// journaling file system, the directory fsyncs find the creates committed
// already, where fsyncs before the write would each commit them. A
// pipelined log fsyncs off the writer, so it syncs the names here.
func (l *Log) createActive() error {
	w := &l.w
	if err := l.fs.MkdirAll(l.dir); err != nil {
		return err
	}
	files, err := createDataFile(l.fs, w.seg)
	if err != nil {
		return err
	}
	w.files, w.uncreated, w.dirsUnsynced = files, false, true
	l.cache.pin(w.seg, files)
	if l.pipelined() {
		return l.syncDirs()
	}
	return nil
}

// syncDirs makes the names createActive created durable, once.
func (l *Log) syncDirs() error {
	if !l.w.dirsUnsynced {
		return nil
	}
	err := l.fs.SyncDir(l.dir)
	if err == nil {
		// Logs created together share their parent's fsyncs.
		err = syncDirShared(l.fs, filepath.Dir(l.dir))
	}
	if err != nil {
		return fmt.Errorf("fsync dir: %w", err)
	}
	l.w.dirsUnsynced = false
	return nil
}

// noFile stands in for the data file of a segment that does not exist
// yet (openUncreated): empty, and never written (the writer creates the
// real file first).
type noFile struct{}

func (noFile) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }
func (noFile) WriteAt([]byte, int64) (int, error) {
	return 0, errors.New("storage: write to a segment not created")
}
func (noFile) Truncate(int64) error { return nil }
func (noFile) Size() (int64, error) { return 0, nil }
func (noFile) Sync() error          { return nil }
func (noFile) Close() error         { return nil }

// loadIndexes reads the active segment's index files and keeps the
// entries that look right: a consistent prefix of each, time entries only
// for batches the offset index covers. fileN and fileM count the entries
// the files held.
func (l *Log) loadIndexes(s *segment, size int64) (oi []offsetEntry, ti []timeEntry, fileN, fileM int, err error) {
	for _, x := range []struct {
		name string
		size int
		add  func([]byte)
	}{
		{s.indexPath(), offsetEntrySize, func(b []byte) { oi = append(oi, decodeOffsetEntry(b)) }},
		{s.timeIndexPath(), timeEntrySize, func(b []byte) { ti = append(ti, decodeTimeEntry(b)) }},
	} {
		f, err := l.openIndexFile(x.name)
		if err != nil {
			return nil, nil, 0, 0, err
		}
		b, n, err := readAll(f, x.size, size)
		if f != nil {
			f.Close()
		}
		if err != nil {
			return nil, nil, 0, 0, err
		}
		if x.size == offsetEntrySize {
			fileN = n
		} else {
			fileM = n
		}
		for ; len(b) >= x.size; b = b[x.size:] {
			x.add(b[:x.size])
		}
	}
	for i, e := range oi {
		if e.pos == 0 || int64(e.pos) >= size || i > 0 && (e.rel <= oi[i-1].rel || e.pos <= oi[i-1].pos) {
			oi = oi[:i]
			break
		}
	}
	last := uint32(0)
	if len(oi) > 0 {
		last = oi[len(oi)-1].rel
	}
	for i, e := range ti {
		if len(oi) == 0 || e.rel > last || e.ts < 0 || i > 0 && (e.ts <= ti[i-1].ts || e.rel <= ti[i-1].rel) {
			ti = ti[:i]
			break
		}
	}
	return oi, ti, fileN, fileM, nil
}

// readAll reads a whole index file of entrySize entries. It reads nothing
// (but still counts) when the file is missing, ragged, or larger than a
// segment of size bytes could need (at most one entry per batch).
func readAll(f File, entrySize int, size int64) (b []byte, entries int, err error) {
	if f == nil {
		return nil, 0, nil
	}
	n, err := f.Size()
	if err != nil {
		return nil, 0, err
	}
	entries = int(min(n/int64(entrySize), 1<<31))
	if n%int64(entrySize) != 0 || n/int64(entrySize) > size/batchHeaderSize+1 {
		return nil, entries + 1, nil // +1: differs from anything kept, so it is rewritten
	}
	b = make([]byte, n)
	return b, entries, readFull(f, b, 0)
}

// resume validates the active segment's data from the point its indexes
// stop being enough and returns the full indexes. It starts at the batch
// of the last time entry (where the running max timestamp is known), or
// at the start if there is none, and expects to pass the batch of the last
// offset entry on the way. When the indexes do not match the data it
// rebuilds from scratch (full=true). A bad tail is truncated.
func (l *Log) resume(s *segment, data File, size int64, oi []offsetEntry, ti []timeEntry, buf []byte) (rb rebuilt, full bool, err error) {
	if len(oi) == 0 {
		rb, err = l.rescan(s, data, size, buf)
		return rb, true, err
	}
	floor := oi[len(oi)-1]
	rb = rebuilt{ib: newIndexBuilder(s.base, l.opts.IndexIntervalBytes), oi: oi, ti: ti}
	pos, next := int64(0), s.base
	if len(ti) > 0 {
		te := ti[len(ti)-1]
		p := int64(0)
		if e, ok := floorOffsetEntry(oi, te.rel); ok {
			p = int64(e.pos)
		}
		h, at, found, err := findBatch(newScanner(data, size, buf), p, s.base+int64(te.rel))
		if err != nil {
			return rb, false, err
		}
		if !found || h.MaxTimestamp != te.ts {
			return l.rescanAgain(s, data, buf)
		}
		pos, next = at, h.BaseOffset
		rb.ib.maxTs, rb.ib.maxTsRel, rb.ib.lastTs = te.ts, te.rel, te.ts
	}
	rb.ib.resumeAfter(oi)
	hitFloor := false
	sc := newScanner(data, size, buf)
	rb.res, err = scanBatches(sc, s, pos, next, true, func(h BatchHeader, pos int64) {
		if pos == int64(floor.pos) && h.BaseOffset == s.base+int64(floor.rel) {
			hitFloor = true
		}
		rb.oi, rb.ti = rb.ib.add(h, pos, rb.oi, rb.ti)
	})
	if err != nil {
		return rb, false, err
	}
	if !hitFloor {
		return l.rescanAgain(s, data, buf)
	}
	return rb, false, truncateTo(data, size, rb.res.end)
}

// rescanAgain is rescan after the indexes proved wrong.
func (l *Log) rescanAgain(s *segment, data File, buf []byte) (rebuilt, bool, error) {
	size, err := data.Size()
	if err != nil {
		return rebuilt{}, true, err
	}
	rb, err := l.rescan(s, data, size, buf)
	return rb, true, err
}

// truncateTo cuts a data file of size bytes back to end, durably.
func truncateTo(data File, size, end int64) error {
	if end >= size {
		return nil
	}
	if err := data.Truncate(end); err != nil {
		return err
	}
	return data.Sync()
}

// restartAt replaces every segment with one empty segment at start.
func (l *Log) restartAt(start int64, buf []byte) error {
	for _, s := range l.segs {
		l.cache.drop(s)
		for _, name := range []string{s.dataPath(), s.indexPath(), s.timeIndexPath(), s.sidecarPath()} {
			if err := l.fs.Remove(name); err != nil && !isNotExist(err) {
				return err
			}
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return err
	}
	s := newSegment(l.dir, start)
	l.segs = []*segment{s}
	return l.recoverActive(s, buf)
}
