package storage

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// compactFixture is a log of n one-record batches over several small
// segments; batch i has tag i.
func compactFixture(t *testing.T, fsys FS, dir string, n int) (*Log, [][]byte) {
	t.Helper()
	l := mustOpen(t, fsys, dir, Options{SegmentBytes: 4 << 10, IndexIntervalBytes: 256})
	var want [][]byte
	for i := range n {
		a := mustAppend(t, l, batchOf(i, 1, 100, 1_700_000_000_000+int64(i)))
		want = append(want, withOffset(batchOf(i, 1, 100, 1_700_000_000_000+int64(i)), a.BaseOffset))
	}
	if len(l.Segments()) < 3 {
		t.Fatalf("want at least 3 segments, have %d", len(l.Segments()))
	}
	return l, want
}

// keepEvery keeps the batches whose base offset is a multiple of k.
func keepEvery(k int64) func(BatchHeader) bool {
	return func(h BatchHeader) bool { return h.BaseOffset%k == 0 }
}

// checkCompacted checks that the log reads as want minus the batches of
// segment [from, to) that keep rejects, that a read in a gap returns the
// next batch, and that every offset is readable in order.
func checkCompacted(t *testing.T, l *Log, want [][]byte, from, to int64, keep func(BatchHeader) bool) {
	t.Helper()
	var exp [][]byte
	for _, b := range want {
		h, _ := ParseBatchHeader(b)
		if h.BaseOffset >= from && h.BaseOffset < to && !keep(h) {
			continue
		}
		exp = append(exp, b)
	}
	got := readLog(t, l)
	if len(got) != len(exp) {
		t.Fatalf("read %d batches, want %d: %s", len(got), len(exp), describe(got))
	}
	for i := range got {
		if !sameBatch(got[i], exp[i]) {
			t.Fatalf("batch %d differs: got %s want %s", i, describe(got[i:i+1]), describe(exp[i:i+1]))
		}
	}
	// A read of any offset returns the first batch at or after it.
	j := 0
	for off := l.StartOffset(); off < l.HighWatermark(); off++ {
		for {
			h, _ := ParseBatchHeader(exp[j])
			if h.LastOffset() >= off {
				break
			}
			j++
		}
		data, err := l.Read(off, 1)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		h, err := ParseBatchHeader(data)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if want, _ := ParseBatchHeader(exp[j]); h.BaseOffset != want.BaseOffset {
			t.Fatalf("Read(%d) returned batch at %d, want %d", off, h.BaseOffset, want.BaseOffset)
		}
	}
}

func TestCompactSegment(t *testing.T) {
	for name, factory := range map[string]fsFactory{"os": osFactory, "mem": memFactory} {
		t.Run(name, func(t *testing.T) {
			fsys, dir := factory(t)
			l, want := compactFixture(t, fsys, dir, 200)
			segs := l.Segments()
			seg := segs[1]
			before := l.Size()
			keep := keepEvery(7)
			if _, err := l.CompactSegment(segs[len(segs)-1].Base, keep); !errors.Is(err, ErrNoSegment) {
				t.Fatalf("compacting the active segment: %v, want ErrNoSegment", err)
			}
			freed, err := l.CompactSegment(seg.Base, keep)
			if err != nil {
				t.Fatal(err)
			}
			if freed <= seg.Bytes/2 || l.Size() != before-freed {
				t.Fatalf("freed %d of a %d-byte segment; size %d -> %d", freed, seg.Bytes, before, l.Size())
			}
			if got := fileSize(t, fsys, segPath(dir, seg.Base, logSuffix)); got != seg.Bytes-freed {
				t.Fatalf("data file is %d bytes, want %d", got, seg.Bytes-freed)
			}
			checkCompacted(t, l, want, seg.Base, seg.End, keep)

			// Compacting again drops nothing more; dropping everything
			// leaves an empty segment that reads as one gap.
			if freed, err := l.CompactSegment(seg.Base, keep); err != nil || freed != 0 {
				t.Fatalf("second compaction: freed %d, %v", freed, err)
			}
			none := func(BatchHeader) bool { return false }
			if _, err := l.CompactSegment(segs[2].Base, none); err != nil {
				t.Fatal(err)
			}
			both := func(h BatchHeader) bool {
				if h.BaseOffset >= segs[2].Base && h.BaseOffset < segs[2].End {
					return false
				}
				return keep(h)
			}
			checkCompacted(t, l, want, seg.Base, segs[2].End, both)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			// Recovery accepts the compacted segments as they are (their
			// indexes pass the check, so they are not rewritten).
			idx := readFileBytes(t, fsys, segPath(dir, seg.Base, indexSuffix))
			l = mustOpen(t, fsys, dir, Options{SegmentBytes: 4 << 10, IndexIntervalBytes: 256})
			defer l.Close()
			checkCompacted(t, l, want, seg.Base, segs[2].End, both)
			if got := readFileBytes(t, fsys, segPath(dir, seg.Base, indexSuffix)); !sameBatch(got, idx) || len(idx) == 0 {
				t.Fatalf("index of the compacted segment changed on recovery (%d -> %d bytes)", len(idx), len(got))
			}
			// The log goes on: appends, and deleting the compacted prefix.
			mustAppend(t, l, batchOf(999, 1, 100, 1_700_000_001_000))
			if err := l.DeleteRecordsBefore(segs[2].End); err != nil {
				t.Fatal(err)
			}
			if l.StartOffset() != segs[2].End {
				t.Fatalf("start %d, want %d", l.StartOffset(), segs[2].End)
			}
		})
	}
}

// TestCompactWhileReading: readers running across the swap see every
// kept batch and never an error.
func TestCompactWhileReading(t *testing.T) {
	fsys, dir := memFactory(t)
	l, want := compactFixture(t, fsys, dir, 300)
	defer l.Close()
	segs := l.Segments()
	keep := keepEvery(3)
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				for i, b := range want {
					h, _ := ParseBatchHeader(b)
					if !keep(h) {
						continue
					}
					data, err := l.Read(h.BaseOffset, 1)
					if err == nil && !sameBatch(data[:min(len(data), len(b))], b) {
						err = fmt.Errorf("reader %d: batch %d differs", r, i)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	for _, s := range segs[:len(segs)-1] {
		if _, err := l.CompactSegment(s.Base, keep); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkCompacted(t, l, want, segs[0].Base, segs[len(segs)-1].Base, keep)
}

// crashFS is a MemFS that loses power at the n-th mutating operation
// (write, truncate, fsync, rename, remove, directory sync) once armed.
type crashFS struct {
	*MemFS
	mu   sync.Mutex
	left int // operations until the crash; < 0: disarmed
	hit  bool
}

func (c *crashFS) step() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left < 0 {
		return nil
	}
	if c.left == 0 {
		if !c.hit {
			c.hit = true
			c.MemFS.Crash()
		}
		return ErrCrashed
	}
	c.left--
	return nil
}

func (c *crashFS) Remove(name string) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.MemFS.Remove(name)
}

func (c *crashFS) Rename(a, b string) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.MemFS.Rename(a, b)
}

func (c *crashFS) SyncDir(dir string) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.MemFS.SyncDir(dir)
}

func (c *crashFS) OpenFile(name string, create bool) (File, error) {
	f, err := c.MemFS.OpenFile(name, create)
	if err != nil {
		return nil, err
	}
	return &crashFile{File: f, c: c}, nil
}

type crashFile struct {
	File
	c *crashFS
}

func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.c.step(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *crashFile) Truncate(n int64) error {
	if err := f.c.step(); err != nil {
		return err
	}
	return f.File.Truncate(n)
}

func (f *crashFile) Sync() error {
	if err := f.c.step(); err != nil {
		return err
	}
	return f.File.Sync()
}

// TestCompactCrashAtEveryStep: a power loss at any step of a compaction
// (CompactSegment, or RewriteSegment as the log cleaner calls it, putting
// a copy in place of each batch kept) leaves a log that recovers to either
// the old or the compacted segment, with no data lost, no temp files
// left, and working indexes.
func TestCompactCrashAtEveryStep(t *testing.T) {
	compact := func(l *Log, base int64, keep func(BatchHeader) bool) (int64, error) {
		return l.CompactSegment(base, keep)
	}
	rewrite := func(l *Log, base int64, keep func(BatchHeader) bool) (int64, error) {
		return l.RewriteSegment(base, func(h BatchHeader, b []byte) ([]byte, error) {
			if !keep(h) {
				return nil, nil
			}
			return append([]byte(nil), b...), nil
		})
	}
	t.Run("CompactSegment", func(t *testing.T) { testCompactCrashAtEveryStep(t, compact) })
	t.Run("RewriteSegment", func(t *testing.T) { testCompactCrashAtEveryStep(t, rewrite) })
}

func testCompactCrashAtEveryStep(t *testing.T, compactSegment func(*Log, int64, func(BatchHeader) bool) (int64, error)) {
	for k := 0; ; k++ {
		mem := NewMemFS()
		c := &crashFS{MemFS: mem, left: -1}
		dir := "/data/q"
		l, want := compactFixture(t, c, dir, 120)
		seg := l.Segments()[1]
		keep := keepEvery(4)
		if err := l.SetSegmentSidecar(seg.Base, seg.Bytes, []byte("before")); err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		c.left = k
		c.mu.Unlock()
		_, err := compactSegment(l, seg.Base, keep)
		c.mu.Lock()
		crashed := c.hit
		c.left = -1
		c.mu.Unlock()
		if !crashed {
			if err != nil {
				t.Fatalf("step %d: compaction failed without a crash: %v", k, err)
			}
			l.Close()
			if k < 5 {
				t.Fatalf("compaction took only %d steps; the crash points were not exercised", k)
			}
			return // every step before this one crashed and recovered
		}
		if !errors.Is(err, ErrCrashed) {
			t.Fatalf("step %d: compaction hit the crash but returned %v", k, err)
		}
		l.Close()
		mem.Restart()

		l = mustOpen(t, mem, dir, Options{SegmentBytes: 4 << 10, IndexIntervalBytes: 256})
		names, _ := mem.ReadDir(dir)
		for _, n := range names {
			if strings.HasSuffix(n, tmpSuffix) {
				t.Fatalf("step %d: %s left after recovery", k, n)
			}
		}
		got := readLog(t, l)
		compacted := len(got) < len(want)
		t.Logf("step %d: recovered compacted=%v", k, compacted)
		side, hasSide := l.SegmentSidecar(seg.Base)
		if compacted {
			checkCompacted(t, l, want, seg.Base, seg.End, keep)
			if hasSide {
				t.Fatalf("step %d: the sidecar of the segment before compaction survived it", k)
			}
		} else {
			checkCompacted(t, l, want, 0, 0, keep)
			if hasSide && string(side) != "before" {
				t.Fatalf("step %d: sidecar %q", k, side)
			}
		}
		// And the compaction can be done (again) after recovery.
		if _, err := compactSegment(l, seg.Base, keep); err != nil {
			t.Fatalf("step %d: compaction after recovery: %v", k, err)
		}
		checkCompacted(t, l, want, seg.Base, seg.End, keep)
		l.Close()
		l = mustOpen(t, mem, dir, Options{SegmentBytes: 4 << 10, IndexIntervalBytes: 256})
		checkCompacted(t, l, want, seg.Base, seg.End, keep)
		l.Close()
	}
}

// TestCompactFailedSyncKeepsOldSegment: a compaction whose fsync fails
// changes nothing readers see and leaves no temp file; it can be retried.
func TestCompactFailedSyncKeepsOldSegment(t *testing.T) {
	ff := NewFaultFS(NewMemFS())
	dir := "/data/q"
	l, want := compactFixture(t, ff, dir, 120)
	defer l.Close()
	seg := l.Segments()[1]
	keep := keepEvery(5)
	ff.FailSync(errors.New("injected fsync failure"))
	if _, err := l.CompactSegment(seg.Base, keep); err == nil {
		t.Fatal("compaction succeeded with failing fsyncs")
	}
	ff.FailSync(nil)
	checkCompacted(t, l, want, 0, 0, keep)
	names, _ := ff.ReadDir(dir)
	for _, n := range names {
		if strings.HasSuffix(n, tmpSuffix) {
			t.Fatalf("%s left behind", n)
		}
	}
	if _, err := l.CompactSegment(seg.Base, keep); err != nil {
		t.Fatal(err)
	}
	checkCompacted(t, l, want, seg.Base, seg.End, keep)
}

// TestRewriteSegmentChecksReplacements: a replacement batch with another
// first offset, a broken CRC or a torn length is refused (ErrBadRewrite)
// and leaves the segment as it was; a valid replacement is stored as given.
func TestRewriteSegmentChecksReplacements(t *testing.T) {
	mem := NewMemFS()
	l, want := compactFixture(t, mem, "/data/r", 120)
	defer l.Close()
	seg := l.Segments()[1]
	bad := map[string]func([]byte) []byte{
		"moved":     func(b []byte) []byte { c := append([]byte(nil), b...); c[7]++; return c },
		"crc":       func(b []byte) []byte { c := append([]byte(nil), b...); c[len(c)-1] ^= 1; return c },
		"truncated": func(b []byte) []byte { return append([]byte(nil), b[:len(b)-1]...) },
	}
	for name, mangle := range bad {
		_, err := l.RewriteSegment(seg.Base, func(h BatchHeader, b []byte) ([]byte, error) { return mangle(b), nil })
		if !errors.Is(err, ErrBadRewrite) {
			t.Fatalf("%s: rewrite returned %v, want ErrBadRewrite", name, err)
		}
		checkCompacted(t, l, want, 0, 0, keepEvery(1))
	}
	// A valid replacement: the same batch with another timestamp.
	freed, err := l.RewriteSegment(seg.Base, func(h BatchHeader, b []byte) ([]byte, error) {
		if h.BaseOffset != seg.Base {
			return b, nil
		}
		return withOffset(batchOf(int(h.BaseOffset), 1, 100, 1_800_000_000_000), h.BaseOffset), nil
	})
	if err != nil || freed != 0 {
		t.Fatalf("valid rewrite: freed %d, %v", freed, err)
	}
	data, err := l.Read(seg.Base, 1)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := ParseBatchHeader(data); h.MaxTimestamp != 1_800_000_000_000 {
		t.Fatalf("replacement not stored: max timestamp %d", h.MaxTimestamp)
	}
}
