package test

// Black-box tests of a single node's view of itself as `sluice cluster
// status` and Kafka clients see it (docs/clustering.md).

import (
	"strings"
	"testing"
	"time"
)

func TestClusterStatusOfASingleNode(t *testing.T) {
	b := startBroker(t, "--rack", "r7")
	out := mustAdmin(t, b, "cluster", "status")
	// ID NAME STATE ROLE CONTROLLER LEADERS REPLICAS RACK CLUSTER KAFKA AMQP HTTP
	var row []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "1" {
			row = f
		}
	}
	if len(row) != 12 || row[2] != "running" || row[3] != "single" || row[4] != "yes" || row[7] != "r7" || row[9] != b.Kafka || row[10] != b.AMQP || row[11] != b.HTTP {
		t.Fatalf("cluster status:\n%s", out)
	}
	if !strings.Contains(out, "under-replicated: 0, offline: 0") {
		t.Errorf("cluster status of a single node:\n%s", out)
	}

	// Kafka clients see the rack too, on the one broker.
	md, err := b.admin(t).BrokerMetadata(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].NodeID != 1 || md.Brokers[0].Rack == nil || *md.Brokers[0].Rack != "r7" || md.Controller != 1 {
		t.Fatalf("metadata brokers %+v, controller %d", md.Brokers, md.Controller)
	}
}
