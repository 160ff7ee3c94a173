package test

import (
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// leaderMetadata is what node id says of partition 0 of topic in a
// Metadata request sent to it (a follower cannot know the ISR, so the
// leader is asked); ok false if it cannot be had.
func leaderMetadata(t *testing.T, cl *kgo.Client, id int32, topic string) (kmsg.MetadataResponseTopicPartition, bool) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, 5*time.Second), cl.Broker(int(id)))
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) == 0 {
		return kmsg.MetadataResponseTopicPartition{}, false
	}
	return resp.Topics[0].Partitions[0], true
}

// TestClusterReplicaLagTime: --replica-lag-time-max is reported by
// DescribeConfigs as replica.lag.time.max.ms, and applies: a follower of
// an RF=3 partition paused with SIGSTOP leaves the ISR in its leader's
// Metadata, and comes back once resumed.
func TestClusterReplicaLagTime(t *testing.T) {
	nodes := startCluster(t, 3, "--replica-lag-time-max", "2s")
	all := map[uint64]bool{1: true, 2: true, 3: true}
	var metaLeader uint64
	waitFor(t, 30*time.Second, "three nodes, one leader", func() bool {
		metaLeader = agreedLeader(t, nodes, 3, all)
		return metaLeader != 0
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(nodes[0].Kafka, nodes[1].Kafka, nodes[2].Kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := ctxT(t, 90*time.Second)

	cfgs, err := adm.DescribeBrokerConfigs(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On("2", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("broker 2's configs: %v / %v", err, rc)
	}
	found := false
	for _, c := range rc.Configs {
		if c.Key == "replica.lag.time.max.ms" {
			found = true
			if c.MaybeValue() != "2000" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
				t.Errorf("replica.lag.time.max.ms = %q (source %v), want 2000, static", c.MaybeValue(), c.Source)
			}
		}
	}
	if !found {
		t.Error("DescribeConfigs of a broker does not report replica.lag.time.max.ms")
	}

	if r, err := adm.CreateTopic(ctx, 1, 3, nil, "lagging"); err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v", err, r.Err)
	}
	var leader int32
	waitFor(t, 30*time.Second, "a leader with three replicas in sync", func() bool {
		pd, ok := partitionView(ctx, cl, "lagging")
		if !ok || pd.Leader < 1 {
			return false
		}
		leader = pd.Leader
		p, ok := leaderMetadata(t, cl, leader, "lagging")
		return ok && p.Leader == leader && len(p.ISR) == 3
	})
	// Pause a follower, preferably not the metadata leader, so that the
	// metadata group keeps its leader.
	var follower int32
	for id := int32(1); id <= 3; id++ {
		if id != leader && (follower == 0 || uint64(follower) == metaLeader) {
			follower = id
		}
	}
	paused := nodes[follower-1]
	if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			paused.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	var isr []int32
	waitFor(t, 30*time.Second, "the paused follower out of the ISR", func() bool {
		p, ok := leaderMetadata(t, cl, leader, "lagging")
		isr = p.ISR
		return ok && p.Leader == leader && len(p.ISR) == 2 && !slices.Contains(p.ISR, follower)
	})
	t.Logf("leader %d, follower %d paused: ISR %v", leader, follower, isr)
	if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	waitFor(t, 30*time.Second, "the resumed follower back in the ISR", func() bool {
		p, ok := leaderMetadata(t, cl, leader, "lagging")
		isr = p.ISR
		return ok && len(p.ISR) == 3
	})
	t.Logf("follower %d resumed: ISR %v", follower, isr)
}
