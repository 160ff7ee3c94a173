package test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterLeaderThroughNonReplica: on four nodes, a partition of three
// replicas is described by the fourth node, which holds none, with the
// leader and leader epoch its replicas report, as every Kafka broker
// describes every partition. Its first replica leads; killed (-9), another
// replica takes over; restarted, the first replica is alive again but does
// not lead (leader balancing is off), where naming the first live replica
// would name it.
func TestClusterLeaderThroughNonReplica(t *testing.T) {
	nodes := startCluster(t, 4, "--auto-leader-rebalance-enable=false")
	waitFor(t, 30*time.Second, "four registered nodes", func() bool { return len(clusterView(t, nodes[0])) == 4 })
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(nodes[0].Kafka, nodes[1].Kafka, nodes[2].Kafka, nodes[3].Kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if r, err := adm.CreateTopic(ctx, 1, 3, nil, "led"); err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v %s", err, r.Err, r.ErrMessage)
	}
	// seenBy asks node id alone for the partition's leader and epoch.
	seenBy := func(id int32) (leader, epoch int32, replicas []int32) {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("led")
		req.Topics = append(req.Topics, rt)
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		defer rcancel()
		resp, err := cl.Broker(int(id)).Request(rctx, req)
		if err != nil {
			return -2, -2, nil
		}
		md := resp.(*kmsg.MetadataResponse)
		if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 1 {
			return -2, -2, nil
		}
		p := md.Topics[0].Partitions[0]
		return p.Leader, p.LeaderEpoch, p.Replicas
	}
	var replicas []int32
	var first, other int32
	waitFor(t, 30*time.Second, "the first replica leads, as its replicas say", func() bool {
		_, _, replicas = seenBy(1)
		if len(replicas) != 3 {
			return false
		}
		first = replicas[0]
		l, _, _ := seenBy(first)
		return l == first
	})
	for id := int32(1); id <= 4; id++ {
		if id != replicas[0] && id != replicas[1] && id != replicas[2] {
			other = id
		}
	}
	t.Logf("replicas %v; node %d holds none", replicas, other)

	nodes[first-1].Kill()
	var leader, epoch int32
	waitFor(t, 30*time.Second, "another replica leads", func() bool {
		leader, epoch, _ = seenBy(replicas[1])
		return leader > 0 && leader != first
	})
	nodes[first-1].Restart()
	waitFor(t, 60*time.Second, "the first replica alive again, following", func() bool {
		l, e, _ := seenBy(first)
		if l != leader && l > 0 {
			leader, epoch, _ = seenBy(replicas[1]) // led elsewhere since
			return false
		}
		return l == leader && e == epoch
	})
	waitFor(t, 30*time.Second, "the node holding no replica names the leader and epoch the replicas do", func() bool {
		l, e, _ := seenBy(other)
		return l == leader && e == epoch
	})
}
