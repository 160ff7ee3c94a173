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
	// ID NAME ROLE RUNNING RACK CLUSTER KAFKA AMQP HTTP
	var row []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "1" {
			row = f
		}
	}
	if len(row) != 9 || row[2] != "single" || row[3] != "true" || row[4] != "r7" || row[6] != b.Kafka || row[7] != b.AMQP || row[8] != b.HTTP {
		t.Fatalf("cluster status:\n%s", out)
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
