package test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterPartitionHealthMetrics: with a node killed, the leaders of
// replicated partitions it was a replica of count them under-replicated,
// and the controller counts the single-replica partitions it held
// offline; both go back to 0 when it returns. `sluice cluster status`
// lists the same partitions.
func TestClusterPartitionHealthMetrics(t *testing.T) {
	nodes := startCluster(t, 3)
	all := map[uint64]bool{1: true, 2: true, 3: true}
	var leader uint64
	waitFor(t, 30*time.Second, "three nodes, one leader", func() bool {
		leader = agreedLeader(t, nodes, 3, all)
		return leader != 0
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(nodes[0].Kafka, nodes[1].Kafka, nodes[2].Kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := ctxT(t, 60*time.Second)
	if r, err := adm.CreateTopic(ctx, 3, 3, nil, "health-rf3"); err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v", err, r.Err)
	}
	if r, err := adm.CreateTopic(ctx, 3, 1, nil, "health-rf1"); err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v", err, r.Err)
	}
	sum := func(live []*broker, name string) (float64, bool) {
		var total float64
		for _, b := range live {
			v, ok := b.scrape(t).value(name)
			if !ok {
				return 0, false
			}
			total += v
		}
		return total, true
	}
	waitFor(t, 30*time.Second, "nothing under-replicated or offline", func() bool {
		u, ok1 := sum(nodes, "sluice_under_replicated_partitions")
		o, ok2 := sum(nodes, "sluice_offline_partitions")
		return ok1 && ok2 && u == 0 && o == 0
	})
	checkHealthyStatus(t, nodes[0]) // cluster_status_test.go

	// Kill a node that is not the metadata leader (the controller counts
	// offline partitions).
	victim := nodes[leader%3]
	victim.Kill()
	var live []*broker
	for _, b := range nodes {
		if b != victim {
			live = append(live, b)
		}
	}
	var last [2]float64
	defer func() { t.Logf("under-replicated, offline: %v", last) }()
	waitFor(t, 90*time.Second, "partitions under-replicated and offline while a node is down", func() bool {
		u, ok1 := sum(live, "sluice_under_replicated_partitions")
		o, ok2 := sum(live, "sluice_offline_partitions")
		// Every RF=3 partition has a live leader missing one replica; the
		// RF=1 partition on the dead node has no leader.
		last = [2]float64{u, o}
		return ok1 && ok2 && u == 3 && o == 1
	})
	checkDegradedStatus(t, live[0], leader%3+1)
	victim.Restart()
	waitFor(t, 60*time.Second, "healthy again", func() bool {
		u, ok1 := sum(nodes, "sluice_under_replicated_partitions")
		o, ok2 := sum(nodes, "sluice_offline_partitions")
		return ok1 && ok2 && u == 0 && o == 0
	})
}
