package meta

import (
	"errors"
	"reflect"
	"sync"
	"testing"
)

// Partitions go round-robin over the nodes from the start given.
func TestPlaceRoundRobin(t *testing.T) {
	nodes := []Node{{ID: 3}, {ID: 1}, {ID: 2}}
	got := Place(nodes, 0, 5, 1)
	want := [][]int32{{2}, {3}, {1}, {2}, {3}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Place = %v, want %v", got, want)
	}
	// Continuing from partition 5 keeps the round going.
	if got := Place(nodes, 5, 2, 1); !reflect.DeepEqual(got, [][]int32{{1}, {2}}) {
		t.Fatalf("Place from 5 = %v", got)
	}
	if got := PlacementStart(nodes, want); got != 1 {
		t.Fatalf("PlacementStart = %d, want 1", got)
	}
	if got := Place(nil, 0, 3, 0); got != nil {
		t.Fatalf("Place without nodes = %v", got)
	}
	if got := Place(nodes, 0, 3, -1); !reflect.DeepEqual(got, [][]int32{{3}, {1}, {2}}) {
		t.Fatalf("Place with a negative start = %v", got)
	}
}

// With racks, consecutive partitions alternate racks.
func TestPlaceRackAware(t *testing.T) {
	nodes := []Node{{ID: 1, Rack: "a"}, {ID: 2, Rack: "a"}, {ID: 3, Rack: "b"}, {ID: 4, Rack: "b"}, {ID: 5, Rack: "c"}}
	if got, want := PlacementOrder(nodes), []int32{1, 3, 5, 2, 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("PlacementOrder = %v, want %v", got, want)
	}
	rack := map[int32]string{1: "a", 2: "a", 3: "b", 4: "b", 5: "c"}
	ps := Place(nodes, 0, 4, 0)
	for i := 1; i < len(ps); i++ {
		if rack[ps[i][0]] == rack[ps[i-1][0]] {
			t.Fatalf("partitions %d and %d both in rack %s: %v", i-1, i, rack[ps[i][0]], ps)
		}
	}
}

// The assignment is carried by the commands, checked, kept in snapshots
// and grown by create_partitions; a single node's topics have none.
func TestTopicReplicas(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	if _, err := s.CreateTopic("plain", 2, nil); err != nil {
		t.Fatal(err)
	}
	if tp, _ := s.Topic("plain"); tp.Replicas != nil {
		t.Fatalf("a single node's topic has replicas %v", tp.Replicas)
	}
	if r, ok := s.PartitionReplicas("plain", 1); !ok || r != nil {
		t.Fatalf("PartitionReplicas(plain, 1) = %v, %v", r, ok)
	}
	_, errs := s.CreateTopics([]TopicSpec{
		{Name: "placed", Partitions: 2, Replicas: [][]int32{{1}, {2}}},
		{Name: "short", Partitions: 2, Replicas: [][]int32{{1}}},
		{Name: "twice", Partitions: 1, Replicas: [][]int32{{1, 1}}},
		{Name: "zero", Partitions: 1, Replicas: [][]int32{{0}}},
	})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	for i, e := range errs[1:] {
		if !errors.Is(e, ErrInvalidCommand) {
			t.Fatalf("bad assignment %d: %v", i+1, e)
		}
	}
	if err := s.CreatePartitions("placed", 3); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("unplaced partitions of a placed topic: %v", err)
	}
	if err := s.CreatePartitionsPlaced("plain", 3, [][]int32{{1}}); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("placed partitions of an unplaced topic: %v", err)
	}
	if err := s.CreatePartitionsPlaced("placed", 3, [][]int32{{3}}); err != nil {
		t.Fatal(err)
	}
	if r, ok := s.PartitionReplicas("placed", 2); !ok || !reflect.DeepEqual(r, []int32{3}) {
		t.Fatalf("PartitionReplicas(placed, 2) = %v, %v", r, ok)
	}
	if _, ok := s.PartitionReplicas("placed", 3); ok {
		t.Fatal("PartitionReplicas of a missing partition is ok")
	}
	s.Close()
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tp, _ := s.Topic("placed")
	if want := [][]int32{{1}, {2}, {3}}; !reflect.DeepEqual(tp.Replicas, want) {
		t.Fatalf("after reopening: replicas %v, want %v", tp.Replicas, want)
	}
	st := NewState()
	if err := st.UnmarshalJSON(storeJSON(t, s)); err != nil {
		t.Fatal(err)
	}
	if tp, _ := st.Topic("placed"); !reflect.DeepEqual(tp.Replicas, [][]int32{{1}, {2}, {3}}) {
		t.Fatalf("through a snapshot: %v", tp.Replicas)
	}
}

func storeJSON(t *testing.T, s *Store) []byte {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, err := s.state.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The observer is told of applied topic changes, and of nothing else.
func TestObserve(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var (
		mu  sync.Mutex
		got []Change
	)
	s.Observe(func(c Change) {
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.CreateTopic("a", 1, nil)
	must(err)
	must(s.CreatePartitions("a", 2))
	must(s.AlterTopicConfigs("a", map[string]string{"retention.ms": "1"}, nil, false))
	must(s.RegisterNode(Node{ID: 1, ClusterAddr: "x:1"}))
	must(s.DeleteTopic("a"))
	if err := s.DeleteTopic("a"); err == nil { // refused: not applied, not told
		t.Fatal("deleted twice")
	}
	s.Observe(nil)
	_, err = s.CreateTopic("b", 1, nil)
	must(err)
	want := []Change{{Kind: "create_topic", Topic: "a"}, {Kind: "create_partitions", Topic: "a"}, {Kind: "alter_topic_configs", Topic: "a"}, {Kind: "delete_topic", Topic: "a"}}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
}

// A state replaced wholesale keeps the observer and reports the
// replacement.
func TestObserverHandOver(t *testing.T) {
	var got []Change
	old := NewState()
	old.observer = func(c Change) { got = append(got, c) }
	next := NewState()
	old.handOver(next)
	if _, err := next.Apply(createCmd("a", 1, 1)); err != nil {
		t.Fatal(err)
	}
	want := []Change{{Kind: ChangeSnapshot}, {Kind: "create_topic", Topic: "a"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
	NewState().handOver(NewState()) // no observer: nothing to hand over
}
