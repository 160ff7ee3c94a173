package broker

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// TestPartitionRegionsAreReads: at both isolation levels and at every
// stage of two transactions, a region holds the bytes Read returns, and
// AbortedBetween up to its end is AbortedIn of those bytes.
func TestPartitionRegionsAreReads(t *testing.T) {
	p := openPartition(t, t.TempDir())
	same := func(step string) {
		t.Helper()
		_, hw, _ := p.Offsets()
		for _, iso := range []IsolationLevel{ReadUncommitted, ReadCommitted} {
			for off := int64(0); off <= hw; off++ {
				for k, maxBytes := range []int{1, 200, 1 << 20} {
					data, err := p.Read(off, maxBytes, iso)
					if err != nil {
						t.Fatal(err)
					}
					r, err := p.ReadRegion(off, maxBytes, iso, []int{0, 100, 1 << 20}[k])
					if err != nil {
						t.Fatal(err)
					}
					if r == nil {
						if len(data) != 0 {
							t.Fatalf("%s: iso %d at %d: no region, Read has %d bytes", step, iso, off, len(data))
						}
						continue
					}
					got := make([]byte, r.Len())
					if err := r.ReadAt(got, 0); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, data) {
						t.Fatalf("%s: iso %d at %d max %d: region of %d bytes, Read %d", step, iso, off, maxBytes, len(got), len(data))
					}
					if a, b := p.AbortedBetween(off, r.End()), p.AbortedIn(off, data); !reflect.DeepEqual(a, b) {
						t.Fatalf("%s: iso %d at %d: AbortedBetween %v, AbortedIn %v", step, iso, off, a, b)
					}
					r.Release()
				}
			}
		}
	}
	mustAppend(t, p, producerBatch(-1, -1, -1, 2)) // 0-1 plain
	mustAppend(t, p, txnBatch(7, 0, 0, 3))         // 2-4 txn of 7
	mustAppend(t, p, producerBatch(-1, -1, -1, 1)) // 5 plain
	mustAppend(t, p, txnBatch(8, 0, 0, 2))         // 6-7 txn of 8
	same("two open")
	if r, err := p.ReadRegion(5, 1<<20, ReadCommitted, 0); r != nil || err != nil {
		t.Fatalf("read_committed region between LSO and HW: %v, %v; want none", r, err)
	}
	mustMarker(t, p, 7, 0, true)  // 8
	mustMarker(t, p, 8, 0, false) // 9
	same("committed and aborted")
	if got := p.AbortedBetween(0, 10); len(got) != 1 || got[0].ProducerID != 8 {
		t.Fatalf("aborted between 0 and 10: %v, want producer 8's", got)
	}
	if _, err := p.ReadRegion(11, 1<<20, ReadUncommitted, 0); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("region past the high watermark: %v", err)
	}
}

// A log without files (the in-memory twin) says so, for the caller to Read.
func TestPartitionRegionWithoutFiles(t *testing.T) {
	p, err := newPartition("t", 0, newMemLog(true), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, p, producerBatch(-1, -1, -1, 2))
	if _, err := p.ReadRegion(0, 1<<20, ReadUncommitted, 0); !errors.Is(err, ErrNoRegions) {
		t.Fatalf("region of an in-memory log: %v, want ErrNoRegions", err)
	}
}
