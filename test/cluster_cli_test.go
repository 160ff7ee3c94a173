package test

// Black-box tests of what exists of clustering before the Raft
// integration (docs/clustering.md): a single node's view of itself as
// `sluice cluster status` and Kafka clients see it, and the refusal of
// cluster mode.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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

func TestServerRefusesClusterModeForNow(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, "server", "--data-dir", filepath.Join(dir, "data"),
		"--node-id", "1", "--cluster-peers", "1="+freePort(t), "--cluster-id", "blue", "--cluster-secret-file", secret,
		"--kafka-addr", freePort(t), "--amqp-addr", freePort(t), "--http-addr", freePort(t))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cluster mode (node_id) is not available yet") {
		t.Fatalf("server with --node-id: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Fatalf("the refused server touched its data directory: %v", err)
	}
}
