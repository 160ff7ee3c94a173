package broker

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// txnBatch is a transactional batch of n records from producer pid.
func txnBatch(pid int64, epoch int16, seq int32, n int) []byte {
	b := producerBatch(pid, epoch, seq, n)
	binary.BigEndian.PutUint16(b[21:], transactionalBit)
	binary.BigEndian.PutUint32(b[17:], crcOf(b))
	return b
}

func mustMarker(t *testing.T, p *Partition, pid int64, epoch int16, commit bool) {
	t.Helper()
	ap, err := p.WriteMarker(pid, epoch, commit, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ap.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestPartitionTransactions: the last stable offset stops at the earliest
// open transaction, markers close transactions, aborted ones are reported
// to read_committed readers, and all of it survives a reopen.
func TestPartitionTransactions(t *testing.T) {
	dir := t.TempDir()
	p := openPartition(t, dir)
	check := func(step string, wantHW, wantLSO int64, wantOpen int) {
		t.Helper()
		_, hw, lso := p.Offsets()
		if hw != wantHW || lso != wantLSO || len(p.OpenTransactions()) != wantOpen {
			t.Fatalf("%s: hw %d lso %d open %v, want hw %d lso %d, %d open", step, hw, lso, p.OpenTransactions(), wantHW, wantLSO, wantOpen)
		}
	}
	mustAppend(t, p, producerBatch(-1, -1, -1, 2)) // 0-1 plain
	check("plain", 2, 2, 0)
	mustAppend(t, p, txnBatch(7, 0, 0, 3)) // 2-4 txn of 7
	check("open txn", 5, 2, 1)
	mustAppend(t, p, producerBatch(-1, -1, -1, 1)) // 5 plain, behind the open txn
	mustAppend(t, p, txnBatch(8, 0, 0, 2))         // 6-7 txn of 8
	check("two open", 8, 2, 2)

	// read_committed sees nothing past the LSO; read_uncommitted all.
	if data, err := p.Read(0, 1<<20, ReadCommitted); err != nil || !reflect.DeepEqual(batchOffsets(t, data), [][2]int64{{0, 1}}) {
		t.Fatalf("read_committed below the open txn: %v %v", batchOffsets(t, data), err)
	}
	if data, err := p.Read(5, 1<<20, ReadCommitted); err != nil || data != nil {
		t.Fatalf("read_committed between LSO and HW: %d bytes, %v; want nothing, no error", len(data), err)
	}
	if data, _ := p.Read(0, 1<<20, ReadUncommitted); len(batchOffsets(t, data)) != 4 {
		t.Fatalf("read_uncommitted: %v", batchOffsets(t, data))
	}

	mustMarker(t, p, 7, 0, true) // 8: commit 7
	check("7 committed", 9, 6, 1)
	mustMarker(t, p, 8, 0, false) // 9: abort 8
	check("8 aborted", 10, 10, 0)

	data, err := p.Read(0, 1<<20, ReadCommitted)
	if err != nil {
		t.Fatal(err)
	}
	if got := batchOffsets(t, data); len(got) != 6 || got[5] != [2]int64{9, 9} {
		t.Fatalf("read_committed after the markers: %v", got)
	}
	wantAborted := []AbortedTxn{{ProducerID: 8, FirstOffset: 6, LastOffset: 9}}
	if got := p.AbortedIn(0, data); !reflect.DeepEqual(got, wantAborted) {
		t.Fatalf("aborted in 0..: %v, want %v", got, wantAborted)
	}
	first, _ := p.Read(0, 1, ReadCommitted) // the batch 0-1 only
	if got := p.AbortedIn(0, first); got != nil {
		t.Fatalf("aborted in 0-1: %v, want none", got)
	}
	if got := p.AbortedIn(10, nil); got != nil {
		t.Fatalf("aborted past the marker: %v", got)
	}

	// A marker of an older epoch is refused; a newer one fences the old
	// producer, whose sequences restart at the new epoch.
	mustMarker(t, p, 7, 1, false) // 10: abort with nothing open
	if _, err := p.WriteMarker(7, 0, true, 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("marker of a fenced epoch: %v", err)
	}
	if _, _, err := p.Append(txnBatch(7, 0, 3, 1)); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("zombie append: %v", err)
	}
	if _, _, err := p.Append(txnBatch(7, 1, 5, 1)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch not starting at 0: %v", err)
	}
	mustAppend(t, p, txnBatch(7, 1, 0, 1)) // 11: txn of 7 at epoch 1
	check("7 open again", 12, 11, 1)

	// Reopen: the open transaction and the aborted index come back.
	if err := p.log.Close(); err != nil {
		t.Fatal(err)
	}
	p = openPartition(t, dir)
	check("reopened", 12, 11, 1)
	data, _ = p.Read(0, 1<<20, ReadCommitted)
	if got := p.AbortedIn(0, data); !reflect.DeepEqual(got, wantAborted) {
		t.Fatalf("aborted after reopen: %v, want %v", got, wantAborted)
	}
	if _, _, err := p.Append(txnBatch(7, 0, 3, 1)); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("zombie append after reopen: %v", err)
	}
	mustMarker(t, p, 7, 1, true)
	check("7 committed after reopen", 13, 13, 0)
}

func TestControlBatchRoundTrip(t *testing.T) {
	for _, kind := range []int16{ControlAbort, ControlCommit} {
		b := buildControlBatch(5, 3, kind, 9, 1000)
		got, err := markerType(b)
		if err != nil || got != kind {
			t.Fatalf("kind %d: decoded %d, %v", kind, got, err)
		}
	}
	if _, err := markerType(producerBatch(1, 0, 0, 1)); err == nil {
		t.Fatal("a data batch decoded as a control batch")
	}
}

func FuzzControlType(f *testing.F) {
	f.Add(buildControlBatch(5, 3, ControlCommit, 9, 1000))
	f.Add(buildControlBatch(5, 3, ControlAbort, 0, 0))
	f.Add(producerBatch(1, 0, 0, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, err := markerType(b)
		if err == nil && kind != ControlAbort && kind != ControlCommit {
			t.Fatalf("accepted control type %d", kind)
		}
	})
}
