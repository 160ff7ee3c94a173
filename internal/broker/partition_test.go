package broker

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/sluice-mq/sluice/internal/storage"
)

// producerBatch builds a batch of n records from producer pid.
func producerBatch(pid int64, epoch int16, seq int32, n int) []byte {
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = []byte{byte(i)}
	}
	b := storage.BuildBatch(0, 1000, recs)
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func openPartition(t *testing.T, dir string) *Partition {
	t.Helper()
	l, err := openDiskLog(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPartition("t", 0, l, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPartitionIdempotentSequences(t *testing.T) {
	dir := t.TempDir()
	p := openPartition(t, dir)
	type step struct {
		name     string
		pid      int64
		epoch    int16
		seq      int32
		n        int
		wantErr  error
		wantBase int64
		wantDup  bool
	}
	steps := []step{
		{"plain producer", -1, -1, -1, 2, nil, 0, false},
		{"first batch of 3", 7, 0, 0, 3, nil, 2, false},
		{"next batch", 7, 0, 3, 2, nil, 5, false},
		{"retry of next batch", 7, 0, 3, 2, nil, 5, true},
		{"retry of first batch", 7, 0, 0, 3, nil, 2, true},
		{"gap", 7, 0, 6, 1, ErrOutOfOrderSequence, 0, false},
		{"overlap that is not a retry", 7, 0, 4, 1, ErrOutOfOrderSequence, 0, false},
		{"another producer starts anywhere", 8, 0, 40, 1, nil, 7, false},
		{"in order again", 7, 0, 5, 1, nil, 8, false},
		{"stale epoch", 7, -1, 0, 1, ErrInvalidProducerEpoch, 0, false},
		{"new epoch must start at 0", 7, 1, 6, 1, ErrOutOfOrderSequence, 0, false},
		{"new epoch at 0", 7, 1, 0, 1, nil, 9, false},
		{"old epoch now fenced", 7, 0, 6, 1, ErrInvalidProducerEpoch, 0, false},
	}
	run := func(steps []step) {
		for _, s := range steps {
			res, ap, err := p.Append(producerBatch(s.pid, s.epoch, s.seq, s.n))
			if !errors.Is(err, s.wantErr) {
				t.Fatalf("%s: error %v, want %v", s.name, err, s.wantErr)
			}
			if err != nil {
				continue
			}
			if res.BaseOffset != s.wantBase || res.Duplicate != s.wantDup {
				t.Fatalf("%s: base %d dup %v, want %d %v", s.name, res.BaseOffset, res.Duplicate, s.wantBase, s.wantDup)
			}
			if s.wantDup != (ap == nil) {
				t.Fatalf("%s: pending append %v for duplicate %v", s.name, ap != nil, s.wantDup)
			}
			if ap != nil {
				if err := ap.Wait(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	run(steps)
	// State is rebuilt from the log after a reopen.
	if err := p.log.Close(); err != nil {
		t.Fatal(err)
	}
	p = openPartition(t, dir)
	defer p.log.Close()
	run([]step{
		{"retry after reopen", 7, 1, 0, 1, nil, 9, true},
		{"continue after reopen", 7, 1, 1, 1, nil, 10, false},
		{"gap after reopen", 7, 1, 5, 1, ErrOutOfOrderSequence, 0, false},
		{"stale epoch after reopen", 7, 0, 7, 1, ErrInvalidProducerEpoch, 0, false},
	})
}

// TestPartitionDuplicateWaitsForOriginal is the data-loss reproduction of
// issue 18 at the core: a retry that arrives while its original waits for
// its fsync must not be answered before the original is durable, must
// fail if the original failed, and after Recover must be written anew.
func TestPartitionDuplicateWaitsForOriginal(t *testing.T) {
	mem := storage.NewMemFS()
	ffs := storage.NewFaultFS(mem)
	dir := "/data/t-0"
	l, err := openDiskLog(dir, storage.Options{FS: ffs})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPartition("t", 0, l, 0)
	if err != nil {
		t.Fatal(err)
	}
	appendBatch := func(seq int32) (AppendResult, Pending, error) {
		return p.Append(producerBatch(7, 0, seq, 1))
	}
	res, ap, err := appendBatch(0)
	if err != nil || ap.Wait() != nil || res.BaseOffset != 0 {
		t.Fatalf("seq 0: %+v, %v", res, err)
	}

	// The fsync of seq 1 is held: its retry waits with it, then succeeds.
	ffs.HoldSyncs()
	_, orig, err := appendBatch(1)
	if err != nil {
		t.Fatal(err)
	}
	res, dupAp, err := appendBatch(1)
	if err != nil || !res.Duplicate || res.BaseOffset != 1 {
		t.Fatalf("retry of seq 1: %+v, %v", res, err)
	}
	if dupAp == nil {
		t.Fatal("retry answered while its original is not durable")
	}
	select {
	case <-dupAp.Done():
		t.Fatal("retry completed while the original's fsync is held")
	default:
	}
	ffs.ReleaseSyncs()
	if orig.Wait() != nil || dupAp.Wait() != nil {
		t.Fatal("held fsync released, appends failed")
	}

	// The fsync of seq 2 fails: its retry fails too, before and after.
	ffs.HoldSyncs()
	_, orig, err = appendBatch(2)
	if err != nil {
		t.Fatal(err)
	}
	_, dupAp, err = appendBatch(2)
	if err != nil || dupAp == nil {
		t.Fatalf("retry of pending seq 2: ap %v, err %v", dupAp, err)
	}
	ffs.FailSync(errors.New("EIO"))
	ffs.ReleaseSyncs()
	if orig.Wait() == nil || dupAp.Wait() == nil {
		t.Fatal("append of seq 2 acknowledged through a failed fsync")
	}
	if res, ap, err := appendBatch(2); err == nil && (ap == nil || ap.Wait() == nil) {
		t.Fatalf("retry of failed seq 2 answered %+v", res)
	}
	if p.Failed() == nil {
		t.Fatal("partition not failed")
	}

	// The fault clears: Recover, and the retry is written at offset 2.
	ffs.FailSync(nil)
	if err := p.Recover(); err != nil {
		t.Fatal(err)
	}
	res, ap, err = appendBatch(2)
	if err != nil || res.Duplicate || res.BaseOffset != 2 || ap == nil || ap.Wait() != nil {
		t.Fatalf("retry of seq 2 after Recover: %+v, %v", res, err)
	}
	if res, _, err := appendBatch(2); err != nil || !res.Duplicate || res.BaseOffset != 2 {
		t.Fatalf("second retry of seq 2: %+v, %v", res, err)
	}
	l.Close()

	// After a restart: offsets 0..2 hold sequences 0..2, nothing else.
	l, err = openDiskLog(dir, storage.Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var seqs []int32
	l.ScanHeaders(0, func(h storage.BatchHeader) bool {
		if h.BaseOffset != int64(len(seqs)) {
			t.Errorf("batch at offset %d after %d batches", h.BaseOffset, len(seqs))
		}
		seqs = append(seqs, h.BaseSequence)
		return true
	})
	if len(seqs) != 3 || seqs[0] != 0 || seqs[1] != 1 || seqs[2] != 2 {
		t.Fatalf("sequences in the log: %v", seqs)
	}
}
