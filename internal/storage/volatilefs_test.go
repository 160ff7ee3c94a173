package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestLogVolatileFS runs the shared log suite on VolatileFS, over the real
// file system and over MemFS: the engine syncs whatever it relies on, so
// it must behave the same.
func TestLogVolatileFS(t *testing.T) {
	t.Run("OSFS", func(t *testing.T) {
		runLogSuite(t, func(t *testing.T) (FS, string) {
			fsys, dir := osFactory(t)
			return NewVolatileFS(fsys), dir
		})
	})
	t.Run("MemFS", func(t *testing.T) {
		runLogSuite(t, func(t *testing.T) (FS, string) {
			fsys, dir := memFactory(t)
			return NewVolatileFS(fsys), dir
		})
	})
}

// TestVolatileFSLogCrash: a log on VolatileFS whose machine loses power
// (MemFS below crashes with the log still open) comes back, on a new
// wrapper, with every appended (fsynced) batch.
func TestVolatileFSLogCrash(t *testing.T) {
	mem, dir := NewMemFS(), "/data/topic-0"
	o := Options{SegmentBytes: 4000, IndexIntervalBytes: 200}
	var want [][]byte
	for life := range 4 {
		l := mustOpen(t, NewVolatileFS(mem), dir, o)
		got := readLog(t, l)
		if len(got) != len(want) {
			t.Fatalf("life %d: %d batches after the crash, want %d", life, len(got), len(want))
		}
		for i := range want {
			if !sameBatch(got[i], want[i]) {
				t.Fatalf("life %d: batch %d differs", life, i)
			}
		}
		for i := range 30 {
			b := batchOf(life*100+i, 1+i%3, 90, int64(i))
			a := mustAppend(t, l, b)
			want = append(want, withOffset(b, a.BaseOffset))
		}
		// Unsynced index entries are in the wrapper's memory only.
		mem.CrashAndRestart()
		l.Close() // fails: its handles died with the crash
	}
}

func vfsOpen(t *testing.T, fsys FS, name string, create bool) File {
	t.Helper()
	f, err := fsys.OpenFile(name, create)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	return f
}

func vfsWrite(t *testing.T, f File, off int64, s string) {
	t.Helper()
	if n, err := f.WriteAt([]byte(s), off); err != nil || n != len(s) {
		t.Fatalf("WriteAt(%d) = %d, %v", off, n, err)
	}
}

// vfsContents reads a whole file through f.
func vfsContents(t *testing.T, f File) string {
	t.Helper()
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	if n, err := f.ReadAt(b, 0); n != len(b) || err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt = %d of %d, %v", n, len(b), err)
	}
	return string(b)
}

func osContents(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVolatileFSUnsyncedWritesStayInMemory(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	v := NewVolatileFS(OSFS())
	f := vfsOpen(t, v, name, true)
	vfsWrite(t, f, 0, "hello")
	if got := vfsContents(t, f); got != "hello" {
		t.Fatalf("read through the wrapper %q", got)
	}
	if got := osContents(t, name); got != "" {
		t.Fatalf("unsynced write reached the disk: %q", got)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := osContents(t, name); got != "hello" {
		t.Fatalf("after Sync the disk holds %q", got)
	}
	vfsWrite(t, f, 5, " world")
	vfsWrite(t, f, 0, "J")
	if got := vfsContents(t, f); got != "Jello world" {
		t.Fatalf("read through the wrapper %q", got)
	}
	if got := osContents(t, name); got != "hello" {
		t.Fatalf("unsynced writes reached the disk: %q", got)
	}
	// The process dies: a new wrapper over the same disk sees what was
	// synced.
	f2 := vfsOpen(t, NewVolatileFS(OSFS()), name, false)
	defer f2.Close()
	if got := vfsContents(t, f2); got != "hello" {
		t.Fatalf("after the crash %q, want the synced %q", got, "hello")
	}
}

func TestVolatileFSReadsMergeAcrossPages(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	base := bytes.Repeat([]byte("abcdefghij"), 2000) // 20000 bytes, 5 pages
	if err := os.WriteFile(name, base, 0o644); err != nil {
		t.Fatal(err)
	}
	v := NewVolatileFS(OSFS())
	f := vfsOpen(t, v, name, false)
	defer f.Close()
	want := append([]byte(nil), base...)
	for _, w := range []struct {
		off int64
		s   string
	}{{4090, "XXXXXXXXXXXXXXXX"}, {10, "Y"}, {12288, "ZZ"}, {19998, "end of file grows"}} {
		vfsWrite(t, f, w.off, w.s)
		if end := int(w.off) + len(w.s); end > len(want) {
			want = append(want, make([]byte, end-len(want))...)
		}
		copy(want[w.off:], w.s)
	}
	if got := vfsContents(t, f); got != string(want) {
		t.Fatal("merged read differs")
	}
	// Reads of every alignment and length.
	for _, c := range []struct{ off, n int64 }{{0, 1}, {4095, 2}, {4000, 5000}, {12287, 3}, {19990, 100}, {30000, 5}} {
		p := make([]byte, c.n)
		n, err := f.ReadAt(p, c.off)
		wantN := max(0, min(c.n, int64(len(want))-c.off))
		if int64(n) != wantN || (wantN < c.n) != errors.Is(err, io.EOF) || err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", c.off, c.n, n, err)
		}
		if wantN > 0 && !bytes.Equal(p[:n], want[c.off:c.off+wantN]) {
			t.Fatalf("ReadAt(%d, %d) differs", c.off, c.n)
		}
	}
	if got := osContents(t, name); got != string(base) {
		t.Fatal("unsynced writes reached the disk")
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := osContents(t, name); got != string(want) {
		t.Fatal("after Sync the disk differs")
	}
}

// TestVolatileFSHandlesShareState: storage opens a segment's data file once
// for the writer and again for readers; both see the unsynced bytes, and
// either's Sync makes them durable.
func TestVolatileFSHandlesShareState(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	v := NewVolatileFS(OSFS())
	w := vfsOpen(t, v, name, true)
	r := vfsOpen(t, v, dir+"/./f", false) // same file, another spelling
	vfsWrite(t, w, 0, "shared")
	if got := vfsContents(t, r); got != "shared" {
		t.Fatalf("second handle reads %q", got)
	}
	if err := r.Truncate(3); err != nil {
		t.Fatal(err)
	}
	if got := vfsContents(t, w); got != "sha" {
		t.Fatalf("first handle after the other's truncate reads %q", got)
	}
	// Closing one handle keeps the file's unsynced state for the other.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.ReadAt(make([]byte, 1), 0); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("ReadAt after Close: %v", err)
	}
	if got := vfsContents(t, w); got != "sha" {
		t.Fatalf("after the other handle closed: %q", got)
	}
	r = vfsOpen(t, v, name, false)
	if err := r.Sync(); err != nil { // syncs the writer's bytes too
		t.Fatal(err)
	}
	if got := osContents(t, name); got != "sha" {
		t.Fatalf("after the reader's Sync the disk holds %q", got)
	}
	// The last handle closing drops what is unsynced, as a crash would.
	vfsWrite(t, w, 3, "-lost")
	r.Close()
	w.Close()
	f := vfsOpen(t, v, name, false)
	defer f.Close()
	if got := vfsContents(t, f); got != "sha" {
		t.Fatalf("after closing every handle without Sync: %q", got)
	}
}

// TestVolatileFSTruncateAtSync: a Truncate reaches the disk only with the
// next Sync; until then the wrapper shows it (cut, or extended with
// zeros), and a crash forgets it.
func TestVolatileFSTruncateAtSync(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := os.WriteFile(name, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	v := NewVolatileFS(OSFS())
	f := vfsOpen(t, v, name, false)
	defer f.Close()
	if err := f.Truncate(4); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.Size(); n != 4 {
		t.Fatalf("Size after Truncate(4) = %d", n)
	}
	if n, err := f.ReadAt(make([]byte, 2), 4); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt past the cut = %d, %v", n, err)
	}
	// Extending exposes zeros, not the old bytes still on disk.
	if err := f.Truncate(7); err != nil {
		t.Fatal(err)
	}
	vfsWrite(t, f, 6, "x")
	if got := vfsContents(t, f); got != "0123\x00\x00x" {
		t.Fatalf("after cut and extend: %q", got)
	}
	if got := osContents(t, name); got != "0123456789" {
		t.Fatalf("unsynced truncate reached the disk: %q", got)
	}
	// A crash forgets the truncate.
	g := vfsOpen(t, NewVolatileFS(OSFS()), name, false)
	if got := vfsContents(t, g); got != "0123456789" {
		t.Fatalf("after a crash: %q", got)
	}
	g.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := osContents(t, name); got != "0123\x00\x00x" {
		t.Fatalf("after Sync the disk holds %q", got)
	}
	// A cut to below what was synced, then growth past it.
	if err := f.Truncate(2); err != nil {
		t.Fatal(err)
	}
	vfsWrite(t, f, 3, "abc")
	if got := vfsContents(t, f); got != "01\x00abc" {
		t.Fatalf("cut and write: %q", got)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := osContents(t, name); got != "01\x00abc" {
		t.Fatalf("after Sync the disk holds %q", got)
	}
}

// TestVolatileFSDirectoryOps: renames carry a file's unsynced state,
// removes detach it; both reach the disk at once.
func TestVolatileFSDirectoryOps(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	v := NewVolatileFS(OSFS())
	f := vfsOpen(t, v, a, true)
	vfsWrite(t, f, 0, "moving")
	if err := v.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b); err != nil {
		t.Fatalf("rename did not reach the disk: %v", err)
	}
	g := vfsOpen(t, v, b, false)
	if got := vfsContents(t, g); got != "moving" {
		t.Fatalf("renamed file reads %q", got)
	}
	if err := v.Remove(b); err != nil {
		t.Fatal(err)
	}
	// A new file at the path starts empty; the old handles keep theirs.
	h := vfsOpen(t, v, b, true)
	if got := vfsContents(t, h); got != "" {
		t.Fatalf("new file at a removed path reads %q", got)
	}
	if got := vfsContents(t, g); got != "moving" {
		t.Fatalf("handle on the removed file reads %q", got)
	}
	for _, x := range []File{f, g, h} {
		x.Close()
	}
	if err := v.MkdirAll(filepath.Join(dir, "d", "e")); err != nil {
		t.Fatal(err)
	}
	if names, err := v.ReadDir(dir); err != nil || fmt.Sprint(names) != "[b d]" {
		t.Fatalf("ReadDir = %v, %v", names, err)
	}
	if err := v.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := v.RemoveAll(filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.OpenFile(filepath.Join(dir, "missing"), false); !isNotExist(err) {
		t.Fatalf("open of a missing file: %v", err)
	}
}

// TestVolatileFSModel drives random writes, truncates, syncs, reads and
// crashes on VolatileFS over OSFS and MemFS, against a model: the contents
// now, and the contents as of the last Sync, which is what a crash leaves.
func TestVolatileFSModel(t *testing.T) {
	for _, inner := range []struct {
		name string
		new  fsFactory
	}{{"OSFS", osFactory}, {"MemFS", memFactory}} {
		t.Run(inner.name, func(t *testing.T) {
			fsys, dir := inner.new(t)
			if err := fsys.MkdirAll(dir); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, "f")
			rng := rand.New(rand.NewPCG(1, 2))
			var cur, durable []byte
			v := NewVolatileFS(fsys)
			handles := []File{vfsOpen(t, v, name, true), vfsOpen(t, v, name, false)}
			for step := range 4000 {
				h := handles[rng.IntN(len(handles))]
				switch op := rng.IntN(20); {
				case op < 9:
					off := rng.Int64N(24000)
					if rng.IntN(4) == 0 {
						off = int64(len(cur)) // append
					}
					p := make([]byte, 1+rng.IntN(6000))
					for i := range p {
						p[i] = byte(rng.IntN(255) + 1)
					}
					if n, err := h.WriteAt(p, off); err != nil || n != len(p) {
						t.Fatalf("step %d: WriteAt = %d, %v", step, n, err)
					}
					if end := int(off) + len(p); end > len(cur) {
						cur = append(cur, make([]byte, end-len(cur))...)
					}
					copy(cur[off:], p)
				case op < 11:
					size := rng.IntN(len(cur) + 5000)
					if err := h.Truncate(int64(size)); err != nil {
						t.Fatalf("step %d: Truncate: %v", step, err)
					}
					if size <= len(cur) {
						cur = cur[:size]
					} else {
						cur = append(cur, make([]byte, size-len(cur))...)
					}
				case op < 14:
					if err := h.Sync(); err != nil {
						t.Fatalf("step %d: Sync: %v", step, err)
					}
					durable = append(durable[:0], cur...)
				case op < 19:
					off := rng.Int64N(int64(len(cur)) + 100)
					p := make([]byte, rng.IntN(10000))
					n, err := h.ReadAt(p, off)
					want := cur[min(off, int64(len(cur))):]
					want = want[:min(len(want), len(p))]
					if n != len(want) || !bytes.Equal(p[:n], want) || n < len(p) && !errors.Is(err, io.EOF) || n == len(p) && err != nil {
						t.Fatalf("step %d: ReadAt(%d, %d) = %d, %v; want %d bytes as modelled", step, off, len(p), n, err, len(want))
					}
				default:
					// Crash: drop the wrapper and its handles unclosed;
					// a new wrapper sees what the last Sync left.
					v = NewVolatileFS(fsys)
					handles = []File{vfsOpen(t, v, name, false), vfsOpen(t, v, name, false)}
					cur = append(cur[:0], durable...)
				}
				if size, err := handles[0].Size(); err != nil || size != int64(len(cur)) {
					t.Fatalf("step %d: Size = %d, %v; want %d", step, size, err, len(cur))
				}
			}
			if got := vfsContents(t, handles[1]); got != string(cur) {
				t.Fatal("final contents differ from the model")
			}
		})
	}
}

// TestVolatileFSConcurrent: readers on their own handles read while a
// writer appends and syncs; run with -race.
func TestVolatileFSConcurrent(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	v := NewVolatileFS(OSFS())
	w := vfsOpen(t, v, name, true)
	defer w.Close()
	// Byte i of the file is byte(i*7): any read can be checked.
	want := func(off int64, p []byte) bool {
		for i, c := range p {
			if c != byte((off+int64(i))*7) {
				return false
			}
		}
		return true
	}
	const total = 1 << 20
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 4 {
		r := vfsOpen(t, v, name, false)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
			p := make([]byte, 9000)
			for {
				select {
				case <-done:
					return
				default:
				}
				size, err := r.Size()
				if err != nil {
					t.Error(err)
					return
				}
				if size == 0 {
					continue
				}
				off := rng.Int64N(size)
				n := min(int64(len(p)), size-off)
				if k, err := r.ReadAt(p[:n], off); k != int(n) || err != nil && !errors.Is(err, io.EOF) || !want(off, p[:n]) {
					t.Errorf("ReadAt(%d, %d) = %d, %v, contents ok %v", off, n, k, err, want(off, p[:k]))
					return
				}
				if rng.IntN(50) == 0 {
					if err := r.Sync(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	buf := make([]byte, 0, 5000)
	off := int64(0)
	for off < total {
		buf = buf[:1+rand.IntN(cap(buf))]
		for i := range buf {
			buf[i] = byte((off + int64(i)) * 7)
		}
		vfsWrite(t, w, off, string(buf))
		off += int64(len(buf))
		if rand.IntN(8) == 0 {
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	wg.Wait()
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(name)
	if err != nil || int64(len(b)) != off || !want(0, b) {
		t.Fatalf("disk holds %d bytes (%v), contents ok %v", len(b), err, want(0, b))
	}
}

// TestVolatileFSTruncateDuringSync: a Truncate while a Sync is in its
// fsync (held by a FaultFS below) hides the bytes past the cut even though
// that Sync wrote them to the disk.
func TestVolatileFSTruncateDuringSync(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	ffs := NewFaultFS(OSFS())
	v := NewVolatileFS(ffs)
	f := vfsOpen(t, v, name, true)
	defer f.Close()
	old := bytes.Repeat([]byte("0123456789"), 1000) // 3 pages
	vfsWrite(t, f, 0, string(old))
	ffs.HoldSyncs()
	synced := make(chan error)
	go func() { synced <- f.Sync() }()
	checkFor(t, 5*time.Second, func() error {
		if ffs.Holding() != 1 {
			return errors.New("Sync not held")
		}
		return nil
	})
	if err := f.Truncate(4); err != nil {
		t.Fatal(err)
	}
	vfsWrite(t, f, 2, "ab")
	ffs.ReleaseSyncs()
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	if got := osContents(t, name); got != string(old) {
		t.Fatal("the held Sync did not write what it saw")
	}
	if err := f.Truncate(int64(len(old))); err != nil {
		t.Fatal(err)
	}
	want := "01ab" + string(make([]byte, len(old)-4))
	if got := vfsContents(t, f); got != want {
		t.Fatalf("after the cut during Sync and an extension: %.20q...", got)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := osContents(t, name); got != want {
		t.Fatalf("after the next Sync the disk holds %.20q...", got)
	}
}
