package broker

import (
	"errors"
	"log/slog"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/meta"
)

// produceTxnV2 appends a transactional batch as a version 2 produce
// does: the partition is added to the transaction first, then the batch
// is checked and appended.
func produceTxnV2(t *testing.T, b *Broker, p int32, pid int64, epoch int16, seq int32, n int) error {
	t.Helper()
	if err := b.AddPartitionsOnProduce("tx", pid, epoch, []TopicPartition{{Topic: "a", Partition: p}}); err != nil {
		return err
	}
	part, err := b.Partition("a", p)
	if err != nil {
		t.Fatal(err)
	}
	_, ap, err := part.AppendTxn(txnBatch(pid, epoch, seq, n), b.TxnProduceCheck("tx"))
	if err != nil {
		return err
	}
	return ap.Wait()
}

// markerEpoch is the epoch partition a-p knows producer pid at (a
// marker moves it).
func markerEpoch(t *testing.T, b *Broker, p int32, pid int64) int16 {
	t.Helper()
	part, _ := b.Partition("a", p)
	for _, pi := range part.Producers() {
		if pi.ProducerID == pid {
			return pi.Epoch
		}
	}
	t.Fatalf("producer %d unknown in a-%d", pid, p)
	return -1
}

// TestTxnV2EpochBumpPerTransaction: under transaction version 2 a produce
// adds its partition, every EndTxn bumps the epoch and writes the markers
// at the bumped one, a retried EndTxn is answered as the original, the
// old epoch is fenced, and an abort with nothing ongoing only bumps.
func TestTxnV2EpochBumpPerTransaction(t *testing.T) {
	clock := &fakeClock{now: time.UnixMilli(1_000_000)}
	b, m, _ := openTxnCore(t, t.TempDir(), clock)
	pid, e0, err := b.InitTransactions("tx", 60000)
	if err != nil {
		t.Fatal(err)
	}
	if err := produceTxnV2(t, b, 0, pid, e0, 0, 3); err != nil {
		t.Fatal(err)
	}
	if tr, _ := m.Transaction("tx"); tr.State != meta.TxnOngoing || tr.Version != 2 || len(tr.Partitions) != 1 {
		t.Fatalf("after the first produce: %+v", tr)
	}
	if stable(t, b, 0) {
		t.Fatal("open transaction does not hold the LSO")
	}
	npid, e1, err := b.EndTxnV2("tx", pid, e0, true)
	if err != nil || npid != pid || e1 != e0+1 {
		t.Fatalf("EndTxn: %d/%d %v, want %d/%d", npid, e1, err, pid, e0+1)
	}
	if !stable(t, b, 0) || markerEpoch(t, b, 0, pid) != e1 {
		t.Fatalf("commit marker: stable %v, epoch %d, want %d", stable(t, b, 0), markerEpoch(t, b, 0, pid), e1)
	}
	// A retry of the same EndTxn is answered as the original was; one
	// with the other decision is not.
	if p2, e2, err := b.EndTxnV2("tx", pid, e0, true); err != nil || p2 != pid || e2 != e1 {
		t.Fatalf("retried EndTxn: %d/%d %v", p2, e2, err)
	}
	if _, _, err := b.EndTxnV2("tx", pid, e0, false); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("retry with the other decision: %v", err)
	}
	// The old epoch can neither add nor write.
	if err := b.AddPartitionsOnProduce("tx", pid, e0, []TopicPartition{a1}); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("produce at the ended epoch: %v", err)
	}
	part, _ := b.Partition("a", 0)
	if _, _, err := part.AppendTxn(txnBatch(pid, e0, 3, 1), b.TxnProduceCheck("tx")); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("append at the ended epoch: %v", err)
	}

	// The next transaction, at the bumped epoch with sequences from 0,
	// aborts.
	if err := produceTxnV2(t, b, 0, pid, e1, 0, 2); err != nil {
		t.Fatal(err)
	}
	if err := produceTxnV2(t, b, 1, pid, e1, 0, 2); err != nil {
		t.Fatal(err)
	}
	_, e2, err := b.EndTxnV2("tx", pid, e1, false)
	if err != nil || e2 != e1+1 {
		t.Fatalf("abort: %d %v", e2, err)
	}
	if !stable(t, b, 0) || !stable(t, b, 1) || markerEpoch(t, b, 1, pid) != e2 {
		t.Fatal("abort markers missing")
	}
	data, _ := part.Read(0, 1<<20, ReadCommitted)
	if got := part.AbortedIn(0, data); len(got) != 1 || got[0].FirstOffset != 4 {
		t.Fatalf("aborted index: %v", got)
	}

	// Nothing ongoing: an abort bumps the epoch, a commit is refused.
	_, e3, err := b.EndTxnV2("tx", pid, e2, false)
	if err != nil || e3 != e2+1 {
		t.Fatalf("empty abort: %d %v", e3, err)
	}
	if _, _, err := b.EndTxnV2("tx", pid, e3, true); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("empty commit: %v", err)
	}
	if _, _, err := b.EndTxnV2("tx", pid, e2-1, false); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("EndTxn two epochs back: %v", err)
	}

	// TxnOffsetCommit starts a transaction by itself.
	if err := b.TxnOffsetCommitV2("tx", pid, e3, "g", []OffsetCommit{{Topic: "a", Partition: 0, Offset: 7, LeaderEpoch: -1}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.EndTxnV2("tx", pid, e3, true); err != nil {
		t.Fatal(err)
	}
	if oc, ok := b.GroupOffset("g", "a", 0); !ok || oc.Offset != 7 {
		t.Fatalf("offsets of a version 2 transaction: %+v %v", oc, ok)
	}
}

// TestTxnV2CrashAfterDecision: an EndTxn whose decision (and bump) is
// durable but whose markers are not is completed at the next start, with
// the markers at the bumped epoch, and the client's retry succeeds.
func TestTxnV2CrashAfterDecision(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{now: time.UnixMilli(1_000_000)}
	b, m, closeFn := openTxnCore(t, dir, clock)
	pid, e0, err := b.InitTransactions("tx", 60000)
	if err != nil {
		t.Fatal(err)
	}
	if err := produceTxnV2(t, b, 0, pid, e0, 0, 3); err != nil {
		t.Fatal(err)
	}
	tr, _ := m.Transaction("tx")
	tr.State, tr.PrevProducerID, tr.PrevEpoch = meta.TxnPrepareCommit, pid, e0
	if _, err := m.EndTransaction(tr); err != nil {
		t.Fatal(err)
	}
	closeFn()

	b, m, _ = openTxnCore(t, dir, clock)
	if stable(t, b, 0) {
		t.Fatal("after restart the open transaction no longer holds the LSO")
	}
	b.TickTransactions(clock.Now())
	if !stable(t, b, 0) || markerEpoch(t, b, 0, pid) != e0+1 {
		t.Fatal("prepared transaction not completed at the bumped epoch")
	}
	if tr, _ := m.Transaction("tx"); tr.State != meta.TxnCompleteCommit || tr.Epoch != e0+1 {
		t.Fatalf("after recovery: %+v", tr)
	}
	if p2, e2, err := b.EndTxnV2("tx", pid, e0, true); err != nil || p2 != pid || e2 != e0+1 {
		t.Fatalf("the client's retry: %d/%d %v", p2, e2, err)
	}
}

// TestTxnV2AddedPartitionDurable: a partition a version 2 produce added
// is in the durable record, so a transaction abandoned by a crash after
// the produce is aborted with a marker there.
func TestTxnV2AddedPartitionDurable(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{now: time.UnixMilli(1_000_000)}
	b, _, closeFn := openTxnCore(t, dir, clock)
	pid, e0, err := b.InitTransactions("tx", 60000)
	if err != nil {
		t.Fatal(err)
	}
	if err := produceTxnV2(t, b, 1, pid, e0, 0, 2); err != nil {
		t.Fatal(err)
	}
	closeFn()

	b, m, _ := openTxnCore(t, dir, clock)
	if _, _, err := b.InitTransactions("tx", 60000); err != nil {
		t.Fatal(err)
	}
	if !stable(t, b, 1) {
		t.Fatal("the abandoned transaction was not aborted in the partition its produce added")
	}
	if tr, _ := m.Transaction("tx"); tr.State != meta.TxnEmpty || tr.Epoch <= e0 {
		t.Fatalf("after re-init: %+v", tr)
	}
}

// FuzzTxnProducerOf: the peek a version 2 produce takes at a record set
// (network input) never panics, and names a producer only for a
// transactional data batch of magic 2.
func FuzzTxnProducerOf(f *testing.F) {
	f.Add(txnBatch(7, 3, 0, 2))
	f.Add(producerBatch(7, 3, 0, 2))
	f.Add(buildControlBatch(7, 3, ControlCommit, 0, 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		pid, epoch, txn := TxnProducerOf(b)
		if !txn {
			if pid != -1 || epoch != -1 {
				t.Fatalf("not transactional, yet producer %d/%d", pid, epoch)
			}
			return
		}
		if len(b) < 61 || b[16] != 2 || b[22]&transactionalBit == 0 || b[22]&controlBit != 0 || pid < 0 {
			t.Fatalf("producer %d/%d from %x", pid, epoch, b[:min(len(b), 61)])
		}
	})
}

// noSyncLog is a metadata log file whose fsync does nothing, for a test
// that makes tens of thousands of metadata changes.
type noSyncLog struct{ meta.LogFile }

func (noSyncLog) Sync() error { return nil }

// TestTxnV2EpochExhausted: an EndTxn at the last usable epoch writes its
// markers at the epoch after it under the old producer id, and hands the
// producer a new producer id at epoch 0, with which the next transaction
// runs.
func TestTxnV2EpochExhausted(t *testing.T) {
	clock := &fakeClock{now: time.UnixMilli(1_000_000)}
	m, err := meta.Open(filepath.Join(t.TempDir(), "meta"), meta.Options{
		Logger: slog.New(slog.DiscardHandler), Now: clock.Now, SnapshotEvery: 1 << 20,
		WrapLog: func(_ string, f meta.LogFile) meta.LogFile { return noSyncLog{f} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b, err := New(Options{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler), Now: clock.Now, Defaults: Defaults{Partitions: 1}}, m)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.CreateTopic("a", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := b.InitTransactions("tx", 60000)
	if err != nil {
		t.Fatal(err)
	}
	for epoch < math.MaxInt16-2 {
		if _, epoch, err = m.InitProducerID("tx"); err != nil {
			t.Fatal(err)
		}
	}
	if _, epoch, err = b.InitTransactions("tx", 60000); err != nil || epoch != math.MaxInt16-1 {
		t.Fatalf("at the last usable epoch: %d %v", epoch, err)
	}
	if err := produceTxnV2(t, b, 0, pid, epoch, 0, 2); err != nil {
		t.Fatal(err)
	}
	npid, nepoch, err := b.EndTxnV2("tx", pid, epoch, true)
	if err != nil || npid == pid || nepoch != 0 {
		t.Fatalf("EndTxn at the last epoch: %d/%d %v, want a new producer id at epoch 0", npid, nepoch, err)
	}
	if !stable(t, b, 0) || markerEpoch(t, b, 0, pid) != math.MaxInt16 {
		t.Fatalf("marker under the old id: stable %v, epoch %d", stable(t, b, 0), markerEpoch(t, b, 0, pid))
	}
	// A retry names the old producer and gets the new one.
	if p2, e2, err := b.EndTxnV2("tx", pid, epoch, true); err != nil || p2 != npid || e2 != 0 {
		t.Fatalf("retry: %d/%d %v", p2, e2, err)
	}
	if err := produceTxnV2(t, b, 0, pid, epoch, 2, 1); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("the old producer id after the switch: %v", err)
	}
	if err := produceTxnV2(t, b, 1, npid, 0, 0, 2); err != nil {
		t.Fatal(err)
	}
	if _, e, err := b.EndTxnV2("tx", npid, 0, false); err != nil || e != 1 {
		t.Fatalf("abort under the new id: %d %v", e, err)
	}
	if !stable(t, b, 1) || markerEpoch(t, b, 1, npid) != 1 {
		t.Fatal("abort marker under the new id missing")
	}
}

// TestTxnInternalTopicNotAdded: AddPartitionsToTxn refuses a partition
// of an internal topic (no marker could be written into it, and the
// transaction could then never complete), failing the request as for an
// unknown partition.
func TestTxnInternalTopicNotAdded(t *testing.T) {
	dir := t.TempDir()
	m, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b, err := New(Options{DataDir: dir, Logger: slog.New(slog.DiscardHandler), Defaults: Defaults{Partitions: 1}, OffsetsTopicCodec: textCodec{}}, m)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.CreateTopic("a", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := b.InitTransactions("tx", 60000)
	if err != nil {
		t.Fatal(err)
	}
	internal := TopicPartition{Topic: OffsetsTopic, Partition: 0}
	per, err := b.AddPartitionsToTxn("tx", pid, epoch, []TopicPartition{a0, internal})
	if err != nil || !errors.Is(per[internal], ErrInternalTopic) {
		t.Fatalf("AddPartitionsToTxn with %s: %v %v", OffsetsTopic, per, err)
	}
	if tr, _ := m.Transaction("tx"); tr.State == meta.TxnOngoing || len(tr.Partitions) != 0 {
		t.Fatalf("transaction after the refusal: %+v", tr)
	}
}
