package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

// truncOpts rolls every few batches and indexes often, so that a log of
// 60 batches has many segments and index entries to cut.
var truncOpts = Options{SegmentBytes: 3000, IndexIntervalBytes: 200}

// truncLog is a closed log and what was written to it.
type truncLog struct {
	fsys    FS
	dir     string
	opts    Options
	batches [][]byte // every batch, as read back
	bases   []int64  // segment bases
}

// newTruncLog writes 60 batches of 2 records, timestamps 1000, 1010, ...
// (batch i holds offsets 2i and 2i+1), and closes the log.
func newTruncLog(t *testing.T, fsys FS, dir string, o Options) *truncLog {
	t.Helper()
	l := mustOpen(t, fsys, dir, o)
	for i := range 60 {
		mustAppend(t, l, batchOf(i, 2, 60, int64(1000+10*i)))
	}
	tl := &truncLog{fsys: fsys, dir: dir, opts: o, batches: readLog(t, l), bases: l.SegmentBaseOffsets()}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if len(tl.bases) < 4 {
		t.Fatalf("only %d segments; the test needs several", len(tl.bases))
	}
	return tl
}

func headerOf(t testing.TB, b []byte) BatchHeader {
	t.Helper()
	h, err := ParseBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// check opens the log and verifies it holds exactly the batches below
// end, from start, that reads and timestamp lookups find them, and that
// appends continue at end and survive a reopen.
func (tl *truncLog) check(t *testing.T, start, end int64) {
	t.Helper()
	l := mustOpen(t, tl.fsys, tl.dir, tl.opts)
	if got := l.HighWatermark(); got != end {
		l.Close()
		t.Fatalf("HighWatermark %d, want %d", got, end)
	}
	if got := l.StartOffset(); got != start {
		l.Close()
		t.Fatalf("StartOffset %d, want %d", got, start)
	}
	var want [][]byte
	for _, b := range tl.batches {
		if h := headerOf(t, b); h.BaseOffset >= start && h.BaseOffset < end {
			want = append(want, b)
		}
	}
	got := readLog(t, l)
	if len(got) != len(want) {
		t.Fatalf("read %s, want %s", describe(got), describe(want))
	}
	for i := range want {
		if !sameBatch(got[i], want[i]) {
			t.Fatalf("batch %d differs after the truncation", i)
		}
	}
	for _, b := range want {
		h := headerOf(t, b)
		for _, off := range []int64{h.BaseOffset, h.LastOffset()} {
			data, err := l.Read(off, 1)
			if err != nil || len(data) < len(b) || !sameBatch(data[:len(b)], b) {
				t.Fatalf("Read(%d): %d bytes, %v; want batch %d", off, len(data), err, h.BaseOffset)
			}
		}
		off, ts, ok, err := l.OffsetForTimestamp(h.MaxTimestamp)
		if err != nil || !ok || off != h.BaseOffset || ts != h.MaxTimestamp {
			t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v, %v; want %d", h.MaxTimestamp, off, ts, ok, err, h.BaseOffset)
		}
	}
	if data, err := l.Read(end, 1<<20); err != nil || len(data) != 0 {
		t.Fatalf("Read(end %d): %d bytes, %v; want nothing", end, len(data), err)
	}
	if _, _, ok, err := l.OffsetForTimestamp(1000 + 10*60); ok || err != nil {
		t.Fatalf("OffsetForTimestamp past every kept batch: ok %v, %v", ok, err)
	}
	extra := batchOf(100, 3, 40, 5000)
	if a := mustAppend(t, l, extra); a.BaseOffset != end {
		t.Fatalf("append after truncation at offset %d, want %d", a.BaseOffset, end)
	}
	want = append(want, withOffset(extra, end))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, tl.fsys, tl.dir, tl.opts) // a second reopen is stable
	defer l.Close()
	if got := l.HighWatermark(); got != end+3 {
		t.Fatalf("after reopen HighWatermark %d, want %d", got, end+3)
	}
	got = readLog(t, l)
	if len(got) != len(want) || !sameBatch(got[len(got)-1], want[len(want)-1]) {
		t.Fatalf("after reopen read %s, want %s", describe(got), describe(want))
	}
}

// noSegmentsFrom fails if a file of a segment with base >= end is left.
func (tl *truncLog) noSegmentsFrom(t *testing.T, end int64) {
	t.Helper()
	names, err := tl.fsys.ReadDir(tl.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, sidecarSuffix} {
			if b, ok := parseSegmentName(n, suf); ok && b >= end {
				t.Fatalf("%s left after truncating at %d", n, end)
			}
		}
	}
}

// files returns every file of the log and its bytes.
func (tl *truncLog) files(t *testing.T) map[string]string {
	t.Helper()
	names, err := tl.fsys.ReadDir(tl.dir)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]string)
	for _, n := range names {
		m[n] = string(readFileBytes(t, tl.fsys, tl.dir+"/"+n))
	}
	return m
}

func forEachFS(t *testing.T, fn func(t *testing.T, fsys FS, dir string, o Options)) {
	for _, fx := range []struct {
		name string
		new  fsFactory
	}{{"OSFS", osFactory}, {"MemFS", memFactory}} {
		for _, coa := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/CreateOnAppend=%v", fx.name, coa), func(t *testing.T) {
				fsys, dir := fx.new(t)
				o := truncOpts
				o.CreateOnAppend = coa
				fn(t, fsys, dir, o)
			})
		}
	}
}

func TestTruncateAfter(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string, o Options) {
		cases := []struct {
			name string
			end  func(tl *truncLog) int64
		}{
			{"MiddleOfOldSegment", func(tl *truncLog) int64 { return middleBoundary(t, tl, 1) }},
			{"SegmentBase", func(tl *truncLog) int64 { return tl.bases[2] }},
			{"MiddleOfActiveSegment", func(tl *truncLog) int64 { return middleBoundary(t, tl, len(tl.bases)-1) }},
			{"FirstBatchOnly", func(tl *truncLog) int64 { return 2 }},
			{"AtEnd", func(tl *truncLog) int64 { return 120 }},
			{"BeyondEnd", func(tl *truncLog) int64 { return 1000 }},
			{"AtStart", func(tl *truncLog) int64 { return 0 }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				sub := fmt.Sprintf("%s-%s", dir, tc.name)
				tl := newTruncLog(t, fsys, sub, o)
				end := tc.end(tl)
				if err := TruncateAfter(fsys, sub, end); err != nil {
					t.Fatalf("TruncateAfter(%d): %v", end, err)
				}
				tl.noSegmentsFrom(t, end)
				// What is left is what recovery keeps: opening changes no
				// file but the active segment's (which appends grow).
				before := tl.files(t)
				l := mustOpen(t, fsys, sub, o)
				l.Close()
				after := tl.files(t)
				for n, b := range before {
					if after[n] != b {
						t.Errorf("recovery changed %s (%d bytes, now %d)", n, len(b), len(after[n]))
					}
				}
				tl.check(t, 0, min(end, 120))
			})
		}
	})
}

// middleBoundary returns the base offset of a batch in the middle of
// segment i (neither its first nor its last).
func middleBoundary(t *testing.T, tl *truncLog, i int) int64 {
	t.Helper()
	lo, hi := tl.bases[i], int64(120)
	if i+1 < len(tl.bases) {
		hi = tl.bases[i+1]
	}
	var in []int64
	for _, b := range tl.batches {
		if h := headerOf(t, b); h.BaseOffset > lo && h.BaseOffset < hi {
			in = append(in, h.BaseOffset)
		}
	}
	if len(in) < 2 {
		t.Fatalf("segment %d holds too few batches", i)
	}
	return in[len(in)/2]
}

// An offset inside a batch is refused and nothing changes.
func TestTruncateAfterInsideBatch(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string, o Options) {
		tl := newTruncLog(t, fsys, dir, o)
		before := tl.files(t)
		for _, end := range []int64{middleBoundary(t, tl, 1) + 1, tl.bases[2] - 1, 119} {
			if err := TruncateAfter(fsys, dir, end); !errors.Is(err, ErrNotBatchBoundary) {
				t.Fatalf("TruncateAfter(%d) = %v, want ErrNotBatchBoundary", end, err)
			}
		}
		after := tl.files(t)
		if len(after) != len(before) {
			t.Fatalf("files %d, were %d", len(after), len(before))
		}
		for n, b := range before {
			if after[n] != b {
				t.Fatalf("%s changed by a refused truncation", n)
			}
		}
		tl.check(t, 0, 120)
	})
}

// Below the log start, a truncation starts the log empty at end.
func TestTruncateAfterBelowStart(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string, o Options) {
		tl := newTruncLog(t, fsys, dir, o)
		l := mustOpen(t, fsys, dir, o)
		mid := middleBoundary(t, tl, 2)
		if err := l.DeleteRecordsBefore(mid); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		// At the start: the data below it stays, unreadable; the log is
		// empty at mid.
		if err := TruncateAfter(fsys, dir, mid); err != nil {
			t.Fatal(err)
		}
		tl.check(t, mid, mid)
		if err := TruncateAfter(fsys, dir, mid-2); err != nil {
			t.Fatal(err)
		}
		tl.check(t, mid-2, mid-2)
		if names, err := fsys.ReadDir(dir); err != nil || len(names) > 2 {
			t.Fatalf("after a reset and one append: %v, %v", names, err)
		}
	})
}

// A log that was never written (CreateOnAppend: no directory) or holds
// only a checkpoint needs nothing.
func TestTruncateAfterEmptyLogs(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string, o Options) {
		if err := TruncateAfter(fsys, dir, 5); err != nil {
			t.Fatalf("missing directory: %v", err)
		}
		if err := TruncateAfter(fsys, dir, 0); err != nil {
			t.Fatalf("missing directory: %v", err)
		}
		if _, err := fsys.ReadDir(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a truncation created the directory: %v", err)
		}
		l := mustOpen(t, fsys, dir, o)
		l.Close()
		if err := TruncateAfter(fsys, dir, 0); err != nil {
			t.Fatal(err)
		}
		if err := ResetOffline(fsys, dir, 40); err != nil {
			t.Fatal(err)
		}
		if err := TruncateAfter(fsys, dir, 50); err != nil {
			t.Fatal(err)
		}
		l = mustOpen(t, fsys, dir, o)
		if l.StartOffset() != 40 || l.HighWatermark() != 40 {
			t.Fatalf("start %d hw %d, want 40, 40", l.StartOffset(), l.HighWatermark())
		}
		l.Close()
		if err := TruncateAfter(fsys, dir, 30); err != nil { // below the start
			t.Fatal(err)
		}
		l = mustOpen(t, fsys, dir, o)
		defer l.Close()
		if l.StartOffset() != 30 || l.HighWatermark() != 30 {
			t.Fatalf("start %d hw %d, want 30, 30", l.StartOffset(), l.HighWatermark())
		}
	})
}

func TestResetOffline(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string, o Options) {
		tl := newTruncLog(t, fsys, dir, o)
		for _, start := range []int64{1000, 1000, 7, 0} { // ahead, again, behind, zero
			if err := ResetOffline(fsys, dir, start); err != nil {
				t.Fatalf("ResetOffline(%d): %v", start, err)
			}
			tl.check(t, start, start)
			if err := ResetOffline(fsys, dir, start); err != nil { // drop the appended batch
				t.Fatalf("ResetOffline(%d): %v", start, err)
			}
			names, err := fsys.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				if n != checkpointName {
					t.Fatalf("%s left by ResetOffline", n)
				}
			}
		}
	})
}

// A missing directory (a CreateOnAppend log never written) is created to
// hold the checkpoint; a CreateOnAppend open then creates no segment until
// the first append, which lands at start.
func TestResetOfflineMissingDirectory(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string, o Options) {
		if err := ResetOffline(fsys, dir, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.ReadDir(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("ResetOffline(0) created the directory: %v", err)
		}
		if err := ResetOffline(fsys, dir, 77); err != nil {
			t.Fatal(err)
		}
		l := mustOpen(t, fsys, dir, o)
		if l.StartOffset() != 77 || l.HighWatermark() != 77 {
			t.Fatalf("start %d hw %d, want 77, 77", l.StartOffset(), l.HighWatermark())
		}
		if names, _ := fsys.ReadDir(dir); o.CreateOnAppend && len(names) != 1 {
			t.Fatalf("CreateOnAppend open after reset made files: %v", names)
		}
		if a := mustAppend(t, l, batchOf(1, 2, 10, 1)); a.BaseOffset != 77 {
			t.Fatalf("first append at %d, want 77", a.BaseOffset)
		}
		l.Close()
		l = mustOpen(t, fsys, dir, o)
		defer l.Close()
		if l.StartOffset() != 77 || l.HighWatermark() != 79 {
			t.Fatalf("after reopen start %d hw %d, want 77, 79", l.StartOffset(), l.HighWatermark())
		}
	})
}

// Both operations are durable when they return: a power loss right after
// loses nothing of them.
func TestTruncateAndResetSurviveCrash(t *testing.T) {
	mem := NewMemFS()
	dir := "/d/log"
	tl := newTruncLog(t, mem, dir, truncOpts)
	end := middleBoundary(t, tl, 1)
	if err := TruncateAfter(mem, dir, end); err != nil {
		t.Fatal(err)
	}
	mem.CrashAndRestart()
	tl.noSegmentsFrom(t, end)
	if got := fileSize(t, mem, segPath(dir, tl.bases[1], logSuffix)); got == 0 {
		t.Fatal("the cut segment is empty")
	}
	tl.check(t, 0, end)

	mem.CrashAndRestart() // the checked append was synced; drop nothing else
	if err := ResetOffline(mem, dir, 500); err != nil {
		t.Fatal(err)
	}
	mem.CrashAndRestart()
	tl.check(t, 500, 500)

	if err := ResetOffline(mem, "/d/other", 9); err != nil {
		t.Fatal(err)
	}
	mem.CrashAndRestart()
	l := mustOpen(t, mem, "/d/other", Options{CreateOnAppend: true})
	defer l.Close()
	if l.HighWatermark() != 9 {
		t.Fatalf("reset of a missing directory lost in a crash: hw %d", l.HighWatermark())
	}
}

// A failed fsync fails the operation; once the disk works again, the
// same call finishes the job.
func TestTruncateAndResetFailedSync(t *testing.T) {
	noFile := func(string) bool { return false } // only directory fsyncs fail
	for _, tc := range []struct {
		op    string
		fails func(name string) bool
	}{
		{"TruncateAfter/every", nil},
		{"TruncateAfter/dirs", noFile},
		{"TruncateAfter/data", onlyData},
		{"ResetOffline/every", nil},
		{"ResetOffline/dirs", noFile},
	} {
		t.Run(tc.op, func(t *testing.T) {
			mem := NewMemFS()
			ffs := NewFaultFS(mem)
			dir := "/d/log"
			tl := newTruncLog(t, ffs, dir, truncOpts)
			start, end := int64(0), middleBoundary(t, tl, 1)
			op := func() error { return TruncateAfter(ffs, dir, end) }
			if strings.HasPrefix(tc.op, "ResetOffline") {
				start, end = 300, 300
				op = func() error { return ResetOffline(ffs, dir, 300) }
			}
			injected := errors.New("EIO on fsync")
			ffs.SetFilter(tc.fails)
			ffs.FailSync(injected)
			if err := op(); !errors.Is(err, injected) {
				t.Fatalf("with failing fsyncs = %v, want %v", err, injected)
			}
			ffs.FailSync(nil)
			if err := op(); err != nil {
				t.Fatal(err)
			}
			// The retry returned nil: its result must survive a power loss,
			// though the first call did much of the work unsynced.
			mem.CrashAndRestart()
			tl.check(t, start, end)
		})
	}
}

// A failed truncate of the data file fails TruncateAfter, after the
// indexes were cut; the same call then finishes the job.
func TestTruncateAfterFailedTruncate(t *testing.T) {
	mem := NewMemFS()
	dir := "/d/log"
	tl := newTruncLog(t, mem, dir, truncOpts)
	injected := errors.New("EIO on truncate")
	bad := &truncFailFS{FS: mem, err: injected}
	end := middleBoundary(t, tl, 1)
	if err := TruncateAfter(bad, dir, end); !errors.Is(err, injected) {
		t.Fatalf("TruncateAfter with failing truncate = %v, want %v", err, injected)
	}
	if err := TruncateAfter(mem, dir, end); err != nil {
		t.Fatal(err)
	}
	tl.check(t, 0, end)
}

// truncFailFS is an FS whose data files fail every Truncate.
type truncFailFS struct {
	FS
	err error
}

func (f *truncFailFS) OpenFile(name string, create bool) (File, error) {
	file, err := f.FS.OpenFile(name, create)
	if err != nil || !strings.HasSuffix(name, logSuffix) {
		return file, err
	}
	return truncFailFile{file, f.err}, nil
}

type truncFailFile struct {
	File
	err error
}

func (f truncFailFile) Truncate(int64) error { return f.err }

// The index of the segment cut is only a hint: a wrong one costs a scan
// from the segment's start. Sidecars of the segment cut and of those
// removed go with the data they described.
func TestTruncateAfterBadIndexAndSidecars(t *testing.T) {
	mem := NewMemFS()
	dir := "/d/log"
	tl := newTruncLog(t, mem, dir, truncOpts)
	l := mustOpen(t, mem, dir, truncOpts)
	for _, seg := range l.Segments()[:3] {
		if err := l.SetSegmentSidecar(seg.Base, seg.Bytes, []byte("summary")); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	// An entry that points at the wrong batch, and a ragged tail.
	writeFileBytes(t, mem, segPath(dir, tl.bases[1], indexSuffix), []byte{0, 0, 0, 9, 0, 0, 0, 70, 0xff})
	end := middleBoundary(t, tl, 1)
	if err := TruncateAfter(mem, dir, end); err != nil {
		t.Fatal(err)
	}
	for _, b := range tl.bases[1:] {
		if _, err := mem.OpenFile(segPath(dir, b, sidecarSuffix), false); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("sidecar of segment %d left: %v", b, err)
		}
	}
	if _, err := mem.OpenFile(segPath(dir, tl.bases[0], sidecarSuffix), false); err != nil {
		t.Fatalf("sidecar of a segment kept whole: %v", err)
	}
	tl.check(t, 0, end)
}

// A torn tail is cut as recovery would cut it, even when end lies past it.
func TestTruncateAfterTornTail(t *testing.T) {
	mem := NewMemFS()
	dir := "/d/log"
	tl := newTruncLog(t, mem, dir, truncOpts)
	active := segPath(dir, tl.bases[len(tl.bases)-1], logSuffix)
	size := fileSize(t, mem, active)
	torn := batchOf(99, 2, 60, 9999)
	f, err := mem.OpenFile(active, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(withOffset(torn, 120)[:len(torn)-5], size); err != nil {
		t.Fatal(err)
	}
	f.Sync()
	f.Close()
	if err := TruncateAfter(mem, dir, 200); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, mem, active); got != size {
		t.Fatalf("active segment %d bytes after the cut, want %d", got, size)
	}
	tl.check(t, 0, 120)
}

// ResetTo empties an open log in place: the same Log goes on at start,
// readers see nothing below it, appends land at start, and a reopen
// finds the same.
func TestResetToOpenLog(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys FS, dir string, o Options) {
		l := mustOpen(t, fsys, dir, o)
		for i := range 20 {
			mustAppend(t, l, batchOf(i, 2, 60, int64(1000+10*i)))
		}
		changed := l.Changed()
		if err := l.ResetTo(500); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		default:
			t.Error("a reader waiting for the log was not woken by the reset")
		}
		if s, hw := l.StartOffset(), l.HighWatermark(); s != 500 || hw != 500 {
			t.Fatalf("after ResetTo(500): start %d, high watermark %d", s, hw)
		}
		if _, err := l.Read(10, 1<<20); err == nil {
			t.Fatal("a read below the new start succeeded")
		}
		if a := mustAppend(t, l, batchOf(0, 3, 60, 5000)); a.BaseOffset != 500 {
			t.Fatalf("append after the reset at %d, want 500", a.BaseOffset)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = mustOpen(t, fsys, dir, o)
		defer l.Close()
		if s, hw := l.StartOffset(), l.HighWatermark(); s != 500 || hw != 503 {
			t.Fatalf("reopened: start %d, high watermark %d, want 500 and 503", s, hw)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.ResetTo(7); !errors.Is(err, ErrClosed) {
			t.Fatalf("ResetTo on a closed log: %v", err)
		}
	})
}
