package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"github.com/sluice-mq/sluice/internal/testutil"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fsFactory makes a fresh file system and a log directory on it.
type fsFactory func(t *testing.T) (FS, string)

func osFactory(t *testing.T) (FS, string) { return OSFS(), filepath.Join(t.TempDir(), "log") }

func memFactory(t *testing.T) (FS, string) { return NewMemFS(), "/data/topic-0" }

// fakeClock is an injectable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// batchOf builds a batch of n records of size bytes each; the records'
// bytes are derived from tag so that batches differ.
func batchOf(tag, n, size int, ts int64) []byte {
	recs := make([][]byte, n)
	for i := range recs {
		r := make([]byte, size)
		for j := range r {
			r[j] = byte(tag*31 + i*7 + j)
		}
		if size >= 8 {
			binary.BigEndian.PutUint64(r, uint64(tag))
		}
		recs[i] = r
	}
	return BuildBatch(0, ts, recs)
}

// suiteCreateOnAppend makes mustOpen open every log with
// Options.CreateOnAppend (TestLogCreateOnAppend runs the suite so).
var suiteCreateOnAppend bool

func mustOpen(t testing.TB, fsys FS, dir string, o Options) *Log {
	t.Helper()
	o.FS = fsys
	o.CreateOnAppend = o.CreateOnAppend || suiteCreateOnAppend
	l, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// mustAppend appends b and waits for it.
func mustAppend(t testing.TB, l *Log, b []byte) *Appended {
	t.Helper()
	a, err := l.Append(b)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := a.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return a
}

// withOffset returns a copy of batch b with its base offset set.
func withOffset(b []byte, off int64) []byte {
	c := append([]byte(nil), b...)
	putBaseOffset(c, off)
	return c
}

// readLog reads every batch from the log start to the high watermark.
func readLog(t testing.TB, l *Log) [][]byte {
	t.Helper()
	var out [][]byte
	off := l.StartOffset()
	for off < l.HighWatermark() {
		data, err := l.Read(off, 64<<10)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(data) == 0 {
			t.Fatalf("Read(%d) below hw %d returned nothing", off, l.HighWatermark())
		}
		hs, err := ValidateBatches(data, 0)
		if err != nil {
			t.Fatalf("Read(%d) returned invalid batches: %v", off, err)
		}
		for _, h := range hs {
			out = append(out, data[:h.Size()])
			data = data[h.Size():]
			off = h.LastOffset() + 1
		}
	}
	return out
}

// checkContiguous verifies offsets run without gaps from the start.
func checkContiguous(t testing.TB, batches [][]byte, from int64) {
	t.Helper()
	next := from
	for i, b := range batches {
		h, err := ParseBatchHeader(b)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if i == 0 && h.BaseOffset > next || i > 0 && h.BaseOffset != next {
			t.Fatalf("batch %d at offset %d, want %d", i, h.BaseOffset, next)
		}
		next = h.LastOffset() + 1
	}
}

func sameBatch(a, b []byte) bool { return bytes.Equal(a, b) }

// checkFor polls cond until it holds or the timeout passes.
func checkFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	testutil.CheckFor(t, timeout, cond)
}

func fileSize(t testing.TB, fsys FS, name string) int64 {
	t.Helper()
	f, err := fsys.OpenFile(name, false)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func readFileBytes(t testing.TB, fsys FS, name string) []byte {
	t.Helper()
	f, err := fsys.OpenFile(name, false)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	n, _ := f.Size()
	b := make([]byte, n)
	if err := readFull(f, b, 0); err != nil && n > 0 {
		t.Fatal(err)
	}
	return b
}

func writeFileBytes(t testing.TB, fsys FS, name string, b []byte) {
	t.Helper()
	if err := writeWhole(fsys, name, b); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
}

func segPath(dir string, base int64, suffix string) string {
	return filepath.Join(dir, segmentName(base, suffix))
}

func describe(bs [][]byte) string {
	var s string
	for _, b := range bs {
		h, _ := ParseBatchHeader(b)
		s += fmt.Sprintf("[%d..%d] ", h.BaseOffset, h.LastOffset())
	}
	return s
}
