package test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterPlacesPartitionsAndGroups: in a cluster of three, a topic
// created through Kafka is spread over the nodes (one node a partition),
// every node tells clients the same leaders, records produced to every
// partition are read back by a consumer group (whose coordinator is one
// of the nodes), and a replication factor above 1 is refused. With a node
// down its partitions have no leader and the others go on.
func TestClusterPlacesPartitionsAndGroups(t *testing.T) {
	nodes := startCluster(t, 3)
	all := map[uint64]bool{1: true, 2: true, 3: true}
	waitFor(t, 30*time.Second, "three nodes registered, running, one leader", func() bool {
		return agreedLeader(t, nodes, 3, all) != 0
	})
	seeds := []string{nodes[0].Kafka, nodes[1].Kafka, nodes[2].Kafka}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	if r, err := adm.CreateTopic(ctx, 1, 4, nil, "rf4"); err == nil && !errors.Is(r.Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("replication factor 4 of 3 nodes: %v (%s)", r.Err, r.ErrMessage)
	} else if err != nil && !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("replication factor 4 of 3 nodes: %v", err)
	}
	if r, err := adm.CreateTopic(ctx, 6, -1, nil, "spread"); err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v", err, r.Err)
	}

	// Every node answers Metadata with the same leaders, two partitions
	// on each node.
	var leaders map[int32]int32
	for _, seed := range seeds {
		one, err := kgo.NewClient(kgo.SeedBrokers(seed))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the topic's leaders through "+seed, func() bool {
			req := kadm.NewClient(one)
			md, err := req.Metadata(ctx, "spread")
			if err != nil {
				return false
			}
			td := md.Topics["spread"]
			if td.Err != nil || len(td.Partitions) != 6 {
				return false
			}
			got := map[int32]int32{}
			per := map[int32]int{}
			for p, pd := range td.Partitions {
				if pd.Err != nil || pd.Leader < 1 {
					return false
				}
				got[p] = pd.Leader
				per[pd.Leader]++
			}
			if per[1] != 2 || per[2] != 2 || per[3] != 2 {
				t.Fatalf("through %s: leaders %v", seed, got)
			}
			if leaders == nil {
				leaders = got
			} else if fmt.Sprint(leaders) != fmt.Sprint(got) {
				t.Fatalf("through %s: leaders %v, elsewhere %v", seed, got, leaders)
			}
			return true
		})
		one.Close()
	}

	for p := range int32(6) {
		r := &kgo.Record{Topic: "spread", Partition: p, Value: fmt.Appendf(nil, "v%d", p)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d: %v", p, err)
		}
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumerGroup("readers"), kgo.ConsumeTopics("spread"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	for len(seen) < 6 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of 6 records: %v", len(seen), ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit through the group's coordinator: %v", err)
	}
	cons.Close()

	// Node 3 down: its partitions have no leader, the others go on.
	nodes[2].Kill()
	one, err := kgo.NewClient(kgo.SeedBrokers(nodes[0].Kafka), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	waitFor(t, 30*time.Second, "node 3's partitions without a leader", func() bool {
		md, err := kadm.NewClient(one).Metadata(ctx, "spread")
		if err != nil {
			return false
		}
		for p, pd := range md.Topics["spread"].Partitions {
			if onThree := leaders[p] == 3; onThree != (pd.Leader == -1 && errors.Is(pd.Err, kerr.LeaderNotAvailable)) {
				return false
			}
		}
		return true
	})
	for p, l := range leaders {
		if l == 1 {
			r := &kgo.Record{Topic: "spread", Partition: p, Value: []byte("after")}
			if err := one.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce to partition %d on node 1 with node 3 down: %v\n%s", p, err, nodes[0].Logs())
			}
			break
		}
	}
}
