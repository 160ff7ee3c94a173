package storage

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
)

// The shared suite holds with CreateOnAppend too: a log whose files are
// made by its first write reads, rolls, recovers and retains as one made
// by Open.
func TestLogCreateOnAppend(t *testing.T) {
	suiteCreateOnAppend = true
	defer func() { suiteCreateOnAppend = false }()
	for _, fx := range []struct {
		name string
		new  fsFactory
	}{{"OSFS", osFactory}, {"MemFS", memFactory}} {
		t.Run(fx.name, func(t *testing.T) { runLogSuite(t, fx.new) })
	}
}

// A log opened with CreateOnAppend holds no file, not even its directory,
// until its first write; it reads as empty, syncs, rolls and reopens so;
// the first write creates the directory and the segment, and what it
// acknowledged is there after a reopen.
func TestCreateOnAppendCreatesNothingUntilWritten(t *testing.T) {
	for _, fx := range []struct {
		name string
		new  fsFactory
	}{{"OSFS", osFactory}, {"MemFS", memFactory}} {
		t.Run(fx.name, func(t *testing.T) {
			fsys, dir := fx.new(t)
			o := Options{CreateOnAppend: true}
			for round := range 2 { // and again after a reopen
				l := mustOpen(t, fsys, dir, o)
				if _, err := fsys.ReadDir(dir); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("round %d: the directory of a log never written: %v, want it missing", round, err)
				}
				if b, err := l.Read(0, 1<<20); err != nil || len(b) != 0 {
					t.Fatalf("round %d: read of an empty log: %d bytes, %v", round, len(b), err)
				}
				if _, _, ok, err := l.OffsetForTimestamp(0); ok || err != nil {
					t.Fatalf("round %d: OffsetForTimestamp on an empty log: ok %v, %v", round, ok, err)
				}
				if err := l.ScanHeaders(0, func(BatchHeader) bool { t.Fatal("a header in an empty log"); return false }); err != nil {
					t.Fatal(err)
				}
				if err := l.Sync(); err != nil {
					t.Fatalf("round %d: Sync: %v", round, err)
				}
				if err := l.Roll(); err != nil {
					t.Fatalf("round %d: Roll: %v", round, err)
				}
				if err := l.Close(); err != nil {
					t.Fatalf("round %d: Close: %v", round, err)
				}
			}
			l := mustOpen(t, fsys, dir, o)
			b := batchOf(1, 3, 100, 1000)
			mustAppend(t, l, b)
			names, err := fsys.ReadDir(dir)
			if err != nil || len(names) != 1 || names[0] != filepath.Base(segPath(dir, 0, logSuffix)) {
				t.Fatalf("files after the first write: %v, %v; want the data file alone", names, err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, fsys, dir, o)
			defer l.Close()
			got := readLog(t, l)
			if len(got) != 1 || !sameBatch(got[0], withOffset(b, 0)) {
				t.Fatalf("after a reopen: %s", describe(got))
			}
		})
	}
}

// What the first write acknowledged survives a power loss: the data
// file's directory entry is made durable before the answer (MemFS drops
// the entries no SyncDir recorded).
func TestCreateOnAppendSurvivesPowerLoss(t *testing.T) {
	mem := NewMemFS()
	dir := "/data/topics/t-0"
	l := mustOpen(t, mem, dir, Options{CreateOnAppend: true})
	b := batchOf(1, 2, 100, 1000)
	mustAppend(t, l, b)
	mem.CrashAndRestart()
	l.Close()
	l = mustOpen(t, mem, dir, Options{CreateOnAppend: true})
	defer l.Close()
	got := readLog(t, l)
	if len(got) != 1 || !sameBatch(got[0], withOffset(b, 0)) {
		t.Fatalf("after a power loss: %s, want the acknowledged batch", describe(got))
	}
}

// A log whose first write failed before its names were fsync'd, opened
// again, makes them durable with its next acknowledged write: what that
// write acknowledged survives a power loss.
func TestCreateOnAppendReopenSyncsNames(t *testing.T) {
	mem := NewMemFS()
	ffs := NewFaultFS(mem)
	ffs.SetFilter(onlyData)
	dir := "/data/topics/t-0"
	o := Options{CreateOnAppend: true}
	l := mustOpen(t, ffs, dir, o)
	ffs.FailSync(errors.New("injected fsync failure"))
	a, err := l.Append(batchOf(1, 1, 100, 1000))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); err == nil {
		t.Fatal("the first write's fsync failed, yet the append was acknowledged")
	}
	l.Close()
	ffs.FailSync(nil)
	// The process goes on (or restarts): the data file exists now.
	l = mustOpen(t, ffs, dir, o)
	b := batchOf(2, 1, 100, 2000)
	mustAppend(t, l, b)
	mem.CrashAndRestart()
	l.Close()
	l = mustOpen(t, mem, dir, o)
	defer l.Close()
	if got := readLog(t, l); len(got) != 1 || !sameBatch(got[0], withOffset(b, 0)) {
		t.Fatalf("after a power loss: %s, want the acknowledged batch", describe(got))
	}
}

// Readers of a log created on append see it empty, then whole, while its
// first write creates its files (run with -race).
func TestCreateOnAppendReadersDuringFirstWrite(t *testing.T) {
	fsys, dir := osFactory(t)
	l := mustOpen(t, fsys, dir, Options{CreateOnAppend: true})
	defer l.Close()
	b := batchOf(1, 2, 100, 1000)
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-done:
				return
			default:
			}
			got, err := l.Read(0, 1<<20)
			if err != nil {
				errs <- err
				return
			}
			if len(got) != 0 && !sameBatch(got, withOffset(b, 0)) {
				errs <- errors.New("a read returned something other than the batch")
				return
			}
		}
	}()
	mustAppend(t, l, b)
	close(done)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if got := readLog(t, l); len(got) != 1 {
		t.Fatalf("after the first write: %s", describe(got))
	}
}
