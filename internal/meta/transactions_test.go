package meta

import (
	"errors"
	"reflect"
	"testing"
)

// TestTransactionsDurable: a transaction put is refused for a fenced
// producer, and survives a reopen from the log and from a snapshot.
func TestTransactionsDurable(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, epoch, err := s.InitProducerID("tx")
	if err != nil {
		t.Fatal(err)
	}
	want := Transaction{
		TransactionalID: "tx", ProducerID: id, Epoch: epoch, TimeoutMs: 60000, State: TxnPrepareCommit, StartMs: 5,
		Partitions: []TopicPartition{{"a", 0}, {"b", 3}},
		Offsets:    []TxnOffset{{Group: "g", OffsetCommit: OffsetCommit{Topic: "in", Partition: 1, Offset: 42, CommitMs: 7}}},
	}
	if err := s.PutTransaction(want); err != nil {
		t.Fatal(err)
	}
	stale := want
	stale.Epoch++
	if err := s.PutTransaction(stale); !errors.Is(err, ErrStaleProducer) {
		t.Fatalf("put at an epoch not handed out: %v", err)
	}
	bad := want
	bad.State = "committing"
	if err := s.PutTransaction(bad); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("put of an unknown state: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, ok := s.Transaction("tx"); !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen: %+v, want %+v", got, want)
	}
	// The snapshot form round-trips it.
	s.mu.RLock()
	b, err := s.state.MarshalJSON()
	s.mu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	st := NewState()
	if err := st.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if got := st.transactions(); !reflect.DeepEqual(got, []Transaction{want}) {
		t.Fatalf("from the snapshot form: %+v", got)
	}
}

// TestEndTransactionBumpsTheEpoch: end_transaction (transaction version
// 2) bumps the producer's epoch together with the transaction's record,
// is refused for a producer that is not the current one, moves to a new
// producer id once the epoch is exhausted, and survives a reopen.
func TestEndTransactionBumpsTheEpoch(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, epoch, err := s.InitProducerID("tx")
	if err != nil {
		t.Fatal(err)
	}
	end := Transaction{
		TransactionalID: "tx", TimeoutMs: 60000, State: TxnPrepareCommit, StartMs: 5,
		Partitions: []TopicPartition{{"a", 0}}, PrevProducerID: id, PrevEpoch: epoch,
	}
	got, err := s.EndTransaction(end)
	if err != nil {
		t.Fatal(err)
	}
	if got.ProducerID != id || got.Epoch != epoch+1 || got.Version != 2 {
		t.Fatalf("ended: %+v, want producer %d epoch %d version 2", got, id, epoch+1)
	}
	if p, e, _ := s.TransactionalProducer("tx"); p != id || e != epoch+1 {
		t.Fatalf("producer after the bump: %d/%d", p, e)
	}
	if _, err := s.EndTransaction(end); !errors.Is(err, ErrStaleProducer) {
		t.Fatalf("a second end at the old epoch: %v", err)
	}
	// The completion is a plain put at the bumped epoch.
	got.State = TxnCompleteCommit
	if err := s.PutTransaction(got); err != nil {
		t.Fatal(err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rec, ok := s.Transaction("tx"); !ok || !reflect.DeepEqual(rec, got) {
		t.Fatalf("after reopen: %+v, want %+v", rec, got)
	}
	if p, e, _ := s.TransactionalProducer("tx"); p != id || e != epoch+1 {
		t.Fatalf("producer after reopen: %d/%d", p, e)
	}
}

// TestEndTransactionEpochExhausted: an end_transaction at an exhausted
// epoch moves the transactional id to a fresh producer id at epoch 0.
func TestEndTransactionEpochExhausted(t *testing.T) {
	st := NewState()
	init := NewCommand(&InitProducerIDCmd{TransactionalID: "tx"})
	first, _ := st.Apply(init)
	for range maxProducerEpoch {
		st.Apply(init)
	}
	res, err := st.Apply(NewCommand(&EndTransactionCmd{TransactionalID: "tx", State: TxnPrepareAbort, PrevProducerID: first.ProducerID, PrevEpoch: maxProducerEpoch}))
	if err != nil {
		t.Fatal(err)
	}
	if res.ProducerID == first.ProducerID || res.ProducerEpoch != 0 {
		t.Fatalf("after the epoch ran out: %+v", res)
	}
	if rec := st.txns["tx"]; rec.ProducerID != res.ProducerID || rec.PrevProducerID != first.ProducerID || rec.PrevEpoch != maxProducerEpoch {
		t.Fatalf("recorded: %+v", rec)
	}
}
