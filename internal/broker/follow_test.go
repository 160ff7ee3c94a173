package broker

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
)

// openNode opens a broker as node id of a cluster whose registry holds
// nodes, over a single-node metadata store: commands proposed to the
// store directly stand for changes made through other nodes.
func openNode(t *testing.T, id uint64, nodes ...meta.Node) (*Broker, *meta.Store) {
	t.Helper()
	dir := t.TempDir()
	m, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := m.RegisterNode(n); err != nil {
			t.Fatal(err)
		}
	}
	b, err := New(Options{DataDir: dir, Logger: slog.New(slog.DiscardHandler), Defaults: Defaults{Partitions: 1}, NodeID: id}, m)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		m.Close()
	})
	return b, m
}

func threeNodes() []meta.Node {
	return []meta.Node{{ID: 1, ClusterAddr: "n1:9190"}, {ID: 2, ClusterAddr: "n2:9190"}, {ID: 3, ClusterAddr: "n3:9190"}}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func oneRecord() []byte {
	return storage.BuildRecordBatch(0, 1, []storage.Record{{Value: []byte("v")}})
}

// A topic created, grown, reconfigured and deleted through another node
// is followed: this node opens the partitions placed on it, stands in
// for the others (refusing writes, touching no file), and deletes its
// data when the topic goes.
func TestFollowChangesOfOtherNodes(t *testing.T) {
	b, m := openNode(t, 1, threeNodes()...)
	_, errs := m.CreateTopics([]meta.TopicSpec{{Name: "t", Partitions: 3, Replicas: [][]int32{{1}, {2}, {3}}}})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	waitFor(t, "the topic to open", func() bool { _, ok := b.Topic("t"); return ok })
	tp, _ := b.Topic("t")
	if len(tp.Partitions) != 3 {
		t.Fatalf("%d partitions open", len(tp.Partitions))
	}
	if _, _, err := tp.Partitions[0].Append(oneRecord()); err != nil {
		t.Fatalf("append to a held partition: %v", err)
	}
	for _, p := range []int32{1, 2} {
		if _, _, err := tp.Partitions[p].Append(oneRecord()); !errors.Is(err, ErrNotHeld) {
			t.Fatalf("append to partition %d, held elsewhere: %v", p, err)
		}
		if _, err := os.Stat(b.partitionDir("t", p)); !os.IsNotExist(err) {
			t.Fatalf("partition %d held elsewhere has files: %v", p, err)
		}
		if b.Holds(tp, p) {
			t.Fatalf("Holds(%d) on node 1", p)
		}
	}
	if !b.Holds(tp, 0) {
		t.Fatal("!Holds(0) on node 1")
	}

	if err := m.CreatePartitionsPlaced("t", 5, [][]int32{{1}, {2}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new partitions", func() bool { tp, _ := b.Topic("t"); return len(tp.Partitions) == 5 })
	tp, _ = b.Topic("t")
	if _, _, err := tp.Partitions[3].Append(oneRecord()); err != nil {
		t.Fatalf("append to new held partition 3: %v", err)
	}
	if _, _, err := tp.Partitions[4].Append(oneRecord()); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("append to new partition 4, held elsewhere: %v", err)
	}
	if want := [][]int32{{1}, {2}, {3}, {1}, {2}}; !reflect.DeepEqual(tp.Replicas, want) {
		t.Fatalf("replicas %v, want %v", tp.Replicas, want)
	}

	if err := m.AlterTopicConfigs("t", map[string]string{"retention.ms": "1234"}, nil, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the config", func() bool { tp, _ := b.Topic("t"); return tp.cfg.retention == 1234*time.Millisecond })

	if err := m.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	// The topic goes first, its data right after.
	waitFor(t, "the deletion and its data", func() bool {
		_, ok := b.Topic("t")
		_, err := os.Stat(b.partitionDir("t", 0))
		return !ok && os.IsNotExist(err)
	})

	// Deleted and created again with another id between two looks: the
	// broker ends with the new one.
	if _, err := m.CreateTopic("u", 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteTopic("u"); err != nil {
		t.Fatal(err)
	}
	again, errs := m.CreateTopics([]meta.TopicSpec{{Name: "u", Partitions: 2, Replicas: [][]int32{{2}, {1}}}})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	waitFor(t, "the new u", func() bool { tp, ok := b.Topic("u"); return ok && tp.ID == again[0].ID && len(tp.Partitions) == 2 })
}

// The broker's own changes are placed, work as before, and are not
// redone by the follower.
func TestFollowLocalChanges(t *testing.T) {
	b, m := openNode(t, 2, threeNodes()...)
	tp, err := b.CreateTopic("local", 6, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	count := map[int32]int{}
	for _, rs := range tp.Replicas {
		if len(rs) != 1 {
			t.Fatalf("replicas %v", tp.Replicas)
		}
		count[rs[0]]++
	}
	if !reflect.DeepEqual(count, map[int32]int{1: 2, 2: 2, 3: 2}) {
		t.Fatalf("6 partitions over 3 nodes: %v", tp.Replicas)
	}
	if mt, _ := m.Topic("local"); !reflect.DeepEqual(mt.Replicas, tp.Replicas) {
		t.Fatalf("metadata has %v, broker %v", mt.Replicas, tp.Replicas)
	}
	if err := b.Reconcile("local"); err != nil {
		t.Fatal(err)
	}
	if now, _ := b.Topic("local"); now != tp {
		t.Fatal("reconciling an unchanged topic replaced it")
	}
	if err := b.CreatePartitions("local", 8, false); err != nil {
		t.Fatal(err)
	}
	grown, _ := b.Topic("local")
	if len(grown.Replicas) != 8 || len(grown.Partitions) != 8 {
		t.Fatalf("grown: %d partitions, replicas %v", len(grown.Partitions), grown.Replicas)
	}
	// The round continues: partition 6 goes where partition 0 did.
	if grown.Replicas[6][0] != grown.Replicas[0][0] || grown.Replicas[7][0] != grown.Replicas[1][0] {
		t.Fatalf("grown replicas %v", grown.Replicas)
	}
	if mt, _ := m.Topic("local"); !reflect.DeepEqual(mt.Replicas, grown.Replicas) {
		t.Fatalf("metadata has %v, broker %v", mt.Replicas, grown.Replicas)
	}

	if r := b.CreateTopics([]TopicSpec{{Name: "rf2", Partitions: 1, Replicas: [][]int32{{1, 2}}}}, false)[0]; !errors.Is(r.Err, ErrInvalidReplicationFactor) {
		t.Fatalf("two replicas: %v", r.Err)
	}
	if r := b.CreateTopics([]TopicSpec{{Name: "nine", Partitions: 1, Replicas: [][]int32{{9}}}}, false)[0]; !errors.Is(r.Err, ErrInvalidReplicaAssignment) {
		t.Fatalf("an unregistered node: %v", r.Err)
	}
	r := b.CreateTopics([]TopicSpec{{Name: "manual", Partitions: 2, Replicas: [][]int32{{3}, {3}}}}, false)[0]
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if b.Holds(r.Topic, 0) || b.Holds(r.Topic, 1) {
		t.Fatal("node 2 holds partitions placed on node 3")
	}
	if err := b.CreatePartitionsAt("manual", 3, [][]int32{{2}}, false); err != nil {
		t.Fatal(err)
	}
	if tp, _ := b.Topic("manual"); !b.Holds(tp, 2) {
		t.Fatal("node 2 does not hold the partition placed on it")
	}
	if err := b.DeleteTopic("manual"); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Topic("manual"); ok {
		t.Fatal("deleted topic still open")
	}
}

// A single node places nothing, holds everything, refuses placements and
// follows no one.
func TestSingleNodeDoesNotFollow(t *testing.T) {
	b, m := openNode(t, 0)
	if b.follow != nil {
		t.Fatal("a single node follows")
	}
	tp, err := b.CreateTopic("s", 3, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if tp.Replicas != nil {
		t.Fatalf("a single node placed its topic: %v", tp.Replicas)
	}
	for p := range int32(3) {
		if !b.Holds(tp, p) {
			t.Fatalf("a single node does not hold partition %d", p)
		}
	}
	if r := b.CreateTopics([]TopicSpec{{Name: "m", Partitions: 1, Replicas: [][]int32{{1}}}}, false)[0]; !errors.Is(r.Err, ErrInvalidReplicaAssignment) {
		t.Fatalf("a placement on a single node: %v", r.Err)
	}
	if _, err := m.CreateTopic("behind", 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Reconcile("s"); err != nil { // explicit reconciling still works
		t.Fatal(err)
	}
	if _, ok := b.Topic("behind"); ok {
		t.Fatal("a single node followed a change it did not make")
	}
}

// A snapshot installed from the leader replaces the metadata state
// unseen: its ChangeSnapshot makes the follower reconcile every topic.
func TestFollowSnapshot(t *testing.T) {
	b, m := openNode(t, 1, threeNodes()...)
	m.Observe(nil) // as if these came in a snapshot
	if _, errs := m.CreateTopics([]meta.TopicSpec{{Name: "snap", Partitions: 2, Replicas: [][]int32{{1}, {2}}}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	b.meta.Observe(func(c meta.Change) { b.follow.add(c.Topic) })
	if _, ok := b.Topic("snap"); ok {
		t.Fatal("followed a change it was not told of")
	}
	b.follow.add("") // what a ChangeSnapshot queues
	waitFor(t, "the topic of the snapshot", func() bool { tp, ok := b.Topic("snap"); return ok && len(tp.Partitions) == 2 })
}

// A change the cluster's metadata could not take is told apart, to be
// retried.
func TestMetaErrNoLeader(t *testing.T) {
	for _, e := range []error{meta.ErrNoLeader, meta.ErrProposalTimeout} {
		if err := metaErr(e); !errors.Is(err, ErrMetaUnavailable) || !errors.Is(err, e) {
			t.Errorf("metaErr(%v) = %v", e, err)
		}
	}
}
