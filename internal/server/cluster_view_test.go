package server

import (
	"fmt"
	"hash/fnv"
	"reflect"
	"testing"

	"github.com/sluice-mq/sluice/internal/kafka"
	"github.com/sluice-mq/sluice/internal/meta"
)

// A registry of three nodes, node 3 down, seen from node 1.
func TestClusterView(t *testing.T) {
	m, err := meta.Open(t.TempDir(), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, n := range []meta.Node{
		{ID: 1, Rack: "a", ClusterAddr: "n1:9190", KafkaAddr: "n1:9092", KafkaTLSAddr: "n1:9093"},
		{ID: 2, Rack: "b", ClusterAddr: "n2:9190", KafkaAddr: "n2:9092"},
		{ID: 3, Rack: "c", ClusterAddr: "n3:9190", KafkaAddr: "n3:9092"},
	} {
		if err := m.RegisterNode(n); err != nil {
			t.Fatal(err)
		}
	}
	if _, errs := m.CreateTopics([]meta.TopicSpec{{Name: "t", Partitions: 3, Replicas: [][]int32{{1}, {2}, {3}}}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if _, err := m.CreateTopic("old", 1, nil); err != nil { // no placement
		t.Fatal(err)
	}
	down := map[uint64]bool{3: true}
	v := NewClusterView(1, m, func() int32 { return 2 }, func(id uint64) bool { return !down[id] })

	if v.Self() != 1 || v.Controller() != 2 {
		t.Fatalf("self %d, controller %d", v.Self(), v.Controller())
	}
	if got := NewClusterView(1, m, nil, nil).Controller(); got != -1 {
		t.Fatalf("controller without a func: %d", got)
	}
	wantBrokers := []kafka.Broker{{ID: 1, Rack: "a", Addr: "n1:9092", TLSAddr: "n1:9093"}, {ID: 2, Rack: "b", Addr: "n2:9092"}}
	if got := v.Brokers(); !reflect.DeepEqual(got, wantBrokers) {
		t.Fatalf("brokers %+v, want %+v", got, wantBrokers)
	}

	for p, want := range []kafka.Replicas{
		{Leader: 1, Replicas: []int32{1}, ISR: []int32{1}},
		{Leader: 2, Replicas: []int32{2}, ISR: []int32{2}},
		{Leader: -1, Replicas: []int32{3}, ISR: []int32{}, Offline: []int32{3}},
	} {
		if got := v.Partition("t", int32(p)); !reflect.DeepEqual(got, want) {
			t.Errorf("partition %d: %+v, want %+v", p, got, want)
		}
	}
	if got := v.Partition("t", 3); got.Leader != -1 {
		t.Errorf("a missing partition has leader %d", got.Leader)
	}
	if got := v.Partition("__consumer_offsets", 7); got.Leader != 1 {
		t.Errorf("a topic only this node shows (internal): leader %d, want this node", got.Leader)
	}
	if got := v.Partition("old", 0); got.Leader != 1 {
		t.Errorf("an unplaced topic: leader %d, want this node", got.Leader)
	}

	// Coordinators: the hash over the live ids, never the dead node, and
	// both live nodes get some keys.
	seen := map[int32]int{}
	for i := range 200 {
		key := fmt.Sprintf("group-%d", i)
		got := v.Coordinator(0, key)
		h := fnv.New32a()
		h.Write([]byte(key))
		if want := []int32{1, 2}[h.Sum32()%2]; got != want {
			t.Fatalf("coordinator of %q: %d, want %d", key, got, want)
		}
		if v.Coordinator(1, key) != got {
			t.Fatalf("a transactional id and a group of the same name differ")
		}
		seen[got]++
	}
	if seen[1] == 0 || seen[2] == 0 || len(seen) != 2 {
		t.Fatalf("coordinators %v", seen)
	}
	// Node 3 back: keys spread over three.
	delete(down, 3)
	seen = map[int32]int{}
	for i := range 200 {
		seen[v.Coordinator(0, fmt.Sprintf("group-%d", i))]++
	}
	if seen[3] == 0 {
		t.Fatalf("node 3 back coordinates nothing: %v", seen)
	}
	if got := v.Partition("t", 2); got.Leader != 3 {
		t.Fatalf("partition 2 with node 3 back: leader %d", got.Leader)
	}
}

// Without registered nodes no coordinator is available.
func TestClusterViewEmptyRegistry(t *testing.T) {
	m, err := meta.Open(t.TempDir(), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v := NewClusterView(1, m, nil, nil)
	if got := v.Coordinator(0, "g"); got != -1 {
		t.Fatalf("coordinator %d", got)
	}
	if got := v.Brokers(); len(got) != 0 {
		t.Fatalf("brokers %v", got)
	}
}
