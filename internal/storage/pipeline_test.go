package storage

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// With SyncAlways and ReadBeforeSync the writer does not wait for an
// fsync before writing the next group: a batch appended while the
// previous one's fsync is held is written and readable at once, and
// neither completes, nor does the high watermark move, until an fsync
// covers it.
func TestPipelinedSync(t *testing.T) {
	ffs := NewFaultFS(NewMemFS())
	ffs.SetFilter(onlyData)
	l := mustOpen(t, ffs, "/d/q", Options{ReadBeforeSync: true})
	defer l.Close()
	ffs.HoldSyncs()
	defer ffs.ReleaseSyncs()

	readable := func(want int64) {
		t.Helper()
		checkFor(t, 10*time.Second, func() error {
			if end := l.ReadableEnd(); end != want {
				return fmt.Errorf("readable end %d, want %d", end, want)
			}
			return nil
		})
	}
	a, err := l.Append(batchOf(1, 3, 100, 1))
	if err != nil {
		t.Fatal(err)
	}
	readable(3) // written; its fsync is now held
	b, err := l.Append(batchOf(2, 2, 100, 2))
	if err != nil {
		t.Fatal(err)
	}
	readable(5) // written although the first fsync has not returned
	data, err := l.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if hs, err := ValidateBatches(data, 0); err != nil || len(hs) != 2 {
		t.Fatalf("read %d batches (%v) while the fsync is held, want 2", len(hs), err)
	}
	for name, app := range map[string]*Appended{"first": a, "second": b} {
		select {
		case <-app.Done():
			t.Fatalf("the %s append completed before an fsync covered it", name)
		default:
		}
	}
	if hw := l.HighWatermark(); hw != 0 {
		t.Fatalf("high watermark %d before any fsync, want 0", hw)
	}
	syncs := ffs.Syncs()
	ffs.ReleaseSyncs()
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(); err != nil {
		t.Fatal(err)
	}
	if hw := l.HighWatermark(); hw != 5 {
		t.Fatalf("high watermark %d after the fsyncs, want 5", hw)
	}
	// The second batch needed an fsync of its own, started after it was
	// written: the held one may have begun before it.
	if n := ffs.Syncs() - syncs; n < 1 || n > 2 {
		t.Fatalf("%d fsyncs for two groups, want 1 or 2", n)
	}
}

// A failed fsync fails the groups it covered and those written while it
// ran, and the log; nothing it covered reaches the high watermark.
func TestPipelinedSyncFailure(t *testing.T) {
	ffs := NewFaultFS(NewMemFS())
	ffs.SetFilter(onlyData)
	l := mustOpen(t, ffs, "/d/q", Options{ReadBeforeSync: true})
	defer l.Close()
	ffs.HoldSyncs()
	defer ffs.ReleaseSyncs()
	a, err := l.Append(batchOf(1, 3, 100, 1))
	if err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, func() error {
		if l.ReadableEnd() != 3 {
			return errors.New("first batch not written yet")
		}
		return nil
	})
	b, err := l.Append(batchOf(2, 2, 100, 2))
	if err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, func() error {
		if l.ReadableEnd() != 5 {
			return errors.New("second batch not written yet")
		}
		return nil
	})
	injected := errors.New("injected fsync failure")
	ffs.FailSync(injected)
	ffs.ReleaseSyncs()
	for name, app := range map[string]*Appended{"first": a, "second": b} {
		if err := app.Wait(); !errors.Is(err, injected) {
			t.Errorf("the %s append: %v, want the fsync failure", name, err)
		}
	}
	if hw := l.HighWatermark(); hw != 0 {
		t.Errorf("high watermark %d after the failed fsync, want 0", hw)
	}
	if _, err := l.Append(batchOf(3, 1, 100, 3)); !errors.Is(err, injected) {
		t.Errorf("append to the failed log: %v, want the fsync failure", err)
	}
}

// Many writers on a pipelined log with small segments, so that rolls come
// while fsyncs are under way, on the real file system: every append
// completes, the offsets are dense, and all of it is there after a
// reopen.
func TestPipelinedSyncRollsUnderLoad(t *testing.T) {
	dir := t.TempDir()
	opts := Options{ReadBeforeSync: true, SegmentBytes: 4 << 10, IndexIntervalBytes: 256}
	l := mustOpen(t, OSFS(), dir, opts)
	const writers, each = 8, 150
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				a, err := l.Append(batchOf(w*each+i, 1+i%3, 200, int64(i)))
				if err == nil {
					err = a.Wait()
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	want := int64(0)
	for i := range each {
		want += int64(1 + i%3)
	}
	want *= writers
	if hw := l.HighWatermark(); hw != want {
		t.Fatalf("high watermark %d, want %d", hw, want)
	}
	if n := len(l.SegmentBaseOffsets()); n < 10 {
		t.Fatalf("%d segments: the test wants many rolls", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, OSFS(), dir, opts)
	defer l.Close()
	if hw := l.HighWatermark(); hw != want {
		t.Fatalf("after reopening: high watermark %d, want %d", hw, want)
	}
	next := int64(0)
	for _, b := range readLog(t, l) {
		h, err := ParseBatchHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.BaseOffset != next {
			t.Fatalf("batch at %d, want %d: offsets not dense", h.BaseOffset, next)
		}
		next = h.LastOffset() + 1
	}
	if next != want {
		t.Fatalf("read up to %d, want %d", next, want)
	}
}

// On a log that fsyncs only on request, SyncBehind's fsync does not hold
// up the appends after it: they are written and complete while it is
// held, and it returns once an fsync covering what came before it is
// done. With nothing written since, it returns without one.
func TestSyncBehindDoesNotHoldAppends(t *testing.T) {
	ffs := NewFaultFS(NewMemFS())
	ffs.SetFilter(onlyData)
	l := mustOpen(t, ffs, "/d/q", Options{Sync: SyncNever})
	defer l.Close()
	a, err := l.Append(batchOf(1, 3, 100, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	ffs.HoldSyncs()
	defer ffs.ReleaseSyncs()
	syncs := ffs.Syncs()
	synced := make(chan error, 1)
	go func() { synced <- l.SyncBehind() }()
	checkFor(t, 10*time.Second, func() error {
		if ffs.Holding() == 0 {
			return errors.New("no fsync started")
		}
		return nil
	})
	b, err := l.Append(batchOf(2, 2, 100, 2))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("an append waited for a SyncBehind's fsync")
	}
	if err := b.Wait(); err != nil {
		t.Fatal(err)
	}
	if end := l.HighWatermark(); end != 5 {
		t.Fatalf("high watermark %d, want 5", end)
	}
	select {
	case err := <-synced:
		t.Fatalf("SyncBehind returned (%v) while its fsync is held", err)
	default:
	}
	ffs.ReleaseSyncs()
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	if n := ffs.Syncs() - syncs; n != 1 {
		t.Fatalf("%d fsyncs for one SyncBehind, want 1", n)
	}
	// b is written but not synced: a second SyncBehind fsyncs; a third,
	// with nothing new, does not.
	if err := l.SyncBehind(); err != nil {
		t.Fatal(err)
	}
	n := ffs.Syncs()
	if err := l.SyncBehind(); err != nil {
		t.Fatal(err)
	}
	if ffs.Syncs() != n {
		t.Fatal("SyncBehind fsynced with nothing written since the last fsync")
	}
}
