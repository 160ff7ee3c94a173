package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// withBudget runs the test with the process's file handle budget at n,
// restoring the default after. Tests using it must not run in parallel.
func withBudget(t *testing.T, n int) {
	t.Helper()
	SetFileHandleBudget(n)
	t.Cleanup(func() { SetFileHandleBudget(0) })
}

// budgetOpen reports the descriptors the budget's files hold now.
func budgetOpen() int {
	open, _, _, _ := FileHandleStats()
	return open
}

// TestLogSuiteUnderTinyBudget runs the shared suite on the real file
// system with so few descriptors that every log's files are closed and
// reopened all the time.
func TestLogSuiteUnderTinyBudget(t *testing.T) {
	withBudget(t, MinFileHandles)
	runLogSuite(t, osFactory)
}

// TestManyLogsStayWithinBudget opens far more logs than the budget has
// descriptors, appends to and reads from each, and checks that the files
// held stay within the budget and every log reads back what it took.
func TestManyLogsStayWithinBudget(t *testing.T) {
	const budget, logs = 32, 200
	withBudget(t, budget)
	base := budgetOpen()
	dir := t.TempDir()
	ls := make([]*Log, logs)
	for i := range ls {
		l, err := Open(filepath.Join(dir, strconv.Itoa(i)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		ls[i] = l
		mustAppend(t, l, batchOf(i, 2, 100, 1))
		if n := budgetOpen(); n > budget+base {
			t.Fatalf("after %d logs %d descriptors held, budget %d", i+1, n, budget)
		}
	}
	for i, l := range ls {
		if got := readLog(t, l); len(got) != 1 || !sameBatch(got[0], batchOf(i, 2, 100, 1)) {
			t.Fatalf("log %d read %s", i, describe(got))
		}
	}
	_, _, evictions, reopens := FileHandleStats()
	if evictions == 0 || reopens == 0 {
		t.Fatalf("evictions %d reopens %d: the budget never closed a file", evictions, reopens)
	}
	for _, l := range ls {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Reopened from disk, every log still has its record.
	for i := range ls {
		l, err := Open(filepath.Join(dir, strconv.Itoa(i)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := readLog(t, l); len(got) != 1 || !sameBatch(got[0], batchOf(i, 2, 100, 1)) {
			t.Fatalf("log %d after reopen read %s", i, describe(got))
		}
		l.Close()
	}
}

// TestEvictionSyncsUnsyncedWrites: a file written and not fsynced, whose
// descriptor the budget closes, was fsynced before the close, and its
// later Sync succeeds with nothing to do. (That the fsync happened is seen
// through the counters of the budget: the write is not lost by the close,
// and the Sync after it does not reopen the file.)
func TestEvictionSyncsUnsyncedWrites(t *testing.T) {
	withBudget(t, MinFileHandles)
	dir := t.TempDir()
	f, err := OSFS().OpenFile(filepath.Join(dir, "a"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("unsynced"), 0); err != nil {
		t.Fatal(err)
	}
	bf := f.(*budgetFile)
	if bf.wgen == bf.synced {
		t.Fatal("a write not counted as unsynced")
	}
	// Fill the budget with other files until f's descriptor is closed.
	var others []File
	defer func() {
		for _, o := range others {
			o.Close()
		}
	}()
	for i := 0; bf.descriptor() && i < 4*MinFileHandles; i++ {
		o, err := OSFS().OpenFile(filepath.Join(dir, "o"+strconv.Itoa(i)), true)
		if err != nil {
			t.Fatal(err)
		}
		others = append(others, o)
		o.ReadAt(make([]byte, 1), 0)
	}
	if bf.descriptor() {
		t.Fatal("the budget never closed the idle file")
	}
	if bf.wgen != bf.synced {
		t.Fatal("closed with writes not fsynced")
	}
	_, _, _, reopensBefore := FileHandleStats()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, reopens := FileHandleStats(); reopens != reopensBefore {
		t.Fatal("Sync of a file closed after its fsync reopened it")
	}
	b := make([]byte, 8)
	if _, err := f.ReadAt(b, 0); err != nil || string(b) != "unsynced" {
		t.Fatalf("read back %q, %v", b, err)
	}
}

// TestClosedHandleKeepsItsFileAcrossRenameAndRemove: a handle whose
// descriptor the budget closed still reads its own file after another is
// renamed over its path, and after its path is removed, as a descriptor
// would; a handle of a renamed path follows it.
func TestClosedHandleKeepsItsFileAcrossRenameAndRemove(t *testing.T) {
	withBudget(t, MinFileHandles)
	dir := t.TempDir()
	fsys := OSFS()
	open := func(name, content string) File {
		f, err := fsys.OpenFile(filepath.Join(dir, name), true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(content), 0); err != nil {
			t.Fatal(err)
		}
		return f
	}
	old, repl, gone := open("seg", "old"), open("seg.tmp", "new"), open("gone", "bye")
	defer old.Close()
	defer repl.Close()
	defer gone.Close()
	evictAll(t, dir, old, repl, gone)

	if err := fsys.Rename(filepath.Join(dir, "seg.tmp"), filepath.Join(dir, "seg")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Remove(filepath.Join(dir, "gone")); err != nil {
		t.Fatal(err)
	}
	evictAll(t, dir, old, repl, gone)
	for _, c := range []struct {
		f    File
		want string
	}{{old, "old"}, {repl, "new"}, {gone, "bye"}} {
		b := make([]byte, 3)
		if _, err := c.f.ReadAt(b, 0); err != nil || string(b) != c.want {
			t.Errorf("read %q, %v; want %q", b, err, c.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "seg")); !bytes.Equal(b, []byte("new")) {
		t.Errorf("seg holds %q", b)
	}
}

// evictAll opens and uses enough other files that the budget closes the
// descriptors of fs (those not pinned).
func evictAll(t *testing.T, dir string, fs ...File) {
	t.Helper()
	var others []File
	for i := 0; i < 4*MinFileHandles; i++ {
		o, err := OSFS().OpenFile(filepath.Join(dir, "evict"+strconv.Itoa(i)), true)
		if err != nil {
			t.Fatal(err)
		}
		o.ReadAt(make([]byte, 1), 0)
		others = append(others, o)
	}
	for _, o := range others {
		o.Close()
		os.Remove(filepath.Join(dir, filepath.Base(o.(*budgetFile).path)))
	}
}

func (h *budgetFile) descriptor() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.f != nil
}

// BenchmarkBudgetFileReadAt: the cost the budget adds to a read of an
// open file (two lock round trips), allocations reported.
func BenchmarkBudgetFileReadAt(b *testing.B) {
	f, err := OSFS().OpenFile(filepath.Join(b.TempDir(), "f"), true)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	p := make([]byte, 1024)
	f.WriteAt(p, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.ReadAt(p, 0); err != nil {
			b.Fatal(err)
		}
	}
}
