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

// TestClusterNewPartitionsLedByFirstReplica: the first replica of a new
// partition stands for leader at once, as Kafka's controller names it
// leader at creation, and CreateTopics answers once the partitions have
// leaders, so that a topic has leaders without waiting for an election
// timeout (clients that found none wait for their next metadata refresh:
// 5 s for franz-go; the time is logged). Allowing for a replica stalled on a busy
// machine, at least 6 of 8 partitions must be led by their first replica;
// by chance (any replica's election timeout first) it would be 2.7 on
// average, 6 or more about 2% of the time.
func TestClusterNewPartitionsLedByFirstReplica(t *testing.T) {
	nodes := startCluster(t, 3)
	waitFor(t, 30*time.Second, "three nodes, one leader", func() bool {
		return agreedLeader(t, nodes, 3, map[uint64]bool{1: true, 2: true, 3: true}) != 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(nodes[0].Kafka, nodes[1].Kafka, nodes[2].Kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	created := time.Now()
	if r, err := adm.CreateTopic(ctx, 8, 3, nil, "firsts"); err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v", err, r)
	}
	var parts kadm.PartitionDetails
	waitFor(t, 30*time.Second, "a leader for every partition", func() bool {
		md, err := adm.Metadata(ctx, "firsts")
		if err != nil {
			return false
		}
		td := md.Topics["firsts"]
		if td.Err != nil || len(td.Partitions) != 8 {
			return false
		}
		for _, pd := range td.Partitions {
			if pd.Leader < 1 || pd.Err != nil || len(pd.Replicas) != 3 {
				return false
			}
		}
		parts = td.Partitions
		return true
	})
	t.Logf("every partition had a leader %v after CreateTopics was sent", time.Since(created).Round(time.Millisecond))
	first := 0
	for _, pd := range parts {
		if pd.Leader == pd.Replicas[0] {
			first++
		}
	}
	if first < 6 {
		t.Fatalf("%d of 8 new partitions led by their first replica: %v", first, parts)
	}
}
