package test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterMoveOneReplica: partitions of replication factor 1 moved with
// AlterPartitionReassignments, as Kafka's kafka-reassign-partitions does:
// one given two more replicas (its plain log becomes a Raft group and is
// copied to them), one moved to another node (its old copy deleted). With
// records produced before, during nothing, and after the moves, the first
// partition's original node is killed (-9) and a new leader takes writes;
// the moved one's node is killed and restarted (a group of one voter
// elects itself again). A partition of three replicas is moved down to one
// on that node too. Everything acknowledged is read back in order,
// exactly once. A compacted topic of one replica is refused.
func TestClusterMoveOneReplica(t *testing.T) {
	nodes, cl, adm := adminCluster(t, "--auto-leader-rebalance-enable=false")
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	view := func(topic string) (kadm.PartitionDetail, bool) { return partitionView(ctx, cl, topic) }
	create := func(topic string, configs map[string]*string) int32 {
		t.Helper()
		if r, err := adm.CreateTopic(ctx, 1, 1, configs, topic); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v / %v %s", topic, err, r.Err, r.ErrMessage)
		}
		var pd kadm.PartitionDetail
		waitFor(t, 30*time.Second, topic+" led by its one replica", func() bool {
			var ok bool
			pd, ok = view(topic)
			return ok && pd.Leader > 0 && len(pd.Replicas) == 1
		})
		return pd.Replicas[0]
	}
	grown, moved, shrunk := "grown", "moved", "shrunk"
	x, y := create(grown, nil), create(moved, nil)
	if r, err := adm.CreateTopic(ctx, 1, 3, nil, shrunk); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v / %v %s", shrunk, err, r.Err, r.ErrMessage)
	}
	waitFor(t, 30*time.Second, shrunk+" led, three replicas in sync", func() bool {
		pd, ok := view(shrunk)
		return ok && pd.Leader > 0 && len(pd.ISR) == 3
	})
	z := int32(0) // where moved goes: neither x nor y
	for id := int32(1); id <= 3; id++ {
		if id != x && id != y {
			z = id
		}
	}
	var others []int32
	for id := int32(1); id <= 3; id++ {
		if id != x {
			others = append(others, id)
		}
	}
	growTarget := append([]int32{x}, others...)
	t.Logf("%s on %d grows to %v; %s moves from %d to %d; %s shrinks to %d", grown, x, growTarget, moved, y, z, shrunk, z)

	prod, err := kgo.NewClient(kgo.SeedBrokers(nodes[0].Kafka, nodes[1].Kafka, nodes[2].Kafka),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MetadataMinAge(250*time.Millisecond), kgo.RecordDeliveryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	next := map[string]int{}
	pad := strings.Repeat("p", 3000)
	produce := func(topic string, n int) {
		t.Helper()
		for range n {
			// 3 KB values: the plain log's 900 KB make several entries.
			r := &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(next[topic]) + "|" + pad)}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %s %d: %v", topic, next[topic], err)
			}
			next[topic]++
		}
	}
	produce(grown, 300)
	produce(moved, 300)
	produce(shrunk, 300)

	// Refused: a compacted partition of one replica (its gaps could not
	// be copied at the same offsets).
	compact := "compacted"
	policy := "compact"
	create(compact, map[string]*string{"cleanup.policy": &policy})
	var bad kadm.AlterPartitionAssignmentsReq
	bad.Assign(compact, 0, []int32{1, 2, 3})
	if rs, err := adm.AlterPartitionAssignments(ctx, bad); err != nil || !errors.Is(rs[compact][0].Err, kerr.InvalidReplicationFactor) {
		t.Errorf("moving a compacted partition of one replica: %v %v", err, rs[compact][0].Err)
	}

	// The same refused through the CLI, which moves the second topic.
	if out, errOut, err := runCLI(t, nodes[0], "", "topic", "reassign", compact, "--partition", "0", "--replicas", "1,2,3"); err == nil ||
		!strings.Contains(errOut, "INVALID_REPLICATION_FACTOR") {
		t.Errorf("sluice topic reassign of a compacted partition: %v\n%s%s", err, out, errOut)
	}
	zs := strconv.Itoa(int(z))
	if out := mustCLI(t, nodes[0], "", "topic", "reassign", moved, "--partition", "0", "--replicas", zs); !strings.Contains(out, "partition 0: moving to "+zs) {
		t.Errorf("sluice topic reassign said %q", out)
	}

	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(grown, 0, growTarget)
	req.Assign(shrunk, 0, []int32{z})
	rs, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{grown, shrunk} {
		if r := rs[topic][0]; r.Err != nil {
			t.Fatalf("reassign %s: %v %s", topic, r.Err, r.ErrMessage)
		}
	}
	waitFor(t, 90*time.Second, "the moves done: listed no more, Metadata shows the new replicas in sync", func() bool {
		lr, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{grown: {0: {}}, moved: {0: {}}, shrunk: {0: {}}})
		if err != nil || len(lr[grown]) != 0 || len(lr[moved]) != 0 || len(lr[shrunk]) != 0 {
			return false
		}
		g, ok1 := view(grown)
		m, ok2 := view(moved)
		s, ok3 := view(shrunk)
		return ok1 && ok2 && ok3 && slices.Equal(g.Replicas, growTarget) && len(g.ISR) == 3 && g.Leader > 0 &&
			slices.Equal(m.Replicas, []int32{z}) && m.Leader == z && slices.Equal(s.Replicas, []int32{z}) && s.Leader == z
	})
	moveDone := time.Now()
	if out := mustCLI(t, nodes[0], "", "topic", "reassignments"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("sluice topic reassignments lists moves after they are done:\n%s", out)
	}
	produce(grown, 100)
	produce(moved, 100)
	produce(shrunk, 100)
	for _, id := range []int32{x, y} {
		if !strings.Contains(nodes[id-1].Logs(), "its plain log is now a Raft group") {
			t.Errorf("node %d does not say it made its plain log a Raft group", id)
		}
	}

	// Every replica of grown has its Raft log; moved's old node has
	// deleted its copy, its new one holds it as a Raft group.
	partDir := func(id int32, topic string) string { return filepath.Join(nodes[id-1].DataDir, "topics", topic+"-0") }
	for _, id := range growTarget {
		if _, err := os.Stat(partDir(id, grown) + ".raft"); err != nil {
			t.Errorf("node %d: %v", id, err)
		}
	}
	if _, err := os.Stat(partDir(z, moved) + ".raft"); err != nil {
		t.Errorf("node %d: %v", z, err)
	}
	gone := func(id int32, topic string) bool {
		_, err1 := os.Stat(partDir(id, topic))
		_, err2 := os.Stat(partDir(id, topic) + ".raft")
		return os.IsNotExist(err1) && os.IsNotExist(err2)
	}
	waitFor(t, 20*time.Second, "the old copies of "+moved+" and "+shrunk+" deleted", func() bool {
		for id := int32(1); id <= 3; id++ {
			if id != z && !gone(id, shrunk) {
				return false
			}
		}
		return gone(y, moved)
	})

	// readAll reads topic from the start through the nodes in seeds and
	// checks it holds every record produced, in order, once; it returns
	// the leader epoch each record's batch holds.
	readAll := func(topic string, seeds ...string) []int32 {
		t.Helper()
		cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
		defer rcancel()
		var got []int
		var epochs []int32
		for len(got) < next[topic] && rctx.Err() == nil {
			cons.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
				v, _, _ := strings.Cut(string(r.Value), "|")
				n, _ := strconv.Atoi(v)
				got = append(got, n)
				epochs = append(epochs, r.LeaderEpoch)
			})
		}
		for i, n := range got {
			if n != i {
				t.Fatalf("%s: record %d is %d: read %d of %d", topic, i, n, len(got), next[topic])
			}
		}
		if len(got) != next[topic] {
			t.Fatalf("%s: read %d of %d records", topic, len(got), next[topic])
		}
		return epochs
	}
	// The records of the plain log keep the leader epoch they were
	// written with on every replica: read from grown's first node (its
	// leader), then from another replica once it is killed.
	before := readAll(grown, nodes[x-1].Kafka)[:300]

	// grown's first node killed: another replica leads, with every record.
	nodes[x-1].Kill()
	waitFor(t, 30*time.Second, grown+" led by another replica", func() bool {
		pd, ok := view(grown)
		return ok && pd.Leader > 0 && pd.Leader != x
	})
	produce(grown, 100)
	// moved's node killed and restarted: its group of one elects it again.
	// Once it has compacted its Raft logs after the moves, first (their
	// snapshots then hold the configuration without the nodes removed,
	// from which a restart must go on).
	waitFor(t, 30*time.Second, "node "+strconv.Itoa(int(z))+" compacted the Raft logs of "+moved+" and "+shrunk+" after the moves", func() bool {
		for _, topic := range []string{moved, shrunk} {
			fi, err := os.Stat(filepath.Join(partDir(z, topic)+".raft", "raft.snap"))
			if err != nil || !fi.ModTime().After(moveDone.Add(500*time.Millisecond)) {
				return false
			}
		}
		return true
	})
	if z != x {
		nodes[z-1].Kill()
	}
	nodes[z-1].Restart()
	waitFor(t, 60*time.Second, moved+" and "+shrunk+" led by their node again", func() bool {
		pd, ok := view(moved)
		ps, ok2 := view(shrunk)
		return ok && ok2 && pd.Leader == z && ps.Leader == z
	})
	produce(moved, 100)
	produce(shrunk, 100)

	var survivors []string
	for _, n := range nodes {
		if n != nodes[x-1] {
			survivors = append(survivors, n.Kafka)
		}
	}
	if after := readAll(grown, survivors...)[:300]; !slices.Equal(after, before) {
		t.Errorf("leader epochs of the records from before the move differ between replicas:\n%v\n%v", before, after)
	}
	if old := readAll(moved, survivors...)[:300]; !slices.Equal(old, before) {
		t.Errorf("leader epochs of %s's records from before the move, on its new node: %v, want %v", moved, old, before)
	}
	readAll(shrunk, survivors...)
}
