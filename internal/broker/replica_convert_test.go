package broker

import (
	"testing"

	"github.com/sluice-mq/sluice/internal/storage"
)

// TestScanPlainLog: the entries made of a plain log are runs of whole,
// contiguous batches of at most convertEntryBytes, covering the log from
// the batch that holds its start to its end.
func TestScanPlainLog(t *testing.T) {
	dir := t.TempDir()
	opts := storage.Options{SegmentBytes: 1 << 20, Sync: storage.SyncNever}
	l, err := storage.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	// 12 batches of 3 records and about 60 KB each: four fit in an entry.
	for range 12 {
		a, err := l.Append(assembleBatch(0, 0, 1, 1, 3, 2, make([]byte, 60_000)))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.DeleteRecordsBefore(4); err != nil { // inside the second batch
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	recs, end, err := scanPlainLog(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if end != 36 {
		t.Fatalf("end %d, want 36", end)
	}
	// From the batch at 3 (which holds the start, 4, and is an entry of
	// its own, not held whole) on: 11 batches.
	want := []indexRecord{{term: 1, first: 3, next: 6, kind: kindKept}, {term: 1, first: 6, next: 18, kind: kindKept}, {term: 1, first: 18, next: 30, kind: kindKept}, {term: 1, first: 30, next: 36, kind: kindKept}}
	if len(recs) != len(want) {
		t.Fatalf("records %+v, want %+v", recs, want)
	}
	for i := range want {
		if recs[i] != want[i] {
			t.Fatalf("record %d is %+v, want %+v", i, recs[i], want[i])
		}
	}

	// An empty log makes no entries and ends where it ends.
	empty := t.TempDir()
	if l, err := storage.Open(empty, opts); err != nil {
		t.Fatal(err)
	} else if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if recs, end, err := scanPlainLog(empty, opts); err != nil || len(recs) != 0 || end != 0 {
		t.Fatalf("empty log: %v %d %v", recs, end, err)
	}
}
