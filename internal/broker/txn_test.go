package broker

import (
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/meta"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// openTxnCore opens meta and a broker over dir with clock, with topic "a"
// (2 partitions) created if absent.
func openTxnCore(t *testing.T, dir string, clock *fakeClock) (*Broker, *meta.Store, func()) {
	t.Helper()
	m, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{Logger: slog.New(slog.DiscardHandler), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{DataDir: dir, Logger: slog.New(slog.DiscardHandler), Now: clock.Now, Defaults: Defaults{Partitions: 1}}, m)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	if _, ok := b.Topic("a"); !ok {
		if _, err := b.CreateTopic("a", 2, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	var once sync.Once
	closeFn := func() { once.Do(func() { b.Close(); m.Close() }) }
	t.Cleanup(closeFn)
	return b, m, closeFn
}

// produceTxn appends a transactional batch of n records of (pid, epoch)
// to a-p.
func produceTxn(t *testing.T, b *Broker, p int32, pid int64, epoch int16, seq int32, n int) {
	t.Helper()
	part, err := b.Partition("a", p)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, part, txnBatch(pid, epoch, seq, n))
}

func stable(t *testing.T, b *Broker, p int32) bool {
	t.Helper()
	part, err := b.Partition("a", p)
	if err != nil {
		t.Fatal(err)
	}
	_, hw, lso := part.Offsets()
	return hw == lso
}

var a0, a1 = TopicPartition{Topic: "a", Partition: 0}, TopicPartition{Topic: "a", Partition: 1}

// TestTxnOffsetsVisibleOnCommit: offsets committed in a transaction reach
// their group when it commits, never when it aborts.
func TestTxnOffsetsVisibleOnCommit(t *testing.T) {
	clock := &fakeClock{now: time.UnixMilli(1_000_000)}
	b, _, _ := openTxnCore(t, t.TempDir(), clock)
	pid, epoch, err := b.InitTransactions("tx", 60000)
	if err != nil {
		t.Fatal(err)
	}
	seq := int32(0)
	run := func(offset int64, commit bool) {
		t.Helper()
		if per, err := b.AddPartitionsToTxn("tx", pid, epoch, []TopicPartition{a0, a1}); err != nil || per != nil {
			t.Fatalf("add partitions: %v %v", per, err)
		}
		produceTxn(t, b, 0, pid, epoch, seq, 1)
		seq++
		if err := b.AddOffsetsToTxn("tx", pid, epoch, "g"); err != nil {
			t.Fatal(err)
		}
		if err := b.TxnOffsetCommit("tx", pid, epoch, "g", []OffsetCommit{{Topic: "a", Partition: 1, Offset: offset, LeaderEpoch: -1}}); err != nil {
			t.Fatal(err)
		}
		if stable(t, b, 0) {
			t.Fatal("open transaction not holding the LSO")
		}
		if err := b.EndTxn("tx", pid, epoch, commit); err != nil {
			t.Fatal(err)
		}
		if err := b.EndTxn("tx", pid, epoch, commit); err != nil {
			t.Fatalf("retried EndTxn: %v", err)
		}
		if err := b.EndTxn("tx", pid, epoch, !commit); !errors.Is(err, ErrInvalidTxnState) {
			t.Fatalf("opposite EndTxn after completion: %v", err)
		}
		if !stable(t, b, 0) || !stable(t, b, 1) {
			t.Fatal("LSO below HW after EndTxn")
		}
	}
	run(5, true)
	if oc, ok := b.GroupOffset("g", "a", 1); !ok || oc.Offset != 5 {
		t.Fatalf("after commit: %+v %v", oc, ok)
	}
	run(9, false)
	if oc, _ := b.GroupOffset("g", "a", 1); oc.Offset != 5 {
		t.Fatalf("after abort: offset %d, want 5 still", oc.Offset)
	}
}

// TestTxnPreparedCompletesAfterRestart: a transaction whose commit was
// decided but whose markers were never written (a crash in between) is
// completed at the next start.
func TestTxnPreparedCompletesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{now: time.UnixMilli(1_000_000)}
	b, m, closeFn := openTxnCore(t, dir, clock)
	pid, epoch, err := b.InitTransactions("tx", 60000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddPartitionsToTxn("tx", pid, epoch, []TopicPartition{a0, a1}); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, b, 0, pid, epoch, 0, 3)
	produceTxn(t, b, 1, pid, epoch, 0, 2)
	if err := b.TxnOffsetCommit("tx", pid, epoch, "g", []OffsetCommit{{Topic: "a", Partition: 0, Offset: 3, LeaderEpoch: -1}}); err != nil {
		t.Fatal(err)
	}
	// The decision, as EndTxn records it, and then the crash.
	tr, _ := m.Transaction("tx")
	tr.State = meta.TxnPrepareCommit
	if err := m.PutTransaction(tr); err != nil {
		t.Fatal(err)
	}
	closeFn()

	b, m, _ = openTxnCore(t, dir, clock)
	if stable(t, b, 0) || stable(t, b, 1) {
		t.Fatal("after restart the open transaction no longer holds the LSO")
	}
	b.TickTransactions(clock.Now())
	if !stable(t, b, 0) || !stable(t, b, 1) {
		t.Fatal("prepared transaction not completed")
	}
	if tr, _ := m.Transaction("tx"); tr.State != meta.TxnCompleteCommit {
		t.Fatalf("state %s", tr.State)
	}
	if oc, ok := b.GroupOffset("g", "a", 0); !ok || oc.Offset != 3 {
		t.Fatalf("offsets of the completed transaction: %+v %v", oc, ok)
	}
	part, _ := b.Partition("a", 0)
	var batches [][2]int64
	for off := int64(0); ; {
		data, err := part.Read(off, 1<<20, ReadCommitted)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			break
		}
		if a := part.AbortedIn(off, data); len(a) != 0 {
			t.Fatalf("aborted transactions in a committed one: %v", a)
		}
		got := batchOffsets(t, data)
		batches = append(batches, got...)
		off = got[len(got)-1][1] + 1
	}
	if want := [][2]int64{{0, 2}, {3, 3}}; len(batches) != 2 || batches[0] != want[0] || batches[1] != want[1] {
		t.Fatalf("read_committed: batches %v, want the data and the commit marker %v", batches, want)
	}
}

// TestTxnTimeoutAndFencing: an ongoing transaction past its timeout is
// aborted with the producer's epoch bumped; the old producer is fenced,
// as is one replaced by InitTransactions.
func TestTxnTimeoutAndFencing(t *testing.T) {
	clock := &fakeClock{now: time.UnixMilli(1_000_000)}
	b, m, _ := openTxnCore(t, t.TempDir(), clock)
	pid, epoch, err := b.InitTransactions("tx", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddPartitionsToTxn("tx", pid, epoch, []TopicPartition{a0}); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, b, 0, pid, epoch, 0, 2)
	clock.Add(999 * time.Millisecond)
	b.TickTransactions(clock.Now())
	if tr, _ := m.Transaction("tx"); tr.State != meta.TxnOngoing || stable(t, b, 0) {
		t.Fatalf("aborted before its timeout: %s", tr.State)
	}
	clock.Add(time.Millisecond)
	b.TickTransactions(clock.Now())
	if tr, _ := m.Transaction("tx"); tr.State != meta.TxnCompleteAbort || tr.Epoch != epoch+1 || !stable(t, b, 0) {
		t.Fatalf("at its timeout: %+v", tr)
	}
	part, _ := b.Partition("a", 0)
	data, _ := part.Read(0, 1<<20, ReadCommitted)
	if got := part.AbortedIn(0, data); len(got) != 1 || got[0].ProducerID != pid || got[0].FirstOffset != 0 {
		t.Fatalf("aborted index: %v", got)
	}
	if err := b.EndTxn("tx", pid, epoch, true); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("EndTxn of the timed-out producer: %v", err)
	}
	if _, _, err := part.Append(txnBatch(pid, epoch, 2, 1)); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("produce of the timed-out producer: %v", err)
	}

	// A new instance fences the old one.
	pid2, epoch2, err := b.InitTransactions("tx", 1000)
	if err != nil || pid2 != pid || epoch2 <= epoch+1 {
		t.Fatalf("re-init: %d/%d %v", pid2, epoch2, err)
	}
	if _, err := b.AddPartitionsToTxn("tx", pid, epoch+1, []TopicPartition{a0}); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("add partitions by the fenced epoch: %v", err)
	}
	if _, err := b.AddPartitionsToTxn("tx", pid+100, epoch2, []TopicPartition{a0}); !errors.Is(err, ErrInvalidProducerIDMapping) {
		t.Fatalf("add partitions by a foreign producer id: %v", err)
	}
	if err := b.EndTxn("tx", pid, epoch2, true); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("EndTxn with nothing ongoing: %v", err)
	}
	per, err := b.AddPartitionsToTxn("tx", pid, epoch2, []TopicPartition{a0, {Topic: "nope", Partition: 0}})
	if err != nil || !errors.Is(per[TopicPartition{Topic: "nope", Partition: 0}], ErrUnknownTopic) {
		t.Fatalf("unknown partition: %v %v", per, err)
	}
	if tr, _ := m.Transaction("tx"); tr.State == meta.TxnOngoing {
		t.Fatal("a refused AddPartitionsToTxn started a transaction")
	}
}
