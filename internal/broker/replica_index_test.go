package broker

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// The index drops the records of batches the log no longer holds once
// enough of them are dead, keeping the answers about the records after
// them (and the term of the one before), across a reopen, and goes on
// taking records.
func TestReplicaIndexTrim(t *testing.T) {
	dir := t.TempDir()
	x, err := openReplicaIndex(dir, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3 * trimMinRecords
	rec := func(i uint64) indexRecord {
		term := uint64(1)
		if i > n/2 {
			term = 2
		}
		return indexRecord{term: term, first: int64(i) * 10, next: int64(i)*10 + 10}
	}
	var recs []indexRecord
	for i := uint64(1); i <= n; i++ {
		recs = append(recs, rec(i))
	}
	if err := x.add(recs, nil); err != nil {
		t.Fatal(err)
	}
	// Too few dead records: nothing happens.
	if ok, err := x.trim(trimMinRecords / 2); ok || err != nil {
		t.Fatalf("trim of a few records: %v %v", ok, err)
	}
	// Fewer dead than live: nothing either.
	if ok, err := x.trim(n/3 + 10); ok || err != nil {
		t.Fatalf("trim of a third: %v %v", ok, err)
	}
	upto := uint64(2*n/3 + 5)
	before := fileSize(t, filepath.Join(dir, replIndexName))
	if ok, err := x.trim(upto); !ok || err != nil {
		t.Fatalf("trim to %d: %v %v", upto, ok, err)
	}
	if after := fileSize(t, filepath.Join(dir, replIndexName)); after >= before/2 {
		t.Fatalf("index file %d bytes after the trim, %d before", after, before)
	}
	check := func(x *replicaIndex, last uint64) {
		t.Helper()
		if _, err := x.get(upto - 1); !errors.Is(err, errNoRecord) {
			t.Fatalf("record %d after trimming to %d: %v", upto-1, upto, err)
		}
		if term, err := x.term(upto - 1); err != nil || term != rec(upto-1).term {
			t.Fatalf("term of %d: %d %v", upto-1, term, err)
		}
		for _, i := range []uint64{upto, upto + 1, n, last} {
			if r, err := x.get(i); err != nil || r != rec(i) {
				t.Fatalf("record %d: %+v %v, want %+v", i, r, err, rec(i))
			}
		}
		if next := x.next(); next != last+1 {
			t.Fatalf("next %d, want %d", next, last+1)
		}
	}
	check(x, n)
	if err := x.add([]indexRecord{rec(n + 1)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := x.sync(); err != nil {
		t.Fatal(err)
	}
	check(x, n+1)
	x.close()
	x, err = openReplicaIndex(dir, 1, 0, n+1)
	if err != nil {
		t.Fatal(err)
	}
	defer x.close()
	check(x, n+1)
	if h := x.firstHeld(int64(upto) * 10); h != upto {
		t.Fatalf("first held %d, want %d", h, upto)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// Entries kept whole in the conf file (a quorum queue's settles, one
// every few milliseconds) do not grow it for ever: a trim rewrites it
// with the entries still held, which a reopen reads back.
func TestReplicaIndexCompactsConfs(t *testing.T) {
	dir := t.TempDir()
	x, err := openReplicaIndex(dir, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3 * trimMinRecords
	data := make([]byte, 100)
	var recs []indexRecord
	var confs []*raftpb.Entry
	for i := uint64(1); i <= n; i++ {
		recs = append(recs, indexRecord{term: 1, first: int64(i), next: int64(i), kind: kindConf})
		idx := i
		d := append([]byte{replQueueAcksVersion}, data...)
		d[1] = byte(i)
		confs = append(confs, &raftpb.Entry{Index: &idx, Type: raftpb.EntryNormal.Enum(), Data: d})
	}
	if err := x.add(recs, confs); err != nil {
		t.Fatal(err)
	}
	if err := x.sync(); err != nil {
		t.Fatal(err)
	}
	before := fileSize(t, filepath.Join(dir, replConfName))
	upto := uint64(2*n/3 + 5)
	if ok, err := x.trim(upto); !ok || err != nil {
		t.Fatalf("trim to %d: %v %v", upto, ok, err)
	}
	if after := fileSize(t, filepath.Join(dir, replConfName)); after > before/2 {
		t.Fatalf("conf file %d bytes after the trim, %d before", after, before)
	}
	x.close()
	if x, err = openReplicaIndex(dir, 1, 0, n); err != nil {
		t.Fatal(err)
	}
	defer x.close()
	for _, i := range []uint64{upto, upto + 1, n} {
		e, ok := x.confEntry(i)
		if !ok || e.GetIndex() != i || e.GetData()[1] != byte(i) || len(e.GetData()) != 101 {
			t.Fatalf("conf entry %d after the rewrite and a reopen: %v %v", i, e, ok)
		}
	}
	if _, ok := x.confEntry(upto - 1); ok {
		t.Fatalf("conf entry %d, trimmed, still there", upto-1)
	}
}

// TestReplicaIndexEntryStart: entryStart finds the first offset of the
// entry holding an offset, over entries of several offsets, empty entries
// and the end of the log (where a quorum queue's log start is moved to:
// quorumLog.deleteBefore).
func TestReplicaIndexEntryStart(t *testing.T) {
	x, err := openReplicaIndex(t.TempDir(), 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer x.close()
	recs := []indexRecord{
		{term: 1, first: 0, next: 5},  // 1: offsets 0-4
		{term: 1, first: 5, next: 5},  // 2: empty (an ack entry)
		{term: 1, first: 5, next: 6},  // 3: offset 5
		{term: 2, first: 6, next: 6},  // 4: empty
		{term: 2, first: 6, next: 16}, // 5: offsets 6-15
	}
	if err := x.add(recs, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ offset, want int64 }{
		{0, 0}, {3, 0}, {4, 0}, {5, 5}, {6, 6}, {7, 6}, {15, 6}, {16, 16}, {40, 40},
	} {
		if got := x.entryStart(c.offset); got != c.want {
			t.Errorf("entryStart(%d) = %d, want %d", c.offset, got, c.want)
		}
	}
	// The log started there holds entry 5 whole (and the empty entry 4
	// before it): a member sent a snapshot is sent both.
	if got := x.firstHeld(x.entryStart(9)); got != 4 {
		t.Errorf("firstHeld(entryStart(9)) = %d, want entry 4", got)
	}
}
