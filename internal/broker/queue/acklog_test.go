package queue

import "testing"

// TestAckLogRewritesAfterFailedWrite: when a write of the ack record
// fails, the buffered settles are not lost: the next write rewrites the
// file from the settled set, and a reopen finds every settle.
func TestAckLogRewritesAfterFailedWrite(t *testing.T) {
	dir := t.TempDir()
	var set intervals
	a, err := openAckLog(dir, &set)
	if err != nil {
		t.Fatal(err)
	}
	settle := func(from, to int64) {
		set.add(from, to)
		a.record(from, to)
	}
	settle(0, 10)
	if err := a.write(&set); err != nil {
		t.Fatal(err)
	}
	settle(20, 30)
	a.f.Close() // the next write fails, as on a full disk or an I/O error
	if err := a.write(&set); err == nil {
		t.Fatal("write to a closed file succeeded")
	}
	if !a.stale {
		t.Fatal("a failed write left the ack record not marked stale")
	}
	settle(40, 50)
	if err := a.write(&set); err != nil { // rewrites from the set
		t.Fatal(err)
	}
	if a.stale {
		t.Fatal("still stale after a successful rewrite")
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}

	var got intervals
	b, err := openAckLog(dir, &got)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	for _, r := range [][2]int64{{0, 10}, {20, 30}, {40, 50}} {
		if got.count(r[0], r[1]) != r[1]-r[0] {
			t.Errorf("settles [%d,%d) missing after reopen: %v", r[0], r[1], got.r)
		}
	}
	if n := got.count(0, 60); n != 30 {
		t.Errorf("%d offsets settled after reopen, want 30", n)
	}
}
