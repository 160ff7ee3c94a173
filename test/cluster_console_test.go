package test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConsoleNodesPage: the console's Nodes page, in a real browser
// (test/browser/nodes.spec.mjs), on a three-node cluster with a node
// killed: it lists the nodes with their state and role, and the killed
// node's partitions as under-replicated (RF 3) and offline (RF 1); a
// quorum queue's page shows its leader and members, the killed node's
// offline.
func TestConsoleNodesPage(t *testing.T) {
	node := requireBrowser(t)
	nodes := startCluster(t, 3, "--replica-lag-time-max", "2s")
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
	if r, err := adm.CreateTopic(ctx, 1, 3, nil, "nodes-rf3"); err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v", err, r.Err)
	}
	if r, err := adm.CreateTopic(ctx, 3, 1, nil, "nodes-rf1"); err != nil || r.Err != nil {
		t.Fatalf("create: %v / %v", err, r.Err)
	}
	// A quorum queue on the three nodes, for the queue page's members.
	qch, err := nodes[leader-1].dial(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := qch.QueueDeclare("q-nodes", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	// Kill a node that is not the metadata leader, so that the console's
	// node keeps a controller to show.
	victimID := leader%3 + 1
	nodes[victimID-1].Kill()
	live := nodes[leader-1]
	checkVictim := func() bool {
		for _, n := range clusterView(t, live) {
			if n.NodeID == victimID {
				return !n.Running
			}
		}
		return false
	}
	waitFor(t, 30*time.Second, "the killed node seen unreachable", checkVictim)

	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer scancel()
	cmd := exec.CommandContext(sctx, node, "browser/nodes.spec.mjs")
	cmd.Env = append(os.Environ(), "SLUICE_URL=http://"+live.HTTP+"/", "SLUICE_DEAD="+strconv.FormatUint(victimID, 10))
	out, err := cmd.CombinedOutput()
	t.Logf("nodes.spec.mjs:\n%s", out)
	if err != nil || !strings.Contains(string(out), "0 failed") {
		t.Fatalf("browser checks failed: %v", err)
	}
}
