package test

// Black-box tests of the Kafka admin APIs that move leaders and replicas
// on a cluster (docs/clustering.md, "Moving replicas and leaders"):
// ElectLeaders, automatic leader balancing, AlterPartitionReassignments
// and ListPartitionReassignments, through kadm against three real nodes.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// adminCluster starts three nodes with extra flags and returns them, a
// client over all three and its admin client.
func adminCluster(t *testing.T, extra ...string) ([]*broker, *kgo.Client, *kadm.Client) {
	t.Helper()
	nodes := startCluster(t, 3, extra...)
	all := map[uint64]bool{1: true, 2: true, 3: true}
	waitFor(t, 30*time.Second, "three nodes registered, running, one leader", func() bool {
		return agreedLeader(t, nodes, 3, all) != 0
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(nodes[0].Kafka, nodes[1].Kafka, nodes[2].Kafka),
		kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return nodes, cl, kadm.NewClient(cl)
}

// awayFromPreferred creates topic with replication factor 3 and makes
// its partition 0 led by another than its preferred replica, with all
// three replicas in sync: the replicas are reordered (a reassignment)
// so that the leader is no longer first. It returns the preferred
// replica.
func awayFromPreferred(t *testing.T, ctx context.Context, cl *kgo.Client, adm *kadm.Client, topic string) int32 {
	t.Helper()
	if r, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v / %v %s", topic, err, r.Err, r.ErrMessage)
	}
	var pd kadm.PartitionDetail
	waitFor(t, 30*time.Second, "a leader and three replicas in sync", func() bool {
		var ok bool
		pd, ok = partitionView(ctx, cl, topic)
		return ok && pd.Leader > 0 && len(pd.Replicas) == 3 && len(pd.ISR) == 3
	})
	preferred := pd.Replicas[0]
	if pd.Leader == preferred {
		// The first replica of a new partition stands first and
		// usually leads: reorder the replicas so that the leader comes
		// last (a move to the same replicas, done at once; the leader
		// stays). With automatic balancing on, the new preferred replica
		// may take over at once, so this returns without waiting for
		// anything else.
		target := append(slices.DeleteFunc(slices.Clone(pd.Replicas), func(r int32) bool { return r == pd.Leader }), pd.Leader)
		var req kadm.AlterPartitionAssignmentsReq
		req.Assign(topic, 0, target)
		if rs, err := adm.AlterPartitionAssignments(ctx, req); err != nil || rs[topic][0].Err != nil {
			t.Fatalf("reorder the replicas of %s: %v %v", topic, err, rs[topic][0].Err)
		}
		waitFor(t, 30*time.Second, "the replicas reordered, the move done", func() bool {
			lr, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {0: {}}})
			if _, moving := lr[topic][0]; err != nil || moving {
				return false
			}
			pd, ok := partitionView(ctx, cl, topic)
			return ok && slices.Equal(pd.Replicas, target) && len(pd.ISR) == 3
		})
		return target[0]
	}
	waitFor(t, 60*time.Second, "three replicas in sync, led by another than the preferred one", func() bool {
		pd, ok := partitionView(ctx, cl, topic)
		return ok && pd.Leader > 0 && pd.Leader != preferred && len(pd.ISR) == 3 && len(pd.OfflineReplicas) == 0
	})
	return preferred
}

// TestClusterElectLeaders: with automatic balancing off, a partition led
// by another than its preferred replica gets it back through ElectLeaders
// (PREFERRED), and Metadata shows it; a second election is
// ELECTION_NOT_NEEDED, an unknown partition UNKNOWN_TOPIC_OR_PARTITION,
// and an UNCLEAN election of a partition with a leader
// ELECTION_NOT_NEEDED. A node that holds no replica of a partition takes
// its election too.
func TestClusterElectLeaders(t *testing.T) {
	nodes, cl, adm := adminCluster(t, "--auto-leader-rebalance-enable=false")
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	preferred := awayFromPreferred(t, ctx, cl, adm, "elect")

	rs, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"elect": {0: {}, 7: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rs["elect"][0]; r.Err != nil {
		t.Fatalf("preferred election: %v %s", r.Err, r.ErrMessage)
	}
	if r := rs["elect"][7]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("partition 7 of a one-partition topic: %v", r.Err)
	}
	// Answered once the preferred replica leads, as this node sees it;
	// every node's Metadata follows.
	for _, b := range nodes {
		c, err := kgo.NewClient(kgo.SeedBrokers(b.Kafka))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, fmt.Sprintf("node %s shows the preferred replica %d leading", b.Kafka, preferred), func() bool {
			pd, ok := partitionView(ctx, c, "elect")
			return ok && pd.Leader == preferred
		})
		c.Close()
	}
	rs, err = adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"elect": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rs["elect"][0]; !errors.Is(r.Err, kerr.ElectionNotNeeded) {
		t.Errorf("second preferred election: %v, want ELECTION_NOT_NEEDED", r.Err)
	}
	rs, err = adm.ElectLeaders(ctx, kadm.ElectLiveReplica, kadm.TopicsSet{"elect": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rs["elect"][0]; !errors.Is(r.Err, kerr.ElectionNotNeeded) {
		t.Errorf("unclean election of a led partition: %v, want ELECTION_NOT_NEEDED", r.Err)
	}
	// All partitions (a null topic list): nothing left to elect, and
	// partitions that need none are left out, as in Kafka.
	rs, err = adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs["elect"]) != 0 {
		t.Errorf("election of all partitions: %v, want none listed", rs)
	}

	// A partition on nodes 2 and 3 only: node 1, which holds no replica,
	// takes the election and its leader acts on it.
	creq := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "blind", -1, -1
	ca := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ca.Partition, ca.Replicas = 0, []int32{2, 3}
	ct.ReplicaAssignment = append(ct.ReplicaAssignment, ca)
	creq.Topics = append(creq.Topics, ct)
	if cresp, err := creq.RequestWith(ctx, cl); err != nil || cresp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create blind on [2 3]: %v %+v", err, cresp)
	}
	seenBy := func(id int) (leader int32, isr int) {
		mreq := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("blind")
		mreq.Topics = append(mreq.Topics, mt)
		resp, err := cl.Broker(id).Request(ctx, mreq)
		if err != nil {
			return -1, 0
		}
		md := resp.(*kmsg.MetadataResponse)
		if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 1 {
			return -1, 0
		}
		return md.Topics[0].Partitions[0].Leader, len(md.Topics[0].Partitions[0].ISR)
	}
	var lead int32
	waitFor(t, 30*time.Second, "blind-0 led by node 2 or 3, both in sync", func() bool {
		l, isr := seenBy(3)
		lead = l
		return (l == 2 || l == 3) && isr == 2
	})
	// The other replica becomes the preferred one: a reassignment that
	// only reorders the replicas, done at once (no membership change).
	other := 5 - lead
	var reorder kadm.AlterPartitionAssignmentsReq
	reorder.Assign("blind", 0, []int32{other, lead})
	if rs, err := adm.AlterPartitionAssignments(ctx, reorder); err != nil || rs["blind"][0].Err != nil {
		t.Fatalf("reorder: %v %v", err, rs["blind"][0].Err)
	}
	waitFor(t, 30*time.Second, "blind-0 reordered, not moving, still led by the same node", func() bool {
		lr, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"blind": {0: {}}})
		pd, ok := partitionView(ctx, cl, "blind")
		l, _ := seenBy(3)
		return err == nil && len(lr["blind"]) == 0 && ok && slices.Equal(pd.Replicas, []int32{other, lead}) && l == lead
	})
	ereq := kmsg.NewPtrElectLeadersRequest()
	ereq.TimeoutMillis = 15000
	et := kmsg.NewElectLeadersRequestTopic()
	et.Topic, et.Partitions = "blind", []int32{0}
	ereq.Topics = append(ereq.Topics, et)
	resp, err := cl.Broker(1).Request(ctx, ereq)
	if err != nil {
		t.Fatal(err)
	}
	if er := resp.(*kmsg.ElectLeadersResponse); len(er.Topics) != 1 || er.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("election through node 1: %+v", er)
	}
	waitFor(t, 20*time.Second, "nodes 2 and 3 show the preferred replica leading blind-0", func() bool {
		l2, _ := seenBy(2)
		l3, _ := seenBy(3)
		return l2 == other && l3 == other
	})
}

// TestClusterLeaderBalancing: with a one-second imbalance check, a
// partition led by another than its preferred replica is handed back to
// it without any request, and the broker config reports the settings.
func TestClusterLeaderBalancing(t *testing.T) {
	nodes, cl, adm := adminCluster(t, "--leader-imbalance-check-interval", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	preferred := awayFromPreferred(t, ctx, cl, adm, "balance")
	waitFor(t, 30*time.Second, "the preferred replica leads again", func() bool {
		pd, ok := partitionView(ctx, cl, "balance")
		return ok && pd.Leader == preferred
	})
	// The client reaches broker 1 only while the Metadata it last got
	// lists it, and a node lists the brokers it is connected to: in one
	// CI run a Metadata answer left node 1 out. Ask again, and say
	// what each node saw when it had to.
	var rc kadm.ResourceConfigs
	logged := false
	waitFor(t, 30*time.Second, "broker 1's configs described", func() bool {
		var err error
		if rc, err = adm.DescribeBrokerConfigs(ctx, 1); err != nil && !logged {
			logged = true // once: the first failure says what each node saw
			for _, b := range nodes {
				t.Logf("describe broker 1: %v; node at %s sees %+v", err, b.Kafka, clusterView(t, b))
			}
		}
		return err == nil
	})
	want := map[string]string{"auto.leader.rebalance.enable": "true", "leader.imbalance.check.interval.seconds": "1",
		"leader.imbalance.per.broker.percentage": "10"}
	for _, r := range rc {
		for _, c := range r.Configs {
			if v, ok := want[c.Key]; ok {
				if c.MaybeValue() != v {
					t.Errorf("%s = %q, want %q", c.Key, c.MaybeValue(), v)
				}
				delete(want, c.Key)
			}
		}
	}
	if len(want) != 0 {
		t.Errorf("broker configs without %v", want)
	}
}

// TestClusterReassignPartition: a partition of replication factor 2 on
// two of three nodes moves to the second and the third: the move is
// listed until done, Metadata then shows the new replicas, the node that
// left holds none, and with it killed every record produced before and
// after the move is read back from the new replicas.
func TestClusterReassignPartition(t *testing.T) {
	nodes, cl, adm := adminCluster(t, "--auto-leader-rebalance-enable=false")
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	if r, err := adm.CreateTopic(ctx, 1, 2, nil, "move"); err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v %s", err, r.Err, r.ErrMessage)
	}
	var pd kadm.PartitionDetail
	waitFor(t, 30*time.Second, "a leader and two replicas in sync", func() bool {
		var ok bool
		pd, ok = partitionView(ctx, cl, "move")
		return ok && pd.Leader > 0 && len(pd.Replicas) == 2 && len(pd.ISR) == 2
	})
	old := slices.Clone(pd.Replicas)
	var third int32
	for id := int32(1); id <= 3; id++ {
		if !slices.Contains(old, id) {
			third = id
		}
	}
	leaving, staying := old[0], old[1]
	target := []int32{staying, third}
	t.Logf("moving move-0 from %v to %v (leader %d)", old, target, pd.Leader)

	prod, err := kgo.NewClient(kgo.SeedBrokers(nodes[0].Kafka, nodes[1].Kafka, nodes[2].Kafka),
		kgo.DefaultProduceTopic("move"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MetadataMinAge(250*time.Millisecond), kgo.RecordDeliveryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	next := 0
	produce := func(n int) {
		t.Helper()
		for range n {
			r := &kgo.Record{Value: []byte(strconv.Itoa(next))}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", next, err)
			}
			next++
		}
	}
	produce(100)

	// Refused: an unknown node, a partition that is not there; a
	// cancellation of nothing. (A target of one replica is a move like
	// any other: TestClusterMoveOneReplica.)
	var bad kadm.AlterPartitionAssignmentsReq
	bad.Assign("move", 5, []int32{1, 2})
	if rs, err := adm.AlterPartitionAssignments(ctx, bad); err != nil {
		t.Fatal(err)
	} else if r := rs["move"][5]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("partition 5: %v", r.Err)
	}
	bad = nil
	bad.Assign("move", 0, []int32{staying, 9})
	if rs, err := adm.AlterPartitionAssignments(ctx, bad); err != nil || !errors.Is(rs["move"][0].Err, kerr.InvalidReplicaAssignment) {
		t.Errorf("unknown node 9: %v %v", err, rs["move"][0].Err)
	}
	bad = nil
	bad.CancelAssign("move", 0)
	if rs, err := adm.AlterPartitionAssignments(ctx, bad); err != nil || !errors.Is(rs["move"][0].Err, kerr.NoReassignmentInProgress) {
		t.Errorf("cancelling no move: %v %v", err, rs["move"][0].Err)
	}

	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("move", 0, target)
	rs, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := rs["move"][0]; r.Err != nil {
		t.Fatalf("reassign: %v %s", r.Err, r.ErrMessage)
	}
	// Listed while in progress, with what it adds and removes.
	lr, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"move": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if l, moving := lr["move"][0]; moving {
		if !slices.Equal(l.AddingReplicas, []int32{third}) || !slices.Equal(l.RemovingReplicas, []int32{leaving}) ||
			!slices.Equal(l.Replicas, []int32{staying, third, leaving}) {
			t.Errorf("listed as %+v", l)
		}
	}
	waitFor(t, 60*time.Second, "the move done: listed no more, Metadata shows the new replicas in sync", func() bool {
		lr, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"move": {0: {}}})
		if err != nil || len(lr["move"]) != 0 {
			return false
		}
		pd, ok := partitionView(ctx, cl, "move")
		return ok && slices.Equal(pd.Replicas, target) && len(pd.ISR) == 2 && slices.Contains(target, pd.Leader)
	})
	produce(100)

	// The node that left deletes its copy; the node that joined has one,
	// with its Raft log.
	partDir := func(id int32) string { return filepath.Join(nodes[id-1].DataDir, "topics", "move-0") }
	waitFor(t, 20*time.Second, "the leaving node's copy deleted", func() bool {
		_, err1 := os.Stat(partDir(leaving))
		_, err2 := os.Stat(partDir(leaving) + ".raft")
		return os.IsNotExist(err1) && os.IsNotExist(err2)
	})
	if _, err := os.Stat(partDir(third) + ".raft"); err != nil {
		t.Errorf("the joining node's Raft log: %v", err)
	}
	// Killed, the node that left is not needed to read everything back.
	nodes[leaving-1].Kill()
	cons, err := kgo.NewClient(kgo.SeedBrokers(nodes[staying-1].Kafka, nodes[third-1].Kafka),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"move": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []int
	for len(got) < next && ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			n, _ := strconv.Atoi(string(r.Value))
			got = append(got, n)
		})
	}
	for i, n := range got {
		if n != i {
			t.Fatalf("record %d is %d: read %d of %d", i, n, len(got), next)
		}
	}
	if len(got) != next {
		t.Fatalf("read %d of %d records", len(got), next)
	}
	// With both new replicas up, the partition still takes writes.
	produce(1)
}

// TestClusterReassignCancel: a move to a node that is down waits, listed
// with the replica it adds; a new target replaces it (as in Kafka) and is
// reached; moved to the dead node again and cancelled (null replicas), it
// becomes a move back that ends with the replicas from before, as
// Metadata shows, and the partition keeps taking writes throughout.
func TestClusterReassignCancel(t *testing.T) {
	nodes, cl, adm := adminCluster(t, "--auto-leader-rebalance-enable=false")
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	if r, err := adm.CreateTopic(ctx, 1, 2, nil, "stuck"); err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v %s", err, r.Err, r.ErrMessage)
	}
	var pd kadm.PartitionDetail
	waitFor(t, 30*time.Second, "a leader and two replicas in sync", func() bool {
		var ok bool
		pd, ok = partitionView(ctx, cl, "stuck")
		return ok && pd.Leader > 0 && len(pd.Replicas) == 2 && len(pd.ISR) == 2
	})
	old := slices.Clone(pd.Replicas)
	third := 6 - old[0] - old[1]
	nodes[third-1].Kill()

	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("stuck", 0, []int32{old[1], third})
	if rs, err := adm.AlterPartitionAssignments(ctx, req); err != nil || rs["stuck"][0].Err != nil {
		t.Fatalf("reassign: %v %v", err, rs["stuck"][0].Err)
	}
	listed := func() (kadm.ListPartitionReassignmentsResponse, bool) {
		lr, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"stuck": {0: {}}})
		if err != nil {
			return kadm.ListPartitionReassignmentsResponse{}, true // unknown: not done
		}
		l, ok := lr["stuck"][0]
		return l, ok
	}
	// The new replica cannot catch up: the move stays listed.
	for range 10 {
		l, ok := listed()
		if !ok || !slices.Equal(l.AddingReplicas, []int32{third}) || !slices.Equal(l.RemovingReplicas, []int32{old[0]}) {
			t.Fatalf("a move to a dead node listed as %+v (%v)", l, ok)
		}
		time.Sleep(100 * time.Millisecond) // observing that nothing changes
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(nodes[old[0]-1].Kafka, nodes[old[1]-1].Kafka),
		kgo.DefaultProduceTopic("stuck"), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("during")}).FirstErr(); err != nil {
		t.Fatalf("produce while moving: %v", err)
	}

	// A new target replaces the stuck move's, as in Kafka: the two live
	// replicas, the other one preferred now.
	swapped := []int32{old[1], old[0]}
	var swap kadm.AlterPartitionAssignmentsReq
	swap.Assign("stuck", 0, swapped)
	if rs, err := adm.AlterPartitionAssignments(ctx, swap); err != nil || rs["stuck"][0].Err != nil {
		t.Fatalf("a new target while moving: %v %v", err, rs["stuck"][0].Err)
	}
	// done waits for no move to be listed and Metadata to show want, both
	// in sync.
	done := func(what string, want []int32) {
		t.Helper()
		waitFor(t, 30*time.Second, what, func() bool {
			if _, moving := listed(); moving {
				return false
			}
			pd, ok := partitionView(ctx, cl, "stuck")
			return ok && slices.Equal(pd.Replicas, want) && len(pd.ISR) == 2
		})
	}
	done("the replaced move done: not listed, the new target in sync", swapped)
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("swapped")}).FirstErr(); err != nil {
		t.Fatalf("produce after the new target: %v", err)
	}
	// Stuck again, to cancel this time.
	old = swapped
	if rs, err := adm.AlterPartitionAssignments(ctx, req); err != nil || rs["stuck"][0].Err != nil {
		t.Fatalf("reassign again: %v %v", err, rs["stuck"][0].Err)
	}
	waitFor(t, 10*time.Second, "the second move listed", func() bool {
		_, moving := listed()
		return moving
	})

	var undo kadm.AlterPartitionAssignmentsReq
	undo.CancelAssign("stuck", 0)
	if rs, err := adm.AlterPartitionAssignments(ctx, undo); err != nil || rs["stuck"][0].Err != nil {
		t.Fatalf("cancel: %v %v", err, rs["stuck"][0].Err)
	}
	done("the cancelled move done: not listed, the replicas from before in sync", old)
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after the cancellation: %v", err)
	}
}
