package cli

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDevClusterPlan lays out three nodes with a made-up port source and
// parses each node's arguments with the real server command: every
// setting lands where it should, ports are not reused, and the only thing
// the configuration is refused for is that cluster mode is not available
// yet.
func TestDevClusterPlan(t *testing.T) {
	next := 20000
	port := func() (int, error) {
		next++
		if next == 20003 {
			return 20002, nil // handed out twice: must be skipped
		}
		return next, nil
	}
	dir := t.TempDir()
	plan, err := planDevCluster(3, dir, "blue", []string{"a", "b"}, port)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Nodes) != 3 {
		t.Fatalf("%d nodes", len(plan.Nodes))
	}
	seen := map[string]bool{}
	for _, n := range plan.Nodes {
		for _, a := range []string{n.ClusterAddr, n.KafkaAddr, n.AMQPAddr, n.HTTPAddr} {
			if seen[a] || !strings.HasPrefix(a, "127.0.0.1:") {
				t.Fatalf("address %s reused or not loopback", a)
			}
			seen[a] = true
		}
	}
	wantPeers := "1=" + plan.Nodes[0].ClusterAddr + ",2=" + plan.Nodes[1].ClusterAddr + ",3=" + plan.Nodes[2].ClusterAddr
	for i, n := range plan.Nodes {
		args := plan.args(i, []string{"--fsync", "never"})
		if args[0] != "server" {
			t.Fatalf("args %v", args)
		}
		cmd := newServerCmd()
		if err := cmd.ParseFlags(args[1:]); err != nil {
			t.Fatalf("node %d: %v", n.ID, err)
		}
		cfg, err := serverConfig(cmd, nil)
		if err != nil {
			t.Fatalf("node %d: %v", n.ID, err)
		}
		if cfg.NodeID != n.ID || cfg.ClusterAddr != n.ClusterAddr || cfg.ClusterPeers != wantPeers || cfg.ClusterID != "blue" ||
			cfg.ClusterSecretFile != filepath.Join(dir, "cluster.secret") || cfg.DataDir != filepath.Join(dir, n.DataDir[len(dir)+1:]) ||
			cfg.KafkaAddr != n.KafkaAddr || cfg.AMQPAddr != n.AMQPAddr || cfg.HTTPAddr != n.HTTPAddr || cfg.Fsync != "never" {
			t.Errorf("node %d: config %+v", n.ID, cfg)
		}
		if want := []string{"a", "b", "a"}[i]; cfg.Rack != want {
			t.Errorf("node %d: rack %q, want %q", n.ID, cfg.Rack, want)
		}
	}
	if _, err := planDevCluster(0, dir, "blue", nil, port); err == nil {
		t.Error("0 nodes planned")
	}
	stuck := func() (int, error) { return 7, nil }
	if _, err := planDevCluster(2, dir, "blue", nil, stuck); err == nil {
		t.Error("a port source that repeats itself did not fail")
	}
}

func TestFreePortIsLoopbackAndFree(t *testing.T) {
	a, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	if a <= 0 || a > 65535 {
		t.Fatalf("port %d", a)
	}
}

func TestParseBrokerList(t *testing.T) {
	if got, err := parseBrokerList(" 3, 1,2 "); err != nil || !slices.Equal(got, []int32{3, 1, 2}) {
		t.Fatalf("parse: %v %v", got, err)
	}
	for _, bad := range []string{"", "1,,2", "1,x", "1,1", "-1"} {
		if _, err := parseBrokerList(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if s := formatBrokers(nil); s != "-" {
		t.Errorf("no brokers: %q", s)
	}
	if s := formatBrokers([]int32{2, 3}); s != "2,3" {
		t.Errorf("two brokers: %q", s)
	}
}
