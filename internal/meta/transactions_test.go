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
