package meta

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func init() { sinceV1["register_node"], sinceV1["unregister_node"] = true, true } // tested here

// Nodes register idempotently, replace their entry when an address
// changes, and survive a restart and a snapshot.
func TestNodeRegistry(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Nodes(); len(got) != 0 {
		t.Fatalf("a new store has nodes: %v", got)
	}
	n2 := Node{ID: 2, Rack: "b", ClusterAddr: "10.0.0.2:9190", KafkaAddr: "k2:9092", AMQPAddr: "k2:5672", HTTPAddr: "k2:15672"}
	n1 := Node{ID: 1, Rack: "a", ClusterAddr: "10.0.0.1:9190", KafkaAddr: "k1:9092", KafkaTLSAddr: "k1:9093", AMQPAddr: "k1:5672", AMQPSAddr: "k1:5671", HTTPAddr: "k1:15672", HTTPSAddr: "k1:15671"}
	must(s.RegisterNode(n2))
	must(s.RegisterNode(n1))
	before := s.AppliedIndex()
	must(s.RegisterNode(n1)) // identical: no write
	if after := s.AppliedIndex(); after != before {
		t.Fatalf("an identical registration was written: index %d -> %d", before, after)
	}
	n2.KafkaAddr = "k2.example:9092"
	must(s.RegisterNode(n2))
	if s.AppliedIndex() != before+1 {
		t.Fatal("a changed registration was not written")
	}
	for _, bad := range []Node{{ID: 0, ClusterAddr: "x:1"}, {ID: MaxNodeID + 1, ClusterAddr: "x:1"}, {ID: 3}, {ID: 3, ClusterAddr: "x:1", Rack: "\xff"}} {
		if err := s.RegisterNode(bad); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("%+v: %v, want ErrInvalidCommand", bad, err)
		}
	}
	want := []Node{n1, n2}
	if got := s.Nodes(); !slices.Equal(got, want) {
		t.Fatalf("nodes %v, want %v", got, want)
	}
	if got, ok := s.Node(2); !ok || got != n2 {
		t.Fatalf("Node(2) = %v, %v", got, ok)
	}
	s.Close()

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Nodes(); !slices.Equal(got, want) {
		t.Fatalf("after replay: %v", got)
	}
	s.mu.RLock()
	enc, err := json.Marshal(s.state)
	s.mu.RUnlock()
	must(err)
	st := NewState()
	must(json.Unmarshal(enc, st))
	if got := st.Nodes(); !slices.Equal(got, want) {
		t.Fatalf("after snapshot: %v", got)
	}
	for _, bad := range []string{
		`{"next_producer_id":1,"nodes":[{"id":1,"cluster_addr":"a:1"},{"id":1,"cluster_addr":"b:1"}]}`,
		`{"next_producer_id":1,"nodes":[{"id":0,"cluster_addr":"a:1"}]}`,
		`{"next_producer_id":1,"nodes":[{"id":1}]}`,
	} {
		if err := json.Unmarshal([]byte(bad), NewState()); err == nil {
			t.Errorf("snapshot %s accepted", bad)
		}
	}
}

// A state without nodes encodes as before the registry existed: no
// "nodes" key, so a single node's snapshots do not change.
func TestNoNodesNoSnapshotKey(t *testing.T) {
	enc, err := json.Marshal(NewState())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(enc, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["nodes"]; ok {
		t.Fatalf("empty registry in the snapshot: %s", enc)
	}
}

// A node leaves the registry with UnregisterNode; unregistering a node
// that is not there writes nothing; a bad id is malformed.
func TestUnregisterNode(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for id := uint64(1); id <= 3; id++ {
		if err := s.RegisterNode(Node{ID: id, ClusterAddr: "h:1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.UnregisterNode(2); err != nil {
		t.Fatal(err)
	}
	before := s.AppliedIndex()
	if err := s.UnregisterNode(2); err != nil || s.AppliedIndex() != before {
		t.Fatalf("unregistering an absent node: %v, index %d -> %d", err, before, s.AppliedIndex())
	}
	for _, bad := range []uint64{0, MaxNodeID + 1} {
		if err := s.UnregisterNode(bad); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("UnregisterNode(%d): %v, want ErrInvalidCommand", bad, err)
		}
	}
	ids := func(s *Store) (out []uint64) {
		for _, n := range s.Nodes() {
			out = append(out, n.ID)
		}
		return out
	}
	if got := ids(s); !slices.Equal(got, []uint64{1, 3}) {
		t.Fatalf("nodes %v, want [1 3]", got)
	}
	s.Close()
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := ids(s); !slices.Equal(got, []uint64{1, 3}) {
		t.Fatalf("after a restart: nodes %v, want [1 3]", got)
	}
}
